package logging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/servicetest"
)

// msgs returns the msg of every JSON record, in order.
func msgs(t testing.TB, b *servicetest.LogBuffer) []string {
	t.Helper()
	var out []string
	for _, r := range b.Records(t, "") {
		out = append(out, fmt.Sprint(r["msg"]))
	}
	return out
}

// setup builds logging from cfg with buffers for stdout and stderr, closed
// at the end of the test.
func setup(t testing.TB, cfg config.Log) (*Logging, *servicetest.LogBuffer, *servicetest.LogBuffer) {
	t.Helper()
	var stdout, stderr servicetest.LogBuffer
	l, err := Setup(Options{Config: cfg, Stdout: &stdout, Stderr: &stderr, Hostname: "test-host"})
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	t.Cleanup(func() {
		// Short: a test whose daemon is gone would wait it out in full.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Close(ctx)
	})
	return l, &stdout, &stderr
}

// logEach logs one record per level, its msg the level's name.
func logEach(logger *slog.Logger) {
	logger.Debug("debug")
	logger.Info("info")
	logger.Warn("warn")
	logger.Error("error")
}

func TestSinksRouteRecordsByLevel(t *testing.T) {
	tests := []struct {
		name       string
		change     func(*config.Log)
		wantStdout []string
		wantStderr []string
	}{
		{
			name:       "default: info and up to stdout, nothing to stderr",
			change:     func(*config.Log) {},
			wantStdout: []string{"info", "warn", "error"},
		},
		{
			name:       "global debug",
			change:     func(c *config.Log) { c.Level = "debug" },
			wantStdout: []string{"debug", "info", "warn", "error"},
		},
		{
			name:       "stderr on: warnings and errors there too",
			change:     func(c *config.Log) { c.Stderr.Enabled = true },
			wantStdout: []string{"info", "warn", "error"},
			wantStderr: []string{"warn", "error"},
		},
		{
			name: "stdout at error, stderr with the global level",
			change: func(c *config.Log) {
				c.Stdout.Level = "error"
				c.Stderr = config.LogSink{Enabled: true}
			},
			wantStdout: []string{"error"},
			wantStderr: []string{"info", "warn", "error"},
		},
		{
			name: "global warn wins over a lower sink level",
			change: func(c *config.Log) {
				c.Level = "warn"
				c.Stderr = config.LogSink{Enabled: true, Level: "debug"}
			},
			wantStdout: []string{"warn", "error"},
			wantStderr: []string{"warn", "error"},
		},
		{
			name: "stdout off, stderr only",
			change: func(c *config.Log) {
				c.Stdout.Enabled = false
				c.Stderr = config.LogSink{Enabled: true, Level: "info"}
			},
			wantStderr: []string{"info", "warn", "error"},
		},
		{
			name:   "every sink off",
			change: func(c *config.Log) { c.Stdout.Enabled = false },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default().Log
			tt.change(&cfg)
			l, stdout, stderr := setup(t, cfg)
			logEach(l.Logger)
			if got := msgs(t, stdout); !slices.Equal(got, tt.wantStdout) {
				t.Errorf("stdout got %q, want %q", got, tt.wantStdout)
			}
			if got := msgs(t, stderr); !slices.Equal(got, tt.wantStderr) {
				t.Errorf("stderr got %q, want %q", got, tt.wantStderr)
			}
		})
	}
}

func TestSinkFormats(t *testing.T) {
	tests := []struct {
		name                     string
		global, stdout, stderr   string
		wantStdoutJSON, wantErrJ bool
	}{
		{name: "json by default", global: "json", wantStdoutJSON: true, wantErrJ: true},
		{name: "text globally", global: "text"},
		{name: "text globally, json on stderr", global: "text", stderr: "json", wantErrJ: true},
		{name: "json globally, text on stdout", global: "json", stdout: "text", wantErrJ: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default().Log
			cfg.Format = tt.global
			cfg.Stdout.Format = tt.stdout
			cfg.Stderr = config.LogSink{Enabled: true, Format: tt.stderr}
			l, stdout, stderr := setup(t, cfg)
			l.Logger.Info("hello world", "k", "v w")
			for _, s := range []struct {
				name     string
				out      string
				wantJSON bool
			}{{"stdout", stdout.String(), tt.wantStdoutJSON}, {"stderr", stderr.String(), tt.wantErrJ}} {
				var want string
				if s.wantJSON {
					want = `"level":"INFO","msg":"hello world","k":"v w"}` + "\n"
				} else {
					want = `level=INFO msg="hello world" k="v w"` + "\n"
				}
				if !strings.HasSuffix(s.out, want) {
					t.Errorf("%s = %q, want it to end with %q", s.name, s.out, want)
				}
			}
		})
	}
}

