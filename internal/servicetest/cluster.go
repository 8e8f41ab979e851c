package servicetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a PostgreSQL server of a test's own: its data directory, its
// port. Tests that reconfigure the server (archive_command, restores) use
// one instead of the machine's shared server.
type Cluster struct {
	Bin  string // directory of initdb, pg_ctl and postgres
	Data string // the data directory
	Port int
	Log  string // the server's log file
}

// PostgresBin returns the directory of the newest installed PostgreSQL
// server binaries (PG_BIN overrides), or skips/fails the test.
func PostgresBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("PG_BIN"); bin != "" {
		return bin
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		Missing(t, "PostgreSQL server binaries", "no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)")
	}
	slices.SortFunc(found, func(a, b string) int { return majorOf(a) - majorOf(b) })
	return filepath.Dir(found[len(found)-1])
}

func majorOf(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// PostgresOwnedDir makes a temporary directory owned by the user the server
// runs as (postgres, when the test runs as root: initdb and postgres refuse
// to run as root) and removes it when the test ends.
func PostgresOwnedDir(t testing.TB) string {
	t.Helper()
	// Not t.TempDir: its parent is private to the test's user.
	dir, err := os.MkdirTemp("", "notes-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, "the postgres user", "tests run as root and PostgreSQL refuses root: "+err.Error())
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// AsPostgres is exec.CommandContext run as the postgres user when the test
// is root (runuser), as the test's own user otherwise.
func AsPostgres(ctx context.Context, name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...) //nolint:gosec // the tests' own commands
	}
	return exec.CommandContext(ctx, name, args...) //nolint:gosec // the tests' own commands
}

// RunAsPostgres runs a command as AsPostgres does and fails the test, with
// its output, when it fails. It returns the combined output.
func RunAsPostgres(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := AsPostgres(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewCluster runs initdb in dir/data (dir from PostgresOwnedDir), appends
// conf to postgresql.conf, and starts the server on a free loopback port;
// it is stopped when the test ends. Trust authentication, user postgres.
func NewCluster(t testing.TB, dir string, conf ...string) *Cluster {
	t.Helper()
	c := &Cluster{Bin: PostgresBin(t), Data: filepath.Join(dir, "data")}
	RunAsPostgres(t, filepath.Join(c.Bin, "initdb"), "--pgdata="+c.Data, "--username=postgres",
		"--auth=trust", "--no-sync", "--no-instructions", "--encoding=UTF8", "--locale=C")
	f, err := os.OpenFile(filepath.Join(c.Data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintln(f, strings.Join(append([]string{"fsync = off"}, conf...), "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Start(t)
	return c
}

// Start starts the server on Data, choosing a free port when Port is 0;
// it is stopped when the test ends. The socket and the log stay beside Data.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	if c.Bin == "" {
		c.Bin = PostgresBin(t)
	}
	if c.Port == 0 {
		p, err := LoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		c.Port = p
	}
	parent := filepath.Dir(c.Data)
	c.Log = c.Data + ".log"
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", c.Port, parent)
	RunAsPostgres(t, filepath.Join(c.Bin, "pg_ctl"), "--pgdata="+c.Data, "--log="+c.Log,
		"--options="+opts, "--wait", "--timeout=300", "start")
	t.Cleanup(func() { _, _ = c.stop("immediate") }) // best effort: the directory goes next
}

// Stop stops the server cleanly (a shutdown checkpoint, archiving what it can).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.stop("fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *Cluster) stop(mode string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(c.Data, "postmaster.pid")); err != nil {
		return nil, nil // not running
	}
	return AsPostgres(ctx, filepath.Join(c.Bin, "pg_ctl"), "--pgdata="+c.Data, "--mode="+mode, "--wait", "stop").CombinedOutput()
}

// URL is a connection URL for database db on this server.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := LoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
