package jsonstr

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestQuotesAsTheStandardLibrary: every byte value, and strings with
// multi-byte, invalid and separator characters, come out as encoding/json
// (AppendHTML) and slog's JSON handler (AppendSlog) write them.
func TestQuotesAsTheStandardLibrary(t *testing.T) {
	texts := []string{"", "plain", `"q" \b`, "<a>&</a>", "é 日本 😀", "\u2028\u2029", "\xff\xc3 bad", "\b\f\n\r\t\x00\x7f"}
	for i := range 256 {
		texts = append(texts, string([]byte{'a', byte(i), 'z'}))
	}
	var out bytes.Buffer
	h := slog.NewJSONHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
			return slog.Attr{}
		}
		return a
	}})
	for _, s := range texts {
		want, _ := json.Marshal(s)
		if got := AppendHTML(nil, s); string(got) != string(want) {
			t.Errorf("AppendHTML(%q) = %s, encoding/json writes %s", s, got, want)
		}
		out.Reset()
		slog.New(h).Info("", "k", s)
		wantSlog := strings.TrimSuffix(strings.TrimPrefix(out.String(), `{"k":`), "}\n")
		if got := AppendSlog(nil, s); string(got) != wantSlog {
			t.Errorf("AppendSlog(%q) = %s, slog writes %s", s, got, wantSlog)
		}
	}
}
