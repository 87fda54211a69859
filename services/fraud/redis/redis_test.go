package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/fraud/fraudtest"
	"github.com/ticketing/ticketing/services/fraud/redis"
)

// client connects to the test Redis and, when the test ends, deletes every
// key under prefix.
func client(t testing.TB, prefix string) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testservers.RedisAddr(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan for cleanup: %v", err)
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		c.Close()
	})
	return c
}

func newCounters(t testing.TB) (*redis.Counters, *goredis.Client, string) {
	t.Helper()
	prefix := "fraud-test:" + fraudtest.UniqueKey(t) + ":"
	c := client(t, prefix)
	cs, err := redis.New(c, redis.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return cs, c, prefix
}

func TestContract(t *testing.T) {
	cs, _, _ := newCounters(t)
	fraudtest.Run(t, fraudtest.Setup{New: func(*testing.T) fraud.Counters { return cs }})
}

// A key expires at the end of the bucket after its current one, counted
// from the caller's instant (not Redis's clock), so Redis holds only keys
// that still count.
func TestKeysExpire(t *testing.T) {
	cs, c, prefix := newCounters(t)
	ctx := context.Background()
	// Half way through a one-hour bucket: 1.5 hours to go.
	at := fraudtest.T0.Add(30 * time.Minute)
	if _, err := cs.Add(ctx, "k", time.Hour, at); err != nil {
		t.Fatal(err)
	}
	ttl, err := c.PTTL(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := 90 * time.Minute; ttl > want || ttl < want-time.Minute {
		t.Fatalf("key TTL %v, want about %v", ttl, want)
	}
	// A key of a short window is gone soon.
	if _, err := cs.Add(ctx, "fast", 50*time.Millisecond, time.Now()); err != nil {
		t.Fatal(err)
	}
	eventually.Nil(t, 10*time.Second, func() error {
		n, err := c.Exists(ctx, prefix+"fast").Result()
		if err == nil && n != 0 {
			err = fmt.Errorf("key still there after two windows")
		}
		return err
	})
}

// A Redis that lost its scripts (restarted, SCRIPT FLUSH) gets them again,
// and every Add of the pipeline is counted once.
func TestScriptFlushed(t *testing.T) {
	cs, c, _ := newCounters(t)
	ctx := context.Background()
	at := fraudtest.T0
	if _, err := cs.Add(ctx, "a", time.Hour, at); err != nil {
		t.Fatal(err)
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	ops := []fraud.Op{
		{Key: "a", Window: time.Hour, Add: true},
		{Key: "b", Window: time.Hour},
		{Key: "b", Window: time.Hour, Add: true},
	}
	if err := cs.Do(ctx, at, ops); err != nil {
		t.Fatal(err)
	}
	if ops[0].Result != 2 || ops[1].Result != 0 || ops[2].Result != 1 {
		t.Fatalf("results %d %d %d, want 2 0 1", ops[0].Result, ops[1].Result, ops[2].Result)
	}
	if n, err := cs.Count(ctx, "a", time.Hour, at); err != nil || n != 2 {
		t.Fatalf("count %d (%v) after the retried pipeline, want 2", n, err)
	}
}

// An unreachable Redis is errs.Unavailable.
func TestUnavailable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	cs, err := redis.New(c, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.Add(ctx, "k", time.Minute, fraudtest.T0); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Add: %v, want kind %v", err, errs.Unavailable)
	}
	if _, err := cs.Count(ctx, "k", time.Minute, fraudtest.T0); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Count: %v, want kind %v", err, errs.Unavailable)
	}
	if err := cs.Reset(ctx, "k"); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Reset: %v, want kind %v", err, errs.Unavailable)
	}
}

func BenchmarkAdd(b *testing.B) {
	cs, _, _ := newCounters(b)
	fraudtest.Bench(b, cs)
}
