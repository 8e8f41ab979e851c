// Package workers runs the service as a master and N worker processes that
// share one listening socket, the model operators know from gunicorn or
// uWSGI. A single process remains the default and serves every core already
// (a goroutine per connection); workers add isolation (a crash or a leak
// takes one worker, not the instance) and reloads that lose nothing.
//
// The master holds the socket and never serves. It starts the workers from
// the current binary, passing the socket, restarts a worker that dies (with
// backoff, and gives up non-zero in a crash loop so the platform sees it),
// and on SIGHUP starts a new set, waits until each is ready, then retires the
// old ones, which finish what they are doing and exit. The socket never
// closes, so connections arriving meanwhile wait in its queue.
//
// A worker learns it is one from its environment (FromEnv) and exits when
// the master dies: it watches a pipe whose only writer is the master, which
// reaches end-of-file whenever the master exits, however it exits.
package workers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RetireSignal asks a worker to stop taking new connections, finish the
// requests it has (closing keep-alive connections as it answers) and exit,
// without the drain delay of a full stop: during a reload the instance stays
// ready, the new workers are already serving. SIGTERM and SIGINT still mean
// a full graceful stop.
const RetireSignal = syscall.SIGUSR1

// MasterGoneSignal is the parent-death signal of a worker (Pdeathsig): the
// kernel sends it when the master's thread that started the worker exits.
// The worker treats it as the master's pipe closing: it stops, draining.
const MasterGoneSignal = syscall.SIGUSR2

// Options configure Run.
type Options struct {
	// Workers is how many worker processes serve; at least 1.
	Workers int
	// Listener is the shared listening socket (listener.File).
	Listener *os.File
	// ReleaseListener, when set, closes every copy of the socket the
	// master holds (Listener and whatever it was made from). The master
	// calls it once the workers are told to stop: the socket then closes
	// with the last worker's copy, as a single process's does; held open
	// until the master exits, it went on queueing connections that no one
	// would accept, and each was reset when the master closed it.
	ReleaseListener func()
	// Command returns a new, unstarted worker command: path, arguments,
	// environment (nil: the master's), standard output and error. Run adds
	// the inherited descriptors, the worker ID and GOMAXPROCS.
	Command func() *exec.Cmd
	// Reload is called on SIGHUP before new workers start. It re-reads the
	// configuration and returns the number of workers to run; an error
	// keeps the running workers and is logged. Nil keeps Workers.
	Reload func() (workers int, err error)
	// Logger receives the master's records; nil means slog.Default().
	Logger *slog.Logger
	// CPUs is divided among the workers: each gets GOMAXPROCS max(1,
	// CPUs/Workers). Zero means runtime.GOMAXPROCS(0), which Go derives from
	// the CPU quota of the container or the GOMAXPROCS variable.
	CPUs int
	// ReadyTimeout bounds how long a new worker may take to serve; zero
	// means 30s.
	ReadyTimeout time.Duration
	// StopTimeout bounds a graceful stop, after which workers are killed;
	// zero means 30s. Set it above the worker's drain delay plus its
	// shutdown timeout.
	StopTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait before a dead worker is
	// restarted: it doubles from MinBackoff with each consecutive failure of
	// that worker slot. Zero means 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// StableAfter is how long a worker must run for its slot's failures to
	// be forgiven; zero means 10s.
	StableAfter time.Duration
	// CrashLimit workers dying within CrashWindow is a crash loop: the
	// master stops and Run returns an error. Zero means 5 within 60s.
	CrashLimit  int
	CrashWindow time.Duration
}

func (o *Options) defaults() {
	o.Workers = max(o.Workers, 1)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CPUs <= 0 {
		o.CPUs = runtime.GOMAXPROCS(0)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReadyTimeout, 30*time.Second)
	def(&o.StopTimeout, 30*time.Second)
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 10*time.Second)
	def(&o.StableAfter, 10*time.Second)
	def(&o.CrashWindow, time.Minute)
	if o.CrashLimit <= 0 {
		o.CrashLimit = 5
	}
}

// GOMAXPROCS is what each of n workers gets out of cpus.
func GOMAXPROCS(cpus, n int) int { return max(1, cpus/max(n, 1)) }

// proc is one worker process.
type proc struct {
	id       int
	slot     int // position 1..Workers; a restart fills the same slot
	gen      int // the set it belongs to; a reload starts the next
	cmd      *exec.Cmd
	started  time.Time
	ready    bool
	retiring bool
}

type eventKind int

const (
	evReady eventKind = iota
	evExited
	evRestart
)

type event struct {
	kind eventKind
	p    *proc
	err  error // evExited: what Wait returned
	slot int   // evRestart
	gen  int   // evRestart
}

type master struct {
	o       Options
	log     *slog.Logger
	events  chan event
	done    chan struct{} // closed when Run returns
	alive   [2]*os.File   // a pipe the master never writes: workers see EOF when it exits
	procs   map[int]*proc
	nextID  int
	serving int          // the generation whose dead workers are restarted
	pending map[int]bool // ids of a reload's new workers not ready yet
	reload  <-chan time.Time
	fails   map[int]int // consecutive failures per slot
	crashes []time.Time // recent worker deaths, for the crash-loop rule
}

