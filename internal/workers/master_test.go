package workers_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prodready/service/internal/drain"
	"github.com/prodready/service/internal/listener"
	"github.com/prodready/service/internal/loadgen"
	"github.com/prodready/service/internal/logging"
	"github.com/prodready/service/internal/servicetest"
	"github.com/prodready/service/internal/workers"
)

// The test binary plays two other roles, chosen by WORKERS_TEST_ROLE:
//
//	worker  a minimal worker: serves "worker=ID pid=PID gomaxprocs=N" on
//	        the inherited socket, stops as the real service does (Connection:
//	        close, then Shutdown) on SIGTERM, SIGINT, RetireSignal or when the
//	        master is gone. WORKERS_TEST_BEHAVIOUR=crash exits 1 at once;
//	        ignore-term ignores SIGTERM (so only the pipe can stop it).
//	master  runs Run with such workers on a socket of its own and prints its
//	        address, so a test can kill the master.
func TestMain(m *testing.M) {
	switch os.Getenv("WORKERS_TEST_ROLE") {
	case "worker":
		os.Exit(fakeWorker())
	case "master":
		os.Exit(fakeMaster())
	}
	os.Exit(m.Run())
}

func fakeWorker() int {
	behaviour := os.Getenv("WORKERS_TEST_BEHAVIOUR")
	if behaviour == "crash" {
		return 1
	}
	stopOn := []os.Signal{syscall.SIGINT, workers.RetireSignal}
	if behaviour == "ignore-term" {
		signal.Ignore(syscall.SIGTERM) // and not in stopOn: Notify would undo the Ignore
	} else {
		stopOn = append(stopOn, syscall.SIGTERM)
	}
	w, ok, err := workers.FromEnv(os.Getenv)
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "not a worker:", ok, err)
		return 3
	}
	if behaviour == "only-the-first-starts" && w.ID != 1 {
		return 1 // as a worker that cannot open the database during an outage
	}
	var d drain.Drainer
	srv := &http.Server{
		Handler: d.Handler(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(rw, "worker=%d pid=%d gomaxprocs=%d", w.ID, os.Getpid(), runtime.GOMAXPROCS(0))
		})),
		ConnState: d.ConnState,
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, stopOn...)
	if behaviour == "hang" { // never gets ready, as a worker stuck in its start-up
		<-sig
		return 0
	}
	go func() { _ = srv.Serve(w.Listener) }()
	if err := w.Ready(); err != nil {
		return 4
	}
	select {
	case <-sig:
	case <-w.MasterGone():
	}
	d.Start()
	_ = w.Listener.Close()
	d.Wait(context.Background(), time.Second, 2*time.Second)
	_ = srv.Shutdown(context.Background())
	return 0
}

func fakeMaster() int {
	ln, _, err := listener.Listen(context.Background(), listener.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		return 3
	}
	f, _ := listener.File(ln)
	fmt.Println(ln.Addr().String())
	err = workers.Run(context.Background(), workers.Options{Workers: 1, Listener: f,
		Command: func() *exec.Cmd { return workerCmd(os.Getenv("WORKERS_TEST_BEHAVIOUR")) }}, nil)
	if err != nil {
		return 1
	}
	return 0
}

func workerCmd(behaviour string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "WORKERS_TEST_ROLE=worker", "WORKERS_TEST_BEHAVIOUR="+behaviour)
	cmd.Stderr = os.Stderr
	return cmd
}

// cluster is a master running in the test, with its socket and log.
type cluster struct {
	addr   string
	logs   *servicetest.LogBuffer
	hup    chan os.Signal
	cancel context.CancelFunc
	done   chan error
}

