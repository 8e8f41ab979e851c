// Command testsummary is make test's progress and verdict. It reads the JSON
// events of `go test -json` on its standard input as they arrive, keeps a
// copy of them in a file, and prints:
//
//   - one line per package as it finishes (ok, FAIL, or no tests; its time
//     and coverage), so a long run shows where it is;
//   - at the end, every failed test with its output, and every build error;
//   - the skip summary: each skipped test, and the service it lacked in
//     capitals (servicetest.Missing writes "SERVICE MISSING: NAME: why"),
//     then a count per service. A skip is not a pass; this makes it
//     impossible to read one as the other.
//
// It exits 1 when any test or build failed.
//
//	go test -json ./... | testsummary -json coverage/test.json
//	testsummary -from coverage/test.json    # the summary of an earlier run again
//
// It is the project's own (standard library only) rather than a tool such as
// gotestsum: make test builds it with the race detector, like the tests, so
// on a cold build cache it costs no compilation of its own; a separate tool
// compiled the standard library and its dependencies a second time (about
// 60 CPU-seconds on this project's 2-core machines).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// event is one line of go test -json (cmd/test2json), and the build events
// go test -json adds (build-output, build-fail; ImportPath names the package).
type event struct {
	Action      string  `json:"Action"`
	Package     string  `json:"Package"`
	ImportPath  string  `json:"ImportPath"`
	Test        string  `json:"Test"`
	Output      string  `json:"Output"`
	Elapsed     float64 `json:"Elapsed"`
	FailedBuild string  `json:"FailedBuild"`
}

const modulePrefix = "github.com/prodready/service/"

var (
	missing  = regexp.MustCompile(`SERVICE MISSING: ([A-Z0-9 ._/-]+?): (.*?)(?: \(skipped;.*)?$`)
	coverage = regexp.MustCompile(`coverage: ([0-9.]+% of statements|\[no statements\])`)
)

func main() {
	jsonFile := flag.String("json", "", "also write the events read to this file")
	from := flag.String("from", "", "read the events from this file instead of standard input")
	flag.Parse()
	in := io.Reader(os.Stdin)
	if *from != "" {
		f := must(os.Open(*from)) // #nosec G304 -- the file make test names
		defer f.Close()
		in = f
	}
	var copyTo io.Writer
	if *jsonFile != "" {
		f := must(os.Create(*jsonFile)) // #nosec G304 -- the file make test names
		defer f.Close()
		copyTo = f
	}
	failed := must(summarize(in, os.Stdout, copyTo))
	if failed {
		os.Exit(1)
	}
}

type skip struct{ pkg, test, service, why string }

type run struct {
	out     io.Writer
	started time.Time
	tests   map[string][]string // "pkg test" -> its output lines
	builds  map[string][]string // package -> build output
	cover   map[string]string   // package -> its coverage line
	reason  map[string]string   // "pkg test" -> why it skipped
	service map[string]bool     // reason is a SERVICE MISSING line
	failed  []string            // "pkg test" keys, in the order they failed
	failPkg []string            // packages that failed without a failed test (build, panic, timeout)
	skips   []skip
	passed  int
	ran     map[string]bool // package -> it has tests
}

func short(pkg string) string { return strings.TrimPrefix(pkg, modulePrefix) }

// summarize reads events from r, prints progress and the verdict to w and
// copies every line to copyTo when it is not nil. failed reports a failed
// test or build.
func summarize(r io.Reader, w io.Writer, copyTo io.Writer) (failed bool, err error) {
	s := &run{
		out: w, started: time.Now(),
		tests: map[string][]string{}, builds: map[string][]string{}, cover: map[string]string{},
		reason: map[string]string{}, service: map[string]bool{}, ran: map[string]bool{},
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if copyTo != nil {
			if _, err := copyTo.Write(append(line, '\n')); err != nil {
				return true, err
			}
		}
		var ev event
		if json.Unmarshal(line, &ev) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event: go test's own words
			continue
		}
		s.event(ev)
	}
	if err := sc.Err(); err != nil {
		return true, err
	}
	s.verdict()
	return len(s.failed) > 0 || len(s.failPkg) > 0, nil
}

