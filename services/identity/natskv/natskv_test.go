package natskv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/identitytest"
	"github.com/ticketing/ticketing/services/identity/natskv"
)

var buckets atomic.Int64

func open(t *testing.T, js jetstream.JetStream, c natskv.Config) *natskv.Store {
	t.Helper()
	if c.Bucket == "" {
		c.Bucket = fmt.Sprintf("identity-test-%d", buckets.Add(1))
	}
	s, err := natskv.Open(context.Background(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	identitytest.Run(t, func(t *testing.T) identity.Store {
		return open(t, js, natskv.Config{})
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{Replicas: 2}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("replicas 2: %v", err)
	}
	c = natskv.Config{ClaimTimeout: time.Millisecond}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("claim timeout 1ms: %v", err)
	}
	c = natskv.Config{}
	c.Defaults()
	if c.Bucket != "identity-users" || c.ClaimTimeout != 30*time.Second || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
}

// The recovery tests write what a create that died midway leaves behind,
// then look at the store with a clock that is past the claim timeout.

type fixture struct {
	kv    jetstream.KeyValue
	store *natskv.Store
	clock atomic.Int64 // added to time.Now, in ns
}

func newFixture(t *testing.T) *fixture {
	_, _, js := nodetest.Start(t)
	f := &fixture{}
	cfg := natskv.Config{Bucket: "identity-recovery", ClaimTimeout: time.Minute,
		Now: func() time.Time { return time.Now().Add(time.Duration(f.clock.Load())) }}
	f.store = open(t, js, cfg)
	kv, err := js.KeyValue(context.Background(), cfg.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	f.kv = kv
	return f
}

func (f *fixture) putClaim(t *testing.T, email, userID string, committed bool) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"user_id": userID, "email": email, "committed": committed})
	if _, err := f.kv.Put(context.Background(), natskv.EmailKey(email), b); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) putUser(t *testing.T, u identity.User) {
	t.Helper()
	u, err := identity.Normalize(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(u)
	if _, err := f.kv.Put(context.Background(), "user."+u.ID, b); err != nil {
		t.Fatal(err)
	}
}

func user(id, email string) identity.User {
	return identity.User{ID: id, Email: email, CreatedAt: time.Now()}
}

// A create that died after claiming, before storing its user: the address
// stays taken until the claim is overdue, then a new create takes it.
func TestAbandonedClaimIsTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putClaim(t, "dead@example.com", "u_dead", false)

	err := f.store.Create(ctx, user("u_new", "dead@example.com"))
	if !errs.Is(errs.Conflict, err) {
		t.Fatalf("create while the claim is fresh: %v, want conflict", err)
	}
	if _, err := f.store.ByEmail(ctx, "dead@example.com"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByEmail of an uncommitted claim: %v, want not found", err)
	}

	f.clock.Store(int64(2 * time.Minute))
	if err := f.store.Create(ctx, user("u_new", "dead@example.com")); err != nil {
		t.Fatalf("create after the claim is overdue: %v", err)
	}
	got, err := f.store.ByEmail(ctx, "dead@example.com")
	if err != nil || got.ID != "u_new" {
		t.Fatalf("ByEmail = %+v, %v", got, err)
	}
}

// A create that died after storing its user, before committing the claim:
// once overdue, the claim is completed for that user, by a reader or by a
// create, and the address stays the user's.
func TestStoredUserClaimIsCompleted(t *testing.T) {
	for _, via := range []string{"ByEmail", "Create"} {
		t.Run(via, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			f.putClaim(t, "half@example.com", "u_half", false)
			f.putUser(t, user("u_half", "half@example.com"))
			f.clock.Store(int64(2 * time.Minute))
			switch via {
			case "ByEmail":
				got, err := f.store.ByEmail(ctx, "half@example.com")
				if err != nil || got.ID != "u_half" {
					t.Fatalf("ByEmail = %+v, %v", got, err)
				}
			case "Create":
				err := f.store.Create(ctx, user("u_other", "half@example.com"))
				if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != identity.ReasonEmailTaken {
					t.Fatalf("create of a half-created user's address: %v, want email taken", err)
				}
			}
			e, err := f.kv.Get(ctx, natskv.EmailKey("half@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			var c struct {
				UserID    string `json:"user_id"`
				Committed bool   `json:"committed"`
			}
			if err := json.Unmarshal(e.Value(), &c); err != nil || c.UserID != "u_half" || !c.Committed {
				t.Fatalf("claim after settling: %s", e.Value())
			}
		})
	}
}

// A claim whose create lost on the user id (the id belongs to a user with
// another address) is taken over at once, without waiting.
func TestClaimOfLostIDIsTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putUser(t, user("u_taken", "owner@example.com"))
	f.putClaim(t, "loser@example.com", "u_taken", false)
	if err := f.store.Create(ctx, user("u_fresh", "loser@example.com")); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, err := f.store.ByEmail(ctx, "loser@example.com")
	if err != nil || got.ID != "u_fresh" {
		t.Fatalf("ByEmail = %+v, %v", got, err)
	}
}

// A committed claim pointing at a user with another address (storage
// tampered with) does not hand that user out.
func TestByEmailChecksTheUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putUser(t, user("u_a", "a@example.com"))
	f.putClaim(t, "b@example.com", "u_a", true)
	if _, err := f.store.ByEmail(ctx, "b@example.com"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByEmail = %v, want not found", err)
	}
}