func TestSetLevelAtRuntime(t *testing.T) {
	cfg := config.Default().Log // info
	cfg.Stderr = config.LogSink{Enabled: true, Level: "warn"}
	l, stdout, stderr := setup(t, cfg)

	step := func(level, wantLevel string, wantDebug bool) {
		t.Helper()
		if err := l.SetLevel(level); err != nil {
			t.Fatalf("SetLevel(%q): %v", level, err)
		}
		if got := l.Level(); got != wantLevel {
			t.Errorf("Level() = %q, want %q", got, wantLevel)
		}
		before := len(stdout.Records(t, "probe"))
		l.Logger.Debug("probe")
		got := len(stdout.Records(t, "probe")) - before
		if want := map[bool]int{true: 1, false: 0}[wantDebug]; got != want {
			t.Errorf("at level %s: %d debug records on stdout, want %d", level, got, want)
		}
	}
	step("debug", "debug", true)  // debug records appear
	step("info", "info", false)   // ... and disappear
	step("DEBUG", "debug", true)  // case does not matter
	step("error", "error", false) // ... quieter than the change line itself
	step("warning", "warn", false)

	var changes []string
	for _, r := range stdout.Records(t, "log level changed") {
		if r["level"] != "WARN" {
			t.Errorf("level change logged at %v, want WARN", r["level"])
		}
		changes = append(changes, fmt.Sprintf("%v->%v", r["from"], r["to"]))
	}
	want := []string{"info->debug", "debug->info", "info->debug", "debug->error", "error->warn"}
	if !slices.Equal(changes, want) {
		t.Errorf("changes logged on stdout %q, want %q (each one visible)", changes, want)
	}
	if n := len(stderr.Records(t, "log level changed")); n != len(want) {
		t.Errorf("stderr (warn sink) has %d change lines, want %d", n, len(want))
	}

	if err := l.SetLevel("warn"); err != nil { // unchanged: not logged again
		t.Fatal(err)
	}
	if n := len(stdout.Records(t, "log level changed")); n != len(want) {
		t.Errorf("setting the same level logged a change: %d lines", n)
	}
	if err := l.SetLevel("verbose"); err == nil || l.Level() != "warn" {
		t.Errorf("SetLevel(verbose) = %v, level %s; want an error and no change", err, l.Level())
	}
}

// TestSetLevelConcurrently is for the race detector: loggers, level changes
// and stats readers at once.
func TestSetLevelConcurrently(t *testing.T) {
	l, stdout, _ := setup(t, config.Default().Log)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			logger := l.Logger.With("worker", i)
			for range 200 {
				logger.Debug("d")
				logger.Info("i")
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			_ = l.SetLevel([]string{"debug", "info"}[i%2])
			_ = l.Level()
			_ = l.SyslogStats()
		}
	})
	wg.Wait()
	if n := len(stdout.Records(t, "i")); n != 8*200 {
		t.Errorf("%d info records, want %d", n, 8*200)
	}
}

func TestRequestIDOnEveryRecord(t *testing.T) {
	cfg := config.Default().Log
	cfg.Stderr = config.LogSink{Enabled: true, Level: "info"}
	l, stdout, stderr := setup(t, cfg)
	ctx := WithRequestID(context.Background(), "req-42")
	l.Logger.InfoContext(ctx, "with id")
	l.Logger.With("k", "v").WithGroup("g").InfoContext(ctx, "derived", "a", 1)
	l.Logger.Info("without id")

	for name, b := range map[string]*servicetest.LogBuffer{"stdout": stdout, "stderr": stderr} {
		recs := b.Records(t, "")
		if len(recs) != 3 {
			t.Fatalf("%s: %d records, want 3", name, len(recs))
		}
		if recs[0]["request_id"] != "req-42" {
			t.Errorf("%s: %v, want request_id req-42", name, recs[0])
		}
		// Under a group the attribute lands in the group, as slog places
		// every record attribute.
		if g, _ := recs[1]["g"].(map[string]any); g["request_id"] != "req-42" || recs[1]["k"] != "v" {
			t.Errorf("%s: %v, want k=v and g.request_id", name, recs[1])
		}
		if _, ok := recs[2]["request_id"]; ok {
			t.Errorf("%s: %v has a request_id without one in the context", name, recs[2])
		}
	}
	if got := RequestID(context.Background()); got != "" {
		t.Errorf("RequestID(empty) = %q", got)
	}
	// Through derived contexts, cancellation and all, as context.WithValue.
	parent, cancel := context.WithCancel(context.Background())
	child, stop := context.WithTimeout(WithRequestID(parent, "req-7"), time.Hour)
	defer stop()
	cancel()
	if got := RequestID(child); got != "req-7" || child.Err() == nil {
		t.Errorf("a derived context: RequestID %q, Err %v; want req-7 and canceled with its parent", got, child.Err())
	}
	if got := fmt.Sprint(WithRequestID(context.Background(), "req-8")); got != "context.Background.WithRequestID(req-8)" {
		t.Errorf("the context prints as %q", got)
	}
}

