package cache

import "github.com/redis/go-redis/v9"

// AddHook instruments the Redis client, for example with APM segments:
// newHook gets the client's options (address, database) and may return nil
// to add nothing.
func (r *Redis) AddHook(newHook func(*redis.Options) redis.Hook) {
	if h := newHook(r.client.Options()); h != nil {
		r.client.AddHook(h)
	}
}
