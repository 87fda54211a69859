// Package memory is the in-process ratelimit.Limiter: what `ticketing dev`
// and a single edge without Redis use. Limits hold per process only; edges
// that must share a limit use ratelimit/redis.
//
// Keys live in a sharded map (one mutex per shard) holding each key's GCRA
// theoretical arrival time. A key whose time has passed is back at its full
// quota and carries no information, so it is dropped: each shard sweeps its
// expired keys when it is full and at least every SweepInterval. Memory is
// bounded by MaxKeys: when a shard is full of live keys, the key closest to
// expiry out of a small random sample is evicted (the one whose loss lets
// through the fewest extra requests), the way Redis approximates LRU.
package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
)

// Config configures a Limiter. The zero value is usable.
type Config struct {
	// MaxKeys bounds the number of keys with state. Default 1,000,000
	// (about 100 MB at the worst, with keys of 30 bytes).
	MaxKeys int
	// Shards is the number of independently locked parts of the map, a
	// power of two. Default 64.
	Shards int
	// SweepInterval is how often, at most, a shard scans for expired keys
	// when it is not full. Default 1 minute.
	SweepInterval time.Duration
	// Now is the clock. Default time.Now. Tests pass a manual clock.
	Now func() time.Time
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
	if c.Now == nil {
		c.Now = time.Now
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

const (
	// evictionSample is how many keys a full shard looks at to choose one
	// to evict.
	evictionSample = 8
	// fullSweepGap is the least time between two sweeps of a full shard.
	fullSweepGap = time.Second
)

func errf(format string, args ...any) error {
	return errs.Errorf("ratelimit.memory.config", errs.Invalid, format, args...)
}

// Limiter is the in-process ratelimit.Limiter.
type Limiter struct {
	now    func() time.Time
	origin time.Time // instants are kept as durations since origin (monotonic when now is time.Now)
	seed   maphash.Seed
	mask   uint64
	shards []shard
	sweep  time.Duration
}

type shard struct {
	mu        sync.Mutex
	tat       map[string]time.Duration
	max       int
	lastSweep time.Duration
	_         [32]byte // keep neighbouring shards' locks off one cache line
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Limiter{
		now:    cfg.Now,
		origin: cfg.Now(),
		seed:   maphash.MakeSeed(),
		mask:   uint64(cfg.Shards - 1),
		shards: make([]shard, cfg.Shards),
		sweep:  cfg.SweepInterval,
	}
	per := cfg.MaxKeys / cfg.Shards
	for i := range l.shards {
		l.shards[i].tat = make(map[string]time.Duration)
		l.shards[i].max = per
	}
	return l, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	return l.AllowN(ctx, key, limit, 1)
}

// AllowN implements ratelimit.Limiter. It never blocks on anything but a
// shard's mutex, so ctx is only checked on entry.
func (l *Limiter) AllowN(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Decision, error) {
	if err := ratelimit.CheckRequest(ctx, "ratelimit.memory.allow", key, limit, n); err != nil {
		return ratelimit.Decision{}, err
	}
	s := &l.shards[maphash.String(l.seed, key)&l.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	// Read the clock under the lock: decisions on a key are then made in
	// clock order, which the GCRA bound relies on.
	now := l.now().Sub(l.origin)
	tat, ok := s.tat[key]
	d, newTAT := ratelimit.GCRA(now, tat, limit, n)
	switch {
	case newTAT <= now:
		// Back at full quota (possible only for a denied request on an
		// expired key): nothing to keep.
		if ok {
			delete(s.tat, key)
		}
	case ok:
		s.tat[key] = newTAT
	default:
		s.makeRoom(now)
		s.tat[key] = newTAT
	}
	if l.sweep > 0 && now-s.lastSweep >= l.sweep {
		s.sweepExpired(now)
	}
	return d, nil
}

// makeRoom ensures the shard can take one more key. A full shard is swept
// at most once per fullSweepGap (a sweep is linear in the shard's size);
// between sweeps, sampled eviction makes room, and it too picks expired keys
// first.
func (s *shard) makeRoom(now time.Duration) {
	if len(s.tat) < s.max {
		return
	}
	if now-s.lastSweep >= fullSweepGap {
		s.sweepExpired(now)
	}
	for len(s.tat) >= s.max {
		var victim string
		var victimTAT time.Duration
		i := 0
		for k, t := range s.tat { // map iteration starts at a random place
			if i == 0 || t < victimTAT {
				victim, victimTAT = k, t
			}
			if i++; i == evictionSample {
				break
			}
		}
		delete(s.tat, victim)
	}
}

func (s *shard) sweepExpired(now time.Duration) {
	for k, t := range s.tat {
		if t <= now {
			delete(s.tat, k)
		}
	}
	s.lastSweep = now
}

// Len is the number of keys that currently hold state, expired or not.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

// Sweep drops every expired key now, in every shard.
func (l *Limiter) Sweep() {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.sweepExpired(l.now().Sub(l.origin))
		s.mu.Unlock()
	}
}
