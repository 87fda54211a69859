// Package memory is the in-process fraud.Counters: what `ticketing dev`
// and a single process without Redis use. Counts hold per process only;
// processes that must share them use services/fraud/redis.
//
// Keys live in a sharded map (one mutex per shard) holding each key's
// fraud.SlidingCount. A key whose count has fallen to 0 for good (past
// SlidingCount.ExpiresAt) carries no information and is dropped: each
// shard sweeps its expired keys when it is full and at least every
// SweepInterval. Time is the callers' (the now of each call; a shard
// sweeps by the latest it has seen). Memory is bounded by MaxKeys: when a
// shard is full of live keys, the key closest to expiry out of a small
// random sample is evicted, the way Redis approximates LRU.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
)

// Config configures Counters. The zero value is usable.
type Config struct {
	// MaxKeys bounds the number of keys with state. Default 1,000,000
	// (about 150 MB at the worst, with keys of 50 bytes).
	MaxKeys int
	// Shards is the number of independently locked parts of the map, a
	// power of two. Default 64.
	Shards int
	// SweepInterval is how often, at most, a shard scans for expired keys
	// when it is not full. Default 1 minute.
	SweepInterval time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.MaxKeys == 0 {
		c.MaxKeys = 1_000_000
	}
	if c.Shards == 0 {
		c.Shards = 64
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Minute
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case c.Shards < 1 || c.Shards&(c.Shards-1) != 0 || c.Shards > 1<<16:
		return errf("shards must be a power of two up to 65536, got %d", c.Shards)
	case c.MaxKeys < c.Shards:
		return errf("max keys (%d) must be at least the number of shards (%d)", c.MaxKeys, c.Shards)
	case c.SweepInterval < 0:
		return errf("negative sweep interval %v", c.SweepInterval)
	}
	return nil
}

func errf(format string, args ...any) error {
	return errs.Errorf("fraud.memory.config", errs.Invalid, format, args...)
}

const (
	// evictionSample is how many keys a full shard looks at to choose one
	// to evict.
	evictionSample = 8
	// fullSweepGap is the least time between two sweeps of a full shard.
	fullSweepGap = time.Second
)

// Counters is the in-process fraud.Counters.
type Counters struct {
	seed   maphash.Seed
	mask   uint64
	shards []shard
	sweep  int64 // milliseconds
}

type shard struct {
	mu        sync.Mutex
	keys      map[string]fraud.SlidingCount
	max       int
	latest    int64 // the latest instant seen, ms
	lastSweep int64
	_         [32]byte // keep neighbouring shards' locks off one cache line
}

var _ fraud.Counters = (*Counters)(nil)

// New returns Counters.
func New(cfg Config) (*Counters, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Counters{
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.Shards - 1),
		shards: make([]shard, cfg.Shards),
		sweep:  cfg.SweepInterval.Milliseconds(),
	}
	per := cfg.MaxKeys / cfg.Shards
	for i := range c.shards {
		c.shards[i].keys = make(map[string]fraud.SlidingCount)
		c.shards[i].max = per
	}
	return c, nil
}

// Add implements fraud.Counters.
func (c *Counters) Add(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	ops := [1]fraud.Op{{Key: key, Window: window, Add: true}}
	err := c.do(ctx, "fraud.memory.add", now, ops[:])
	return ops[0].Result, err
}

// Count implements fraud.Counters.
func (c *Counters) Count(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	ops := [1]fraud.Op{{Key: key, Window: window}}
	err := c.do(ctx, "fraud.memory.count", now, ops[:])
	return ops[0].Result, err
}

// Do implements fraud.Counters. It never blocks on anything but a shard's
// mutex, so ctx is only checked on entry.
func (c *Counters) Do(ctx context.Context, now time.Time, ops []fraud.Op) error {
	return c.do(ctx, "fraud.memory.do", now, ops)
}

// Reset implements fraud.Counters.
func (c *Counters) Reset(ctx context.Context, key string) error {
	const op = "fraud.memory.reset"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, "request cancelled", err)
	}
	if key == "" || len(key) > fraud.MaxKeyLen {
		return errs.Errorf(op, errs.Invalid, "key must be 1-%d bytes, got %d", fraud.MaxKeyLen, len(key))
	}
	s := c.shard(key)
	s.mu.Lock()
	delete(s.keys, key)
	s.mu.Unlock()
	return nil
}

func (c *Counters) shard(key string) *shard {
	return &c.shards[maphash.String(c.seed, key)&c.mask]
}

func (c *Counters) do(ctx context.Context, op string, now time.Time, ops []fraud.Op) error {
	if err := fraud.CheckRequest(ctx, op, now, ops...); err != nil {
		return err
	}
	t := now.UnixMilli()
	for i := range ops {
		o := &ops[i]
		w := o.Window.Milliseconds()
		s := c.shard(o.Key)
		s.mu.Lock()
		s.latest = max(s.latest, t)
		st, ok := s.keys[o.Key]
		if o.Add {
			st.Add(w, t)
			if !ok {
				s.makeRoom()
			}
			s.keys[o.Key] = st
		}
		o.Result = st.Count(w, t)
		if c.sweep > 0 && s.latest-s.lastSweep >= c.sweep {
			s.sweepExpired()
		}
		s.mu.Unlock()
	}
	return nil
}

// makeRoom ensures the shard can take one more key. A full shard is swept
// at most once per fullSweepGap (a sweep is linear in the shard's size);
// between sweeps, sampled eviction makes room, and it too picks expired
// keys first.
func (s *shard) makeRoom() {
	if len(s.keys) < s.max {
		return
	}
	if s.latest-s.lastSweep >= fullSweepGap.Milliseconds() {
		s.sweepExpired()
	}
	for len(s.keys) >= s.max {
		var victim string
		var victimExp int64
		i := 0
		for k, st := range s.keys { // map iteration starts at a random place
			if exp := st.ExpiresAt(); i == 0 || exp < victimExp {
				victim, victimExp = k, exp
			}
			if i++; i == evictionSample {
				break
			}
		}
		delete(s.keys, victim)
	}
}

func (s *shard) sweepExpired() {
	for k, st := range s.keys {
		if st.ExpiresAt() <= s.latest {
			delete(s.keys, k)
		}
	}
	s.lastSweep = s.latest
}

// Len is the number of keys that currently hold state, expired or not.
func (c *Counters) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.keys)
		s.mu.Unlock()
	}
	return n
}
