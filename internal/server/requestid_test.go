package server

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSaneRequestIDIsTheDocumentedRule checks the loop against the rule it
// replaced, ^[A-Za-z0-9._:-]{1,128}$, for every byte in every position of a
// short ID and at the length limits: an incoming ID the rule refuses (a
// space, a quote, a newline: log injection) is never kept.
func TestSaneRequestIDIsTheDocumentedRule(t *testing.T) {
	rule := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	var cases []string
	for b := range 256 {
		for _, at := range []int{0, 1, 2} {
			id := []byte("abc")
			id[at] = byte(b)
			cases = append(cases, string(id))
		}
		cases = append(cases, string([]byte{byte(b)}), strings.Repeat("a", 127)+string([]byte{byte(b)}))
	}
	cases = append(cases, "", strings.Repeat("a", 128), strings.Repeat("a", 129), "idé")
	for _, id := range cases {
		if got, want := saneRequestID(id), rule.MatchString(id); got != want {
			t.Errorf("saneRequestID(%q) = %v, the rule says %v", id, got, want)
		}
	}
}

// BenchmarkNewRequestID is what making a request's ID costs.
func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newRequestID(time.Now())
	}
}
