// Package redis is the ratelimit.Limiter that all edges of a region share:
// one GCRA state per key in Redis, decided by one Lua script so that a
// decision is atomic however many edges ask at once.
//
// The script reads the time from the Redis server (TIME), not from the
// edge, so that the clocks of the edges do not matter: every decision on a
// key uses one clock. Keys are written with a TTL equal to the time until
// they are back at full quota, so idle keys vanish by themselves and Redis
// memory is bounded by the number of recently active keys.
//
// Requires Redis 5 or later (scripts replicated by effects, so TIME may
// precede a write). Works with a Redis Cluster too: a decision touches one
// key.
package redis

import (
	"context"
	_ "embed"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
)

// Config configures a Limiter.
type Config struct {
	// Prefix is prepended to every key, so that limiter keys are easy to
	// find and cannot collide with other data. Default "ratelimit:".
	Prefix string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = "ratelimit:"
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if len(c.Prefix) > 128 {
		return errs.Errorf("ratelimit.redis.config", errs.Invalid, "prefix longer than 128 bytes")
	}
	return nil
}

//go:embed gcra.lua
var gcraSource string

// script is ratelimit.GCRA in Lua, on whole microseconds of the server's
// clock. It is loaded once per server (EVALSHA, falling back to EVAL).
var script = goredis.NewScript(gcraSource)

// Limiter is the Redis ratelimit.Limiter.
type Limiter struct {
	client goredis.Scripter
	prefix string
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter using client, which may be a *redis.Client, a
// *redis.ClusterClient or any redis.UniversalClient. The Limiter does not
// own the client: closing it is the caller's business.
func New(client goredis.Scripter, cfg Config) (*Limiter, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{client: client, prefix: cfg.Prefix}, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	return l.AllowN(ctx, key, limit, 1)
}

// AllowN implements ratelimit.Limiter: one round trip to Redis.
func (l *Limiter) AllowN(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Decision, error) {
	const op = "ratelimit.redis.allow"
	if err := ratelimit.CheckRequest(ctx, op, key, limit, n); err != nil {
		return ratelimit.Decision{}, err
	}
	interval := limit.Interval() / time.Microsecond
	res, err := script.Run(ctx, l.client, []string{l.prefix + key},
		strconv.FormatInt(int64(interval), 10), strconv.Itoa(limit.Burst), strconv.Itoa(n)).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, errs.E(op, errs.Unavailable, "rate limit store unreachable", err)
	}
	if len(res) != 4 {
		return ratelimit.Decision{}, errs.Errorf(op, errs.Other, "script returned %d values, want 4", len(res))
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		Limit:      limit.Burst,
		Remaining:  int(res[1]),
		RetryAfter: time.Duration(res[2]) * time.Microsecond,
		ResetAfter: time.Duration(res[3]) * time.Microsecond,
	}, nil
}
