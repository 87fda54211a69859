package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/session/redis"
	"github.com/ticketing/ticketing/services/identity/session/sessiontest"
)

// newStore connects to the test Redis under a prefix of its own and
// deletes the prefix's keys when the test ends.
func newStore(t testing.TB, now func() time.Time) (*redis.Store, *goredis.Client, string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: testservers.RedisAddr(t)})
	prefix := "session-test:" + session.NewID() + ":"
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
	s, err := redis.New(c, redis.Config{Prefix: prefix, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, prefix
}

func TestContract(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Store {
		s, _, _ := newStore(t, clock.Now)
		return s
	})
}

// Redis drops a session at its ExpiresAt, and the user's set with the
// latest of its sessions.
func TestKeysExpireWithTheSession(t *testing.T) {
	s, c, prefix := newStore(t, time.Now)
	ctx := context.Background()
	u := identity.NewID()
	short, err := session.NewManager(s, session.Config{Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	long, err := session.NewManager(s, session.Config{Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := long.Start(ctx, u, "web", session.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	b, tok, err := short.Start(ctx, u, "web", session.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	expireTime := func(key string) int64 {
		t.Helper()
		at, err := c.Do(ctx, "PEXPIRETIME", key).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	if at := expireTime(prefix + "s:" + a.ID); at != a.ExpiresAt.UnixMilli() {
		t.Fatalf("session key expires at %d, want %d", at, a.ExpiresAt.UnixMilli())
	}
	if at := expireTime(prefix + "u:" + u); at != a.ExpiresAt.UnixMilli() {
		t.Fatalf("user set expires at %d, want the later session's %d", at, a.ExpiresAt.UnixMilli())
	}
	// A rotation keeps the expiry.
	if _, _, err := short.Refresh(ctx, "web", tok, session.Seen{}); err != nil {
		t.Fatal(err)
	}
	if at := expireTime(prefix + "s:" + b.ID); at != b.ExpiresAt.UnixMilli() {
		t.Fatalf("rotated session key expires at %d, want %d", at, b.ExpiresAt.UnixMilli())
	}
	// Once Redis has dropped a session (as at its expiry), the list drops
	// its entry.
	if err := c.Del(ctx, prefix+"s:"+b.ID).Err(); err != nil {
		t.Fatal(err)
	}
	l, err := s.ListForUser(ctx, u)
	if err != nil || len(l) != 1 || l[0].ID != a.ID {
		t.Fatalf("list = %v, %v", l, err)
	}
	if ok, err := c.SIsMember(ctx, prefix+"u:"+u, b.ID).Result(); err != nil || ok {
		t.Fatalf("the dropped session is still in the set: %v, %v", ok, err)
	}
}

// Two processes with their own clients share the sessions.
func TestSharedAcrossClients(t *testing.T) {
	a, _, prefix := newStore(t, time.Now)
	c2 := goredis.NewClient(&goredis.Options{Addr: testservers.RedisAddr(t)})
	t.Cleanup(func() { c2.Close() })
	b, err := redis.New(c2, redis.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ma, _ := session.NewManager(a, session.Config{NoGrace: true})
	mb, _ := session.NewManager(b, session.Config{NoGrace: true})
	ctx := context.Background()
	_, t0, err := ma.Start(ctx, identity.NewID(), "web", session.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	_, t1, err := mb.Refresh(ctx, "web", t0, session.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ma.Refresh(ctx, "web", t0, session.Seen{}); errs.ReasonOf(err) != session.ReasonRefreshReused {
		t.Fatalf("replay through the other process: %v", err)
	}
	if _, _, err := mb.Refresh(ctx, "web", t1, session.Seen{}); errs.ReasonOf(err) != session.ReasonRefreshInvalid {
		t.Fatalf("after the revoke: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	s, err := redis.New(c, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), session.NewID()); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Get against no server: %v, want unavailable", err)
	}
	m, _ := session.NewManager(s, session.Config{})
	if _, _, err := m.Start(context.Background(), identity.NewID(), "web", session.Seen{}); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Start against no server: %v, want unavailable", err)
	}
}

func TestConfig(t *testing.T) {
	c := redis.Config{Prefix: string(make([]byte, 129))}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("long prefix: %v", err)
	}
	c = redis.Config{}
	c.Defaults()
	if c.Prefix != "identity:session:" || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
}

// BenchmarkRotate measures Manager.Refresh (HMGET, then the rotate script)
// against the test Redis.
func BenchmarkRotate(b *testing.B) {
	s, _, _ := newStore(b, time.Now)
	sessiontest.BenchmarkRotate(b, s)
}

// A session past its expiry by the store's clock, which Redis has not
// dropped yet, does not hold its id.
func TestCreateOverExpired(t *testing.T) {
	clock := sessiontest.NewClock(time.Now())
	s, _, _ := newStore(t, clock.Now)
	ctx := context.Background()
	now := clock.Now().UTC()
	old := session.Session{ID: session.NewID(), UserID: identity.NewID(), ClientID: "web",
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
		Family: session.Family{Current: session.HashToken("a"), RotatedAt: now}}
	if err := s.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	before, err := s.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	now = clock.Now().UTC()
	fresh := old
	fresh.UserID = identity.NewID()
	fresh.CreatedAt, fresh.LastUsedAt, fresh.ExpiresAt, fresh.Family.RotatedAt = now, now, now.Add(time.Hour), now
	if err := s.Create(ctx, fresh); err != nil {
		t.Fatalf("create over the expired session: %v", err)
	}
	got, err := s.Get(ctx, old.ID)
	if err != nil || got.UserID != fresh.UserID || got.Version <= before.Version {
		t.Fatalf("Get = %+v, %v (version before %d)", got, err, before.Version)
	}
	if l, err := s.ListForUser(ctx, old.UserID); err != nil || len(l) != 0 {
		t.Fatalf("the old user lists %v, %v", l, err)
	}
	if err := s.Create(ctx, fresh); !errs.Is(errs.Conflict, err) {
		t.Fatalf("create over the live session: %v, want conflict", err)
	}
}
