package cache_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/prodready/service/internal/cache"
	"github.com/prodready/service/internal/servicetest"
)

// newTestRedis connects to TEST_REDIS_URL with a key prefix unique to the
// test, so parallel tests and packages sharing the database never collide,
// and removes that test's keys afterwards.
func newTestRedis(t *testing.T) *cache.Redis {
	t.Helper()
	url := servicetest.URL(t, "TEST_REDIS_URL", "Redis")
	prefix := "cachetest:" + uuid.NewString() + ":"
	c, err := cache.NewRedis(t.Context(), url, cache.RedisOptions{KeyPrefix: prefix})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	if err := c.Ping(t.Context()); err != nil {
		// Configured but unreachable is a broken environment, not a skip.
		t.Fatalf("TEST_REDIS_URL is set but Redis does not answer: %v", err)
	}
	t.Cleanup(func() {
		deleteKeys(t, url, prefix)
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// rawRedis is a plain go-redis client, to look behind the Cache API.
func rawRedis(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

func deleteKeys(t *testing.T, url, prefix string) {
	t.Helper()
	ctx := context.Background() // t.Context is already canceled in Cleanup
	rc := rawRedis(t, url)
	iter := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		rc.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("clean up %s*: %v", prefix, err)
	}
}

func TestRedisStoresUnderPrefixWithTTL(t *testing.T) {
	url := servicetest.URL(t, "TEST_REDIS_URL", "Redis")
	prefix := "cachetest:" + uuid.NewString() + ":"
	c, err := cache.NewRedis(t.Context(), url, cache.RedisOptions{
		KeyPrefix:    prefix,
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
		PoolSize:     2,
	})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { deleteKeys(t, url, prefix); _ = c.Close() })
	rc := rawRedis(t, url)
	ctx := t.Context()

	mustSet(t, c, "k", []byte("v"), time.Hour)
	if got, err := rc.Get(ctx, prefix+"k").Result(); err != nil || got != "v" {
		t.Fatalf("raw GET %sk = %q, %v; want \"v\"", prefix, got, err)
	}
	if ttl := rc.PTTL(ctx, prefix+"k").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL = %v, want about 1h", ttl)
	}
	// go-redis reads a ttl of -1 as KEEPTTL; the cache must clear the old ttl instead.
	mustSet(t, c, "k", []byte("v"), -1)
	if ttl := rc.PTTL(ctx, prefix+"k").Val(); ttl != -1 {
		t.Fatalf("PTTL after Set with ttl -1 = %v, want -1 (no expiry)", ttl)
	}
	if got := rc.Exists(ctx, "k").Val(); got != 0 {
		t.Fatal("unprefixed key was written")
	}
}

// closedAddr returns a local address nothing listens on: connections to it
// are refused at once, like a Redis that is down.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

func TestRedisDownAtStartup(t *testing.T) {
	c, err := cache.NewRedis(t.Context(), "redis://"+closedAddr(t)+"/0", cache.RedisOptions{
		DialTimeout:  200 * time.Millisecond,
		ReadTimeout:  200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("NewRedis must not fail when Redis is down: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })

	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"ping", c.Ping},
		{"get", func(ctx context.Context) error {
			v, ok, err := c.Get(ctx, "k")
			if v != nil || ok {
				t.Errorf("Get = %q, %v; want nil, false alongside the error", v, ok)
			}
			return err
		}},
		{"set", func(ctx context.Context) error { return c.Set(ctx, "k", []byte("v"), time.Minute) }},
		{"delete", func(ctx context.Context) error { return c.Delete(ctx, "k") }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			start := time.Now()
			err := op.call(t.Context())
			took := time.Since(start)
			t.Logf("%s failed after %v: %v", op.name, took, err)
			if err == nil {
				t.Fatal("want an error from a Redis that is down")
			}
			if !strings.HasPrefix(err.Error(), "redis ") {
				t.Errorf("error %q lacks the redis context", err)
			}
			var opErr *net.OpError
			if !errors.As(err, &opErr) {
				t.Errorf("error %q does not wrap the network error", err)
			}
			// Refused dials fail in milliseconds with NewRedis's retry policy
			// (go-redis's defaults took ~1.7s); the bound leaves room for slow CI.
			if took > 2*time.Second {
				t.Errorf("took %v, want a quick failure", took)
			}
		})
	}
}

func TestNewRedisBadURLHidesPassword(t *testing.T) {
	const secret = "s3cr3t"
	tests := []struct {
		name, url, want string
	}{
		{"control character", "redis://user:" + secret + "\x7f@host:6379/0", "parse redis url: invalid url syntax"},
		// An unencoded '/' in the password ends the host part early, so the
		// rest of the password lands where the parsers quote it.
		{"slash pushes password into port", "redis://user:" + secret + "/x@host:6379", "parse redis url: invalid url syntax"},
		{"slash pushes password into db", "redis://user:6379/" + secret + "@host", "parse redis url: invalid database number"},
		{"slash pushes password into path", "redis://user:6379/" + secret + "/x@host", "parse redis url: invalid path"},
		{"wrong scheme", "http://user:" + secret + "@host:6379", "parse redis url: invalid scheme"},
		{"unknown option", "redis://user:" + secret + "@host:6379/0?" + secret + "=1", "parse redis url: invalid query: unknown option"},
		{"bad option value", "redis://user:" + secret + "@host:6379/0?dial_timeout=" + secret, "parse redis url: invalid query option value"},
		{"empty unix path", "unix://user:" + secret + "@", "parse redis url: invalid unix socket path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cache.NewRedis(t.Context(), tt.url, cache.RedisOptions{})
			if err == nil {
				_ = c.Close()
				t.Fatal("want an error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			for e := err; e != nil; e = errors.Unwrap(e) {
				if strings.Contains(e.Error(), secret) {
					t.Fatalf("error chain leaks the password: %q", e)
				}
			}
		})
	}
}
