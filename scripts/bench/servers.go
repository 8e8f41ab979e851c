package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/servicetest"
)

// server is a process the bench started.
type server struct {
	addr string
	cmd  *exec.Cmd
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// serverCPU pins the servers to core 0 when there are two or more and
// taskset is there; make bench runs this program on the other core, so the
// load generator never takes CPU from what it measures. Go sets GOMAXPROCS
// from the affinity mask: 1.
func command(pin bool, name string, args ...string) *exec.Cmd {
	if pin && runtime.NumCPU() >= 2 {
		if ts, err := exec.LookPath("taskset"); err == nil {
			return exec.Command(ts, append([]string{"-c", "0", name}, args...)...) //nolint:noctx,gosec // our own binaries; stopped by server.stop, not a context
		}
	}
	return exec.Command(name, args...) //nolint:noctx,gosec // as above
}

// startService runs the real program as an operator would, on its
// development defaults with a few production choices: info-level JSON
// access logs (to /dev/null: the cost of formatting and writing them is
// measured, not of a terminal), monitoring off (its cost is measured by
// BenchmarkRequestCost against the fake collector), a long cache TTL so
// reads stay cached during the run.
func startService(ctx context.Context, o options, name string, env []string, args ...string) (*server, error) {
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	return startSpec(ctx, o, spec{name: name, port: port, pin: true, env: env, args: args})
}

// spec says how to start one service process.
type spec struct {
	name string
	port int
	pin  bool // on core 0; false lets it use every core (the workers pairs)
	env  []string
	args []string
	// logs keeps stdout in <dir>/<name>/stdout.log instead of discarding
	// it, for the pairs that wait for a log line.
	logs bool
}

func startSpec(ctx context.Context, o options, sp spec) (*server, error) {
	dir := filepath.Join(o.dir, sp.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cmd := command(sp.pin, o.bin, append([]string{"serve"}, sp.args...)...)
	cmd.Env = append(os.Environ(),
		"APP_ENVIRONMENT=development",
		"PORT="+strconv.Itoa(sp.port),
		"APP_HTTP_HOST=127.0.0.1",
		"APP_DATABASE_SQLITE_PATH="+filepath.Join(dir, "notes.db"),
		"APP_LOG_LEVEL=info",
		"APP_NEWRELIC_ENABLED=false",
		"APP_CACHE_TTL=1h",
		"APP_HTTP_DRAIN_DELAY=0s",
		"STATUS_TOKENS=bench-"+strconv.Itoa(sp.port),
	)
	cmd.Env = append(cmd.Env, sp.env...)
	// nil is the null device itself. io.Discard would not be: os/exec
	// gives a writer that is not an *os.File a pipe and a goroutine in this
	// process copying it, so the service's access log would be read on the
	// load generator's core, and only while the full stack is measured.
	cmd.Stdout = nil
	if sp.logs {
		f, err := os.Create(filepath.Join(dir, "stdout.log"))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout = f
	}
	logFile, err := os.Create(filepath.Join(dir, "service.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stderr = logFile
	return startAndWait(ctx, cmd, sp.port, filepath.Join(dir, "service.log"))
}

// startBare runs this program with -serve-bare: the ceiling.
func startBare(ctx context.Context, o options, redisURL string) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return startBareFrom(ctx, self, redisURL, "")
}

// startBareFrom runs bin, this program or bin/bench-linked, with
// -serve-bare, and with -bare-timeouts when timeouts is not "".
func startBareFrom(ctx context.Context, bin, redisURL, timeouts string) (*server, error) {
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve-bare", "127.0.0.1:" + strconv.Itoa(port)}
	if redisURL != "" {
		args = append(args, "-bare-redis", redisURL)
	}
	if timeouts != "" {
		args = append(args, "-bare-timeouts", timeouts)
	}
	cmd := command(true, bin, args...)
	cmd.Stderr = os.Stderr
	return startAndWait(ctx, cmd, port, "")
}

// serverTimeoutKeys are the http.Server settings the service takes from its
// configuration, in the order -bare-timeouts takes them.
var serverTimeoutKeys = []string{"http.read_header_timeout", "http.read_timeout", "http.write_timeout", "http.idle_timeout"}

// serviceTimeouts asks the service binary for the server timeouts it runs
// with on the bench's configuration (`api config`), as -bare-timeouts takes
// them: "5s,15s,30s,2m0s".
func serviceTimeouts(ctx context.Context, o options) (string, error) {
	cmd := exec.CommandContext(ctx, o.bin, "config") //nolint:gosec // our own binary
	cmd.Env = append(os.Environ(), "APP_ENVIRONMENT=development")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s config: %w", o.bin, err)
	}
	values := make(map[string]string)
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) >= 2 {
			values[f[0]] = f[1]
		}
	}
	got := make([]string, len(serverTimeoutKeys))
	for i, k := range serverTimeoutKeys {
		if got[i] = values[k]; got[i] == "" {
			return "", fmt.Errorf("%s config does not show %s", o.bin, k)
		}
	}
	return strings.Join(got, ","), nil
}

