package logging

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// listener is a syslog daemon stand-in: a real socket the test opens,
// collecting every message it receives, framing removed.
type listener struct {
	addr string
	msgs chan string
	stop func()
}

// shortDir returns a temporary directory with a short path: a unix socket
// path must fit in 108 bytes, and t.TempDir's names can be longer.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// listenPacket receives datagrams on network "udp" or "unixgram" at addr.
func listenPacket(t testing.TB, network, addr string) *listener {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	l := &listener{addr: pc.LocalAddr().String(), msgs: make(chan string, 100000)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<17)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			l.msgs <- string(buf[:n])
		}
	}()
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			pc.Close()
			<-done
			if network == "unixgram" {
				os.Remove(addr)
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

// listenStream accepts connections on network "tcp" or "unix" (TLS when
// tc is set) and splits what arrives by frame: octet counting or newline.
func listenStream(t testing.TB, network, addr string, frame framing, tc *tls.Config) *listener {
	t.Helper()
	var ln net.Listener
	var err error
	if tc != nil {
		ln, err = tls.Listen(network, addr, tc)
	} else {
		ln, err = net.Listen(network, addr)
	}
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	l := &listener{addr: ln.Addr().String(), msgs: make(chan string, 100000)}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { readFrames(t, c, frame, l.msgs) })
		}
	})
	var once sync.Once
	l.stop = func() {
		once.Do(func() {
			ln.Close()
			mu.Lock()
			for _, c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(l.stop)
	return l
}

// readFrames reads frames until the connection ends; a malformed frame
// fails the test.
func readFrames(t testing.TB, c net.Conn, frame framing, out chan<- string) {
	r := bufio.NewReader(c)
	for {
		switch frame {
		case frameOctetCount:
			lenText, err := r.ReadString(' ')
			if err != nil {
				return
			}
			n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
			if err != nil || n <= 0 {
				t.Errorf("bad octet-count frame: %q", lenText)
				return
			}
			msg := make([]byte, n)
			if _, err := io.ReadFull(r, msg); err != nil {
				return
			}
			out <- string(msg)
		default:
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			out <- strings.TrimSuffix(line, "\n")
		}
	}
}

// receive waits for n messages, ignoring the sink's own notices of a lost
// and regained connection.
func (l *listener) receive(t testing.TB, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-l.msgs:
			if strings.Contains(m, `"msg":"syslog reconnected"`) || strings.Contains(m, `"msg":"syslog connection lost`) {
				continue
			}
			got = append(got, m)
		case <-timeout:
			t.Fatalf("received %d of %d messages in 10s: %q", len(got), n, got)
		}
	}
	return got
}

// syslogConfig is the default log config with syslog on, everything at debug.
func syslogConfig(network, address string) config.Log {
	cfg := config.Default().Log
	cfg.Level = "debug"
	cfg.Syslog.Enabled = true
	cfg.Syslog.Network = network
	cfg.Syslog.Address = address
	return cfg
}

