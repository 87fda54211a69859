package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/edge/ratelimit/ratelimittest"
)

func newLimiter(t testing.TB, cfg memory.Config) *memory.Limiter {
	t.Helper()
	l, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestContract(t *testing.T) {
	t.Run("manual-clock", func(t *testing.T) {
		ratelimittest.Run(t, ratelimittest.Setup{
			ManualClock: true,
			New: func(t *testing.T, clock *ratelimittest.ManualClock) ratelimit.Limiter {
				return newLimiter(t, memory.Config{Now: clock.Now})
			},
		})
	})
	t.Run("real-clock", func(t *testing.T) {
		ratelimittest.Run(t, ratelimittest.Setup{
			New: func(t *testing.T, _ *ratelimittest.ManualClock) ratelimit.Limiter {
				return newLimiter(t, memory.Config{})
			},
		})
	})
}

// Idle keys vanish: once a key is back at its full quota it holds no state.
func TestIdleKeysExpire(t *testing.T) {
	clock := ratelimittest.NewManualClock()
	l := newLimiter(t, memory.Config{Now: clock.Now, SweepInterval: time.Minute})
	ctx := context.Background()
	lim := ratelimit.PerSecond(10, 5)
	var reset time.Duration
	for i := range 1000 {
		d, err := l.Allow(ctx, "k"+strconv.Itoa(i), lim)
		if err != nil || !d.Allowed {
			t.Fatalf("Allow: %+v %v", d, err)
		}
		reset = max(reset, d.ResetAfter)
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("Len = %d after 1000 keys, want 1000", n)
	}
	clock.Advance(reset)
	l.Sweep()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len = %d after every key reset and a sweep, want 0", n)
	}

	// Without an explicit Sweep, a shard sweeps itself at least every
	// SweepInterval when used.
	for i := range 1000 {
		if _, err := l.Allow(ctx, "k"+strconv.Itoa(i), lim); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	for i := range 1000 {
		if _, err := l.Allow(ctx, "other"+strconv.Itoa(i), lim); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n > 1000 {
		t.Fatalf("Len = %d: the expired keys were not swept", n)
	}
}

// Memory is bounded: far more live keys than MaxKeys never hold more than
// MaxKeys entries, and the evicted ones are the ones closest to expiry.
func TestMaxKeys(t *testing.T) {
	clock := ratelimittest.NewManualClock()
	l := newLimiter(t, memory.Config{Now: clock.Now, MaxKeys: 256, Shards: 4})
	ctx := context.Background()
	heavy := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 5}
	for i := range 4 {
		if d, err := l.AllowN(ctx, "heavy"+strconv.Itoa(i), heavy, heavy.Burst); err != nil || !d.Allowed {
			t.Fatalf("AllowN: %+v %v", d, err)
		}
	}
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	for i := range 10_000 {
		if _, err := l.Allow(ctx, "k"+strconv.Itoa(i), lim); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n > 256 {
		t.Fatalf("Len = %d, want at most MaxKeys 256", n)
	}
	// The heavy keys (5 hours from full quota) outlive the flood of keys
	// one hour from it: a shard evicts the nearest expiry of a sample of 8,
	// and no shard holds 8 heavy keys.
	for i := range 4 {
		if d, err := l.Allow(ctx, "heavy"+strconv.Itoa(i), heavy); err != nil || d.Allowed {
			t.Fatalf("heavy key %d after the flood: %+v %v, want still denied", i, d, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []memory.Config{
		{Shards: 3},
		{Shards: 64, MaxKeys: 10},
		{SweepInterval: -time.Second},
	} {
		if _, err := memory.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", cfg)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	ratelimittest.Bench(b, newLimiter(b, memory.Config{}))
}