func startCluster(t *testing.T, o workers.Options) *cluster {
	t.Helper()
	ln, _, err := listener.Listen(context.Background(), listener.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := listener.File(ln)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close() // the master's copy (f) keeps the socket open
	c := &cluster{addr: ln.Addr().String(), logs: &servicetest.LogBuffer{}, hup: make(chan os.Signal, 1), done: make(chan error, 1)}
	logger, _, err := logging.New(c.logs, logging.Options{Level: "info", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	o.Listener, o.Logger = f, logger
	if o.Command == nil {
		o.Command = func() *exec.Cmd { return workerCmd("") }
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() { c.done <- workers.Run(ctx, o, c.hup) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("master did not stop; log:\n%s", c.logs)
		}
		_ = f.Close()
	})
	return c
}

// answer is what one fresh connection to the cluster gets.
func (c *cluster) answer() (worker, pid, gomaxprocs int, err error) {
	cl := http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + c.addr + "/")
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_, err = fmt.Sscanf(string(b), "worker=%d pid=%d gomaxprocs=%d", &worker, &pid, &gomaxprocs)
	return worker, pid, gomaxprocs, err
}

// pids polls the cluster with fresh connections until it has seen n
// distinct worker processes for which ok holds.
func (c *cluster) pids(t *testing.T, n int, ok func(pid int) bool) map[int]int {
	t.Helper()
	seen := map[int]int{} // pid -> worker ID
	for deadline := time.Now().Add(10 * time.Second); len(seen) < n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("saw workers %v, want %d; log:\n%s", seen, n, c.logs)
		}
		if id, pid, _, err := c.answer(); err == nil && ok(pid) {
			seen[pid] = id
		}
	}
	return seen
}

func (c *cluster) waitLog(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if recs := c.logs.Records(t, msg); len(recs) >= n {
			return recs
		} else if time.Now().After(deadline) {
			t.Fatalf("%d records %q, want %d; log:\n%s", len(recs), msg, n, c.logs)
		}
	}
}

func anyPID(int) bool { return true }

// load runs keep-alive clients against the cluster until stop is called.
func load(c *cluster, clients int) (stop func() loadgen.Result) {
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan loadgen.Result, 1)
	go func() {
		res <- loadgen.Run(ctx, loadgen.Options{Addr: c.addr, Request: loadgen.Get("/"), Clients: clients, Timeout: 5 * time.Second})
	}()
	return func() loadgen.Result { cancel(); return <-res }
}