// Run starts o.Workers workers and supervises them until ctx is cancelled
// (SIGTERM or SIGINT: a graceful stop) or a crash loop; every value on
// reload (SIGHUP) replaces the workers without losing a request. It returns
// once every worker has exited: nil after a clean stop.
func Run(ctx context.Context, o Options, reload <-chan os.Signal) error {
	o.defaults()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	m := &master{o: o, log: o.Logger, events: make(chan event), done: make(chan struct{}), alive: [2]*os.File{r, w},
		procs: map[int]*proc{}, serving: 1, fails: map[int]int{}}
	defer func() { _ = r.Close(); _ = w.Close() }()

	m.log.Info("master starting workers", "workers", o.Workers, "gomaxprocs_per_worker", GOMAXPROCS(o.CPUs, o.Workers),
		"cpus", o.CPUs, "pid", os.Getpid())
	for slot := 1; slot <= o.Workers; slot++ {
		if err := m.spawn(slot, m.serving); err != nil {
			return m.stop(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			m.log.Info("master stopping: workers finish their requests and exit", "timeout", o.StopTimeout.String())
			return m.stop(nil)
		case <-reload:
			m.startReload()
		case <-m.reload:
			m.abortReload(fmt.Sprintf("new workers not ready within %s", o.ReadyTimeout))
		case ev := <-m.events:
			if err := m.handle(ev); err != nil {
				return m.stop(err)
			}
		}
	}
}

// spawn starts a worker in slot for generation gen.
func (m *master) spawn(slot, gen int) error {
	m.nextID++
	p := &proc{id: m.nextID, slot: slot, gen: gen}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start worker %d: %w", p.id, err)
	}
	cmd := m.o.Command()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, EnvWorkerID+"="+strconv.Itoa(p.id),
		"GOMAXPROCS="+strconv.Itoa(GOMAXPROCS(m.o.CPUs, m.o.Workers)))
	cmd.ExtraFiles = []*os.File{m.o.Listener, m.alive[0], readyW} // fds 3, 4, 5
	// Own process group: Ctrl-C in a terminal reaches the master only, which
	// stops the workers in order. Pdeathsig as a second line behind the pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: MasterGoneSignal}
	err = cmd.Start()
	_ = readyW.Close() // the worker has its copy
	if err != nil {
		_ = readyR.Close()
		return fmt.Errorf("start worker %d: %w", p.id, err)
	}
	p.cmd, p.started = cmd, time.Now()
	m.procs[p.id] = p
	m.log.Info("worker started", "worker_id", p.id, "pid", cmd.Process.Pid, "slot", slot)
	go func() {
		line, _ := bufio.NewReader(readyR).ReadString('\n')
		_ = readyR.Close()
		if line == "ready\n" {
			m.send(event{kind: evReady, p: p})
		}
	}()
	go func() { m.send(event{kind: evExited, p: p, err: cmd.Wait()}) }()
	return nil
}

// send delivers ev to Run's loop, or drops it once Run has returned.
func (m *master) send(ev event) {
	select {
	case m.events <- ev:
	case <-m.done:
	}
}

func (m *master) handle(ev event) error {
	p := ev.p
	switch ev.kind {
	case evReady:
		if _, ok := m.procs[p.id]; !ok {
			return nil // exited meanwhile
		}
		p.ready = true
		m.log.Info("worker ready", "worker_id", p.id, "pid", p.cmd.Process.Pid)
		if m.pending[p.id] {
			delete(m.pending, p.id)
			if len(m.pending) == 0 {
				m.finishReload()
			}
		}
	case evRestart:
		if ev.gen == m.serving { // else a reload replaced that generation meanwhile
			return m.spawn(ev.slot, ev.gen)
		}
	case evExited:
		delete(m.procs, p.id)
		up := time.Since(p.started)
		if p.retiring {
			m.log.Info("worker retired", "worker_id", p.id, "pid", p.cmd.Process.Pid, "status", exitStatus(ev.err))
			return nil
		}
		m.log.Warn("worker exited unexpectedly", "worker_id", p.id, "pid", p.cmd.Process.Pid,
			"status", exitStatus(ev.err), "uptime", up.Round(time.Millisecond).String())
		if err := m.crashed(time.Now()); err != nil {
			// Workers that still serve keep the instance useful (a worker
			// that cannot start while the database is down, say, beside one
			// that serves cached reads): stopping would take them down too,
			// and a restarted instance could not start either. Only when
			// none is left serving is it a crash loop the platform must see.
			n := m.readyWorkers()
			if n == 0 {
				return err
			}
			m.log.Warn("workers keep dying, but others still serve: not stopping; restarting with backoff",
				"error", err.Error(), "ready_workers", n)
		}
		if m.pending[p.id] {
			m.abortReload(fmt.Sprintf("new worker %d exited before it was ready", p.id))
			return nil
		}
		if p.gen != m.serving {
			return nil
		}
		if up >= m.o.StableAfter {
			m.fails[p.slot] = 0
		}
		m.fails[p.slot]++
		delay := min(m.o.MaxBackoff, m.o.MinBackoff<<min(m.fails[p.slot]-1, 20))
		m.log.Info("restarting worker after backoff", "slot", p.slot, "backoff", delay.String(), "consecutive_failures", m.fails[p.slot])
		slot, gen := p.slot, p.gen
		time.AfterFunc(delay, func() { m.send(event{kind: evRestart, slot: slot, gen: gen}) })
	}
	return nil
}

