package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prodready/service/internal/loadgen"
)

var readyRe = regexp.MustCompile(`"msg":"worker ready".*?"worker_id":\d+,"pid":(\d+)`)

// rowWorkers runs `api serve --workers 2` beside the stack (same database,
// Redis and configuration, its own port), shows the master and its two
// workers, sends the master SIGHUP under load and counts the requests lost
// through the reload, then stops it with SIGTERM.
func rowWorkers(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	environ, port, err := s.anotherInstance()
	if err != nil {
		return "", err
	}
	out := &logBuf{}
	m, err := startProcess(e.bin, []string{"serve", "--workers", "2"}, environ, out)
	if err != nil {
		return "", err
	}
	defer func() { _, _ = m.terminate(45 * time.Second) }()
	waitMsg := func(msg string, n int) error {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if strings.Count(out.String(), `"msg":"`+msg+`"`) >= n {
				return nil
			}
			if m.exited() {
				return fmt.Errorf("the master exited: %s", out.tail(5))
			}
		}
		return fmt.Errorf("%q logged fewer than %d times in 60s: %s", msg, n, out.tail(5))
	}
	if err := waitMsg("worker ready", 2); err != nil {
		return "", err
	}
	old := workerPids(out)

	lctx, stopLoad := context.WithCancel(ctx)
	res := make(chan loadgen.Result, 1)
	go func() {
		res <- loadgen.Run(lctx, loadgen.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), Clients: 4,
			Request: loadgen.Get("/v1/notes?limit=5"), Timeout: 30 * time.Second})
	}()
	time.Sleep(time.Second) // load before the reload
	if err := m.signal(syscall.SIGHUP); err != nil {
		stopLoad()
		return "", err
	}
	err = waitMsg("reload complete: new workers serve, old ones finish their requests", 1)
	if err == nil {
		err = waitMsg("worker retired", 2)
	}
	time.Sleep(time.Second) // load after it
	stopLoad()
	r := <-res
	if err != nil {
		return "", err
	}
	if _, err := m.terminate(45 * time.Second); err != nil {
		return "", fmt.Errorf("master after SIGTERM: %w", err)
	}
	if err := waitMsg("master stopped cleanly", 1); err != nil {
		return "", err
	}
	if r.Failed() != 0 || r.OK() == 0 {
		return "", fmt.Errorf("%d of %d requests lost through the reload (%v, errors %v)", r.Failed(), r.Sent, r.Status, r.Errors)
	}
	return fmt.Sprintf("master pid %d, workers %v (GOMAXPROCS 1 each); kill -HUP under load (4 keep-alive clients, GET /v1/notes): new workers %v ready, the old ones retired; %d requests, 0 lost; SIGTERM: master stopped cleanly",
		m.pid(), old, workerPids(out)[len(old):], r.Sent), nil
}

// workerPids lists the pids of the workers that said they were ready.
func workerPids(out *logBuf) []int {
	var pids []int
	for _, sm := range readyRe.FindAllStringSubmatch(out.String(), -1) {
		pid, _ := strconv.Atoi(sm[1])
		pids = append(pids, pid)
	}
	return pids
}
