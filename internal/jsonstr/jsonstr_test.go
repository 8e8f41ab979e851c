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
	// Each character that needs escaping at every position of a string
	// longer than the eight bytes the fast path reads at a time.
	for _, special := range []string{`"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "é", "\xff", "\u2028"} {
		for at := range 20 {
			texts = append(texts, strings.Repeat("a", at)+special+strings.Repeat("z", 19-at))
		}
	}
	for _, s := range texts {
		assertQuotesAsTheStandardLibrary(t, s)
	}
}

// FuzzQuote: whatever the text, AppendHTML and AppendSlog write what
// encoding/json and slog's JSON handler write.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "/v1/notes/0192a0b0-0000-7000-8000-000000000001", "127.0.0.1", "a\"b<c>&d\ne\xffé\u2028"} {
		f.Add(s)
	}
	f.Fuzz(assertQuotesAsTheStandardLibrary)
}

func assertQuotesAsTheStandardLibrary(t *testing.T, s string) {
	t.Helper()
	var out bytes.Buffer
	h := slog.NewJSONHandler(&out, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
			return slog.Attr{}
		}
		return a
	}})
	want, _ := json.Marshal(s)
	if got := AppendHTML(nil, s); string(got) != string(want) {
		t.Errorf("AppendHTML(%q) = %s, encoding/json writes %s", s, got, want)
	}
	slog.New(h).Info("", "k", s)
	wantSlog := strings.TrimSuffix(strings.TrimPrefix(out.String(), `{"k":`), "}\n")
	if got := AppendSlog(nil, s); string(got) != wantSlog {
		t.Errorf("AppendSlog(%q) = %s, slog writes %s", s, got, wantSlog)
	}
}
