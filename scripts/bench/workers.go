package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prodready/service/internal/loadgen"
	"github.com/prodready/service/internal/servicetest"
)

// The pairs of the worker model (api serve --workers N), overload shedding
// and restarts. docs/OPERATIONS.md says how each works.

func listRequest(int, int) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "/v1/notes?limit=20", nil)
	return req
}

// workersPair: one process against two workers, both free to use every
// core (the load generator shares them, so this is the ratio on this
// machine, not a ceiling).
func workersPair(ctx context.Context, o options) ([]row, error) {
	var sides [2]side
	for i, n := range []string{"1", "2"} {
		port, err := servicetest.LoopbackPort()
		if err != nil {
			return nil, err
		}
		s, err := startSpec(ctx, o, spec{name: "workers-" + n, port: port, args: []string{"--workers", n}})
		if err != nil {
			return nil, err
		}
		defer s.stop()
		if _, err := seedNotes(ctx, s.addr, 100); err != nil {
			return nil, err
		}
		sides[i] = side{label: "--workers " + n + " (unpinned)", addr: s.addr, request: listRequest}
	}
	return measure(ctx, o, "workers", sides[0], &sides[1])
}

// overloadPair offers about 4x what the service answered in a closed-loop
// run, open loop (requests sent when due, not when a client is free), to
// the service with shedding off (http.max_in_flight 0) and on (defaults).
// Latencies count from when each request was due, so a generator that
// falls behind would show in them: the row says how late the requests went
// out and, beside the p99 from when they were due, the p99 of the 2xx from
// when they were written (the server's part alone).
//
// The service runs under a CPU quota (o.overloadCPU of a core, a cgroup),
// so the generator, on the other core, has more CPU than the service; the
// rows' "sent of due" says whether it kept up. On 2026-12-02 it did not,
// and nothing was shed: on its one CPU the service answers each request
// before it reads the next, so the backlog waits unread in the sockets,
// where the in-flight count cannot see it (docs/PERFORMANCE.md, overload).
// Where no cgroup can be made the pair runs without one and its rows say so.
func overloadPair(ctx context.Context, o options) ([]row, error) {
	var rows []row
	capacity := 0.0
	d := max(o.duration, 3*time.Second)
	quota, err := newCPUQuota(o.overloadCPU)
	where := fmt.Sprintf("service under a CPU quota of %g core", o.overloadCPU)
	if err != nil {
		fmt.Fprintf(o.log, "bench:   overload: no CPU quota (%v); the generator may not keep up\n", err)
		where, quota = "no CPU quota ("+err.Error()+")", nil
	} else {
		defer quota.remove()
	}
	for _, c := range []struct{ label, inFlight string }{{"shedding off", "0"}, {"shedding on (defaults)", ""}} {
		env := []string{}
		if c.inFlight != "" {
			env = append(env, "APP_HTTP_MAX_IN_FLIGHT="+c.inFlight)
		}
		s, err := startService(ctx, o, "overload-"+strings.Fields(c.label)[1], env)
		if err != nil {
			return nil, err
		}
		if quota != nil {
			if err := quota.add(s.cmd.Process.Pid); err != nil {
				s.stop()
				return nil, err
			}
		}
		if _, err := seedNotes(ctx, s.addr, 100); err != nil {
			s.stop()
			return nil, err
		}
		sd := side{label: c.label, addr: s.addr, request: listRequest}
		if capacity == 0 {
			capacity = loadFor(ctx, o, sd, o.duration).PerSecond()
		}
		rate := int(4 * capacity)
		throttledBefore := quota.throttledOrZero()
		lctx, cancel := context.WithTimeout(ctx, d)
		// 1000 connections: more than the rate times what an admitted request
		// takes with shedding on, so the generator always has a free one.
		res := loadgen.Run(lctx, loadgen.Options{Addr: s.addr, Request: listRequest, Clients: 1000, Rate: rate, Timeout: 10 * time.Second, Predial: true})
		cancel()
		held := quota.throttledOrZero() - throttledBefore
		s.stop()
		shed := res.Status[http.StatusServiceUnavailable]
		r := row{pair: "overload", label: fmt.Sprintf("%s, %d req/s offered (4x)", c.label, rate)}
		r.perSecond = []float64{float64(res.OK()) / res.Elapsed.Seconds()}
		r.p50 = []time.Duration{res.OKPercentile(50)}
		r.p99 = []time.Duration{res.OKPercentile(99)}
		due := float64(rate) * res.Elapsed.Seconds() // connections are opened first
		r.extra = fmt.Sprintf("%s; req/s and latencies of the 2xx only, from when due; 2xx p99 from when written %s; "+
			"%d sent of %.0f due (%.0f%%), p99 sent %s late; %d shed with 503 (%.0f%%), %d cut or timed out",
			where+quota.heldNote(held, res.Elapsed), ms(res.OKWirePercentile(99)), res.Sent, due, 100*float64(res.Sent)/due, ms(res.LatePercentile(99)),
			shed, 100*float64(shed)/float64(max(res.Sent, 1)), res.Cut+res.DialFails)
		fmt.Fprintf(o.log, "bench:   %s: %s\n", r.label, r.extra)
		rows = append(rows, r)
	}
	return rows, nil
}

