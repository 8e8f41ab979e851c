package logging

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/servicetest"
)

// The cost of one access-log-sized record, as a request pays it. The point
// of comparing them: with the syslog daemon gone, a record costs no more
// than with it up (a full queue drops before formatting), so the service's
// latency does not depend on the daemon.
//
//	go test -run '^$' -bench 'BenchmarkLog_' -benchmem ./internal/logging/

func BenchmarkLog_StdoutOnly(b *testing.B) {
	benchLog(b, config.Default().Log)
}

func BenchmarkLog_SyslogUp(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pc.Close() })
	go func() { // a daemon that reads and forgets
		buf := make([]byte, 1<<16)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	benchLog(b, syslogConfig("udp", pc.LocalAddr().String()))
}

func BenchmarkLog_SyslogListenerGone(b *testing.B) {
	benchLog(b, syslogConfig("tcp", servicetest.ClosedPort(b)))
}

func benchLog(b *testing.B, cfg config.Log) {
	cfg.Level = "info"
	for _, parallel := range []bool{false, true} {
		name := "serial"
		if parallel {
			name = "parallel"
		}
		b.Run(name, func(b *testing.B) {
			l, err := Setup(Options{Config: cfg, Stdout: io.Discard, Hostname: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			logger := l.Logger.With("service", "notes-api")
			ctx := WithRequestID(context.Background(), "0190c6f2-aaaa-7bbb-8ccc-000000000001")
			record := func() {
				logger.InfoContext(ctx, "request", "method", "GET", "route", "/v1/notes/:id",
					"path", "/v1/notes/0190c6f2-aaaa-7bbb-8ccc-000000000001", "status", 200,
					"duration_ms", 1.25, "bytes", 512, "client_ip", "127.0.0.1")
			}
			b.ReportAllocs()
			b.ResetTimer()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						record()
					}
				})
			} else {
				for b.Loop() {
					record()
				}
			}
			b.StopTimer()
			s := l.SyslogStats()
			if s.Enabled {
				b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_ = l.Close(ctx)
		})
	}
}
