// Command bench is `make bench`: a load benchmark of the real program on
// loopback. It starts bin/api (and, for the ceilings, a bare gin engine of
// its own, by running itself with -serve-bare) as separate processes pinned
// to one core, drives them from the other core with internal/loadgen, and
// alternates A and B round by round, so the ratios hold on a noisy machine.
// It prints a Markdown table and, with -write, puts it with the machine and
// the date into docs/PERFORMANCE.md between the bench markers.
//
//	bin/bench                      # every pair, 5 rounds of 2 s each side (livez and get-memory, 10 of 1 s)
//	bin/bench -only livez -rounds 5
//	bin/bench -write docs/PERFORMANCE.md
//
// It is a benchmark, never a test: nothing here passes or fails on a figure.
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
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	bin      string        // the service binary
	rounds   int           // A/B rounds per pair
	duration time.Duration // each side of a round
	clients  int           // concurrent keep-alive connections
	only     []string      // pair names to run; empty means all
	write    string        // file to put the table into
	pgURL    string        // PostgreSQL for the PostgreSQL pairs ("" skips them)
	redisURL string        // Redis for those pairs
	// linkedBin is the bare engine built with -tags benchlinked: the same
	// engine in a binary that links every package the service does.
	linkedBin string
	dir       string // scratch directory
	// overloadCPU is the CPU quota, in cores, the overload pair gives the
	// service, so that the generator can offer four times its capacity.
	overloadCPU float64
	log         io.Writer
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var bare, bareRedis, only string
	fs.StringVar(&bare, "serve-bare", "", "internal: serve the bare gin engine on this address")
	fs.StringVar(&bareRedis, "bare-redis", "", "internal: the bare engine's cache is this Redis (default: in memory)")
	var bareTimeouts string
	fs.StringVar(&bareTimeouts, "bare-timeouts", "", "internal: the bare engine's http.Server read header, read, write and idle timeouts (default: read header 5s only)")
	fs.StringVar(&o.linkedBin, "linked-bin", "bin/bench-linked", "the bare engine built with -tags benchlinked (make bench builds it), for the livez pair's two middle sides")
	fs.StringVar(&o.bin, "bin", "bin/api", "the service binary to measure")
	fs.IntVar(&o.rounds, "rounds", 5, "A/B rounds per pair (the order alternates: AB, BA, AB, ...); the pairs with a goal (livez, get-memory) get at least 10 in the same time")
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "load time for each side of a round")
	fs.IntVar(&o.clients, "clients", 50, "concurrent keep-alive connections")
	fs.StringVar(&only, "only", "", "comma-separated pair names to run (default all; -list names them)")
	fs.Float64Var(&o.overloadCPU, "overload-cpu", 0.5, "CPU quota (cores, a cgroup) of the service in the overload pair, so the generator can offer 4x its capacity")
	list := fs.Bool("list", false, "list the pairs and exit")
	fs.StringVar(&o.write, "write", "", "write the table into this Markdown file, between its bench markers")
	fs.StringVar(&o.pgURL, "postgres", os.Getenv("BENCH_DATABASE_URL"), "PostgreSQL URL for the PostgreSQL pairs (BENCH_DATABASE_URL); empty skips them")
	fs.StringVar(&o.redisURL, "redis", os.Getenv("BENCH_REDIS_URL"), "Redis URL for the PostgreSQL pairs (BENCH_REDIS_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if bare != "" {
		return serveBare(bare, bareRedis, bareTimeouts)
	}
	if *list {
		for _, p := range pairs(o) {
			fmt.Fprintf(stdout, "%-18s %s\n", p.name, p.what)
		}
		return nil
	}
	if only != "" {
		o.only = strings.Split(only, ",")
	}
	o.log = stderr
	dir, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.dir = dir

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var rows []row
	for _, p := range pairs(o) {
		if len(o.only) > 0 && !slices.Contains(o.only, p.name) {
			continue
		}
		if p.skip != "" {
			fmt.Fprintf(stderr, "bench: %s skipped: %s\n", p.name, p.skip)
			continue
		}
		fmt.Fprintf(stderr, "bench: %s: %s\n", p.name, p.what)
		r, err := p.run(ctx, o)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		rows = append(rows, r...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	table := render(rows, o, time.Since(start))
	fmt.Fprint(stdout, table)
	if o.write != "" {
		return writeInto(o.write, table)
	}
	return nil
}

// machine describes where the figures come from.
func machine() string {
	// runtime.NumCPU counts the cores this process may use (one, under
	// make bench's taskset); /proc/cpuinfo lists the machine's.
	cpu, n := "unknown CPU", runtime.NumCPU()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = 0
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				n++
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ") + " at the start"
	}
	return fmt.Sprintf("%d vCPU %s, %s, %s/%s%s", n, cpu, runtime.Version(), runtime.GOOS, runtime.GOARCH, load)
}

const (
	beginMarker = "<!-- bench:begin (make bench writes between these markers) -->"
	endMarker   = "<!-- bench:end -->"
)

// writeInto replaces what is between the markers in file with table.
func writeInto(file, table string) error {
	b, err := os.ReadFile(filepath.Clean(file))
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return errors.New(file + ": the bench markers are missing")
	}
	s = s[:i+len(beginMarker)] + "\n" + table + s[j:]
	return os.WriteFile(filepath.Clean(file), []byte(s), 0o600) // #nosec G703 -- the operator's own -write argument
}
