package memory_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/fraud/fraudtest"
	"github.com/ticketing/ticketing/services/fraud/memory"
)

func newCounters(t testing.TB, cfg memory.Config) *memory.Counters {
	t.Helper()
	c, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestContract(t *testing.T) {
	fraudtest.Run(t, fraudtest.Setup{
		New: func(t *testing.T) fraud.Counters { return newCounters(t, memory.Config{}) },
	})
}

func TestConfig(t *testing.T) {
	for _, cfg := range []memory.Config{
		{Shards: 3},
		{Shards: 1 << 17},
		{Shards: 64, MaxKeys: 10},
		{SweepInterval: -time.Second},
	} {
		if _, err := memory.New(cfg); !errs.Is(errs.Invalid, err) {
			t.Errorf("New(%+v): %v, want kind %v", cfg, err, errs.Invalid)
		}
	}
}

// Keys whose count is 0 for good are swept once time has moved on, by
// the instants the callers pass.
func TestExpiredKeysAreSwept(t *testing.T) {
	c := newCounters(t, memory.Config{Shards: 1, SweepInterval: time.Minute})
	ctx := context.Background()
	t0 := fraudtest.T0
	for i := range 100 {
		if _, err := c.Add(ctx, "k"+strconv.Itoa(i), time.Second, t0); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// One call after the sweep interval, past every key's expiry (the end
	// of the bucket after T0's), sweeps them all but its own.
	if _, err := c.Add(ctx, "late", time.Second, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := c.Len(); n != 1 {
		t.Fatalf("Len after the sweep = %d, want 1", n)
	}
}

// Memory is bounded: a full shard evicts, preferring keys closest to
// expiry, and the keys that stay count right.
func TestMaxKeys(t *testing.T) {
	const max = 64
	c := newCounters(t, memory.Config{Shards: 1, MaxKeys: max})
	ctx := context.Background()
	t0 := fraudtest.T0
	// A long-lived key, then many short-lived ones.
	for range 3 {
		if _, err := c.Add(ctx, "long", 24*time.Hour, t0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 * max {
		if _, err := c.Add(ctx, "short"+strconv.Itoa(i), time.Second, t0); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > max {
			t.Fatalf("Len = %d after %d keys, above MaxKeys %d", n, i+2, max)
		}
	}
	if n, err := c.Count(ctx, "long", 24*time.Hour, t0); err != nil || n != 3 {
		t.Fatalf("the long-lived key counts %d (%v), want 3: it was evicted before keys closer to expiry", n, err)
	}
}
