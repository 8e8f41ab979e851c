package servicetest

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// LogBuffer collects output that other goroutines write (a logger, a child
// process) while the test reads it: the bytes written so far behind a mutex,
// with helpers to read slog's JSON lines back as records.
type LogBuffer struct {
	mu      sync.Mutex
	written []byte
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written = append(l.written, p...)
	return len(p), nil
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.written)
}

// Records parses every line as a JSON record and returns those whose msg is
// msg, or all of them when msg is "". A line that is not JSON fails the test.
func (l *LogBuffer) Records(t testing.TB, msg string) []map[string]any {
	t.Helper()
	return parseRecords(t, l.String(), msg)
}

// Take returns every record written since the last Take, and forgets them.
func (l *LogBuffer) Take(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	s := string(l.written)
	l.written = l.written[:0]
	l.mu.Unlock()
	return parseRecords(t, s, "")
}

func parseRecords(t testing.TB, s, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if msg == "" || rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}
