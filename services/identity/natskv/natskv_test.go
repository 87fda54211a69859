package natskv_test

import (
	"context"
	"encoding/json"
	"errors"
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
	f.put(t, natskv.EmailKey(email), map[string]any{"user_id": userID, "email": email, "committed": committed})
}

// putChangeClaim writes the uncommitted claim of an update moving userID
// to email.
func (f *fixture) putChangeClaim(t *testing.T, email, userID string) {
	t.Helper()
	f.put(t, natskv.EmailKey(email), map[string]any{"user_id": userID, "email": email, "committed": false, "change": true})
}

func (f *fixture) put(t *testing.T, key string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := f.kv.Put(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}

// putUser writes a user as the store before accounts did: the user fields
// only, which an account reads with the rest zero.
func (f *fixture) putUser(t *testing.T, a identity.Account) {
	t.Helper()
	u, err := identity.Normalize(a.User)
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, "user."+u.ID, u)
}

func (f *fixture) claim(t *testing.T, email string) (userID string, committed bool) {
	t.Helper()
	e, err := f.kv.Get(context.Background(), natskv.EmailKey(email))
	if err != nil {
		t.Fatalf("claim of %s: %v", email, err)
	}
	var c struct {
		UserID    string `json:"user_id"`
		Committed bool   `json:"committed"`
	}
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		t.Fatal(err)
	}
	return c.UserID, c.Committed
}

func user(id, email string) identity.Account {
	return identity.Account{User: identity.User{ID: id, Email: email, CreatedAt: time.Now()}}
}

