package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/resources"
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

// TestDocumentedCommandsExist keeps the commands in README.md and docs/ from
// drifting away from the code: every `make <target>` they name is a target of
// the Makefile, every `make checklist ITEM=<row>` a row of scripts/checklist,
// every `api <command>` a command of this binary, and every
// APP_ variable a configuration key's (or a secret's _FILE). Whether each
// command also works as written is checked by hand from a fresh clone.
func TestDocumentedCommandsExist(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z][a-z-]*):`).FindAllStringSubmatch(string(makefile), -1) {
		targets[m[1]] = true
	}
	commands := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)\b`).FindAllStringSubmatch(usageText, -1) {
		commands[m[1]] = true
	}
	rows := map[string]bool{"list": true}
	sources, _ := filepath.Glob("../../scripts/checklist/*.go")
	for _, path := range sources {
		b, _ := os.ReadFile(path)
		for _, m := range regexp.MustCompile(`\{"([a-z0-9-]+)", "(?:feature|infrastructure|principle)",`).FindAllStringSubmatch(string(b), -1) {
			rows[m[1]] = true
		}
	}
	if len(rows) != 24 {
		t.Errorf("found %d make checklist rows in scripts/checklist, want the standard's 23 and list", len(rows))
	}
	variables := map[string]bool{"APP_CONFIG": true, "APP_URL": true} // APP_URL: a GitHub environment variable (RELEASE.md)
	for _, f := range config.Fields(resources.All().Sections()...) {  // the resources' sections too (APP_NOTES_*)
		variables[f.Env] = true
		if f.Secret {
			variables[f.Env+"_FILE"] = true
		}
	}

	docs, _ := filepath.Glob("../../docs/*.md")
	docs = append(docs, "../../README.md")
	checks := []struct {
		kind, is string
		re       *regexp.Regexp
		known    map[string]bool
		least    int // fewer matches means the pattern no longer matches the docs
	}{
		{"make", "a Makefile target", regexp.MustCompile("(?m)(?:`|^\\$ |^|[A-Z_]+=\\S* |&& )(make [a-z][a-z-]*)"), targets, 50},
		{"api", "a command of cmd/api", regexp.MustCompile("(?m)(?:bin/|`|^\\$ |go run \\./cmd/)(api [a-z][a-z-]*)"), commands, 20},
		{"item", "a row of scripts/checklist", regexp.MustCompile(`make checklist (ITEM=[a-z0-9-]+)`), rows, 23},
		{"variable", "a configuration key's variable", regexp.MustCompile(`\b(APP_[A-Z0-9_]+)`), variables, 100},
	}
	comment := regexp.MustCompile(`\s#\s.*`) // "# builds bin/api and serves": prose, not a command
	seen := map[string]int{}
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(path, "../../")
		for i, line := range strings.Split(string(b), "\n") {
			code := comment.ReplaceAllString(line, "")
			for _, c := range checks {
				for _, m := range c.re.FindAllStringSubmatch(code, -1) {
					seen[c.kind]++
					word := m[1][strings.LastIndexAny(m[1], " =")+1:]
					if name == "docs/NEW_SERVICE.md" && strings.HasPrefix(word, "APP_WIDGETS_") {
						continue // the example resource's section, which TestNewServiceGuide loads in its copy
					}
					if !c.known[word] {
						t.Errorf("%s:%d names %s, which is not %s", name, i+1, m[1], c.is)
					}
				}
			}
		}
	}
	for _, c := range checks {
		if seen[c.kind] < c.least {
			t.Errorf("found only %d %s references in the docs; the pattern no longer matches", seen[c.kind], c.kind)
		}
	}
}
