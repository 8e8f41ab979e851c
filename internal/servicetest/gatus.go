package servicetest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// GatusServer is a real Gatus (github.com/TwiN/gatus, built by make gatus)
// polling what its configuration names. Tests read what it saw through its
// API, to know when to act; what it sends (mail) is asserted where it
// arrives, since Gatus logs a failed send and carries on.
type GatusServer struct {
	url    string
	cmd    *exec.Cmd
	output *LogBuffer
}

// GatusResult is one poll as Gatus recorded it.
type GatusResult struct {
	Status  int      `json:"status"` // the HTTP status code; 0 without an answer
	Success bool     `json:"success"`
	Errors  []string `json:"errors"`
}

// Gatus starts Gatus with the configuration file config and exactly the
// environment env (nothing of the test's own environment leaks in, so the
// file's ${VAR}s are the test's choice), its dashboard on a free loopback
// port, and stops it when the test ends.
//
// The binary is $GATUS_BIN, else .tools/gatus at the module root (make
// gatus builds it there); without one the test is skipped (or fails under
// REQUIRE_SERVICES=1).
func Gatus(t testing.TB, config string, env map[string]string) *GatusServer {
	t.Helper()
	bin := gatusBinary()
	if bin == "" {
		Missing(t, "Gatus", "no executable in $GATUS_BIN or .tools/gatus; build it with: make gatus")
	}
	return retryStart(t, "gatus", func() (*GatusServer, error) { return startGatus(t, bin, config, env) })
}

func gatusBinary() string {
	if bin := os.Getenv("GATUS_BIN"); bin != "" && isExecutable(bin) {
		return bin
	}
	if root := moduleRoot(); root != "" {
		if bin := filepath.Join(root, ".tools", "gatus"); isExecutable(bin) {
			return bin
		}
	}
	return ""
}

func startGatus(t testing.TB, bin, config string, env map[string]string) (*GatusServer, error) {
	port, err := LoopbackPort()
	if err != nil {
		return nil, err
	}
	g := &GatusServer{url: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), output: &LogBuffer{}}
	vars := map[string]string{"GATUS_WEB_ADDRESS": "127.0.0.1", "GATUS_WEB_PORT": strconv.Itoa(port)}
	for k, v := range env {
		vars[k] = v
	}
	vars["GATUS_CONFIG_PATH"] = config
	// Stopped by the cleanup (Kill), not by a context: it outlives this call.
	g.cmd = exec.CommandContext(context.Background(), bin) // #nosec G204 -- the test's own binary
	for k, v := range vars {
		g.cmd.Env = append(g.cmd.Env, k+"="+v)
	}
	if err := startUntilReady(t, g.cmd, g.output, g.ready); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *GatusServer) ready() bool { return answersOK(g.url + "/health") }

// URL is the dashboard's base URL.
func (g *GatusServer) URL() string { return g.url }

// Output is what Gatus has written to stdout and stderr so far.
func (g *GatusServer) Output() string { return g.output.String() }

// Results returns the polls of the endpoint named name, oldest first (the
// last 100 at most), as Gatus's API serves them: it caches its answers for
// a few seconds, so the newest polls may be missing.
func (g *GatusServer) Results(t testing.TB, name string) []GatusResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/api/v1/endpoints/statuses?pageSize=100", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gatus: endpoint statuses: %v", err)
	}
	defer resp.Body.Close()
	var statuses []struct {
		Name    string        `json:"name"`
		Results []GatusResult `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&statuses); err != nil {
		t.Fatalf("gatus: endpoint statuses: %s: %v", resp.Status, err)
	}
	for _, s := range statuses {
		if s.Name == name {
			return s.Results
		}
	}
	return nil
}

// WaitForResults polls Results until ok accepts them; the test fails with
// Gatus's output when that takes longer than timeout.
func (g *GatusServer) WaitForResults(t testing.TB, name, what string, timeout time.Duration, ok func([]GatusResult) bool) []GatusResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := g.Results(t, name)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("gatus: %s: not within %s; polls of %s: %+v\ngatus output:\n%s", what, timeout, name, r, g.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