func startAndWait(ctx context.Context, cmd *exec.Cmd, port int, logPath string) (*server, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(port), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, err := call(ctx, http.MethodGet, "http://"+s.addr+"/livez", nil, http.StatusOK); err == nil {
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	msg := ""
	if logPath != "" {
		if b, err := os.ReadFile(filepath.Clean(logPath)); err == nil {
			msg = ": " + strings.TrimSpace(string(b))
		}
	}
	return nil, fmt.Errorf("%s did not answer /livez within 30 s%s", cmd.Path, msg)
}

// serveBare is the ceiling the full stack is compared with: gin in release
// mode with no middleware at all, the same /livez answer, and a read by id
// that returns the bytes the cache holds (memory LRU or Redis, as the
// service uses) with an ETag. PUT /_fill/:id loads the cache. Its
// http.Server sets only ReadHeaderTimeout, unless timeouts gives the four
// the service sets (read header, read, write, idle: "5s,15s,30s,2m0s").
func serveBare(addr, redisURL, timeouts string) error {
	var c cache.Cache = cache.NewMemory(100_000)
	if redisURL != "" {
		r, err := cache.NewRedis(context.Background(), redisURL, cache.RedisOptions{KeyPrefix: "bench-bare:", Timeout: time.Second})
		if err != nil {
			return err
		}
		c = r
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.GET("/livez", func(g *gin.Context) {
		g.JSON(http.StatusOK, struct {
			Status  string `json:"status"`
			Version string `json:"version,omitempty"`
		}{"ok", "bench"})
	})
	e.GET("/v1/notes/:id", func(g *gin.Context) {
		b, ok, err := c.Get(g.Request.Context(), "note:"+g.Param("id"))
		if err != nil || !ok {
			g.Status(http.StatusNotFound)
			return
		}
		g.Header("ETag", `"1"`)
		g.Data(http.StatusOK, "application/json; charset=utf-8", b)
	})
	e.PUT("/_fill/:id", func(g *gin.Context) {
		b, err := io.ReadAll(g.Request.Body)
		if err == nil {
			err = c.Set(g.Request.Context(), "note:"+g.Param("id"), b, time.Hour)
		}
		if err != nil {
			g.String(http.StatusInternalServerError, err.Error())
			return
		}
		g.Status(http.StatusNoContent)
	})
	srv := &http.Server{Addr: addr, Handler: e, ReadHeaderTimeout: 5 * time.Second}
	if timeouts != "" {
		var d [4]time.Duration
		parts := strings.Split(timeouts, ",")
		if len(parts) != len(d) {
			return fmt.Errorf("-bare-timeouts %q: want four durations (read header, read, write, idle)", timeouts)
		}
		for i, p := range parts {
			var err error
			if d[i], err = time.ParseDuration(p); err != nil {
				return fmt.Errorf("-bare-timeouts %q: %w", timeouts, err)
			}
		}
		srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = d[0], d[1], d[2], d[3]
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
