// Command testsummary prints what `make test` skipped, from the JSON events
// gotestsum wrote (go test -json): each skipped test, and the service it
// lacked in capitals (servicetest.Missing writes "SERVICE MISSING: NAME: why"),
// then a count per service. A skip is not a pass; this makes it impossible
// to read one as the other.
//
//	go run ./scripts/testsummary coverage/test.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

type event struct {
	Action  string `json:"Action"`
	Package string `json:"Package"`
	Test    string `json:"Test"`
	Output  string `json:"Output"`
}

var missing = regexp.MustCompile(`SERVICE MISSING: ([A-Z0-9 ._/-]+?): (.*?)(?: \(skipped;.*)?$`)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testsummary TEST.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1]) // #nosec G703 -- the file make test names
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
	defer f.Close()
	if err := summarize(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
}

type skip struct{ pkg, test, service, why string }

func summarize(r io.Reader, w io.Writer) error {
	reason := map[string]string{} // "pkg test" -> why it skipped
	service := map[string]bool{}  // reason is a SERVICE MISSING line
	var skips []skip
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "output":
			// The SERVICE MISSING line if there is one, else the last
			// file:line message (t.Skip's reason).
			out := strings.TrimSpace(ev.Output)
			if strings.Contains(out, "SERVICE MISSING") {
				reason[key], service[key] = out, true
			} else if !service[key] && strings.Contains(out, ".go:") {
				reason[key] = out
			}
		case "skip":
			s := skip{pkg: strings.TrimPrefix(ev.Package, "github.com/prodready/service/"), test: ev.Test, service: "-", why: reason[key]}
			if m := missing.FindStringSubmatch(reason[key]); m != nil {
				s.service, s.why = m[1], m[2]
			}
			skips = append(skips, s)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(skips) == 0 {
		_, err := fmt.Fprintln(w, "skip summary: no test skipped")
		return err
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].service != skips[j].service {
			return skips[i].service < skips[j].service
		}
		return skips[i].pkg+skips[i].test < skips[j].pkg+skips[j].test
	})
	fmt.Fprintf(w, "\nskip summary: %d tests SKIPPED, not passed:\n", len(skips))
	perService := map[string]int{}
	for _, s := range skips {
		perService[s.service]++
		fmt.Fprintf(w, "  SKIP %-22s %-55s %s: %s\n", s.pkg, s.test, s.service, s.why)
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
	_, err := fmt.Fprintf(w, "skipped for lack of: %s\n", strings.Join(parts, ", "))
	return err
}
