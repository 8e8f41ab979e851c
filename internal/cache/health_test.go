package cache_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/health"
	"github.com/prodready/service/internal/servicetest"
)

// slowProxy forwards to addr, holding each chunk from the client for delay:
// a Redis that answers, slowly.
func slowProxy(t *testing.T, addr string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(c, up) }()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					time.Sleep(delay)
					if _, err := up.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCheck_SlowRedisWarns: a Redis that answers, but in more than half of
// status.cache_timeout, warns on /status (every cached read pays that,
// which can be worse than no cache); a prompt one passes.
func TestCheck_SlowRedisWarns(t *testing.T) {
	srv := servicetest.StartRedis(t)
	for _, tt := range []struct {
		name  string
		delay time.Duration
		want  health.Status
	}{{"prompt", 0, health.Pass}, {"slow", 150 * time.Millisecond, health.Warn}} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := cache.NewRedis(t.Context(), "redis://"+slowProxy(t, srv.Addr(), tt.delay)+"/0", cache.RedisOptions{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			_ = r.Ping(t.Context()) // the connection is open: the check times PING alone
			res := cache.Check(r, 200*time.Millisecond, nil).Run(context.Background())
			if res.Status != tt.want || (tt.want == health.Warn && !strings.Contains(res.Output, "more than half of status.cache_timeout")) {
				t.Errorf("%+v, want %s", res, tt.want)
			}
		})
	}
}
