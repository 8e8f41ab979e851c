package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// syslogReceiver is where the service's syslog sink sends, over TCP on
// loopback: rsyslogd where it is installed (a real daemon writing a file),
// else a listener of our own that keeps what it receives.
type syslogReceiver struct {
	addr string
	kind string // "rsyslogd" or "own listener"
	// received returns everything received so far.
	received func() string
	stop     func()
}

const rsyslogConf = `
global(workDirectory="{{dir}}" maxMessageSize="64k")
module(load="imtcp")
template(name="fields" type="string" string="pri=%pri% app=%app-name% msg=%msg%\n")
ruleset(name="tcp") { action(type="omfile" file="{{dir}}/received.log" template="fields") }
input(type="imtcp" address="127.0.0.1" port="{{port}}" ruleset="tcp")
`

func rsyslogdBinary() string {
	if bin, err := exec.LookPath("rsyslogd"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/rsyslogd"); err == nil { // Debian's place, off a non-root PATH
		return "/usr/sbin/rsyslogd"
	}
	return ""
}

func startSyslog(ctx context.Context, runDir string) (*syslogReceiver, error) {
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	bin := rsyslogdBinary()
	if bin == "" || os.Getenv("CHECKLIST_SYSLOG") == "own" {
		return ownSyslog(addr)
	}
	dir := filepath.Join(runDir, "rsyslog")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{port}}", strconv.Itoa(port)).Replace(rsyslogConf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	out := &logBuf{}
	p, err := startProcess(bin, []string{"-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid")}, os.Environ(), out)
	if err != nil {
		return nil, err
	}
	r := &syslogReceiver{addr: addr, kind: "rsyslogd", stop: func() { _, _ = p.terminate(5 * time.Second) }}
	r.received = func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "received.log"))
		return string(b)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !dialable(addr) {
		if p.exited() {
			return nil, fmt.Errorf("rsyslogd exited at start: %s", out.tail(5))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.stop()
			return nil, fmt.Errorf("rsyslogd not listening on %s after 15s: %s", addr, out.tail(5))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r, nil
}

// ownSyslog accepts TCP syslog and keeps the raw frames.
func ownSyslog(addr string) (*syslogReceiver, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	buf := &logBuf{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 64<<10)
				for {
					n, err := c.Read(b)
					_, _ = buf.Write(b[:n])
					if err != nil {
						if !errors.Is(err, net.ErrClosed) {
							_, _ = buf.Write([]byte("\n"))
						}
						return
					}
				}
			}()
		}
	}()
	return &syslogReceiver{addr: addr, kind: "own listener", received: buf.String, stop: func() { _ = ln.Close() }}, nil
}
