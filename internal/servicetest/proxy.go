package servicetest

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is an in-process TCP proxy in front of a real service, so a test can
// cut the connection (as a crashed server or a broken network would) or make
// the service hang (accepting connections but never answering), without a
// mock standing in for the service.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns map[net.Conn]struct{}
}

type proxyMode int

const (
	forward   proxyMode = iota // pass bytes both ways
	cut                        // close every connection at once
	blackhole                  // accept, read, never answer
	partition                  // blackhole, but open connections stay open and go silent too
)

// NewProxy listens on a free loopback port and forwards to target (host:port).
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port, to use instead of the service's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() { p.set(cut) }

// Blackhole drops open connections, then accepts new ones and never answers.
func (p *Proxy) Blackhole() { p.set(blackhole) }

// Partition makes the network silent, as a partition looks to both ends:
// open connections stay open but every byte either way is dropped, and new
// connections are accepted and never answered. Nobody sees a reset, so only
// the clients' own timeouts end their waits.
func (p *Proxy) Partition() { p.set(partition) }

// Restore forwards again.
func (p *Proxy) Restore() { p.set(forward) }

func (p *Proxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == cut || m == blackhole {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch mode {
		case cut:
			_ = c.Close()
		case blackhole, partition:
			if p.track(c) {
				go func() { _, _ = io.Copy(io.Discard, c) }()
			}
		default:
			go p.pipe(c)
		}
	}
}

func (p *Proxy) pipe(client net.Conn) {
	var d net.Dialer
	server, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client) || !p.track(server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		err := p.copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(server, client)
	go cp(client, server)
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// copy moves bytes from src to dst until either fails, dropping them
// instead while the proxy is partitioned. A nil error means src ended.
func (p *Proxy) copy(dst, src net.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.partitioned() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (p *Proxy) partitioned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode == partition
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// ClosedPort returns a loopback TCP address where nothing listens, for a
// dependency that is down: dials to it are refused at once.
func ClosedPort(t testing.TB) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
