package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/admission/admissiontest"
	"github.com/ticketing/ticketing/services/admission/redis"
)

// newStore connects to the test Redis under a prefix of its own and
// deletes the prefix's keys when the test ends.
func newStore(t *testing.T) (*redis.SpentStore, *goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testservers.RedisAddr(t)})
	prefix := "admission-test:" + admissiontest.JTI() + ":"
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
	s, err := redis.New(c, redis.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, prefix
}

func TestContract(t *testing.T) {
	admissiontest.RunSpentStore(t, admissiontest.SpentSetup{
		New: func(t *testing.T, _ *admissiontest.Clock) admission.SpentStore {
			s, _, _ := newStore(t)
			return s
		},
		RealClock: true,
	})
}

// The key expires at until: Redis holds the absolute expiry we gave it.
func TestKeyExpiresAtUntil(t *testing.T) {
	s, c, prefix := newStore(t)
	ctx := context.Background()
	id := admissiontest.JTI()
	until := time.Now().Add(10 * time.Minute).Truncate(time.Millisecond)
	if first, err := s.Spend(ctx, id, "use-1", until); err != nil || !first {
		t.Fatalf("Spend = %v, %v", first, err)
	}
	at, err := c.Do(ctx, "PEXPIRETIME", prefix+id).Int64()
	if err != nil {
		t.Fatal(err)
	}
	if at != until.UnixMilli() {
		t.Fatalf("key expires at %d ms, want %d", at, until.UnixMilli())
	}
	// Once the key is gone (as after its expiry), the id is first again.
	if err := c.Del(ctx, prefix+id).Err(); err != nil {
		t.Fatal(err)
	}
	if first, err := s.Spend(ctx, id, "use-1", until); err != nil || !first {
		t.Fatalf("Spend after the key went = %v, %v", first, err)
	}
}

// Two edges with their own clients share the spent ids.
func TestSharedAcrossClients(t *testing.T) {
	a, _, prefix := newStore(t)
	c2 := goredis.NewClient(&goredis.Options{Addr: testservers.RedisAddr(t)})
	t.Cleanup(func() { c2.Close() })
	b, err := redis.New(c2, redis.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	id, until := admissiontest.JTI(), time.Now().Add(time.Minute)
	if first, err := a.Spend(context.Background(), id, "use-a", until); err != nil || !first {
		t.Fatalf("edge a: %v, %v", first, err)
	}
	if first, err := b.Spend(context.Background(), id, "use-b", until); err != nil || first {
		t.Fatalf("edge b: %v, %v; want replay", first, err)
	}
}

func TestUnreachable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	s, err := redis.New(c, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Spend(context.Background(), "x", "use", time.Now().Add(time.Minute)); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Spend against no server: %v, want unavailable", err)
	}
}
