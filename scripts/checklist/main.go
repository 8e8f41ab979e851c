// Command checklist demonstrates every item of the production-readiness
// standard live, one row per item, against a local production-like stack:
// the service from bin/api in a staging-like configuration, the machine's
// PostgreSQL and Redis (started if down) behind TCP proxies the rows can cut,
// a private Mailpit and a syslog receiver (rsyslogd where installed, else a
// listener of our own).
//
// Each row prints one line: the item, PASS, FAIL or TODO (an item the
// project has not built yet, per docs/CHECKLIST.md), and the evidence it saw.
// Items that cannot run on this machine (GitHub environments, a cluster)
// show the offline evidence that exists, labelled "offline:". The same lines
// go to a Markdown report. The exit status is 1 when any row fails.
//
//	make checklist                 # every row
//	make checklist ITEM=syslog     # one row (names: make checklist ITEM=list)
//
// The stack starts only when a selected row needs it and stops at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("checklist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	item := fs.String("item", os.Getenv("ITEM"), "run only this row (list: print the names)")
	bin := fs.String("bin", "bin/api", "the service binary (make build)")
	report := fs.String("report", "reports/checklist.md", "Markdown report written at the end")
	verbose := fs.Bool("v", os.Getenv("CHECKLIST_VERBOSE") == "1", "print the service's log on failure")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "checklist: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	all := rows()
	if *item == "list" {
		for _, r := range all {
			fmt.Fprintf(stdout, "%-20s %s\n", r.name, r.item)
		}
		return 0
	}
	selected := all
	if *item != "" {
		selected = nil
		for _, r := range all {
			if r.name == *item {
				selected = append(selected, r)
			}
		}
		if len(selected) == 0 {
			fmt.Fprintf(stderr, "checklist: no row named %q (make checklist ITEM=list prints the names)\n", *item)
			return 2
		}
	}

	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "checklist:", err)
		return 1
	}
	binPath, _ := filepath.Abs(*bin)
	if _, err := os.Stat(binPath); err != nil {
		fmt.Fprintf(stderr, "checklist: %s is missing: run make build first (make checklist does)\n", *bin)
		return 2
	}
	runDir, err := os.MkdirTemp("", "checklist-")
	if err != nil {
		fmt.Fprintln(stderr, "checklist:", err)
		return 1
	}
	defer os.RemoveAll(runDir)

	e := &env{root: root, bin: binPath, dir: runDir, stderr: stderr}
	defer e.close()

	start := time.Now()
	var results []result
	failed := 0
	for _, r := range selected {
		if ctx.Err() != nil {
			break
		}
		res := e.runRow(ctx, r)
		results = append(results, res)
		fmt.Fprintln(stdout, res.line())
		if res.state == fail {
			failed++
			if *verbose && e.st != nil {
				fmt.Fprintf(stderr, "--- service log (last 40 lines)\n%s\n", e.st.out.tail(40))
			}
		}
	}
	elapsed := time.Since(start).Round(100 * time.Millisecond)
	summary := fmt.Sprintf("%d rows: %d pass, %d fail, %d todo, in %s", len(results), count(results, pass), failed, count(results, todo), elapsed)
	fmt.Fprintln(stdout, summary)

	if err := writeReport(*report, results, summary); err != nil {
		fmt.Fprintln(stderr, "checklist: report:", err)
		return 1
	}
	fmt.Fprintf(stdout, "report: %s\n", *report)
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// State of one row.
type state string

const (
	pass state = "PASS"
	fail state = "FAIL"
	todo state = "TODO" // not built yet; shown, never counted as a pass
)

// row is one item of the standard and its live demonstration.
type row struct {
	name  string // ITEM=<name>
	group string // feature, infrastructure, principle
	item  string // the item as the standard asks it
	// run performs the demonstration and returns the evidence it saw, or an
	// error saying what did not hold.
	run func(ctx context.Context, e *env) (evidence string, err error)
}

// errTodo marks an item the project has not built yet.
type errTodo struct{ what string }

func (e errTodo) Error() string { return e.what }

type result struct {
	row      row
	state    state
	evidence string
	took     time.Duration
}

func (r result) line() string {
	return fmt.Sprintf("%-20s %s  %s (%.1fs)", r.row.name, r.state, r.evidence, r.took.Seconds())
}

func (e *env) runRow(ctx context.Context, r row) result {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	start := time.Now()
	ev, err := r.run(ctx, e)
	res := result{row: r, state: pass, evidence: ev, took: time.Since(start)}
	if err != nil {
		res.state, res.evidence = fail, err.Error()
		var t errTodo
		if errors.As(err, &t) {
			res.state, res.evidence = todo, t.what
		}
	}
	res.evidence = strings.Join(strings.Fields(res.evidence), " ")
	return res
}

func count(rs []result, s state) int {
	n := 0
	for _, r := range rs {
		if r.state == s {
			n++
		}
	}
	return n
}

func writeReport(path string, results []result, summary string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Production-readiness checklist, demonstrated live\n\n")
	fmt.Fprintf(&b, "Run at %s by `make checklist`; %s.\n\n", time.Now().UTC().Format(time.RFC3339), summary)
	fmt.Fprintf(&b, "| Item | Row | Result | Evidence | Time |\n|---|---|---|---|---|\n")
	for _, r := range results {
		ev := strings.ReplaceAll(r.evidence, "|", `\|`)
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %.1f s |\n", r.row.item, r.row.name, r.state, ev, r.took.Seconds())
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