func (s *run) event(ev event) {
	if ev.Action == "build-output" {
		s.builds[ev.ImportPath] = append(s.builds[ev.ImportPath], ev.Output)
		return
	}
	if ev.Test == "" {
		s.packageEvent(ev)
		return
	}
	key := ev.Package + " " + ev.Test
	s.ran[ev.Package] = true
	switch ev.Action {
	case "output":
		s.tests[key] = append(s.tests[key], ev.Output)
		// The SERVICE MISSING line if there is one, else the last file:line
		// message (t.Skip's reason).
		out := strings.TrimSpace(ev.Output)
		if strings.Contains(out, "SERVICE MISSING") {
			s.reason[key], s.service[key] = out, true
		} else if !s.service[key] && strings.Contains(out, ".go:") {
			s.reason[key] = out
		}
	case "pass":
		s.passed++
		delete(s.tests, key)
	case "fail":
		s.failed = append(s.failed, key)
	case "skip":
		sk := skip{pkg: short(ev.Package), test: ev.Test, service: "-", why: s.reason[key]}
		if m := missing.FindStringSubmatch(s.reason[key]); m != nil {
			sk.service, sk.why = m[1], m[2]
		}
		s.skips = append(s.skips, sk)
		delete(s.tests, key)
	}
}

func (s *run) packageEvent(ev event) {
	pkg := ev.Package
	switch ev.Action {
	case "output":
		if m := coverage.FindStringSubmatch(ev.Output); m != nil {
			s.cover[pkg] = "coverage " + m[1]
		}
		// A panic or timeout outside any test is package output too.
		s.tests[pkg+" "] = append(s.tests[pkg+" "], ev.Output)
	case "pass":
		if !s.ran[pkg] { // no test files: only its coverage, 0%, is reported
			fmt.Fprintf(s.out, "-     %-34s %8s  no test files\n", short(pkg), "")
			break
		}
		fmt.Fprintf(s.out, "ok    %-34s %8s  %s\n", short(pkg), seconds(ev.Elapsed), s.cover[pkg])
		delete(s.tests, pkg+" ")
	case "skip":
		fmt.Fprintf(s.out, "-     %-34s %8s  no test files\n", short(pkg), "")
		delete(s.tests, pkg+" ")
	case "fail":
		what := seconds(ev.Elapsed)
		if ev.FailedBuild != "" {
			what = "build failed"
		}
		fmt.Fprintf(s.out, "FAIL  %-34s %8s  %s\n", short(pkg), what, s.cover[pkg])
		if !s.hasFailedTest(pkg) {
			s.failPkg = append(s.failPkg, pkg)
		}
	}
}

func (s *run) hasFailedTest(pkg string) bool {
	for _, k := range s.failed {
		if strings.HasPrefix(k, pkg+" ") {
			return true
		}
	}
	return false
}

func seconds(f float64) string { return fmt.Sprintf("%.1fs", f) }

// verdict prints the failures, then the skip summary, then the counts.
func (s *run) verdict() {
	w := s.out
	if len(s.builds) > 0 {
		fmt.Fprintln(w, "\n=== build errors")
		var pkgs []string
		for p := range s.builds {
			pkgs = append(pkgs, p)
		}
		sort.Strings(pkgs)
		for _, p := range pkgs {
			fmt.Fprint(w, strings.Join(s.builds[p], ""))
		}
	}
	for _, k := range s.failed {
		pkg, test, _ := strings.Cut(k, " ")
		fmt.Fprintf(w, "\n=== FAIL %s %s\n%s", short(pkg), test, strings.Join(s.tests[k], ""))
	}
	for _, pkg := range s.failPkg {
		if _, built := s.builds[pkg]; built {
			continue
		}
		fmt.Fprintf(w, "\n=== FAIL %s (outside any test: a panic, a timeout, TestMain)\n%s", short(pkg), lastLines(s.tests[pkg+" "], 40))
	}
	s.skipSummary()
	fmt.Fprintf(w, "\nDONE %d tests passed, %d skipped, %d failed in %s\n",
		s.passed, len(s.skips), len(s.failed), time.Since(s.started).Round(100*time.Millisecond))
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func (s *run) skipSummary() {
	w := s.out
	if len(s.skips) == 0 {
		fmt.Fprintln(w, "\nskip summary: no test skipped")
		return
	}
	skips := s.skips
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].service != skips[j].service {
			return skips[i].service < skips[j].service
		}
		return skips[i].pkg+skips[i].test < skips[j].pkg+skips[j].test
	})
	fmt.Fprintf(w, "\nskip summary: %d tests SKIPPED, not passed:\n", len(skips))
	perService := map[string]int{}
	for _, sk := range skips {
		perService[sk.service]++
		fmt.Fprintf(w, "  SKIP %-22s %-55s %s: %s\n", sk.pkg, sk.test, sk.service, sk.why)
	}
	var names []string
	for n := range perService {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		label := n
		if n == "-" {
			label = "other reasons"
		}
		parts = append(parts, fmt.Sprintf("%s %d", label, perService[n]))
	}
	fmt.Fprintf(w, "skipped for lack of: %s\n", strings.Join(parts, ", "))
}

// must returns v, or ends the program with exit status 2 (the summary could
// not be made, as opposed to 1: tests failed) when err is set.
func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(2)
	}
	return v
}
