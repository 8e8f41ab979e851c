package main

import (
	"go/parser"
	"go/token"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLinkedImportsWhatTheServiceImports: bin/bench-linked is the ceiling
// that links what the service links, so linked.go must import every package
// outside the standard library that cmd/api imports, and nothing else; a
// package added to the service and not here would make the livez pair's second side measure
// less than the service carries.
func TestLinkedImportsWhatTheServiceImports(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list cmd/api's imports: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-f", `{{range .Imports}}{{.}}{{"\n"}}{{end}}`, "../../cmd/api").Output() //nolint:noctx // a test
	if err != nil {
		t.Fatalf("go list ../../cmd/api: %v", err)
	}
	var want []string
	for _, p := range strings.Fields(string(out)) {
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") { // not the standard library
			want = append(want, p)
		}
	}
	f, err := parser.ParseFile(token.NewFileSet(), "linked.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("linked.go imports\n  %v\ncmd/api imports\n  %v", got, want)
	}
	if len(want) < 10 {
		t.Errorf("cmd/api imports only %d packages outside the standard library: is the listing right? %v", len(want), want)
	}
}
