package logging

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/servicetest"
)

// timeField is the one part of two lines logged a moment apart that differs.
var timeField = regexp.MustCompile(`"time":"[^"]*"|time=\S+`)

// TestLogAccessWritesWhatSlogWrites: the access record's own encoder writes,
// byte for byte, the line slog's JSON handler writes for the same record
// (what an operator's log pipeline parses), whatever the values hold, with
// the logger's With attributes and the request ID; and the sinks it does not
// encode (text) get the record through slog as before.
func TestLogAccessWritesWhatSlogWrites(t *testing.T) {
	records := []Access{
		{Level: slog.LevelInfo, Method: "GET", Route: "/v1/notes/:id", Path: "/v1/notes/n1", Status: 200, DurationMS: 0.123, Bytes: 154, ClientIP: "127.0.0.1"},
		{Level: slog.LevelWarn, Method: "POST", Route: "", Path: "/x?token=[redacted]", Status: 503, DurationMS: 1234.5, ClientIP: "::1", Suppressed: 7},
		{Level: slog.LevelInfo, Method: "GET", Route: "/r", Path: "/\"quoted\"\\back\n\r\t\x01é\u2028\u2029\xff<&>", Status: 404, DurationMS: 0, ClientIP: ""},
		{Level: slog.LevelInfo, Method: "GET", Path: "/big", Status: 200, DurationMS: 123456789.001, Bytes: 1 << 40},
		{Level: slog.LevelInfo, Method: "GET", Path: "/tiny", Status: 200, DurationMS: 1e-7},
		{Level: slog.LevelInfo, Method: "GET", Path: "/huge", Status: 200, DurationMS: 3e21},
	}
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var out servicetest.LogBuffer
			l, err := Setup(Options{Config: config.Log{Level: "info", Format: format, Stdout: config.LogSink{Enabled: true}}, Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			logger := l.Logger.With("service", "notes-api").With("worker", "w1")
			ctx := WithRequestID(context.Background(), "req-1")
			for _, a := range records {
				LogAccess(ctx, logger, a)
				logger.LogAttrs(ctx, a.Level, AccessMessage, a.attrs()...)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != 2*len(records) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), 2*len(records), out.String())
			}
			for i := 0; i < len(lines); i += 2 {
				fast, slow := timeField.ReplaceAllString(lines[i], "T"), timeField.ReplaceAllString(lines[i+1], "T")
				if fast != slow {
					t.Errorf("LogAccess wrote\n%s\nslog writes\n%s", lines[i], lines[i+1])
				}
			}
			if format == "json" && !strings.Contains(lines[0], `"service":"notes-api","worker":"w1","method":"GET"`) ||
				!strings.Contains(lines[0], "req-1") {
				t.Errorf("the first line lacks the With attributes or the request ID: %s", lines[0])
			}
		})
	}
}

// TestLogAccessInAGroup: a logger with a group open has no fast path; the
// record still comes out, its attributes in the group, as slog writes it.
func TestLogAccessInAGroup(t *testing.T) {
	var out servicetest.LogBuffer
	logger, _, err := New(&out, Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	LogAccess(context.Background(), logger.WithGroup("http"), Access{Level: slog.LevelInfo, Method: "GET", Path: "/p", Status: 200})
	if got := out.String(); !strings.Contains(got, `"http":{"method":"GET"`) {
		t.Errorf("got %s, want the attributes in the http group", got)
	}
}

// The access record's timestamp is the time package's RFC 3339 form, as
// slog writes it: every zone, fraction and year, to the nanosecond.
func TestAppendRFC3339NanoIsTheTimePackages(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("IST", 5*3600+1800), time.FixedZone("PST", -8*3600),
		time.FixedZone("LMT", -(9*60 + 21)), time.FixedZone("odd", -30), time.FixedZone("far", 99*3600+59*60), time.FixedZone("too far", 100*3600)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	times := []time.Time{
		time.Date(2026, 12, 3, 10, 21, 21, 123456789, time.UTC),
		time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), // a DST change in New York
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), // past what RFC 3339 can say: the time package's answer
		time.Date(-1, 6, 1, 12, 0, 0, 500000000, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 100000000, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 60000, time.UTC),
		time.Now(),
	}
	for _, zone := range zones {
		for _, tm := range times {
			tm = tm.In(zone)
			want := tm.AppendFormat(nil, time.RFC3339Nano)
			if got := appendRFC3339Nano([]byte("x"), tm); string(got) != "x"+string(want) {
				t.Errorf("%s in %s: %s, the time package writes %s", tm.UTC(), zone, got[1:], want)
			}
		}
	}
}