func TestMaster_KilledWorkerIsRestartedAndTheOthersKeepAnswering(t *testing.T) {
	c := startCluster(t, workers.Options{Workers: 2, CPUs: 2, MinBackoff: 50 * time.Millisecond})
	first := c.pids(t, 2, anyPID)
	stop := load(c, 8)
	time.Sleep(100 * time.Millisecond)

	var victim int
	for pid := range first {
		victim = pid
		break
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exited := c.waitLog(t, "worker exited unexpectedly", 1)
	// A replacement appears beside the survivor.
	c.pids(t, 1, func(pid int) bool { _, old := first[pid]; return !old })
	time.Sleep(100 * time.Millisecond)
	res := stop()

	if exited[0]["pid"] != float64(victim) || exited[0]["status"] != "killed by SIGKILL" || exited[0]["level"] != "WARN" {
		t.Errorf("exit record %v, want pid %d killed, at warn", exited[0], victim)
	}
	if recs := c.logs.Records(t, "restarting worker after backoff"); len(recs) != 1 || recs[0]["backoff"] != "50ms" {
		t.Errorf("restart records %v, want one with the first backoff", recs)
	}
	// Only requests on the killed worker's own connections can fail; the
	// clients reconnect and the survivor answers them.
	if res.OK() < 100 || res.Failed() > 8 {
		t.Errorf("under load: %d answered 2xx, %d failed (%v); want the survivor to keep answering and at most the 8 clients' requests in flight cut",
			res.OK(), res.Failed(), res.Errors)
	}
}

func TestMaster_ReloadUnderLoadLosesNothing(t *testing.T) {
	reloads := atomic.Int32{}
	c := startCluster(t, workers.Options{Workers: 2, CPUs: 2, Reload: func() (int, error) {
		if reloads.Add(1) == 1 {
			return 0, errors.New("config: http.port: not a number")
		}
		return 3, nil
	}})
	old := c.pids(t, 2, anyPID)
	stop := load(c, 16)
	time.Sleep(200 * time.Millisecond)

	// An invalid configuration changes nothing.
	c.hup <- syscall.SIGHUP
	c.waitLog(t, "SIGHUP: configuration invalid; workers unchanged", 1)

	c.hup <- syscall.SIGHUP
	c.waitLog(t, "reload complete: new workers serve, old ones finish their requests", 1)
	c.waitLog(t, "worker retired", 2)
	time.Sleep(200 * time.Millisecond)
	res := stop()

	if res.Failed() != 0 || res.OK() < 100 {
		t.Errorf("through the reload: %d answered 2xx, %d failed (%v); want none failed", res.OK(), res.Failed(), res.Errors)
	}
	fresh := c.pids(t, 3, func(pid int) bool { _, was := old[pid]; return !was })
	for pid := range old {
		if _, _, _, err := c.answer(); err != nil {
			t.Fatal(err)
		}
		if syscall.Kill(pid, 0) == nil && !exitedProcess(pid) {
			t.Errorf("old worker %d still runs after the reload", pid)
		}
	}
	if len(fresh) != 3 {
		t.Errorf("after the reload: workers %v, want the 3 the new configuration asks for", fresh)
	}
}

// TestMaster_FailedReloadKeepsTheOldWorkers: new workers that crash, or
// that do not get ready within the ready timeout, are given up, and the old
// ones keep serving; a second SIGHUP while a reload waits is ignored, not
// stacked.
func TestMaster_FailedReloadKeepsTheOldWorkers(t *testing.T) {
	for _, tt := range []struct{ name, behaviour, reason string }{
		{"new workers crash", "crash", "exited before it was ready"},
		{"new workers never get ready", "hang", "not ready within 2s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var reloaded atomic.Bool
			c := startCluster(t, workers.Options{Workers: 1, CrashLimit: 10, ReadyTimeout: 2 * time.Second, Command: func() *exec.Cmd {
				if reloaded.Load() {
					return workerCmd(tt.behaviour)
				}
				return workerCmd("")
			}})
			before := c.pids(t, 1, anyPID)
			reloaded.Store(true)
			c.hup <- syscall.SIGHUP
			if tt.behaviour == "hang" {
				c.hup <- syscall.SIGHUP
				c.waitLog(t, "SIGHUP: a reload is already in progress; ignored", 1)
			}
			failed := c.waitLog(t, "reload failed; the running workers keep serving", 1)
			if reason := fmt.Sprint(failed[0]["reason"]); !strings.Contains(reason, tt.reason) {
				t.Errorf("the failed reload's log says %v; want its reason to say %q", failed[0], tt.reason)
			}
			_, pid, _, err := c.answer()
			if _, same := before[pid]; err != nil || !same {
				t.Errorf("after a failed reload: answered by %d (%v), want the old worker %v", pid, err, before)
			}
		})
	}
}

func TestMaster_CrashLoopStopsWithAnError(t *testing.T) {
	c := startCluster(t, workers.Options{Workers: 2, CrashLimit: 4, MinBackoff: 10 * time.Millisecond,
		Command: func() *exec.Cmd { return workerCmd("crash") }})
	select {
	case err := <-c.done:
		if err == nil || !strings.Contains(err.Error(), "crash loop: 4 workers died within 1m0s") {
			t.Errorf("Run returned %v, want a crash loop error", err)
		}
		c.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatalf("no crash loop detected; log:\n%s", c.logs)
	}
}

