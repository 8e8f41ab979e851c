package servicetest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Collector is a fake New Relic collector: an HTTPS server on loopback that
// speaks the agent's protocol (version 17), so tests can see what the real
// agent reports without leaving the machine.
//
// The agent POSTs gzip JSON to
// /agent_listener/invoke_raw_method?method=<m>&protocol_version=17&license_key=..&run_id=..
// First preconnect, answered with a redirect_host (this server again), then
// connect, answered with an agent run ID and a one-second event harvest, then
// the data methods (metric_data, analytic_event_data, span_event_data,
// error_event_data, error_data, log_event_data, transaction_sample_data,
// sql_trace_data, ...). Every call is decoded and kept for assertions.
//
// Events (transactions, spans, errors, logs) arrive about every second;
// metrics and traces only every 60 s, or at once when the application shuts
// down (newrelic.Application.Shutdown flushes).
type Collector struct {
	srv    *httptest.Server
	caFile string
	pool   *x509.CertPool

	mu       sync.Mutex
	calls    []Call
	runs     int
	refuse   int // status for preconnect and connect; 0 accepts
	fail     int // status for the data methods; 0 accepts
	hang     bool
	arrived  chan struct{} // closed and replaced on every call
	released chan struct{} // closed to let hanging calls go
	print    io.Writer     // when set, a line per call
}

// Call is one request the agent made.
type Call struct {
	Method     string // preconnect, connect, metric_data, ...
	RunID      string
	LicenseKey string
	Status     int // what the collector answered; 0 while the call hangs
	Payload    any // the gzip JSON body, decoded
	At         time.Time
}

// LicenseKey is a well-formed license key (40 characters) for tests.
const LicenseKey = "0123456789abcdef0123456789abcdef01234567"

// StartCollector starts a collector on 127.0.0.1 for the test and stops it
// at the end. Point the agent at Host() and trust CAFile() (or Transport()).
func StartCollector(t testing.TB) *Collector {
	t.Helper()
	c, err := NewCollector("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatalf("fake collector: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// NewCollector starts a collector listening on addr (a loopback host:port)
// and writes its CA certificate to dir/collector-ca.pem.
func NewCollector(addr, dir string) (*Collector, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	c := &Collector{arrived: make(chan struct{}), released: make(chan struct{})}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	_ = c.srv.Listener.Close()
	c.srv.Listener = ln
	c.srv.StartTLS() // httptest's certificate is valid for 127.0.0.1 and ::1
	cert := c.srv.Certificate()
	c.pool = x509.NewCertPool()
	c.pool.AddCert(cert)
	c.caFile = filepath.Join(dir, "collector-ca.pem")
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		c.Close()
		return nil, fmt.Errorf("write the CA file: %w", err)
	}
	return c, nil
}

// Close releases hanging calls and stops the server.
func (c *Collector) Close() {
	c.Hang(false)
	c.srv.Close()
}

// Host is the collector's host:port, for newrelic.collector_host.
func (c *Collector) Host() string { return c.srv.Listener.Addr().String() }

// CAFile is a PEM file with the certificate that signs the collector's, for
// newrelic.collector_ca_file.
func (c *Collector) CAFile() string { return c.caFile }

// Transport trusts the collector's certificate, for newrelic.Config.Transport.
func (c *Collector) Transport() http.RoundTripper {
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pool, MinVersion: tls.VersionTLS12}}
}

// Print writes one line per call to w from now on (the standalone collector).
func (c *Collector) Print(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.print = w
}

// Refuse makes preconnect and connect answer status, as New Relic answers
// 401 to a wrong license key; 0 accepts again.
func (c *Collector) Refuse(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refuse = status
}

// Fail makes the data methods answer status (503: the agent keeps the data
// for the next harvest); 0 accepts again.
func (c *Collector) Fail(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = status
}

