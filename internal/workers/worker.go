package workers

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"

	"github.com/prodready/service/internal/listener"
)

// What a worker inherits from its master, by exec.Cmd.ExtraFiles (ExtraFiles[i]
// becomes descriptor 3+i in the child) and the environment.
const (
	fdListener = 3 // the shared listening socket
	fdMaster   = 4 // read end of a pipe only the master writes to: EOF means the master is gone
	fdReady    = 5 // write end of a pipe the master reads: one line when the worker serves

	// EnvWorkerID is set in a worker's environment to its ID (1, 2, ...).
	// Its presence is what makes a process a worker.
	EnvWorkerID = "APP_WORKER_ID"
)

// Worker is what a worker process gets from its master.
type Worker struct {
	ID       int
	Listener net.Listener
	ready    *os.File
	gone     chan struct{}
}

// FromEnv returns this process's worker identity, with the shared listener,
// when it was started by a master; ok is false in a single process.
func FromEnv(getenv func(string) string) (w *Worker, ok bool, err error) {
	v := getenv(EnvWorkerID)
	if v == "" {
		return nil, false, nil
	}
	id, err := strconv.Atoi(v)
	if err != nil || id < 1 {
		return nil, false, fmt.Errorf("worker: %s=%q is not a worker ID", EnvWorkerID, v)
	}
	ln, err := listener.FromFile(fdListener, "listener")
	if err != nil {
		return nil, false, fmt.Errorf("worker %d: inherited listener: %w", id, err)
	}
	w = &Worker{ID: id, Listener: ln, ready: os.NewFile(fdReady, "ready"), gone: make(chan struct{})}
	master := os.NewFile(fdMaster, "master")
	if master == nil || w.ready == nil {
		_ = ln.Close()
		return nil, false, fmt.Errorf("worker %d: descriptors %d and %d from the master are not open", id, fdMaster, fdReady)
	}
	var once sync.Once
	goneNow := func() { once.Do(func() { close(w.gone) }) }
	go func() {
		// The master never writes: Read returns only when its end closes,
		// which the kernel does when the master exits, however it exits.
		var b [1]byte
		_, _ = master.Read(b[:])
		_ = master.Close()
		goneNow()
	}()
	// The parent-death signal, the second line behind the pipe: a signal of
	// its own, not SIGTERM, which it used to be. It can come more than once
	// (seen twice when the master was killed), and a second SIGTERM means
	// "stop at once" to the service, which then cut the requests it was
	// finishing instead of draining them.
	died := make(chan os.Signal, 1)
	signal.Notify(died, MasterGoneSignal)
	go func() {
		select {
		case <-died:
			goneNow()
		case <-w.gone:
		}
	}()
	return w, true, nil
}

// Ready tells the master this worker serves requests; during a reload the
// master retires the old workers only after every new one said so.
func (w *Worker) Ready() error {
	defer w.ready.Close()
	if _, err := fmt.Fprintln(w.ready, "ready"); err != nil {
		return fmt.Errorf("worker %d: tell the master it is ready: %w", w.ID, err)
	}
	return nil
}

// MasterGone is closed when the master process has exited: a worker must
// then stop, or it would serve on unsupervised.
func (w *Worker) MasterGone() <-chan struct{} { return w.gone }