// TestMaster_ACrashLoopBesideAServingWorkerKeepsIt: when one worker
// serves and its sibling's replacements keep failing to start (a database
// outage at their start, say), the master keeps restarting them with
// backoff past the crash-loop limit and never stops the one that serves.
func TestMaster_ACrashLoopBesideAServingWorkerKeepsIt(t *testing.T) {
	c := startCluster(t, workers.Options{Workers: 2, CrashLimit: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Command: func() *exec.Cmd { return workerCmd("only-the-first-starts") }})
	c.waitLog(t, "worker exited unexpectedly", 6)
	recs := c.waitLog(t, "workers keep dying, but others still serve: not stopping; restarting with backoff", 1)
	if recs[0]["level"] != "WARN" || recs[0]["ready_workers"] != float64(1) {
		t.Errorf("record %v, want a warn with 1 ready worker", recs[0])
	}
	select {
	case err := <-c.done:
		c.done <- err
		t.Fatalf("the master stopped (%v) with a worker still serving; log:\n%s", err, c.logs)
	default:
	}
	for range 5 {
		if id, _, _, err := c.answer(); err != nil || id != 1 {
			t.Fatalf("answer from worker %d (%v), want worker 1 still serving", id, err)
		}
	}
}

func TestMaster_EachWorkerGetsItsShareOfTheCPUs(t *testing.T) {
	tests := []struct{ cpus, workers, want int }{{5, 2, 2}, {2, 4, 1}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d CPUs, %d workers", tt.cpus, tt.workers), func(t *testing.T) {
			c := startCluster(t, workers.Options{Workers: tt.workers, CPUs: tt.cpus})
			c.pids(t, tt.workers, anyPID)
			if _, _, got, err := c.answer(); err != nil || got != tt.want {
				t.Errorf("a worker runs with GOMAXPROCS %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	if got := workers.GOMAXPROCS(runtime.GOMAXPROCS(0), 1); got != runtime.GOMAXPROCS(0) {
		t.Errorf("one worker gets %d, want all %d", got, runtime.GOMAXPROCS(0))
	}
}

func TestMaster_StopKillsWorkersThatOutstayTheTimeout(t *testing.T) {
	c := startCluster(t, workers.Options{Workers: 1, StopTimeout: 300 * time.Millisecond,
		Command: func() *exec.Cmd { return workerCmd("ignore-term") }})
	c.pids(t, 1, anyPID)
	c.cancel()
	select {
	case err := <-c.done:
		if err == nil || !strings.Contains(err.Error(), "1 workers killed after the stop timeout") {
			t.Errorf("Run returned %v, want the kill reported", err)
		}
		c.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("master did not stop")
	}
}

func TestMaster_GracefulStop(t *testing.T) {
	c := startCluster(t, workers.Options{Workers: 2})
	c.pids(t, 2, anyPID)
	c.cancel()
	if err := <-c.done; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	c.done <- nil
	if recs := c.logs.Records(t, "worker stopped"); len(recs) != 2 || recs[0]["status"] != "exit 0" {
		t.Errorf("stop records %v, want both workers exiting 0", recs)
	}
}

// A worker whose master is killed (no chance to stop it) exits by itself.
// This worker ignores SIGTERM, so the parent-death signal cannot be what
// stops it: the pipe is.
func TestWorker_ExitsWhenTheMasterDies(t *testing.T) {
	master := exec.Command(os.Args[0])
	master.Env = append(os.Environ(), "WORKERS_TEST_ROLE=master", "WORKERS_TEST_BEHAVIOUR=ignore-term")
	out, err := master.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = master.Process.Kill(); _ = master.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	c := &cluster{addr: strings.TrimSpace(addr), logs: &servicetest.LogBuffer{}}
	var pid int
	for pid = range c.pids(t, 1, anyPID) {
	}
	if err := master.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !exitedProcess(pid); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("worker %d still runs 10s after its master died", pid)
		}
	}
	if d := (net.Dialer{Timeout: time.Second}); true {
		if conn, err := d.Dial("tcp", c.addr); err == nil {
			_ = conn.Close()
			t.Errorf("the socket still accepts after master and worker are gone")
		}
	}
}

// exitedProcess reports whether pid is gone or a zombie (exited, not yet
// reaped by whoever inherited it).
func exitedProcess(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
