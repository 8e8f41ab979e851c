package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/servicetest"
)

// rsyslogConf runs rsyslogd without root paths: every input writes what it
// receives to its own file in dir, one line per message, with the fields the
// test checks.
const rsyslogConf = `
global(workDirectory="{{dir}}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
template(name="fields" type="string"
  string="pri=%pri% sev=%syslogseverity% fac=%syslogfacility% app=%app-name% procid=%procid% msg=%msg%\n")
ruleset(name="udp")      { action(type="omfile" file="{{dir}}/udp.log" template="fields") }
ruleset(name="tcp")      { action(type="omfile" file="{{dir}}/tcp.log" template="fields") }
ruleset(name="unix5424") { action(type="omfile" file="{{dir}}/unix5424.log" template="fields") }
ruleset(name="unix3164") { action(type="omfile" file="{{dir}}/unix3164.log" template="fields") }
input(type="imudp" address="127.0.0.1" port="{{udp}}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{{tcp}}" ruleset="tcp")
# imuxsock's default parser expects the BSD format on a local socket (as
# /dev/log carries it); RFC 5424 needs the regular parser chain.
input(type="imuxsock" socket="{{dir}}/5424.sock" useSpecialParser="off" parseHostname="on" ruleset="unix5424")
input(type="imuxsock" socket="{{dir}}/3164.sock" ruleset="unix3164")
`

// startRsyslogd runs rsyslogd in the foreground with rsyslogConf and returns
// its directory and ports once its inputs accept messages.
func startRsyslogd(t *testing.T) (dir string, udpPort, tcpPort int) {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	if err != nil {
		bin = "/usr/sbin/rsyslogd" // Debian's place, off a non-root PATH
		if _, serr := os.Stat(bin); serr != nil {
			servicetest.Missing(t, "rsyslog", "rsyslogd not on PATH (apt-get install rsyslog)")
		}
	}
	dir = shortDir(t)
	udpPort, tcpPort = freePort(t, "udp"), freePort(t, "tcp")
	conf := strings.NewReplacer("{{dir}}", dir, "{{udp}}", strconv.Itoa(udpPort), "{{tcp}}", strconv.Itoa(tcpPort)).
		Replace(rsyslogConf)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	// Ready when the TCP input accepts and both sockets exist: inputs are
	// bound before rsyslogd runs any of them, so UDP is up by then too.
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("rsyslogd exited: %v\n%s", err, out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), time.Second)
		_, err5424 := os.Stat(filepath.Join(dir, "5424.sock"))
		_, err3164 := os.Stat(filepath.Join(dir, "3164.sock"))
		if err == nil {
			c.Close()
			if err5424 == nil && err3164 == nil {
				return dir, udpPort, tcpPort
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd not ready after 15s: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var rsyslogLine = regexp.MustCompile(`^pri=(\d+) sev=(\d+) fac=(\d+) app=(\S+) procid=(\S+) msg=\s*(.*)$`)

// TestThroughRsyslog sends records through the sink to a real rsyslogd and
// reads what it wrote: the daemon must see the right facility, severity,
// app-name and process ID, and the JSON body intact.
func TestThroughRsyslog(t *testing.T) {
	dir, udpPort, tcpPort := startRsyslogd(t)
	for _, tt := range []struct {
		name, network, address, protocol, facility string
		code                                       int
	}{
		{"udp", "udp", fmt.Sprintf("127.0.0.1:%d", udpPort), "rfc5424", "local0", 16},
		{"tcp", "tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort), "rfc5424", "local3", 19},
		{"unix5424", "unixgram", filepath.Join(dir, "5424.sock"), "rfc5424", "daemon", 3},
		{"unix3164", "unixgram", filepath.Join(dir, "3164.sock"), "rfc3164", "user", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default().Log
			cfg.Level = "debug"
			cfg.Stdout.Enabled = false
			cfg.Syslog = config.LogSyslog{
				Enabled: true, Network: tt.network, Address: tt.address, Protocol: tt.protocol,
				Facility: tt.facility, AppName: "notes-api", QueueSize: 100, WriteTimeout: time.Second,
			}
			l, err := Setup(Options{Config: cfg, Hostname: "test-host"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := WithRequestID(context.Background(), "req-"+tt.name)
			l.Logger.DebugContext(ctx, tt.name+" debug")
			l.Logger.InfoContext(ctx, tt.name+" info", "text", "two\nlines")
			l.Logger.WarnContext(ctx, tt.name+" warn")
			l.Logger.ErrorContext(ctx, tt.name+" error")
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Close(flush); err != nil {
				t.Fatalf("Close: %v", err)
			}

			want := map[string]int{"debug": 7, "info": 6, "warn": 4, "error": 3}
			lines := waitLines(t, filepath.Join(dir, tt.name+".log"), len(want))
			for _, line := range lines {
				m := rsyslogLine.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("rsyslog wrote %q", line)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(m[6]), &body); err != nil {
					t.Fatalf("body is not JSON after rsyslog: %v: %q", err, m[6])
				}
				level := strings.TrimPrefix(fmt.Sprint(body["msg"]), tt.name+" ")
				sev, ok := want[level]
				if !ok {
					t.Fatalf("unexpected record %q", line)
				}
				delete(want, level)
				got := strings.Join(m[1:6], " ")
				if want := fmt.Sprintf("%d %d %d notes-api %d", tt.code*8+sev, sev, tt.code, os.Getpid()); got != want {
					t.Errorf("%s: pri sev fac app procid = %q, want %q", level, got, want)
				}
				if body["request_id"] != "req-"+tt.name {
					t.Errorf("%s: body %v lost its request_id", level, body)
				}
				if level == "info" && body["text"] != "two\nlines" {
					t.Errorf("info: text = %q, want the newline back after JSON decoding", body["text"])
				}
			}
		})
	}
}

// waitLines waits until path holds n lines and returns them.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(data) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d bytes after 15s, want %d lines: %q", path, len(data), n, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
