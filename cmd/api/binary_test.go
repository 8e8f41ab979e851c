package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// TestBinary_LinkerDropsUnusedMethods builds the service with the Makefile's
// tags and asks the linker (-ldflags=-dumpdep) whether anything it keeps
// looks methods up by a name known only at run time: text/template's
// evaluator, or reflect's Method or MethodByName with a variable. Then the
// linker keeps every exported method of every type the program puts in an
// interface, and whatever package initialisation only those methods reach.
// That happened three ways at once: bun's migration templates, gRPC's
// golang.org/x/net/trace, and protobuf before v1.36.12 (with Go 1.26's
// reflect method iterators). make build's binary was 40 MB instead of 25, and
// gin's validator tables (292 kB made at start, 285 kB of it live) stayed on the heap, marked by every garbage
// collection (docs/PERFORMANCE.md). A change or a dependency that brings one
// back fails here, with the chain of symbols that reaches it.
func TestBinary_LinkerDropsUnusedMethods(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	tags := servicetest.MakefileGoTags(t, makefile)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// Built the way this test binary was (servicetest.GoFlags), so every
	// package comes from the build cache and only the link runs.
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", tags, "-ldflags=-dumpdep",
		"-o", filepath.Join(t.TempDir(), "api"), ".")
	cmd.Env = append(os.Environ(), "GOFLAGS="+servicetest.GoFlags())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Each line is "from -> to", in the order the linker marks symbols: the
	// first line that reaches a symbol says why it is kept.
	why := make(map[string]string)
	var culprit string
	edges := 0
	lines := bufio.NewScanner(stderr)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		from, to, ok := strings.Cut(lines.Text(), " -> ")
		if !ok {
			continue
		}
		edges++
		if culprit != "" {
			continue
		}
		from, to = symbol(from), symbol(to)
		if _, seen := why[to]; !seen {
			why[to] = from
		}
		if strings.Contains(lines.Text(), "<ReflectMethod>") {
			if strings.HasSuffix(lines.Text(), "<ReflectMethod>") {
				culprit = to
			} else {
				culprit = from
			}
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go build -ldflags=-dumpdep: %v", err)
	}
	// No edges, or none reaching main, would mean nothing was checked (the
	// flag lost, or the linker's output changed), not that all is well.
	if _, ok := why["main.main"]; edges == 0 || !ok {
		t.Fatalf("go build -ldflags=-dumpdep printed %d dependency lines and none reaching main.main: nothing was checked", edges)
	}
	if culprit == "" {
		return
	}
	chain := []string{culprit}
	for s := culprit; len(chain) < 40; {
		s = why[s]
		if s == "" {
			break
		}
		chain = append(chain, s)
	}
	t.Errorf("the linker keeps every exported method: %s looks methods up by a name it learns at run time, reached through\n\t%s",
		culprit, strings.Join(chain[1:], "\n\t"))
}

// symbol is a -dumpdep symbol without the linker's notes on it
// (" <UsedInIface>", " <ReflectMethod>", or both).
func symbol(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), " <")
	return s
}
