package servicetest

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// retryStart calls start up to three times. Free ports are found by
// listening on :0 and closing; another process may take one before the
// child binds it, so a failed start is retried.
func retryStart[T any](t testing.TB, what string, start func() (T, error)) T {
	t.Helper()
	var lastErr error
	for range 3 {
		v, err := start()
		if err == nil {
			return v
		}
		lastErr = err
	}
	t.Fatalf("%s: %v", what, lastErr)
	var zero T
	return zero
}

// startUntilReady starts cmd with its output into output and waits until
// ready reports true; the test's cleanup then kills it. An exit or 15 s
// without ready is an error carrying the output, after which the process
// is gone.
func startUntilReady(t testing.TB, cmd *exec.Cmd, output *LogBuffer, ready func() bool) error {
	cmd.Stdout, cmd.Stderr = output, output
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited at start: %s", output.String())
		default:
		}
		if ready() {
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("not ready after 15s: %s", output.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answersOK reports whether GET url answers 200 within a second.
func answersOK(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
