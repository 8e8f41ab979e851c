package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestChecklistNamesRealTests keeps docs/CHECKLIST.md true: every test,
// benchmark or fuzz target it cites as proof must exist, and every item of
// the standard must have a row.
func TestChecklistNamesRealTests(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CHECKLIST.md")
	if err != nil {
		t.Fatal(err)
	}
	var sources strings.Builder
	_ = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || (d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != "../..") {
			return fs.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, _ := os.ReadFile(path)
			sources.Write(b)
		}
		return nil
	})
	cited := regexp.MustCompile("`((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*)[^`]*`").FindAllStringSubmatch(string(doc), -1)
	if len(cited) < 20 {
		t.Fatalf("only %d tests cited; the checklist lost its proofs", len(cited))
	}
	for _, m := range cited {
		if !strings.Contains(sources.String(), "func "+m[1]) {
			t.Errorf("docs/CHECKLIST.md cites %s, which no test file defines", m[1])
		}
	}
	rows := regexp.MustCompile(`(?m)^\| [A-Z][^|]+ \| (done|partly|planned)`).FindAllString(string(doc), -1)
	if len(rows) != 21 {
		t.Errorf("docs/CHECKLIST.md has %d item rows with a state, want the standard's 21", len(rows))
	}
}