// rfc5424 matches "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG".
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$`)

func TestSyslogPRIForEveryLevelAndFacility(t *testing.T) {
	levels := []struct {
		log      func(*slog.Logger, string)
		severity int
	}{
		{func(l *slog.Logger, m string) { l.Debug(m) }, 7},
		{func(l *slog.Logger, m string) { l.Info(m) }, 6},
		{func(l *slog.Logger, m string) { l.Warn(m) }, 4},
		{func(l *slog.Logger, m string) { l.Error(m) }, 3},
	}
	for _, tt := range []struct {
		facility string
		code     int
	}{{"kern", 0}, {"user", 1}, {"daemon", 3}, {"local0", 16}, {"local7", 23}} {
		t.Run(tt.facility, func(t *testing.T) {
			ln := listenPacket(t, "udp", "127.0.0.1:0")
			cfg := syslogConfig("udp", ln.addr)
			cfg.Syslog.Facility = tt.facility
			l, _, _ := setup(t, cfg)
			for _, lv := range levels {
				lv.log(l.Logger, "m")
				got := ln.receive(t, 1)[0]
				want := fmt.Sprintf("<%d>1 ", tt.code*8+lv.severity)
				if !strings.HasPrefix(got, want) {
					t.Errorf("severity %d: message %q, want prefix %q", lv.severity, got, want)
				}
			}
		})
	}
}

func TestSyslogRFC5424Header(t *testing.T) {
	for _, network := range []string{"udp", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unixgram" {
				addr = filepath.Join(shortDir(t), "log.sock")
			}
			ln := listenPacket(t, network, addr)
			cfg := syslogConfig(network, ln.addr)
			cfg.Syslog.AppName = "my app"
			l, _, _ := setup(t, cfg)
			before := time.Now()
			ctx := WithRequestID(context.Background(), "req-7")
			l.Logger.With("svc", "notes").InfoContext(ctx, "hello", "note_id", 12, "text", "line1\nline2")

			got := ln.receive(t, 1)[0]
			m := rfc5424.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("not RFC 5424: %q", got)
			}
			ts, err := time.Parse(time.RFC3339Nano, m[2])
			if err != nil || ts.Before(before.Truncate(time.Microsecond)) || ts.After(time.Now()) {
				t.Errorf("TIMESTAMP %q (%v): want the record's time", m[2], err)
			}
			if !strings.Contains(m[2], ".") || len(strings.Split(m[2], ".")[1]) < 7 {
				t.Errorf("TIMESTAMP %q: want microseconds", m[2])
			}
			for i, want := range map[int]string{
				1: "134", 3: "test-host", 4: "my_app", 5: strconv.Itoa(os.Getpid()), 6: "-", 7: "-",
			} {
				if m[i] != want {
					t.Errorf("field %d = %q, want %q in %q", i, m[i], want, got)
				}
			}
			// The body is the JSON record: attributes and request_id survive.
			var body map[string]any
			if err := json.Unmarshal([]byte(m[8]), &body); err != nil {
				t.Fatalf("MSG is not JSON: %v: %q", err, m[8])
			}
			if body["msg"] != "hello" || body["note_id"] != 12.0 || body["svc"] != "notes" ||
				body["request_id"] != "req-7" || body["text"] != "line1\nline2" {
				t.Errorf("MSG = %v", body)
			}
		})
	}
}

func TestSyslogRFC3164(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tt := range []struct {
		network string
		want    *regexp.Regexp
	}{
		// On the network the receiver needs the HOSTNAME.
		{"udp", regexp.MustCompile(`^<132>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d test-host notes-api\[` + pid + `\]: level=WARN msg=careful k=v$`)},
		// On the local socket it is left out, as glibc's syslog(3) does.
		{"unixgram", regexp.MustCompile(`^<132>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d notes-api\[` + pid + `\]: level=WARN msg=careful k=v$`)},
	} {
		t.Run(tt.network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if tt.network == "unixgram" {
				addr = filepath.Join(shortDir(t), "log.sock")
			}
			ln := listenPacket(t, tt.network, addr)
			cfg := syslogConfig(tt.network, ln.addr)
			cfg.Syslog.Protocol = "rfc3164"
			cfg.Format = "text"
			l, _, _ := setup(t, cfg)
			l.Logger.Warn("careful", "k", "v")
			got := ln.receive(t, 1)[0]
			// The text body starts with time=...; drop it for the match.
			got = regexp.MustCompile(`time=\S+ `).ReplaceAllString(got, "")
			if !tt.want.MatchString(got) {
				t.Errorf("message %q, want match %s", got, tt.want)
			}
		})
	}
}

// selfSignedTLS returns a server config with a fresh certificate for
// 127.0.0.1 and the path of that certificate as a CA file.
func selfSignedTLS(t testing.TB) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "syslog test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

func TestSyslogStreamFraming(t *testing.T) {
	serverTLS, caFile := selfSignedTLS(t)
	for _, tt := range []struct {
		network, protocol string
		frame             framing
		prefix            string
	}{
		{"tcp", "rfc5424", frameOctetCount, "<134>1 "},
		{"tcp", "rfc3164", frameNewline, "<134>"},
		{"tcp+tls", "rfc5424", frameOctetCount, "<134>1 "},
		{"unix", "rfc5424", frameNewline, "<134>1 "},
	} {
		t.Run(tt.network+"/"+tt.protocol, func(t *testing.T) {
			var ln *listener
			switch tt.network {
			case "tcp":
				ln = listenStream(t, "tcp", "127.0.0.1:0", tt.frame, nil)
			case "tcp+tls":
				ln = listenStream(t, "tcp", "127.0.0.1:0", tt.frame, serverTLS)
			case "unix":
				ln = listenStream(t, "unix", filepath.Join(shortDir(t), "log.sock"), tt.frame, nil)
			}
			cfg := syslogConfig(tt.network, ln.addr)
			cfg.Syslog.Protocol = tt.protocol
			cfg.Syslog.TLSCAFile = caFile
			l, stdout, _ := setup(t, cfg)
			// A raw newline in a message must not split it: slog's handlers
			// escape newlines in values, and the sink escapes any left.
			l.Logger.Info("first")
			l.Logger.Info("two\nlines", "k", "a\r\nb")
			l.Logger.Info(strings.Repeat("x", 5000))
			got := ln.receive(t, 3)
			for _, m := range got {
				if !strings.HasPrefix(m, tt.prefix) || strings.ContainsAny(m, "\r\n") {
					t.Errorf("message %.80q: want prefix %q and no raw CR/LF", m, tt.prefix)
				}
			}
			if !strings.Contains(got[1], `two\nlines`) {
				t.Errorf("second message %q lost its escaped newline", got[1])
			}
			waitFor(t, "3 sent", func() bool { return l.SyslogStats().Sent >= 3 }) // counted after the write returns
			if s := l.SyslogStats(); !s.Connected || s.Network != tt.network {
				t.Errorf("stats %+v, want connected over %s", s, tt.network)
			}
			if strings.Contains(stdout.String(), "unreachable") {
				t.Errorf("stdout %q: a reachable daemon was reported unreachable", stdout)
			}
			// The health check dials with the sink's TLS settings.
			if tc := l.SyslogTLS(); (tt.network == "tcp+tls") != (tc != nil) || (tc != nil && (tc.RootCAs == nil || tc.ServerName != "127.0.0.1")) {
				t.Errorf("SyslogTLS() = %+v over %s", tc, tt.network)
			}
		})
	}
}

func TestSyslogTLSWithUntrustedCertificate(t *testing.T) {
	serverTLS, _ := selfSignedTLS(t)
	_, otherCA := selfSignedTLS(t)
	ln := listenStream(t, "tcp", "127.0.0.1:0", frameOctetCount, serverTLS)
	cfg := syslogConfig("tcp+tls", ln.addr)
	cfg.Syslog.TLSCAFile = otherCA
	l, stdout, _ := setup(t, cfg)
	recs := stdout.Records(t, "syslog unreachable at start; will retry")
	if len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["error"]), "certificate") {
		t.Fatalf("want one start warning naming the certificate problem; stdout %s", stdout)
	}
	if s := l.SyslogStats(); s.Connected || s.Errors == 0 {
		t.Errorf("stats %+v: want disconnected with an error", s)
	}
}

// TestSyslogNeverBlocksAndReconnects cuts the daemon away (removed socket,
// closed port), logs far more than the queue holds, and brings it back.
func TestSyslogNeverBlocksAndReconnects(t *testing.T) {
	const queue, n = 50, 2000
	for _, network := range []string{"unixgram", "tcp"} {
		t.Run(network, func(t *testing.T) {
			start := func(addr string) *listener {
				if network == "unixgram" {
					return listenPacket(t, network, addr)
				}
				return listenStream(t, network, addr, frameOctetCount, nil)
			}
			addr := "127.0.0.1:0"
			if network == "unixgram" {
				addr = filepath.Join(shortDir(t), "log.sock")
			}
			ln := start(addr)
			addr = ln.addr
			cfg := syslogConfig(network, addr)
			cfg.Syslog.QueueSize = queue
			l, stdout, _ := setup(t, cfg)
			l.Logger.Info("before")
			ln.receive(t, 1)

			ln.stop() // the daemon goes away: socket removed, port closed

			// Liveness, not speed: n records must be accepted without
			// waiting on the daemon. A blocking sink would never finish.
			logged := make(chan struct{})
			go func() {
				defer close(logged)
				for i := range n {
					l.Logger.Info("while gone", "i", i)
				}
			}()
			select {
			case <-logged:
			case <-time.After(30 * time.Second):
				t.Fatal("logging blocked while the syslog daemon was gone")
			}
			s := l.SyslogStats()
			// Only the queue, one record in the writer's hands and the few
			// written into the dying TCP connection before its reset escape
			// the count.
			if s.Dropped < n-queue-10 || s.Queued > queue {
				t.Errorf("stats %+v: want at least %d dropped and at most %d queued", s, n-queue-10, queue)
			}
			waitFor(t, "the writer to notice", func() bool { return !l.SyslogStats().Connected })
			if s := l.SyslogStats(); s.Errors == 0 {
				t.Errorf("stats %+v: want errors counted", s)
			}

			back := start(addr) // the daemon comes back at the same address
			waitFor(t, "a reconnect", func() bool { return l.SyslogStats().Reconnects >= 1 })
			// What waited in the queue goes first; then new records flow.
			waitFor(t, "the queue to drain", func() bool { return l.SyslogStats().Queued == 0 })
			l.Logger.Info("after")
			got := back.receive(t, 1)
			deadline := time.After(10 * time.Second)
			for !strings.Contains(got[len(got)-1], `"msg":"after"`) {
				select {
				case m := <-back.msgs:
					got = append(got, m)
				case <-deadline:
					t.Fatalf("the record logged after the daemon came back never arrived; got %d messages", len(got))
				}
			}
			if s := l.SyslogStats(); !s.Connected {
				t.Errorf("stats %+v: want connected", s)
			}
			if len(stdout.Records(t, "syslog reconnected")) != 1 || len(stdout.Records(t, "syslog connection lost; reconnecting")) != 1 {
				t.Errorf("want one lost and one reconnected line on stdout; got %q", msgs(t, stdout))
			}
		})
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSyslogUnreachableAtStart(t *testing.T) {
	addr := servicetest.ClosedPort(t)
	cfg := syslogConfig("tcp", addr)
	l, stdout, _ := setup(t, cfg) // Setup succeeds: the service runs
	recs := stdout.Records(t, "syslog unreachable at start; will retry")
	if len(recs) != 1 || recs[0]["level"] != "WARN" || recs[0]["address"] != addr || recs[0]["network"] != "tcp" {
		t.Fatalf("want one warning with network and address on stdout; got %s", stdout)
	}
	l.Logger.Info("queued while away")
	ln := listenStream(t, "tcp", addr, frameOctetCount, nil)
	got := ln.receive(t, 2) // the start warning itself, then the record
	if !strings.Contains(got[0], "syslog unreachable at start") || !strings.Contains(got[1], "queued while away") {
		t.Errorf("got %q; want the queued records once the daemon listens", got)
	}
	if s := l.SyslogStats(); s.Reconnects != 1 || s.Dropped != 0 {
		t.Errorf("stats %+v: want 1 reconnect and nothing dropped", s)
	}
}

func TestSyslogDroppedCountIsLogged(t *testing.T) {
	cfg := syslogConfig("tcp", servicetest.ClosedPort(t))
	cfg.Syslog.QueueSize = 1
	cfg.DroppedReportInterval = 20 * time.Millisecond
	l, stdout, _ := setup(t, cfg)
	for range 10 {
		l.Logger.Info("x")
	}
	waitFor(t, "a dropped report", func() bool { return len(stdout.Records(t, "syslog records dropped")) > 0 })
	time.Sleep(100 * time.Millisecond) // several intervals with no new drops: no new lines
	recs := stdout.Records(t, "syslog records dropped")
	var sum float64
	for _, r := range recs {
		if r["level"] != "WARN" {
			t.Errorf("report at %v, want WARN", r["level"])
		}
		sum += r["dropped"].(float64)
	}
	total := recs[len(recs)-1]["total"].(float64)
	if sum != total || uint64(total) != l.SyslogStats().Dropped || total < 8 {
		t.Errorf("reports %v: dropped adds up to %v, total %v, stats %d; want equal and >= 8",
			recs, sum, total, l.SyslogStats().Dropped)
	}
}

func TestCloseFlushesTheQueue(t *testing.T) {
	ln := listenStream(t, "tcp", "127.0.0.1:0", frameOctetCount, nil)
	cfg := syslogConfig("tcp", ln.addr)
	var stdout servicetest.LogBuffer
	l, err := Setup(Options{Config: cfg, Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		l.Logger.Info("r", "i", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := ln.receive(t, 500); !strings.Contains(got[499], `"i":499`) {
		t.Errorf("last message %q, want record 499", got[499])
	}
	if s := l.SyslogStats(); s.Sent != 500 || s.Queued != 0 || s.Connected {
		t.Errorf("stats after Close %+v", s)
	}
	// After Close: stdout still works, syslog records are discarded, and a
	// second Close is harmless.
	l.Logger.Info("late")
	if len(stdout.Records(t, "late")) != 1 || l.SyslogStats().Dropped != 0 {
		t.Errorf("after Close: stdout %q, stats %+v", msgs(t, &stdout), l.SyslogStats())
	}
	if err := l.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCloseGivesUpAtTheDeadline(t *testing.T) {
	cfg := syslogConfig("tcp", servicetest.ClosedPort(t))
	var stdout servicetest.LogBuffer
	l, err := Setup(Options{Config: cfg, Stdout: &stdout})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		l.Logger.Info("never sent")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = l.Close(ctx)
	// 5 records and the start warning.
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "6 records not sent") {
		t.Errorf("Close = %v, want 6 records not sent and DeadlineExceeded", err)
	}
	if s := l.SyslogStats(); s.Dropped != 6 || s.Queued != 0 {
		t.Errorf("stats %+v: want 6 dropped", s)
	}
	if recs := stdout.Records(t, "syslog records dropped"); len(recs) != 1 || recs[0]["dropped"] != 6.0 {
		t.Errorf("want a final dropped report of 6 on stdout; got %v", recs)
	}
}

func TestSyslogDatagramIsTruncated(t *testing.T) {
	ln := listenPacket(t, "udp", "127.0.0.1:0")
	l, _, _ := setup(t, syslogConfig("udp", ln.addr))
	l.Logger.Info("big", "blob", strings.Repeat("y\n", 50000)) // 100 kB, escaped 150 kB
	got := ln.receive(t, 1)[0]
	if len(got) > maxDatagram || !strings.HasPrefix(got, "<134>1 ") {
		t.Errorf("datagram of %d bytes (max %d), prefix %.10q", len(got), maxDatagram, got)
	}
}

func TestSyslogWithAttrsAndGroups(t *testing.T) {
	ln := listenPacket(t, "udp", "127.0.0.1:0")
	cfg := syslogConfig("udp", ln.addr)
	cfg.Stderr = config.LogSink{Enabled: true, Level: "debug"}
	l, stdout, stderr := setup(t, cfg)
	l.Logger.With("k", "v").WithGroup("g").Info("m", "a", 1)
	want := `"msg":"m","k":"v","g":{"a":1}}`
	got := ln.receive(t, 1)[0]
	for name, out := range map[string]string{"syslog": got, "stdout": stdout.String(), "stderr": stderr.String()} {
		if !strings.Contains(out, want) {
			t.Errorf("%s = %q, want %q", name, out, want)
		}
	}
}

func TestSyslogSinkLevel(t *testing.T) {
	ln := listenPacket(t, "udp", "127.0.0.1:0")
	cfg := syslogConfig("udp", ln.addr)
	cfg.Syslog.Level = "warn"
	l, stdout, _ := setup(t, cfg)
	logEach(l.Logger)
	got := ln.receive(t, 2)
	if !strings.Contains(got[0], `"msg":"warn"`) || !strings.Contains(got[1], `"msg":"error"`) {
		t.Errorf("syslog got %q, want warn and error only", got)
	}
	if n := len(stdout.Records(t, "")); n != 4 {
		t.Errorf("stdout has %d records, want all 4", n)
	}
	select {
	case m := <-ln.msgs:
		t.Errorf("unexpected extra message %q", m)
	default:
	}
}

func TestHeaderFieldAndBackoff(t *testing.T) {
	for in, want := range map[string]string{
		"": "-", "host": "host", "my host\x00é": "my_host___", strings.Repeat("a", 60): strings.Repeat("a", 48),
	} {
		if got := headerField(in, 48); got != want {
			t.Errorf("headerField(%q) = %q, want %q", in, got, want)
		}
	}
	var seq []time.Duration
	d := time.Duration(0)
	for range 12 {
		d = nextBackoff(d)
		seq = append(seq, d)
		if j := jitter(d); j < d/2 || j > d {
			t.Errorf("jitter(%v) = %v, want within [%v, %v]", d, j, d/2, d)
		}
	}
	if seq[0] != backoffMin || seq[1] != 2*backoffMin || seq[len(seq)-1] != backoffMax {
		t.Errorf("backoff %v: want %v doubling to %v", seq, backoffMin, backoffMax)
	}
	for lv, want := range map[slog.Level]int{slog.LevelDebug - 4: 7, slog.LevelInfo + 2: 6, slog.LevelWarn + 1: 4, slog.LevelError + 8: 3} {
		if got := severity(lv); got != want {
			t.Errorf("severity(%v) = %d, want %d", lv, got, want)
		}
	}
}

func TestMessageWithZeroTime(t *testing.T) {
	f5424, err := newSyslogFormat("rfc5424", "user", "udp", "h", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f5424.message(slog.LevelInfo, time.Time{}, []byte("body\n"))); got != "<14>1 - h a 1 - - body" {
		t.Errorf("RFC 5424 with zero time = %q", got)
	}
	f3164, err := newSyslogFormat("rfc3164", "user", "udp", "h", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	got := string(f3164.message(slog.LevelInfo, time.Time{}, []byte("body\n")))
	if !regexp.MustCompile(`^<14>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d h a\[1\]: body$`).MatchString(got) {
		t.Errorf("RFC 3164 with zero time = %q, want the current time", got)
	}
}

// TestMessageEscapesRawNewlines covers a body with raw CR and LF, which slog's
// own handlers never produce but a custom one might: each record must stay
// one message and one line, even when cut to fit a datagram.
func TestMessageEscapesRawNewlines(t *testing.T) {
	f, err := newSyslogFormat("rfc3164", "user", "tcp", "h", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f.message(slog.LevelInfo, time.Unix(0, 0).UTC(), []byte("a\nb\r\nc\n"))); got != "<14>Jan  1 00:00:00 h a[1]: a\\nb\\r\\nc\n" {
		t.Errorf("newline-framed message = %q", got)
	}
	udp, err := newSyslogFormat("rfc5424", "user", "udp", "h", "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("\n", maxDatagram))
	got := udp.message(slog.LevelInfo, time.Time{}, body)
	if len(got) > maxDatagram || len(got) < maxDatagram-1 || strings.ContainsAny(string(got), "\n") {
		t.Errorf("truncated message: %d bytes (max %d), raw newline: %v", len(got), maxDatagram, strings.Contains(string(got), "\n"))
	}
}

// TestSyslogCheck_RealListener: a TCP daemon that accepts passes; gone, it
// fails; records dropped since the last check turn a pass into a warning.
func TestSyslogCheck_RealListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var dropped atomic.Uint64
	c := SyslogCheck(SyslogTarget{Network: "tcp", Address: ln.Addr().String(), Dropped: dropped.Load}, time.Second, discard())
	sock := listenPacket(t, "unixgram", filepath.Join(shortDir(t), "log"))
	local := SyslogCheck(SyslogTarget{Network: "unixgram", Address: sock.addr, Dropped: dropped.Load}, time.Second, discard())
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 20*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	}
	if r := run(c); r.Status != health.Pass {
		t.Fatalf("daemon up: %+v", r)
	}
	dropped.Store(7)
	if r := run(c); r.Status != health.Warn || r.Output != "7 records dropped since the last check" {
		t.Errorf("after drops: %+v", r)
	}
	if r := run(c); r.Status != health.Pass {
		t.Errorf("no new drops: %+v", r)
	}
	dropped.Store(9)
	if r := run(local); r.Status != health.Warn {
		t.Errorf("local socket, drops: %+v", r)
	}
	ln.Close()
	if r := run(c); r.Status != health.Fail || !strings.Contains(r.Output, "unreachable") {
		t.Errorf("daemon gone: %+v", r)
	}
	tlsCheck := SyslogCheck(SyslogTarget{Network: "tcp+tls", Address: ln.Addr().String(), TLS: &tls.Config{MinVersion: tls.VersionTLS12}}, time.Second, discard())
	if r := run(tlsCheck); r.Status != health.Fail {
		t.Errorf("TLS to a closed port: %+v", r)
	}
}

// TestSyslogCheck_TLS: a daemon with a trusted certificate passes; one the
// check does not trust fails, and the check hangs up instead of leaving the
// socket open (one leaked connection per status run otherwise).
//
// The check's own timeout is generous: what is asserted is the verdict, and
// under the race detector on a busy machine the first handshake that loads
// the system roots can take longer than a second.
func TestSyslogCheck_TLS(t *testing.T) {
	srv := httptest.NewTLSServer(nil) // only for its certificate
	srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hungUp := make(chan error, 8)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer raw.Close()
				_ = tls.Server(raw, srv.TLS).Handshake()
				// Wait for the check to close its end of the socket: the
				// raw read returns io.EOF then, or times out if it never does.
				_ = raw.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, err := io.Copy(io.Discard, raw)
				hungUp <- err
			}()
		}
	}()
	run := func(c health.Check) health.CheckResult {
		return health.NewRunner(nil, 0, 20*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	}
	trusted := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, ServerName: "127.0.0.1"}
	if r := run(SyslogCheck(SyslogTarget{Network: "tcp+tls", Address: ln.Addr().String(), TLS: trusted}, 10*time.Second, discard())); r.Status != health.Pass {
		t.Errorf("trusted certificate: %+v", r)
	}
	<-hungUp
	untrusted := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"} // system roots
	if r := run(SyslogCheck(SyslogTarget{Network: "tcp+tls", Address: ln.Addr().String(), TLS: untrusted}, 10*time.Second, discard())); r.Status != health.Fail || !strings.Contains(r.Output, "unreachable") {
		t.Errorf("untrusted certificate: %+v", r)
	}
	if err := <-hungUp; errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after a failed handshake the check left the connection open (server read: %v)", err)
	}
}

// TestLogging_SyslogCheck: with syslog off there is no check to register;
// with a TCP sink the check dials the sink's own address.
func TestLogging_SyslogCheck(t *testing.T) {
	off, err := Setup(Options{Config: config.Log{Level: "info", Format: "json"}, Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = off.Close(context.Background()) })
	if _, ok := off.SyslogCheck(time.Second, discard()); ok {
		t.Error("a check for a syslog sink that is off")
	}

	ln := listenStream(t, "tcp", "127.0.0.1:0", frameOctetCount, nil)
	on, err := Setup(Options{Config: config.Log{Level: "info", Format: "json",
		Syslog: config.LogSyslog{Enabled: true, Network: "tcp", Address: ln.addr, QueueSize: 16, WriteTimeout: time.Second}},
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = on.Close(context.Background()) })
	c, ok := on.SyslogCheck(time.Second, discard())
	if !ok {
		t.Fatal("no check for an enabled syslog sink")
	}
	r := health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	if r.Status != health.Pass || r.ObservedUnit != "ms" {
		t.Errorf("TCP sink up: %+v", r)
	}
}

// TestLogging_SyslogCheck_Unusable: syslog on but its socket or address
// unusable (no such socket, a socket nobody reads, a closed TCP or UDP port)
// is a failing check that names the address and the reason, never a pass.
func TestLogging_SyslogCheck_Unusable(t *testing.T) {
	dir := shortDir(t)
	deadSock := filepath.Join(dir, "dead")
	dead, err := net.ListenPacket("unixgram", deadSock)
	if err != nil {
		t.Fatal(err)
	}
	dead.Close() // the file stays, nobody reads it: what a stopped daemon leaves
	udp := listenPacket(t, "udp", "127.0.0.1:0")
	udp.stop()
	tests := []struct {
		name, network, address, want string
		afterWrite                   bool // udp: only a write finds out
	}{
		{"missing socket", "unixgram", filepath.Join(dir, "no-such-log"), "no such socket", false},
		{"socket nobody reads", "unixgram", deadSock, "connection refused", false},
		{"missing stream socket", "unix", filepath.Join(dir, "no-such-stream"), "no such socket", false},
		{"closed TCP port", "tcp", servicetest.ClosedPort(t), "connection refused", false},
		{"closed UDP port", "udp", udp.addr, "the last write was refused", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := setup(t, syslogConfig(tt.network, tt.address))
			if tt.afterWrite {
				for i := 0; !waitUntil(func() bool { return !l.SyslogStats().Connected }); i++ {
					l.Logger.Info("probe", "i", i) // the ICMP answer to one write fails the next
				}
			}
			c, ok := l.SyslogCheck(time.Second, discard())
			if !ok {
				t.Fatal("no check for an enabled syslog sink")
			}
			r := health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
			if r.Status != health.Fail || !strings.Contains(r.Output, tt.network+" "+tt.address) || !strings.Contains(r.Output, tt.want) {
				t.Errorf("status %s, output %q; want fail naming %s %s and %q", r.Status, r.Output, tt.network, tt.address, tt.want)
			}
		})
	}
}

// TestSyslogCheck_Reasons: each way a daemon can be out of reach is said in
// words on /status: a TLS daemon that takes the connection and never shakes
// hands is "no answer", an address that cannot be dialled at all is named
// as such; a UDP sink the service last reached passes.
func TestSyslogCheck_Reasons(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts (the kernel does) and never answers
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tests := []struct {
		name   string
		target SyslogTarget
		status health.Status
		output string
	}{
		{"TLS daemon that never answers", SyslogTarget{Network: "tcp+tls", Address: silent.Addr().String(), TLS: &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "syslog.test"}},
			health.Fail, "no answer within status.syslog_timeout"},
		{"an address no dial can use", SyslogTarget{Network: "tcp", Address: "127.0.0.1:99999"},
			health.Fail, "cannot connect (the log has the error)"},
		{"UDP sink still connected", SyslogTarget{Network: "udp", Address: "127.0.0.1:514", Connected: func() bool { return true }},
			health.Pass, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Run directly, under the deadline the runner would give it, so
			// the check's own words are seen (the runner answers a check
			// that outlives its deadline with a generic timeout).
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			r := SyslogCheck(tt.target, time.Second, discard()).Run(ctx)
			if r.Status != tt.status || !strings.Contains(r.Output, tt.output) {
				t.Errorf("status %s, output %q; want %s with %q", r.Status, r.Output, tt.status, tt.output)
			}
		})
	}
}

// waitUntil polls cond for a short while and says whether it came true.
func waitUntil(cond func() bool) bool {
	for range 20 {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// discard is a logger for the checks under test.
func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestLogging_SyslogCheck_HungDaemon: a daemon that takes connections but
// reads nothing (hung, or stopped with SIGSTOP) passes a dial, so the check
// also asks the sink: once the kernel's buffers towards the daemon are full
// and writes time out (log.syslog.write_timeout), it fails, naming the
// address; when the daemon reads again, it stops failing.
func TestLogging_SyslogCheck_HungDaemon(t *testing.T) {
	// A small receive buffer, so that the kernel's share fills sooner.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resume := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				<-resume // hung until then
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	cfg := syslogConfig("tcp", ln.Addr().String())
	cfg.Syslog.WriteTimeout = 200 * time.Millisecond
	cfg.Syslog.QueueSize = 64
	cfg.Stdout.Level = "info" // the sink's own lines; the filler below is debug, for syslog only
	stdout := &servicetest.LogBuffer{}
	l, err := Setup(Options{Config: cfg, Stdout: stdout, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	c, ok := l.SyslogCheck(time.Second, discard())
	if !ok {
		t.Fatal("no check for an enabled syslog sink")
	}
	check := func() health.CheckResult {
		return health.NewRunner(nil, 0, 2*time.Second, c).Run(context.Background()).Checks["syslog:connection"][0]
	}
	if r := check(); r.Status != health.Pass {
		t.Fatalf("daemon reading nothing yet, nothing logged: %+v, want pass", r)
	}
	line := strings.Repeat("x", 4000)
	deadline := time.Now().Add(30 * time.Second)
	var r health.CheckResult
	for r = check(); r.Status != health.Fail && time.Now().Before(deadline); r = check() {
		for range 500 { // until the kernel's buffers are full
			l.Logger.Debug(line)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Status != health.Fail || !strings.Contains(r.Output, "tcp "+ln.Addr().String()) ||
		!strings.Contains(r.Output, "accepts connections but reads nothing") {
		t.Fatalf("daemon hung: %+v (sink %+v), want fail naming it", r, l.SyslogStats())
	}
	t.Logf("failing after %s: %s", time.Since(deadline.Add(-30*time.Second)).Round(time.Millisecond), r.Output)
	// Each new connection takes a buffer's worth, then times out: the sink
	// redials with a growing backoff, not at once (a log line each time).
	before := l.SyslogStats().Reconnects
	for range 80 {
		for range 500 {
			l.Logger.Debug(line)
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := l.SyslogStats().Reconnects - before
	t.Logf("%d reconnects in 4 s", n)
	if n > 6 {
		t.Errorf("%d reconnects in 4 s to a hung daemon with a 200 ms write timeout, want a backoff", n)
	}
	// One outage, one line, however many dials it took: no dial into the
	// hung daemon is called a reconnection (a line each, before).
	if lost, back := len(stdout.Records(t, "syslog connection lost; reconnecting")), len(stdout.Records(t, "syslog reconnected")); lost != 1 || back != 0 {
		t.Errorf("while the daemon is hung: %d lost and %d reconnected lines, want 1 and 0", lost, back)
	}
	close(resume)
	resumed := time.Now()
	l.Logger.Info("after the daemon resumed")
	for r = check(); r.Status == health.Fail && time.Now().Before(deadline); r = check() {
		time.Sleep(50 * time.Millisecond)
	}
	if r.Status == health.Fail {
		t.Errorf("daemon reading again: %+v, want it to stop failing", r)
	}
	t.Logf("%s after it resumed: %s %s", time.Since(resumed).Round(time.Millisecond), r.Status, r.Output)
}