func TestNewKeepsWorking(t *testing.T) {
	var buf servicetest.LogBuffer
	logger, level, err := New(&buf, Options{Level: "warn", Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("hidden")
	level.Set(slog.LevelInfo)
	logger.InfoContext(WithRequestID(context.Background(), "r1"), "shown")
	if got, want := buf.String(), `msg=shown request_id=r1`; strings.Contains(got, "hidden") || !strings.Contains(got, want) {
		t.Errorf("output %q, want only %q", got, want)
	}
	if _, _, err := New(&buf, Options{Level: "loud"}); err == nil {
		t.Error("New with a bad level: no error")
	}
	if _, _, err := New(nil, Options{}); err == nil {
		t.Error("New with a nil writer: no error")
	}
}

func TestSetupRejectsBadConfig(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*config.Log)
		want   string
	}{
		{"level", func(c *config.Log) { c.Level = "verbose" }, `unknown log level "verbose"`},
		{"format", func(c *config.Log) { c.Format = "xml" }, `log.stdout.format: unknown log format "xml"`},
		{"syslog body format", func(c *config.Log) { c.Stdout.Format = "json"; c.Format = "xml"; c.Syslog.Enabled = true }, `log.format: unknown log format "xml"`},
		{"stderr level", func(c *config.Log) { c.Stderr = config.LogSink{Enabled: true, Level: "loud"} }, "log.stderr.level"},
		{"syslog level", func(c *config.Log) { c.Syslog.Enabled = true; c.Syslog.Level = "loud" }, "log.syslog.level"},
		{"facility", func(c *config.Log) { c.Syslog.Enabled = true; c.Syslog.Facility = "local9" }, "log.syslog.facility"},
		{"network", func(c *config.Log) { c.Syslog.Enabled = true; c.Syslog.Network = "sctp" }, "log.syslog.network"},
		{"protocol", func(c *config.Log) { c.Syslog.Enabled = true; c.Syslog.Protocol = "rfc9999" }, "log.syslog.protocol"},
		{"tls address", func(c *config.Log) {
			c.Syslog = config.LogSyslog{Enabled: true, Network: "tcp+tls", Address: "no-port"}
		}, "tcp+tls needs host:port"},
		{"tls ca missing", func(c *config.Log) {
			c.Syslog = config.LogSyslog{Enabled: true, Network: "tcp+tls", Address: "127.0.0.1:1", TLSCAFile: "/nonexistent/ca.pem"}
		}, "log.syslog.tls_ca_file"},
		{"tls ca not pem", func(c *config.Log) {
			c.Syslog = config.LogSyslog{Enabled: true, Network: "tcp+tls", Address: "127.0.0.1:1", TLSCAFile: notPEM}
		}, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default().Log
			tt.change(&cfg)
			_, err := Setup(Options{Config: cfg, Stdout: &servicetest.LogBuffer{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Setup error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn,
		"warning": slog.LevelWarn, "Error": slog.LevelError,
	} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel(""); err == nil {
		t.Error(`ParseLevel("") gave no error`)
	}
}

func TestDefaultsWithEmptyConfig(t *testing.T) {
	// A zero config.Log still gives a working logger (info, JSON) rather
	// than an error: Setup fills in what validation would.
	stdout := &servicetest.LogBuffer{}
	l, err := Setup(Options{Config: config.Log{Stdout: config.LogSink{Enabled: true}}, Stdout: stdout})
	if err != nil {
		t.Fatal(err)
	}
	logEach(l.Logger)
	if got := msgs(t, stdout); !slices.Equal(got, []string{"info", "warn", "error"}) {
		t.Errorf("got %q", got)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("Close without syslog: %v", err)
	}
	if s := l.SyslogStats(); s.Enabled {
		t.Errorf("SyslogStats = %+v, want disabled", s)
	}
}

// failingWriter fails every write, as a closed pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestSinkErrorsAreReturnedToTheHandlerCaller(t *testing.T) {
	cfg := config.Default().Log
	cfg.Stderr = config.LogSink{Enabled: true, Level: "info"}
	var stdout servicetest.LogBuffer
	l, err := Setup(Options{Config: cfg, Stdout: &stdout, Stderr: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	err = l.Logger.Handler().Handle(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "stderr: broken pipe") {
		t.Errorf("Handle error = %v, want the stderr failure", err)
	}
	if len(stdout.Records(t, "m")) != 1 {
		t.Error("a failing stderr stopped the record reaching stdout")
	}
	// Below the global level, Handle called directly writes nothing.
	if err := l.Logger.Handler().Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelDebug, "low", 0)); err != nil {
		t.Error(err)
	}
	if l.Logger.Handler().WithGroup("") != l.Logger.Handler() {
		t.Error(`WithGroup("") should return the handler itself`)
	}
	if len(stdout.Records(t, "low")) != 0 {
		t.Error("a debug record passed the info gate")
	}
}
