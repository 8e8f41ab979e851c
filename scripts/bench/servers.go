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
	cmd.Stdout = io.Discard
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
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-serve-bare", "127.0.0.1:" + strconv.Itoa(port)}
	if redisURL != "" {
		args = append(args, "-bare-redis", redisURL)
	}
	cmd := command(true, self, args...)
	cmd.Stderr = os.Stderr
	return startAndWait(ctx, cmd, port, "")
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
// service uses) with an ETag. PUT /_fill/:id loads the cache.
func serveBare(addr, redisURL string) error {
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
