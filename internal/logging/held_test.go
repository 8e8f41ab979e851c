package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
)

// writes records every Write a sink makes, as the process's stdout would
// receive them.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

// lines is what the writes said, one entry per line: each line's msg, or
// its path for an access line.
func lines(calls []string) []string {
	var out []string
	for _, c := range calls {
		for line := range strings.Lines(c) {
			switch {
			case strings.Contains(line, `"path":"`):
				out = append(out, strings.SplitN(strings.SplitN(line, `"path":"`, 2)[1], `"`, 2)[0])
			default:
				out = append(out, strings.SplitN(strings.SplitN(line, `"msg":"`, 2)[1], `"`, 2)[0])
			}
		}
	}
	return out
}

// TestAccessLinesHeld: with log.access_flush_interval, info access lines
// reach stdout together, in one write, and in order with every other line;
// a warning, an access line at warn (a 5xx) and Close write at once what is
// held. What an operator reading stdout sees: every line, in the order
// logged, with a warning or an error never waiting.
func TestAccessLinesHeld(t *testing.T) {
	access := func(l *slog.Logger, path string, level slog.Level) {
		LogAccess(context.Background(), l, Access{Level: level, Method: "GET", Route: "/v1/notes/:id", Path: path, Status: 200})
	}
	tests := []struct {
		name  string
		delay time.Duration
		log   func(l *Logging)
		// calls is how many writes have happened after log, and lines what
		// they said; then Close, after which want is everything.
		calls int
		lines []string
	}{
		{
			name: "held until a warning, written before it in one write", delay: time.Hour,
			log: func(l *Logging) {
				access(l.Logger, "/a", slog.LevelInfo)
				access(l.Logger, "/b", slog.LevelInfo)
				l.Logger.Warn("redis check failed")
			},
			calls: 1, lines: []string{"/a", "/b", "redis check failed"},
		},
		{
			name: "an access line at warn (a 5xx) is not held, nor what came before", delay: time.Hour,
			log: func(l *Logging) {
				access(l.Logger, "/a", slog.LevelInfo)
				access(l.Logger, "/failed", slog.LevelWarn)
			},
			calls: 1, lines: []string{"/a", "/failed"},
		},
		{
			name: "info lines that are not access lines are not held", delay: time.Hour,
			log: func(l *Logging) {
				l.Logger.Info("listening")
				access(l.Logger, "/a", slog.LevelInfo)
			},
			calls: 1, lines: []string{"listening"},
		},
		{
			name: "without a delay, each line at once", delay: 0,
			log: func(l *Logging) {
				access(l.Logger, "/a", slog.LevelInfo)
				access(l.Logger, "/b", slog.LevelInfo)
			},
			calls: 2, lines: []string{"/a", "/b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &writes{}
			l, err := Setup(Options{Config: config.Log{Level: "info", Format: "json", Stdout: config.LogSink{Enabled: true}, AccessFlushInterval: tt.delay}, Stdout: w})
			if err != nil {
				t.Fatal(err)
			}
			tt.log(l)
			got := w.get()
			if len(got) != tt.calls || strings.Join(lines(got), " ") != strings.Join(tt.lines, " ") {
				t.Fatalf("after logging: %d writes saying %q; want %d saying %q", len(got), lines(got), tt.calls, tt.lines)
			}
			before := lines(got)
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			all := lines(w.get())
			if len(all) < len(before) || strings.Join(all[:len(before)], " ") != strings.Join(before, " ") {
				t.Fatalf("Close rewrote or reordered lines: %q, then %q", before, all)
			}
			access(l.Logger, "/after-close", slog.LevelInfo)
			if got := lines(w.get()); got[len(got)-1] != "/after-close" {
				t.Errorf("a line after Close was held: stdout says %q", got)
			}
		})
	}
}

// TestAccessLinesHeldAtMostTheInterval: held lines are written by
// themselves once the interval has passed, with nothing else logged; and a
// burst over the size limit is written without waiting for it.
func TestAccessLinesHeldAtMostTheInterval(t *testing.T) {
	w := &writes{}
	l, err := Setup(Options{Config: config.Log{Level: "info", Format: "json", Stdout: config.LogSink{Enabled: true}, AccessFlushInterval: 20 * time.Millisecond}, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	for round := 1; round <= 2; round++ { // the second: the timer, once fired, is armed again
		LogAccess(context.Background(), l.Logger, Access{Level: slog.LevelInfo, Method: "GET", Path: "/round", Status: 200})
		deadline := time.Now().Add(5 * time.Second)
		for len(w.get()) < round && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := w.get(); len(got) != round {
			t.Fatalf("round %d: %d writes %q after 5 s; want the held line written by the interval (20 ms)", round, len(got), lines(got))
		}
	}

	w2 := &writes{}
	l2, err := Setup(Options{Config: config.Log{Level: "info", Format: "json", Stdout: config.LogSink{Enabled: true}, AccessFlushInterval: time.Hour}, Stdout: w2})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close(context.Background())
	n := 0
	for len(w2.get()) == 0 && n < 10_000 {
		LogAccess(context.Background(), l2.Logger, Access{Level: slog.LevelInfo, Method: "GET", Path: "/burst", Status: 200})
		n++
	}
	got := w2.get()
	if len(got) != 1 || len(got[0]) < heldLimit {
		t.Fatalf("a burst of %d lines: %d writes; want one of at least %d bytes, without waiting the hour", n, len(got), heldLimit)
	}
	if left := n - len(lines(got)); left != 0 {
		t.Errorf("%d of the burst's lines were not in the write that emptied the buffer", left)
	}
}
