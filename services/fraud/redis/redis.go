// Package redis is the fraud.Counters that all processes of a region
// share: one hash per key in Redis,
//
//	<prefix><key>  hash: w (window, ms), b (current bucket), c (its count),
//	               p (the previous bucket's count)
//
// the state of fraud.SlidingCount. An Add is one Lua script (add.lua,
// atomic in Redis), which also sets the key to expire at the end of the
// bucket after its current one, so Redis memory holds only keys whose
// count is not yet 0. A Count reads the hash (HMGET) and computes in Go,
// with fraud.SlidingCount, the arithmetic every implementation shares. Do
// sends its ops in one pipeline: one round trip.
//
// The instants are the callers' (Counters takes now), the expiry is set
// relative to the caller's now: Redis's clock plays no part. Requires
// Redis 4 or later. Works with a Redis Cluster: every op touches one key
// (a cluster pipeline is split by slot).
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
)

// Config configures Counters.
type Config struct {
	// Prefix is prepended to every key, so that counter keys are easy to
	// find and cannot collide with other data. Default "fraud:counter:".
	Prefix string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = "fraud:counter:"
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if len(c.Prefix) > 128 {
		return errs.Errorf("fraud.redis.config", errs.Invalid, "prefix longer than 128 bytes")
	}
	return nil
}

//go:embed add.lua
var addSource string

// addScript is fraud.SlidingCount.Add in Lua.
var addScript = goredis.NewScript(addSource)

// Counters is the Redis fraud.Counters.
type Counters struct {
	client goredis.Cmdable
	prefix string
}

var _ fraud.Counters = (*Counters)(nil)

// New returns Counters using client (a *redis.Client, *redis.ClusterClient
// or any redis.UniversalClient). It does not own the client.
func New(client goredis.Cmdable, cfg Config) (*Counters, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Counters{client: client, prefix: cfg.Prefix}, nil
}

// Add implements fraud.Counters: one round trip.
func (c *Counters) Add(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	ops := [1]fraud.Op{{Key: key, Window: window, Add: true}}
	err := c.do(ctx, "fraud.redis.add", now, ops[:])
	return ops[0].Result, err
}

// Count implements fraud.Counters: one round trip.
func (c *Counters) Count(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	ops := [1]fraud.Op{{Key: key, Window: window}}
	err := c.do(ctx, "fraud.redis.count", now, ops[:])
	return ops[0].Result, err
}

// Do implements fraud.Counters: one pipeline (and one more when Redis
// lacks the script).
func (c *Counters) Do(ctx context.Context, now time.Time, ops []fraud.Op) error {
	return c.do(ctx, "fraud.redis.do", now, ops)
}

// Reset implements fraud.Counters.
func (c *Counters) Reset(ctx context.Context, key string) error {
	const op = "fraud.redis.reset"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, "request cancelled", err)
	}
	if key == "" || len(key) > fraud.MaxKeyLen {
		return errs.Errorf(op, errs.Invalid, "key must be 1-%d bytes, got %d", fraud.MaxKeyLen, len(key))
	}
	if err := c.client.Del(ctx, c.prefix+key).Err(); err != nil {
		return unavailable(op, err)
	}
	return nil
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "fraud counter store unreachable", err)
}

func (c *Counters) do(ctx context.Context, op string, now time.Time, ops []fraud.Op) error {
	if err := fraud.CheckRequest(ctx, op, now, ops...); err != nil {
		return err
	}
	t := now.UnixMilli()
	ts := strconv.FormatInt(t, 10)
	maxCount := strconv.Itoa(fraud.MaxCount)
	cmds := make([]goredis.Cmder, len(ops))
	run := func(p goredis.Pipeliner, i int, load bool) {
		o := &ops[i]
		key := c.prefix + o.Key
		w := o.Window.Milliseconds()
		if !o.Add {
			cmds[i] = p.HMGet(ctx, key, "w", "b", "c", "p")
			return
		}
		args := []any{strconv.FormatInt(w, 10), strconv.FormatInt(t/w, 10), ts, maxCount}
		if load {
			cmds[i] = p.Eval(ctx, addSource, []string{key}, args...)
		} else {
			cmds[i] = p.EvalSha(ctx, addScript.Hash(), []string{key}, args...)
		}
	}
	_, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i := range ops {
			run(p, i, false)
		}
		return nil
	})
	if err != nil {
		// A server without the script (new, restarted, flushed) ran none
		// of the Adds it refused: send those again with the script's
		// source, which also caches it.
		var again []int
		for i, cmd := range cmds {
			if e := cmd.Err(); e != nil && goredis.HasErrorPrefix(e, "NOSCRIPT") {
				again = append(again, i)
			} else if e != nil && !errors.Is(e, goredis.Nil) {
				return unavailable(op, e)
			}
		}
		if len(again) == 0 {
			return unavailable(op, err)
		}
		if _, err := c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, i := range again {
				run(p, i, true)
			}
			return nil
		}); err != nil {
			return unavailable(op, err)
		}
	}
	for i := range ops {
		o := &ops[i]
		w := o.Window.Milliseconds()
		var st fraud.SlidingCount
		var err error
		switch cmd := cmds[i].(type) {
		case *goredis.Cmd:
			st, err = added(cmd, w)
		case *goredis.SliceCmd:
			st, err = read(cmd, w)
		}
		if err != nil {
			return errs.E(op, errs.Other, fmt.Sprintf("key %q", o.Key), err)
		}
		o.Result = st.Count(w, t)
	}
	return nil
}

// added reads the script's answer {b, c, p}.
func added(cmd *goredis.Cmd, w int64) (fraud.SlidingCount, error) {
	r, err := cmd.Slice()
	if err != nil {
		return fraud.SlidingCount{}, err
	}
	if len(r) != 3 {
		return fraud.SlidingCount{}, fmt.Errorf("script returned %d values, want 3", len(r))
	}
	st := fraud.SlidingCount{Window: w}
	for i, p := range []*int64{&st.Bucket, &st.Curr, &st.Prev} {
		if *p, err = integer(r[i]); err != nil {
			return fraud.SlidingCount{}, err
		}
	}
	return st, nil
}

// read reads HMGET w b c p; a missing key is a zero state.
func read(cmd *goredis.SliceCmd, w int64) (fraud.SlidingCount, error) {
	r, err := cmd.Result()
	if err != nil {
		return fraud.SlidingCount{}, err
	}
	if len(r) != 4 || r[0] == nil {
		return fraud.SlidingCount{}, nil
	}
	var st fraud.SlidingCount
	for i, p := range []*int64{&st.Window, &st.Bucket, &st.Curr, &st.Prev} {
		if *p, err = integer(r[i]); err != nil {
			return fraud.SlidingCount{}, err
		}
	}
	return st, nil
}

func integer(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, fmt.Errorf("unexpected value %v (%T)", v, v)
}
