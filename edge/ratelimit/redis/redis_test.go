package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/ratelimittest"
	"github.com/ticketing/ticketing/edge/ratelimit/redis"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
)

// client connects to the test Redis and, when the test ends, deletes every
// key under prefix (the suite's keys expire by themselves, but the slow
// limits keep them for hours).
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

func newLimiter(t testing.TB) (*redis.Limiter, *goredis.Client, string) {
	t.Helper()
	prefix := "ratelimit-test:" + ratelimittest.UniqueKey(t) + ":"
	c := client(t, prefix)
	l, err := redis.New(c, redis.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return l, c, prefix
}

func TestContract(t *testing.T) {
	l, _, _ := newLimiter(t)
	ratelimittest.Run(t, ratelimittest.Setup{
		New: func(t *testing.T, _ *ratelimittest.ManualClock) ratelimit.Limiter { return l },
	})
}

// Keys carry a TTL: they vanish once back at full quota, and are never
// written for a denied request.
func TestKeysExpire(t *testing.T) {
	l, c, prefix := newLimiter(t)
	ctx := context.Background()
	lim := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 3}
	d, err := l.AllowN(ctx, "k", lim, 2)
	if err != nil || !d.Allowed {
		t.Fatalf("AllowN: %+v %v", d, err)
	}
	ttl, err := c.PTTL(ctx, prefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > d.ResetAfter+time.Millisecond {
		t.Fatalf("key TTL %v, want in (0, ResetAfter %v]", ttl, d.ResetAfter)
	}

	// A key that resets quickly is gone soon after its ResetAfter.
	fast := ratelimit.PerSecond(20, 2) // full again 100ms after the last request
	d, err = l.AllowN(ctx, "fast", fast, 2)
	if err != nil || !d.Allowed {
		t.Fatalf("AllowN: %+v %v", d, err)
	}
	eventually.Nil(t, 10*time.Second, func() error {
		n, err := c.Exists(ctx, prefix+"fast").Result()
		if err == nil && n != 0 {
			err = fmt.Errorf("key still there after its ResetAfter %v", d.ResetAfter)
		}
		return err
	})
}

// An unreachable Redis is errs.Unavailable, so the edge can choose to fail
// open or closed.
func TestUnavailable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	l, err := redis.New(c, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Allow(context.Background(), "k", ratelimit.PerSecond(1, 1))
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("err = %v, want kind %v", err, errs.Unavailable)
	}
}

func BenchmarkAllow(b *testing.B) {
	l, _, _ := newLimiter(b)
	ratelimittest.Bench(b, l)
}