// Hang makes the data methods never answer, as a collector behind a dead
// network path; Hang(false) lets them go (with 503).
func (c *Collector) Hang(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hang && !on {
		close(c.released)
		c.released = make(chan struct{})
	}
	c.hang = on
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	call := Call{Method: q.Get("method"), RunID: q.Get("run_id"), LicenseKey: q.Get("license_key"), At: time.Now()}
	if r.URL.Path != "/agent_listener/invoke_raw_method" || q.Get("protocol_version") != "17" || r.Method != http.MethodPost {
		http.Error(w, "not the agent protocol 17", http.StatusNotFound)
		return
	}
	payload, err := decodeBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call.Payload = payload

	c.mu.Lock()
	status, reply := http.StatusOK, `{"return_value":null}`
	hang, released := false, c.released
	switch call.Method {
	case "preconnect":
		reply = fmt.Sprintf(`{"return_value":{"redirect_host":%q}}`, c.Host())
		if c.refuse != 0 {
			status = c.refuse
		}
	case "connect":
		if c.refuse != 0 {
			status = c.refuse
			break
		}
		c.runs++
		reply = fmt.Sprintf(`{"return_value":{"agent_run_id":"run-%d","entity_guid":"FAKE-ENTITY-GUID",`+
			`"account_id":"1","trusted_account_key":"1","primary_application_id":"1",`+
			`"sampling_target":100000,"sampling_target_period_in_seconds":60,`+
			`"event_harvest_config":{"report_period_ms":1000,"harvest_limits":{"analytic_event_data":10000,`+
			`"custom_event_data":10000,"log_event_data":10000,"error_event_data":100,"span_event_data":2000}},`+
			`"span_event_harvest_config":{"report_period_ms":1000,"harvest_limit":2000}}}`, c.runs)
	default:
		hang = c.hang
		if c.fail != 0 {
			status = c.fail
		}
	}
	if status != http.StatusOK {
		reply = fmt.Sprintf(`{"exception":{"message":"fake collector answers %d","error_type":"NewRelic::Agent::LicenseException"}}`, status)
	}
	if !hang {
		call.Status = status
	}
	c.record(call)
	c.mu.Unlock()

	if hang {
		select {
		case <-released:
		case <-r.Context().Done():
		}
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reply)
}

// record keeps call and wakes waiters; c.mu is held.
func (c *Collector) record(call Call) {
	c.calls = append(c.calls, call)
	close(c.arrived)
	c.arrived = make(chan struct{})
	if c.print != nil {
		fmt.Fprintf(c.print, "%s %-24s %s\n", call.At.Format("15:04:05.000"), call.Method, Summary(call))
	}
}

func decodeBody(r *http.Request) (any, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return v, nil
}

// Calls returns the calls of the given methods so far (all with none).
func (c *Collector) Calls(methods ...string) []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Call
	for _, call := range c.calls {
		if len(methods) == 0 || slices.Contains(methods, call.Method) {
			out = append(out, call)
		}
	}
	return out
}

// WaitFor waits until ok holds for the calls so far, or fails the test after
// timeout with what did arrive.
func (c *Collector) WaitFor(t testing.TB, what string, timeout time.Duration, ok func(c *Collector) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		arrived := c.arrived
		c.mu.Unlock()
		if ok(c) {
			return
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("fake collector: %s did not arrive within %s; calls: %s", what, timeout, c.describe())
		}
	}
}

func (c *Collector) describe() string {
	var b strings.Builder
	for _, call := range c.Calls() {
		fmt.Fprintf(&b, "\n  %s %d %s", call.Method, call.Status, Summary(call))
	}
	return b.String()
}

// Event is one analytic, span or error event: the three attribute maps the
// protocol sends for each.
type Event struct {
	Intrinsics, User, Agent map[string]any
}

// Events returns the events of every call of method (analytic_event_data,
// span_event_data, error_event_data, custom_event_data), in arrival order.
// Payload: [run_id, {reservoir info}, [[intrinsics, user, agent], ...]].
func (c *Collector) Events(method string) []Event {
	var out []Event
	for _, call := range c.Calls(method) {
		out = append(out, eventsOf(call)...)
	}
	return out
}

func eventsOf(call Call) []Event {
	p, _ := call.Payload.([]any)
	if len(p) < 3 {
		return nil
	}
	list, _ := p[2].([]any)
	out := make([]Event, 0, len(list))
	for _, e := range list {
		parts, _ := e.([]any)
		ev := Event{}
		for i, m := range []*map[string]any{&ev.Intrinsics, &ev.User, &ev.Agent} {
			if i < len(parts) {
				*m, _ = parts[i].(map[string]any)
			}
		}
		out = append(out, ev)
	}
	return out
}

// Logs returns the forwarded log records (log_event_data).
// Payload: [{"common": {...}, "logs": [{"level", "message", "trace.id", "span.id", "timestamp", "attributes"}]}].
func (c *Collector) Logs() []map[string]any {
	var out []map[string]any
	for _, call := range c.Calls("log_event_data") {
		out = append(out, logsOf(call)...)
	}
	return out
}

