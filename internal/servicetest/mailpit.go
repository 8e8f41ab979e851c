package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MailpitServer is a private Mailpit (github.com/axllent/mailpit): a real
// SMTP server that keeps what it receives, read back through its HTTP API.
// Each one has its own ports and database, so tests never share mail.
type MailpitServer struct {
	smtpAddr string
	apiURL   string
	cmd      *exec.Cmd
	output   *LogBuffer
}

// MailpitMessage is one received message as Mailpit decoded it.
type MailpitMessage struct {
	ID       string
	Subject  string
	From     string
	To       []string
	Text     string              // the plain-text body, decoded, with \n line ends
	Username string              // the SMTP user that sent it; "" without authentication
	Headers  map[string][]string // every header as received
	Raw      string              // the message as received
}

// Mailpit starts a Mailpit process on free loopback ports and stops it when
// the test ends. extraArgs are added to its command line (for example
// --smtp-auth-accept-any, or --smtp-tls-cert and --smtp-tls-key for STARTTLS).
// Without them it accepts unauthenticated, unencrypted mail from anyone.
//
// The binary is $MAILPIT_BIN, else .tools/mailpit at the module root (make
// mailpit installs it there), else mailpit on the PATH; without one the test
// is skipped (or fails under REQUIRE_SERVICES=1).
func Mailpit(t testing.TB, extraArgs ...string) *MailpitServer {
	t.Helper()
	bin := mailpitBinary()
	if bin == "" || !isExecutable(bin) {
		Missing(t, "Mailpit", "no executable in $MAILPIT_BIN, .tools/mailpit or the PATH; install with: make mailpit")
	}
	return retryStart(t, "mailpit", func() (*MailpitServer, error) { return startMailpit(t, bin, extraArgs) })
}

func mailpitBinary() string {
	if bin := os.Getenv("MAILPIT_BIN"); bin != "" {
		return bin
	}
	if root := moduleRoot(); root != "" {
		if bin := filepath.Join(root, ".tools", "mailpit"); isExecutable(bin) {
			return bin
		}
	}
	bin, _ := exec.LookPath("mailpit")
	return bin
}

// moduleRoot walks up from the working directory (the package under test)
// to the directory holding go.mod.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isExecutable(path string) bool {
	st, err := os.Stat(path) // #nosec G703 -- a path the test or its environment names (MAILPIT_BIN, GATUS_BIN)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// LoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago,
// for a process the caller is about to start (the tests' servers, the
// checklist stack, the bench servers).
func LoopbackPort() (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startMailpit(t testing.TB, bin string, extraArgs []string) (*MailpitServer, error) {
	smtpPort, err := LoopbackPort()
	if err != nil {
		return nil, err
	}
	httpPort, err := LoopbackPort()
	if err != nil {
		return nil, err
	}
	m := &MailpitServer{
		smtpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort)),
		apiURL:   "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		output:   &LogBuffer{},
	}
	args := append([]string{
		"--smtp", m.smtpAddr,
		"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		"--database", filepath.Join(t.TempDir(), "mailpit.db"),
		"--disable-version-check", // no call to GitHub
		"--smtp-disable-rdns",     // no reverse DNS lookup per connection
		"--quiet",
	}, extraArgs...)
	// Stopped by the cleanup (Kill), not by a context: it outlives this call.
	m.cmd = exec.CommandContext(context.Background(), bin, args...) // #nosec G204 -- the test's own binary and flags
	if err := startUntilReady(t, m.cmd, m.output, m.ready); err != nil {
		return nil, err
	}
	return m, nil
}

// ready reports whether both the HTTP API and the SMTP port answer.
func (m *MailpitServer) ready() bool {
	if !answersOK(m.apiURL + "/readyz") {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.smtpAddr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// SMTPHost is the host the SMTP server listens on (127.0.0.1).
func (m *MailpitServer) SMTPHost() string { h, _, _ := net.SplitHostPort(m.smtpAddr); return h }

// SMTPPort is the SMTP server's port.
func (m *MailpitServer) SMTPPort() int {
	_, p, _ := net.SplitHostPort(m.smtpAddr)
	n, _ := strconv.Atoi(p)
	return n
}

// APIURL is the base URL of the web UI and HTTP API.
func (m *MailpitServer) APIURL() string { return m.apiURL }

// Count returns how many messages Mailpit holds.
func (m *MailpitServer) Count(t testing.TB) int {
	t.Helper()
	var list struct {
		Total int `json:"total"`
	}
	m.get(t, "/api/v1/messages?limit=1", &list)
	return list.Total
}

// Messages returns every message received, oldest first, with bodies and
// headers (GET /api/v1/messages, then /api/v1/message/{ID} for each).
func (m *MailpitServer) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	var list struct {
		Messages []struct {
			ID string `json:"ID"`
		} `json:"messages"`
	}
	m.get(t, "/api/v1/messages?limit=10000", &list)
	out := make([]MailpitMessage, 0, len(list.Messages))
	for _, s := range slices.Backward(list.Messages) { // the API lists newest first
		var full struct {
			ID       string
			Subject  string
			From     struct{ Address string }
			To       []struct{ Address string }
			Text     string
			Username string
		}
		m.get(t, "/api/v1/message/"+s.ID, &full)
		msg := MailpitMessage{ID: full.ID, Subject: full.Subject, From: full.From.Address, Text: strings.ReplaceAll(full.Text, "\r\n", "\n"), Username: full.Username}
		for _, to := range full.To {
			msg.To = append(msg.To, to.Address)
		}
		m.get(t, "/api/v1/message/"+s.ID+"/headers", &msg.Headers)
		msg.Raw = string(m.getRaw(t, "/api/v1/message/"+s.ID+"/raw"))
		out = append(out, msg)
	}
	return out
}

// WaitForMessages waits until Mailpit holds at least n messages, then
// returns them all; the test fails if they do not arrive within timeout.
func (m *MailpitServer) WaitForMessages(t testing.TB, n int, timeout time.Duration) []MailpitMessage {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := m.Count(t)
		if got >= n {
			return m.Messages(t)
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: %d messages after %s, want %d", got, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DeleteAll removes every message.
func (m *MailpitServer) DeleteAll(t testing.TB) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodDelete, m.apiURL+"/api/v1/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mailpit: delete messages: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit: delete messages: %s", resp.Status)
	}
}

func (m *MailpitServer) get(t testing.TB, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(m.getRaw(t, path), v); err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
}

func (m *MailpitServer) getRaw(t testing.TB, path string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.apiURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit: GET %s: %s: %s", path, resp.Status, b.String())
	}
	return b.Bytes()
}
