package monitoring

import (
	"github.com/newrelic/go-agent/v3/integrations/nrredis-v9"
	"github.com/redis/go-redis/v9"
)

// RedisHook returns the hook that makes every Redis command run within a
// transaction a datastore segment (nrredis-v9), or nil when monitoring is
// off. opts are the client's, for the instance (host and port) of the segments.
func (a *Agent) RedisHook(opts *redis.Options) redis.Hook {
	if !a.On() {
		return nil
	}
	return nrredis.NewHook(opts)
}
