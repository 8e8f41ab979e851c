package cache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions tunes the Redis client. Zero values keep what the URL says
// (for example ?dial_timeout=1s), and go-redis's defaults beyond that.
type RedisOptions struct {
	// KeyPrefix is prepended to every key, so several services or
	// environments can share one Redis database without colliding.
	KeyPrefix string
	// Timeout bounds each whole operation (Get, Set, Delete, Ping): dials,
	// socket reads and writes and retries all fit in it. Zero: no bound
	// beyond the caller's context and the per-socket timeouts below.
	Timeout      time.Duration
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolSize     int
}

// Redis is a Cache backed by a Redis server, shared by every replica of the
// service, so an invalidation on one replica is seen by all of them.
type Redis struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
}

// NewRedis returns a client for the Redis server at rawURL, for example
// redis://user:password@host:6379/0.
//
// It does no I/O, so it fails only when url is invalid, never because Redis
// is down: the cache is an optimisation, and the service must start and keep
// serving from its store without it. Reachability is reported by Ping (the
// readiness/status routes), and every failing call returns an error the
// caller falls back on. go-redis dials lazily and reconnects on its own once
// Redis comes back. The context is unused today; it is accepted so that
// construction can gain I/O (such as a credentials lookup) without changing
// callers.
func NewRedis(_ context.Context, rawURL string, o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		// Do not wrap err: its text can quote parts of the URL, password included.
		return nil, fmt.Errorf("parse redis url: invalid %s", describeURLError(err))
	}
	if o.DialTimeout > 0 {
		opt.DialTimeout = o.DialTimeout
	}
	if o.ReadTimeout > 0 {
		opt.ReadTimeout = o.ReadTimeout
	}
	if o.WriteTimeout > 0 {
		opt.WriteTimeout = o.WriteTimeout
	}
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	// Fail fast: every cache call sits in front of a store that can answer
	// instead, and go-redis's defaults (3 command retries, 5 dials each) make
	// a down Redis add seconds to every request. One retry still covers a
	// pooled connection the server closed. The URL's max_retries wins when set.
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1
	}
	opt.DialerRetries = 1
	// Socket deadlines follow the context's, so the operation's deadline
	// (Timeout) holds across a retry: without this go-redis gives every
	// attempt its own ReadTimeout, and a frozen server costs twice as much.
	opt.ContextTimeoutEnabled = true
	return &Redis{client: redis.NewClient(opt), prefix: o.KeyPrefix, timeout: o.Timeout}, nil
}

// describeURLError names what is wrong with a Redis URL without quoting it.
// Both net/url and go-redis echo the offending text, and a password holding
// '/', '@' or '#' that was not percent-encoded shifts into the host, port or
// path that the messages quote. Unknown messages get the generic answer.
func describeURLError(err error) string {
	if _, ok := errors.AsType[*url.Error](err); ok {
		return "url syntax (percent-encode special characters in the password)"
	}
	msg := err.Error()
	for _, c := range []struct{ match, say string }{
		{"invalid URL scheme", "scheme (want redis, rediss or unix)"},
		{"invalid database number", "database number"},
		{"invalid URL path", "path (want at most a database number)"},
		{"empty unix socket path", "unix socket path"},
		{"unexpected option", "query: unknown option"},
	} {
		if strings.Contains(msg, c.match) {
			return c.say
		}
	}
	if strings.HasPrefix(msg, "redis: invalid ") {
		return "query option value"
	}
	return "url"
}

// bound gives one operation its deadline.
func (r *Redis) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.timeout)
}

// Get returns the value stored under key; redis.Nil (no such key) is a miss.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis get %q: %w", key, err)
	}
	return b, true, nil
}

// Set stores value under key for ttl; ttl <= 0 means no expiry. Redis keeps
// TTLs in milliseconds (go-redis sends PX below one second), so a positive
// ttl under 1ms is rounded up to 1ms.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	// go-redis reads -1 as KEEPTTL and other negatives as no expiry; make
	// every non-positive ttl mean "no expiry", as in Memory.
	ttl = max(ttl, 0)
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redis set %q: %w", key, err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (r *Redis) Delete(ctx context.Context, key string) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis delete %q: %w", key, err)
	}
	return nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.bound(ctx)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Kind returns "redis".
func (r *Redis) Kind() string { return "redis" }

// Close closes the connection pool; the Redis must not be used afterwards.
func (r *Redis) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

var _ Cache = (*Redis)(nil)