// restartPair drives load through a restart by each route and counts what
// was lost: a HUP reload of --workers 2, and a replacement process binding
// the same port with http.reuse_port while the old one drains. (Socket
// activation is proven by the workers tests; it needs systemd's tools.)
func restartPair(ctx context.Context, o options) ([]row, error) {
	reload, err := restartRun(ctx, o, "HUP reload of --workers 2", func(port int) (func() error, func(), error) {
		s, err := startSpec(ctx, o, spec{name: "reload", port: port, args: []string{"--workers", "2"}, logs: true})
		if err != nil {
			return nil, nil, err
		}
		return func() error { return s.cmd.Process.Signal(syscall.SIGHUP) }, s.stop, nil
	})
	if err != nil {
		return nil, err
	}
	reuse, err := restartRun(ctx, o, "replacement process with http.reuse_port", func(port int) (func() error, func(), error) {
		env := []string{"APP_HTTP_REUSE_PORT=true"}
		old, err := startSpec(ctx, o, spec{name: "reuse-old", port: port, pin: true, env: env, logs: true})
		if err != nil {
			return nil, nil, err
		}
		var repl *server
		restart := func() error {
			// The replacement binds beside the old one; once it listens,
			// the old one is stopped as a deploy would.
			c := command(true, o.bin, "serve")
			c.Env = old.cmd.Env // the same port, database and reuse_port
			logPath := filepath.Join(o.dir, "reuse-new.log")
			f, err := os.Create(logPath)
			if err != nil {
				return err
			}
			defer f.Close()
			c.Stdout = f
			if err := c.Start(); err != nil {
				return err
			}
			repl = &server{addr: old.addr, cmd: c}
			if err := waitForLine(ctx, logPath, "http server listening", 30*time.Second); err != nil {
				return err
			}
			old.stop()
			return nil
		}
		stop := func() {
			if repl != nil {
				repl.stop()
			}
			old.stop()
		}
		return restart, stop, nil
	})
	if err != nil {
		return nil, err
	}
	return []row{reload, reuse}, nil
}

// restartRun starts a service with start, loads it for twice o.duration,
// restarts it a third of the way in, and reports what the clients saw.
func restartRun(ctx context.Context, o options, label string, start func(port int) (restart func() error, stop func(), err error)) (row, error) {
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return row{}, err
	}
	restart, stop, err := start(port)
	if err != nil {
		return row{}, err
	}
	defer stop()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := seedNotes(ctx, addr, 20); err != nil {
		return row{}, err
	}
	lctx, cancel := context.WithTimeout(ctx, 2*o.duration)
	defer cancel()
	done := make(chan loadgen.Result, 1)
	go func() {
		done <- loadgen.Run(lctx, loadgen.Options{Addr: addr, Request: listRequest, Clients: 20, Timeout: 10 * time.Second})
	}()
	time.Sleep(2 * o.duration / 3)
	restartErr := restart()
	res := <-done
	if restartErr != nil {
		return row{}, fmt.Errorf("%s: %w", label, restartErr)
	}
	r := row{pair: "restart", label: label}
	r.add(res)
	r.extra = fmt.Sprintf("**%d lost** of %d sent (cut %d, refused %d, non-2xx %d); %d answers said Connection: close",
		res.Failed(), res.Sent, res.Cut, res.DialFails, res.Answered-res.OK(), res.Closed)
	fmt.Fprintf(o.log, "bench:   %s: %s\n", label, r.extra)
	return r, nil
}

// waitForLine waits until the file at path holds a line containing want.
func waitForLine(ctx context.Context, path, want string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if b, err := os.ReadFile(filepath.Clean(path)); err == nil && strings.Contains(string(b), want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: no %q within %s", path, want, within)
}