// A create that died after claiming, before storing its user: the address
// stays taken until the claim is overdue, then a new create takes it.
func TestAbandonedClaimIsTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putClaim(t, "dead@example.com", "u_dead", false)

	_, err := f.store.Create(ctx, user("u_new", "dead@example.com"))
	if !errs.Is(errs.Conflict, err) {
		t.Fatalf("create while the claim is fresh: %v, want conflict", err)
	}
	if _, err := f.store.ByEmail(ctx, "dead@example.com"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByEmail of an uncommitted claim: %v, want not found", err)
	}

	f.clock.Store(int64(2 * time.Minute))
	if _, err := f.store.Create(ctx, user("u_new", "dead@example.com")); err != nil {
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
				_, err := f.store.Create(ctx, user("u_other", "half@example.com"))
				if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != identity.ReasonEmailTaken {
					t.Fatalf("create of a half-created user's address: %v, want email taken", err)
				}
			}
			if id, committed := f.claim(t, "half@example.com"); id != "u_half" || !committed {
				t.Fatalf("claim after settling: %s, committed %v", id, committed)
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
	if _, err := f.store.Create(ctx, user("u_fresh", "loser@example.com")); err != nil {
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

// An email change that completed drops the old address's claim; the
// account's version is its key's revision.
func TestEmailChangeDropsOldClaim(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.store.Create(ctx, user("u_mover", "before@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.kv.Get(ctx, "user.u_mover")
	if err != nil || e.Revision() != a.Version {
		t.Fatalf("user key revision %v, %v; Create returned version %d", e, err, a.Version)
	}
	a.Email = "after@example.com"
	a, err = f.store.Update(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.kv.Get(ctx, natskv.EmailKey("before@example.com")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("old claim after the change: %v, want deleted", err)
	}
	if id, committed := f.claim(t, "after@example.com"); id != "u_mover" || !committed {
		t.Fatalf("new claim: %s, committed %v", id, committed)
	}
	e, err = f.kv.Get(ctx, "user.u_mover")
	if err != nil || e.Revision() != a.Version {
		t.Fatalf("user key revision %v, %v; Update returned version %d", e, err, a.Version)
	}
}

// An update that died after committing the new address, before deleting
// the old claim: the old address is free at once.
func TestStaleClaimIsTakenOver(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putUser(t, user("u_moved", "new@example.com"))
	f.putClaim(t, "new@example.com", "u_moved", true)
	f.putClaim(t, "old@example.com", "u_moved", true)
	if _, err := f.store.ByEmail(ctx, "old@example.com"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByEmail of the stale address: %v, want not found", err)
	}
	if _, err := f.store.Create(ctx, user("u_other", "old@example.com")); err != nil {
		t.Fatalf("create with a stale claim's address: %v", err)
	}
	for email, id := range map[string]string{"old@example.com": "u_other", "new@example.com": "u_moved"} {
		if got, err := f.store.ByEmail(ctx, email); err != nil || got.ID != id {
			t.Fatalf("ByEmail(%s) = %+v, %v; want %s", email, got, err, id)
		}
	}
}

// An update that died after writing the account, before committing its
// new address: the old address stays the account's while the claim of the
// new one is fresh; once it is overdue the move is completed and the old
// address is free.
func TestUnfinishedMoveHoldsOldAddress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putUser(t, user("u_mid", "new@example.com"))
	f.putClaim(t, "old@example.com", "u_mid", true)
	f.putChangeClaim(t, "new@example.com", "u_mid")
	_, err := f.store.Create(ctx, user("u_other", "old@example.com"))
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != identity.ReasonEmailTaken {
		t.Fatalf("create with the old address of an unfinished move: %v, want email taken", err)
	}
	_, err = f.store.Create(ctx, user("u_other", "new@example.com"))
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != identity.ReasonEmailTaken {
		t.Fatalf("create with the new address of an unfinished move: %v, want email taken", err)
	}

	f.clock.Store(int64(2 * time.Minute))
	if _, err := f.store.Create(ctx, user("u_other", "old@example.com")); err != nil {
		t.Fatalf("create with the old address once the move is overdue: %v", err)
	}
	if id, committed := f.claim(t, "new@example.com"); id != "u_mid" || !committed {
		t.Fatalf("new claim: %s, committed %v; want completed for u_mid", id, committed)
	}
	for email, id := range map[string]string{"old@example.com": "u_other", "new@example.com": "u_mid"} {
		if got, err := f.store.ByEmail(ctx, email); err != nil || got.ID != id {
			t.Fatalf("ByEmail(%s) = %+v, %v; want %s", email, got, err, id)
		}
	}
}

// An update that died after claiming its new address, before writing the
// account: the address is held while the claim is fresh, then taken over;
// the account keeps its own.
func TestChangeClaimOfDeadUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.putUser(t, user("u_stay", "stay@example.com"))
	f.putClaim(t, "stay@example.com", "u_stay", true)
	f.putChangeClaim(t, "wanted@example.com", "u_stay")
	_, err := f.store.Create(ctx, user("u_other", "wanted@example.com"))
	if !errs.Is(errs.Conflict, err) {
		t.Fatalf("create while the change claim is fresh: %v, want conflict", err)
	}
	f.clock.Store(int64(2 * time.Minute))
	if _, err := f.store.Create(ctx, user("u_other", "wanted@example.com")); err != nil {
		t.Fatalf("create once the change claim is overdue: %v", err)
	}
	for email, id := range map[string]string{"wanted@example.com": "u_other", "stay@example.com": "u_stay"} {
		if got, err := f.store.ByEmail(ctx, email); err != nil || got.ID != id {
			t.Fatalf("ByEmail(%s) = %+v, %v; want %s", email, got, err, id)
		}
	}
}

// Expiry is judged by the store's clock; a take of an expired link leaves
// it as it is.
func TestLinkExpiryUsesClock(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, err := f.store.Create(ctx, user("u_link", "link@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	_, hash := identity.NewLinkSecret()
	l := identity.Link{Hash: hash, Purpose: identity.LinkReset, UserID: a.ID, Email: a.Email, ExpiresAt: time.Now().Add(time.Minute)}
	if err := f.store.PutLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	f.clock.Store(int64(2 * time.Minute))
	if _, err := f.store.TakeLink(ctx, hash); !errs.Is(errs.NotFound, err) {
		t.Fatalf("take with the clock past expiry: %v, want not found", err)
	}
	f.clock.Store(0)
	if got, err := f.store.TakeLink(ctx, hash); err != nil || got.Hash != hash {
		t.Fatalf("take with the clock back: %+v, %v", got, err)
	}
}
