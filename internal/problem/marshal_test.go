package problem

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestMarshalIsJSONMarshal: the body a client gets is what json.Marshal
// writes for the problem, whatever its strings hold (HTML characters,
// control bytes, invalid UTF-8, line separators), with and without detail
// and field errors.
func TestMarshalIsJSONMarshal(t *testing.T) {
	texts := []string{"", "plain", `"quoted" \back\slash`, "<script>&amp;</script>", "\b\f\n\r\t\x00\x01\x1f\x7f",
		"é ü 日本 😀", "\u2028\u2029", "\xff\xfe bad \xc3", "/v1/notes/%3Cx%3E"}
	for i := range 256 {
		texts = append(texts, string([]byte{'a', byte(i), 'z'}))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		texts = append(texts, string(b))
	}
	for i, s := range texts {
		for _, p := range []Problem{
			{Type: "/problems/overloaded", Title: "Service overloaded", Status: 503, Detail: s, Instance: "/v1/notes", RequestID: "req-1"},
			{Type: s, Title: s, Status: 404, Instance: s, RequestID: s},
			{Type: "/problems/validation", Title: s, Status: 400, Detail: s, Errors: []FieldError{{Field: s, Message: s}}},
		} {
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.marshal(); string(got) != string(want) {
				t.Fatalf("text %d %q:\n got %s\nwant %s", i, s, got, want)
			}
		}
	}
}