func logsOf(call Call) []map[string]any {
	var out []map[string]any
	groups, _ := call.Payload.([]any)
	for _, g := range groups {
		gm, _ := g.(map[string]any)
		logs, _ := gm["logs"].([]any)
		for _, l := range logs {
			if m, ok := l.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// Metrics returns the count of every metric received (metric_data), by name;
// scoped metrics are named "name|scope".
// Payload: [run_id, start, end, [[{"name", "scope"}, [count, total, exclusive, min, max, sumsq]], ...]].
func (c *Collector) Metrics() map[string]float64 {
	out := map[string]float64{}
	for _, call := range c.Calls("metric_data") {
		for name, n := range metricsOf(call) {
			out[name] += n
		}
	}
	return out
}

func metricsOf(call Call) map[string]float64 {
	out := map[string]float64{}
	p, _ := call.Payload.([]any)
	if len(p) < 4 {
		return out
	}
	list, _ := p[3].([]any)
	for _, m := range list {
		pair, _ := m.([]any)
		if len(pair) < 2 {
			continue
		}
		id, _ := pair[0].(map[string]any)
		vals, _ := pair[1].([]any)
		name, _ := id["name"].(string)
		if scope, _ := id["scope"].(string); scope != "" {
			name += "|" + scope
		}
		if len(vals) > 0 {
			n, _ := vals[0].(json.Number).Float64()
			out[name] += n
		}
	}
	return out
}

// ErrorTraces returns the error traces (error_data), which carry the stack.
// Payload: [run_id, [[timestamp, txn name, message, class, {"stack_trace": [...], ...}, guid], ...]].
func (c *Collector) ErrorTraces() []ErrorTrace {
	var out []ErrorTrace
	for _, call := range c.Calls("error_data") {
		p, _ := call.Payload.([]any)
		if len(p) < 2 {
			continue
		}
		list, _ := p[1].([]any)
		for _, e := range list {
			f, _ := e.([]any)
			if len(f) < 5 {
				continue
			}
			et := ErrorTrace{}
			et.Transaction, _ = f[1].(string)
			et.Message, _ = f[2].(string)
			et.Class, _ = f[3].(string)
			if params, ok := f[4].(map[string]any); ok {
				for _, frame := range asSlice(params["stack_trace"]) {
					et.Stack = append(et.Stack, fmt.Sprint(frame))
				}
				et.Agent, _ = params["agentAttributes"].(map[string]any)
				et.User, _ = params["userAttributes"].(map[string]any)
			}
			out = append(out, et)
		}
	}
	return out
}

// ErrorTrace is one noticed error with its stack.
type ErrorTrace struct {
	Transaction, Message, Class string
	Stack                       []string // one entry per frame
	Agent, User                 map[string]any
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// Connect returns the agent's connect payload (app_name, labels, settings,
// utilization, ...) of the latest connect, or nil before one.
func (c *Collector) Connect() map[string]any {
	calls := c.Calls("connect")
	if len(calls) == 0 {
		return nil
	}
	p, _ := calls[len(calls)-1].Payload.([]any)
	if len(p) == 0 {
		return nil
	}
	m, _ := p[0].(map[string]any)
	return m
}

// Summary describes a call in one line: what a person watching the
// standalone collector wants to see.
func Summary(call Call) string {
	status := fmt.Sprint(call.Status)
	if call.Status == 0 {
		status = "hanging"
	}
	var what string
	switch call.Method {
	case "connect":
		p, _ := call.Payload.([]any)
		if len(p) > 0 {
			m, _ := p[0].(map[string]any)
			what = fmt.Sprintf("app_name=%v labels=%v", m["app_name"], m["labels"])
		}
	case "analytic_event_data", "span_event_data", "error_event_data", "custom_event_data":
		var names []string
		for _, e := range eventsOf(call) {
			n := fmt.Sprint(e.Intrinsics["name"])
			if call.Method == "error_event_data" {
				n = fmt.Sprintf("%v: %v", e.Intrinsics["error.class"], e.Intrinsics["error.message"])
			}
			names = append(names, n)
		}
		what = fmt.Sprintf("%d events %s", len(names), clip(strings.Join(names, ", ")))
	case "log_event_data":
		var msgs []string
		for _, l := range logsOf(call) {
			msgs = append(msgs, fmt.Sprintf("%v %q trace.id=%v", l["level"], l["message"], l["trace.id"]))
		}
		what = fmt.Sprintf("%d logs %s", len(msgs), clip(strings.Join(msgs, ", ")))
	case "metric_data":
		m := metricsOf(call)
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Strings(names)
		what = fmt.Sprintf("%d metrics %s", len(names), clip(strings.Join(names, ", ")))
	}
	run := ""
	if call.RunID != "" {
		run = " run=" + call.RunID
	}
	return strings.TrimSpace(fmt.Sprintf("status=%s%s %s", status, run, what))
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