// readyWorkers counts the serving generation's workers that are ready.
func (m *master) readyWorkers() int {
	n := 0
	for _, p := range m.procs {
		if p.ready && !p.retiring && p.gen == m.serving {
			n++
		}
	}
	return n
}

// crashed records a worker death and reports a crash loop.
func (m *master) crashed(now time.Time) error {
	keep := m.crashes[:0]
	for _, t := range m.crashes {
		if now.Sub(t) < m.o.CrashWindow {
			keep = append(keep, t)
		}
	}
	m.crashes = append(keep, now)
	if len(m.crashes) >= m.o.CrashLimit {
		return fmt.Errorf("workers: crash loop: %d workers died within %s; stopping so the platform restarts the service",
			len(m.crashes), m.o.CrashWindow)
	}
	return nil
}

func (m *master) startReload() {
	if m.pending != nil {
		m.log.Warn("SIGHUP: a reload is already in progress; ignored")
		return
	}
	n := m.o.Workers
	if m.o.Reload != nil {
		var err error
		if n, err = m.o.Reload(); err != nil {
			m.log.Warn("SIGHUP: configuration invalid; workers unchanged", "error", err.Error())
			return
		}
	}
	m.o.Workers = max(n, 1)
	gen := m.serving + 1
	m.log.Info("SIGHUP: reloading: starting new workers; the old ones retire when all are ready",
		"workers", m.o.Workers, "gomaxprocs_per_worker", GOMAXPROCS(m.o.CPUs, m.o.Workers))
	m.pending = map[int]bool{}
	for slot := 1; slot <= m.o.Workers; slot++ {
		if err := m.spawn(slot, gen); err != nil {
			m.abortReload(err.Error())
			return
		}
		m.pending[m.nextID] = true
	}
	m.reload = time.After(m.o.ReadyTimeout)
}

// finishReload makes the new generation the serving one and retires the rest.
func (m *master) finishReload() {
	m.serving++
	m.pending, m.reload = nil, nil
	retired := 0
	for _, p := range m.procs {
		if p.gen < m.serving && !p.retiring {
			m.retire(p)
			retired++
		}
	}
	clear(m.fails)
	m.log.Info("reload complete: new workers serve, old ones finish their requests", "workers", m.o.Workers, "retiring", retired)
}

// abortReload retires a reload's new workers; the old ones keep serving.
func (m *master) abortReload(why string) {
	for _, p := range m.procs {
		if p.gen > m.serving && !p.retiring {
			m.retire(p)
		}
	}
	m.pending, m.reload = nil, nil
	m.log.Error("reload failed; the running workers keep serving", "reason", why)
}

func (m *master) retire(p *proc) {
	p.retiring = true
	_ = p.cmd.Process.Signal(RetireSignal)
}

// stop asks every worker to stop, kills those still running after
// StopTimeout, waits for all, and returns cause (or the reason of a kill).
func (m *master) stop(cause error) error {
	if cause != nil {
		m.log.Error("master stopping workers", "error", cause.Error())
	}
	for _, p := range m.procs {
		p.retiring = true
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	if m.o.ReleaseListener != nil {
		m.o.ReleaseListener() // no worker starts from here on
	}
	deadline := time.After(m.o.StopTimeout)
	killed := 0
	for len(m.procs) > 0 {
		select {
		case ev := <-m.events:
			if ev.kind == evExited {
				delete(m.procs, ev.p.id)
				m.log.Info("worker stopped", "worker_id", ev.p.id, "pid", ev.p.cmd.Process.Pid, "status", exitStatus(ev.err))
			}
		case <-deadline:
			for _, p := range m.procs {
				killed++
				m.log.Warn("worker still running after the stop timeout: killed", "worker_id", p.id, "pid", p.cmd.Process.Pid)
				_ = p.cmd.Process.Kill()
			}
			deadline = nil
		}
	}
	close(m.done) // a restart timer or ready line still pending is dropped
	if cause == nil && killed > 0 {
		cause = fmt.Errorf("workers: %d workers killed after the stop timeout %s", killed, m.o.StopTimeout)
	}
	if cause == nil {
		m.log.Info("master stopped cleanly")
	}
	return cause
}

// exitStatus describes how a worker ended, for the log.
func exitStatus(err error) string {
	if err == nil {
		return "exit 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + unix.SignalName(ws.Signal()) // "killed by SIGKILL"
		}
		return "exit " + strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}
