package main

import (
	"bytes"
	"strings"
	"testing"
)

// A run as go test -json writes it: one package passes, one has a failed
// test and a skipped one, one does not build.
const stream = `{"Action":"start","Package":"github.com/prodready/service/internal/a"}
{"Action":"run","Package":"github.com/prodready/service/internal/a","Test":"TestOK"}
{"Action":"output","Package":"github.com/prodready/service/internal/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"github.com/prodready/service/internal/a","Test":"TestOK","Elapsed":0.1}
{"Action":"output","Package":"github.com/prodready/service/internal/a","Output":"coverage: 12.5% of statements in ./internal/...\n"}
{"Action":"pass","Package":"github.com/prodready/service/internal/a","Elapsed":1.25}
{"Action":"run","Package":"github.com/prodready/service/internal/b","Test":"TestBroken"}
{"Action":"output","Package":"github.com/prodready/service/internal/b","Test":"TestBroken","Output":"    b_test.go:10: got 500, want 200\n"}
{"Action":"fail","Package":"github.com/prodready/service/internal/b","Test":"TestBroken","Elapsed":0.2}
{"Action":"run","Package":"github.com/prodready/service/internal/b","Test":"TestRedis"}
{"Action":"output","Package":"github.com/prodready/service/internal/b","Test":"TestRedis","Output":"    redis.go:40: SERVICE MISSING: REDIS: nothing on 127.0.0.1:6379 (skipped; REQUIRE_SERVICES=1 makes this a failure)\n"}
{"Action":"skip","Package":"github.com/prodready/service/internal/b","Test":"TestRedis","Elapsed":0}
{"Action":"fail","Package":"github.com/prodready/service/internal/b","Elapsed":2}
{"ImportPath":"github.com/prodready/service/internal/c [github.com/prodready/service/internal/c.test]","Action":"build-output","Output":"internal/c/c.go:3:1: syntax error\n"}
{"ImportPath":"github.com/prodready/service/internal/c [github.com/prodready/service/internal/c.test]","Action":"build-fail"}
{"Action":"fail","Package":"github.com/prodready/service/internal/c","Elapsed":0,"FailedBuild":"github.com/prodready/service/internal/c [github.com/prodready/service/internal/c.test]"}
`

func TestSummarize(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantFailed bool
		want       []string // lines or fragments the reader must see
		absent     []string
	}{
		{
			name:       "a failure, a skip for a missing service and a build error",
			in:         stream,
			wantFailed: true,
			want: []string{
				"ok    internal/a",             // progress, as each package finishes
				"coverage 12.5% of statements", // with its coverage
				"FAIL  internal/b",             //
				"FAIL  internal/c",             // a package that does not build
				"build failed",                 //
				"=== build errors\ninternal/c/c.go:3:1: syntax error",                 // the compiler's words
				"=== FAIL internal/b TestBroken\n    b_test.go:10: got 500, want 200", // the failed test's output
				"skip summary: 1 tests SKIPPED, not passed:",
				"SKIP internal/b",
				"REDIS: nothing on 127.0.0.1:6379", // the service, in capitals, and why
				"skipped for lack of: REDIS 1",
				"DONE 1 tests passed, 1 skipped, 1 failed",
			},
			absent: []string{"=== FAIL internal/a"},
		},
		{
			name: "everything passes",
			in: `{"Action":"pass","Package":"github.com/prodready/service/internal/a","Test":"TestOK","Elapsed":0.1}
{"Action":"pass","Package":"github.com/prodready/service/internal/a","Elapsed":0.3}
{"Action":"skip","Package":"github.com/prodready/service/scripts/bench","Elapsed":0}
{"Action":"output","Package":"github.com/prodready/service/internal/drain","Output":"\tgithub.com/prodready/service/internal/drain\t\tcoverage: 0.0% of statements\n"}
{"Action":"pass","Package":"github.com/prodready/service/internal/drain","Elapsed":45}
`,
			want:   []string{"ok    internal/a", "-     scripts/bench", "no test files", "-     internal/drain", "skip summary: no test skipped", "DONE 1 tests passed, 0 skipped, 0 failed"},
			absent: []string{"FAIL", "ok    internal/drain"},
		},
		{
			name: "a package that panics outside any test",
			in: `{"Action":"output","Package":"github.com/prodready/service/internal/a","Output":"panic: test timed out after 20m0s\n"}
{"Action":"fail","Package":"github.com/prodready/service/internal/a","Elapsed":1200}
`,
			wantFailed: true,
			want:       []string{"FAIL  internal/a", "=== FAIL internal/a (outside any test", "panic: test timed out after 20m0s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, copied bytes.Buffer
			failed, err := summarize(strings.NewReader(tt.in), &out, &copied)
			if err != nil {
				t.Fatal(err)
			}
			if failed != tt.wantFailed {
				t.Errorf("failed = %v, want %v", failed, tt.wantFailed)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out.String(), a) {
					t.Errorf("output has %q:\n%s", a, out.String())
				}
			}
			if copied.String() != tt.in {
				t.Errorf("the copy of the events differs from what was read")
			}
		})
	}
}

// The copy it writes is what -from reads back: the same summary again.
func TestSummarize_FromItsOwnCopy(t *testing.T) {
	var first, copied, again bytes.Buffer
	if _, err := summarize(strings.NewReader(stream), &first, &copied); err != nil {
		t.Fatal(err)
	}
	if _, err := summarize(&copied, &again, nil); err != nil {
		t.Fatal(err)
	}
	cut := func(s string) string { return s[:strings.LastIndex(s, "DONE")] } // DONE has the elapsed time
	if cut(first.String()) != cut(again.String()) {
		t.Errorf("summary from the copy differs:\n%s\nvs\n%s", first.String(), again.String())
	}
}
