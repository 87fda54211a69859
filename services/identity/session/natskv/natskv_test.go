package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/session/natskv"
	"github.com/ticketing/ticketing/services/identity/session/sessiontest"
)

var buckets atomic.Int64

func open(t testing.TB, js jetstream.JetStream, c natskv.Config) *natskv.Store {
	t.Helper()
	if c.Bucket == "" {
		c.Bucket = fmt.Sprintf("sessions-test-%d", buckets.Add(1))
	}
	s, err := natskv.Open(context.Background(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Store {
		return open(t, js, natskv.Config{Now: clock.Now})
	})
}

func TestConfig(t *testing.T) {
	for _, c := range []natskv.Config{{Replicas: 2}, {MaxLifetime: time.Second}, {MaxLifetime: 500 * 24 * time.Hour}} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%+v: %v, want invalid", c, err)
		}
	}
	c := natskv.Config{}
	c.Defaults()
	if c.Bucket != "identity-sessions" || c.MaxLifetime != 30*24*time.Hour || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if kc := c.KeyValueConfig(); kc.TTL != c.MaxLifetime || kc.History != 1 {
		t.Fatalf("bucket config: %+v", kc)
	}
}

// A session that would outlive the bucket's MaxAge is refused: the server
// would drop it early.
func TestCreateBeyondMaxLifetime(t *testing.T) {
	_, _, js := nodetest.Start(t)
	s := open(t, js, natskv.Config{MaxLifetime: time.Hour})
	m, err := session.NewManager(s, session.Config{Lifetime: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Start(context.Background(), identity.NewID(), "web", session.Seen{}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Start = %v, want invalid", err)
	}
}

// BenchmarkRotate measures Manager.Refresh (a read and a compare-and-set
// write) on a file-backed bucket of one replica: one session rotated in
// turn, and many sessions rotated in parallel.
func BenchmarkRotate(b *testing.B) {
	_, _, js := nodetest.Start(b)
	s := open(b, js, natskv.Config{})
	sessiontest.BenchmarkRotate(b, s)
}

// An index entry whose Create died before storing the session is skipped
// by lists and left alone by RevokeAllForUser (a Create between its writes
// looks the same); the bucket's MaxAge drops it.
func TestIndexEntryWithoutSession(t *testing.T) {
	_, _, js := nodetest.Start(t)
	s := open(t, js, natskv.Config{Bucket: "sessions-orphan"})
	kv, err := js.KeyValue(context.Background(), "sessions-orphan")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, orphan := identity.NewID(), session.NewID()
	if _, err := kv.Put(ctx, "u."+u+"."+orphan, nil); err != nil {
		t.Fatal(err)
	}
	m, err := session.NewManager(s, session.Config{})
	if err != nil {
		t.Fatal(err)
	}
	live, _, err := m.Start(ctx, u, "web", session.Seen{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.List(ctx, u)
	if err != nil || len(l) != 1 || l[0].ID != live.ID {
		t.Fatalf("list = %v, %v", l, err)
	}
	if n, err := m.RevokeAll(ctx, u); err != nil || n != 1 {
		t.Fatalf("RevokeAll = %d, %v; want 1", n, err)
	}
	if _, err := kv.Get(ctx, "u."+u+"."+orphan); err != nil {
		t.Fatalf("the orphan entry: %v, want it left", err)
	}
	if _, err := kv.Get(ctx, "u."+u+"."+live.ID); err == nil {
		t.Fatal("the revoked session's entry is still there")
	}
}

// A session past its expiry that the server has not dropped yet does not
// hold its id: a Create with the id takes it over.
func TestCreateOverExpired(t *testing.T) {
	_, _, js := nodetest.Start(t)
	clock := sessiontest.NewClock(time.Now())
	s := open(t, js, natskv.Config{Now: clock.Now})
	ctx := context.Background()
	now := clock.Now().UTC()
	old := session.Session{ID: session.NewID(), UserID: identity.NewID(), ClientID: "web",
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
		Family: session.Family{Current: session.HashToken("a"), RotatedAt: now}}
	if err := s.Create(ctx, old); err != nil {
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
	if err != nil || got.UserID != fresh.UserID {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if l, err := s.ListForUser(ctx, old.UserID); err != nil || len(l) != 0 {
		t.Fatalf("the old user lists %v, %v", l, err)
	}
	if err := s.Create(ctx, fresh); !errs.Is(errs.Conflict, err) {
		t.Fatalf("create over the live session: %v, want conflict", err)
	}
}
