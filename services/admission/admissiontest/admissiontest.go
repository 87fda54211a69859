// Package admissiontest is the contract suite of the admission stores:
// RunKeyStore for admission.KeyStore and RunSpentStore for
// admission.SpentStore. Every implementation runs it (the in-memory stores,
// the JetStream KV key store, the Redis spent store), so that the code above
// them can rely on one behaviour.
package admissiontest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func cancelled() context.Context {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	return c
}

// RunKeyStore runs the KeyStore suite. newStore returns an empty store for
// each subtest; two calls with the same t are not required to share data.
func RunKeyStore(t *testing.T, newStore func(t *testing.T) admission.KeyStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, admission.KeyStore)
	}{
		{"EmptyIsNotFound", testKeysEmpty},
		{"SaveAndLoad", testKeysSaveLoad},
		{"CompareAndSet", testKeysCAS},
		{"ConcurrentCreate", testKeysConcurrentCreate},
		{"SyncRotatesOnce", testKeysSyncRotatesOnce},
		{"CancelledContext", testKeysCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func ring(t *testing.T, now time.Time) *admission.KeyRing {
	t.Helper()
	r, err := admission.NewKeyRing(admission.KeyRingConfig{RotateEvery: time.Hour, VerifyFor: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testKeysEmpty(t *testing.T, s admission.KeyStore) {
	if _, _, err := s.Load(ctx(t)); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Load of an empty store: %v, want not found", err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), 7); !errs.Is(errs.Conflict, err) {
		t.Fatalf("Save at revision 7 into an empty store: %v, want conflict", err)
	}
}

func testKeysSaveLoad(t *testing.T, s admission.KeyStore) {
	r := ring(t, t0)
	if err := r.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := r.KeySet()
	rev, err := s.Save(ctx(t), want, 0)
	if err != nil || rev == 0 {
		t.Fatalf("Save = %d, %v", rev, err)
	}
	got, grev, err := s.Load(ctx(t))
	if err != nil || grev != rev {
		t.Fatalf("Load = rev %d, %v; want rev %d", grev, err, rev)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("loaded %d keys, want 2", len(got.Keys))
	}
	for i := range want.Keys {
		w, g := want.Keys[i], got.Keys[i]
		if w.KID != g.KID || string(w.Seed) != string(g.Seed) || !w.Created.Equal(g.Created) ||
			!w.Retired.Equal(g.Retired) || !w.VerifyUntil.Equal(g.VerifyUntil) {
			t.Fatalf("key %d: got %s created %v retired %v until %v, want %s created %v retired %v until %v",
				i, g.KID, g.Created, g.Retired, g.VerifyUntil, w.KID, w.Created, w.Retired, w.VerifyUntil)
		}
	}
	r2, err := admission.NewKeyRingFromSet(r.Config(), got)
	if err != nil || r2.ActiveKID() != r.ActiveKID() {
		t.Fatalf("ring from loaded set: %v, active %s want %s", err, r2.ActiveKID(), r.ActiveKID())
	}
}

func testKeysCAS(t *testing.T, s admission.KeyStore) {
	rev1, err := s.Save(ctx(t), ring(t, t0).KeySet(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), 0); !errs.Is(errs.Conflict, err) {
		t.Fatalf("second create: %v, want conflict", err)
	}
	second := ring(t, t0)
	rev2, err := s.Save(ctx(t), second.KeySet(), rev1)
	if err != nil || rev2 == rev1 {
		t.Fatalf("Save at the current revision = %d, %v", rev2, err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), rev1); !errs.Is(errs.Conflict, err) {
		t.Fatalf("Save at a stale revision: %v, want conflict", err)
	}
	got, rev, err := s.Load(ctx(t))
	if err != nil || rev != rev2 || len(got.Keys) != 1 || got.Keys[0].KID != second.ActiveKID() {
		t.Fatalf("Load after the stale save: rev %d %v, want the second set at rev %d", rev, err, rev2)
	}
}

func testKeysConcurrentCreate(t *testing.T, s admission.KeyStore) {
	const n = 8
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		r := ring(t, t0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Save(ctx(t), r.KeySet(), 0)
			switch {
			case err == nil:
				wins.Add(1)
			case !errs.Is(errs.Conflict, err):
				t.Errorf("concurrent create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent creates won, want 1", wins.Load())
	}
}

// Several nodes sync at once when the key is due: exactly one rotation,
// and they all end with the same active key.
func testKeysSyncRotatesOnce(t *testing.T, s admission.KeyStore) {
	const nodes = 4
	rings := make([]*admission.KeyRing, nodes)
	for i := range rings {
		rings[i] = ring(t, t0)
		if _, err := admission.Sync(ctx(t), s, rings[i], t0); err != nil {
			t.Fatal(err)
		}
	}
	first := rings[0].ActiveKID()
	for i, r := range rings {
		if r.ActiveKID() != first {
			t.Fatalf("node %d after the first sync: active %s, want %s", i, r.ActiveKID(), first)
		}
	}
	later := t0.Add(61 * time.Minute)
	var rotations atomic.Int32
	var wg sync.WaitGroup
	for _, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rotated, err := admission.Sync(ctx(t), s, r, later)
			if err != nil {
				t.Errorf("sync: %v", err)
			}
			if rotated {
				rotations.Add(1)
			}
		}()
	}
	wg.Wait()
	if rotations.Load() != 1 {
		t.Fatalf("%d nodes rotated, want 1", rotations.Load())
	}
	second := rings[0].ActiveKID()
	if second == first {
		t.Fatal("active key did not change")
	}
	for i, r := range rings {
		if r.ActiveKID() != second {
			t.Fatalf("node %d: active %s, want %s", i, r.ActiveKID(), second)
		}
		if _, ok := r.PublicKeys().Lookup(first); !ok {
			t.Fatalf("node %d lost the retired key", i)
		}
	}
	// Past VerifyFor, the retired key is dropped from the store too.
	if _, err := admission.Sync(ctx(t), s, rings[0], later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	set, _, err := s.Load(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KID == first {
			t.Fatal("retired key still stored after VerifyFor")
		}
	}
}

func testKeysCancelled(t *testing.T, s admission.KeyStore) {
	if _, err := s.Save(cancelled(), ring(t, t0).KeySet(), 0); err == nil {
		t.Fatal("Save with a cancelled context succeeded")
	}
	if _, _, err := s.Load(cancelled()); err == nil {
		t.Fatal("Load with a cancelled context succeeded")
	}
}

// Clock is a manual clock for stores that take one.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(t.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// SpentSetup describes a SpentStore implementation to RunSpentStore.
type SpentSetup struct {
	// New returns a store for one subtest. A store that takes a clock
	// uses clock; others use real time (then set RealClock).
	New func(t *testing.T, clock *Clock) admission.SpentStore
	// RealClock: the store ignores clock (its server keeps time), so the
	// suite does not register what needs a manual clock; the adapter's own
	// tests check its expiry.
	RealClock bool
}

// JTI returns a fresh random token id.
func JTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RunSpentStore runs the SpentStore suite.
func RunSpentStore(t *testing.T, setup SpentSetup) {
	t.Helper()
	for _, tc := range []struct {
		name      string
		f         func(*testing.T, admission.SpentStore, *Clock)
		needClock bool
	}{
		{"FirstThenReplay", testSpendOnce, false},
		{"Independent", testSpendIndependent, false},
		{"Concurrent", testSpendConcurrent, false},
		{"PastExpiryInvalid", testSpendPast, false},
		{"CancelledContext", testSpendCancelled, false},
		{"SameUseRetries", testSpendSameUse, false},
		{"Unspend", testUnspend, false},
		{"UnspendOtherUseIgnored", testUnspendOther, false},
		{"ExpiresAfterUntil", testSpendExpires, true},
	} {
		// Cases a store cannot run (it keeps its own time) are not
		// registered, rather than run and skipped.
		if tc.needClock && setup.RealClock {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(time.Now())
			tc.f(t, setup.New(t, clock), clock)
		})
	}
}

func testSpendOnce(t *testing.T, s admission.SpentStore, c *Clock) {
	id, until := JTI(), c.Now().Add(time.Hour)
	for i, want := range []bool{true, false, false} {
		first, err := s.Spend(ctx(t), id, fmt.Sprint("use-", i), until)
		if err != nil || first != want {
			t.Fatalf("spend %d = %v, %v; want %v", i, first, err, want)
		}
	}
}

func testSpendIndependent(t *testing.T, s admission.SpentStore, c *Clock) {
	until := c.Now().Add(time.Hour)
	for i := 0; i < 50; i++ {
		if first, err := s.Spend(ctx(t), JTI(), "use", until); err != nil || !first {
			t.Fatalf("spend of a fresh id = %v, %v", first, err)
		}
	}
}

func testSpendConcurrent(t *testing.T, s admission.SpentStore, c *Clock) {
	const ids, racers = 20, 8
	until := c.Now().Add(time.Hour)
	for i := 0; i < ids; i++ {
		id := JTI()
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for j := 0; j < racers; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, err := s.Spend(ctx(t), id, fmt.Sprint("racer-", j), until)
				if err != nil {
					t.Errorf("spend: %v", err)
				}
				if first {
					firsts.Add(1)
				}
			}()
		}
		wg.Wait()
		if firsts.Load() != 1 {
			t.Fatalf("id %d: %d of %d concurrent spends were first, want 1", i, firsts.Load(), racers)
		}
	}
}

func testSpendPast(t *testing.T, s admission.SpentStore, c *Clock) {
	if _, err := s.Spend(ctx(t), JTI(), "use", c.Now().Add(-time.Second)); !errs.Is(errs.Invalid, err) {
		t.Fatalf("spend until the past: %v, want invalid", err)
	}
	if _, err := s.Spend(ctx(t), "", "use", c.Now().Add(time.Hour)); !errs.Is(errs.Invalid, err) {
		t.Fatalf("spend of an empty id: %v, want invalid", err)
	}
	if _, err := s.Spend(ctx(t), JTI(), "", c.Now().Add(time.Hour)); !errs.Is(errs.Invalid, err) {
		t.Fatalf("spend by an empty use: %v, want invalid", err)
	}
}

func testSpendCancelled(t *testing.T, s admission.SpentStore, c *Clock) {
	id, until := JTI(), c.Now().Add(time.Hour)
	if _, err := s.Spend(cancelled(), id, "use-1", until); err == nil {
		t.Fatal("spend with a cancelled context succeeded")
	}
	// The failed call spent nothing.
	if first, err := s.Spend(ctx(t), id, "use-2", until); err != nil || !first {
		t.Fatalf("spend after a cancelled one = %v, %v; want first", first, err)
	}
}

func testSpendExpires(t *testing.T, s admission.SpentStore, c *Clock) {
	id := JTI()
	if first, err := s.Spend(ctx(t), id, "use-1", c.Now().Add(time.Minute)); err != nil || !first {
		t.Fatalf("spend = %v, %v", first, err)
	}
	c.Advance(59 * time.Second)
	if first, err := s.Spend(ctx(t), id, "use-2", c.Now().Add(time.Minute)); err != nil || first {
		t.Fatalf("spend before until = %v, %v; want replay", first, err)
	}
	c.Advance(2 * time.Second)
	if first, err := s.Spend(ctx(t), id, "use-2", c.Now().Add(time.Minute)); err != nil || !first {
		t.Fatalf("spend after until = %v, %v; want first", first, err)
	}
}

// A use retried (the same idempotency key) may go on; another use may not.
func testSpendSameUse(t *testing.T, s admission.SpentStore, c *Clock) {
	id, until := JTI(), c.Now().Add(time.Hour)
	for i, tc := range []struct {
		use  string
		want bool
	}{{"a", true}, {"a", true}, {"b", false}, {"a", true}} {
		if ok, err := s.Spend(ctx(t), id, tc.use, until); err != nil || ok != tc.want {
			t.Fatalf("spend %d by %q = %v, %v; want %v", i, tc.use, ok, err, tc.want)
		}
	}
}

// A use that did not happen gives the token back: another use may then
// spend it, and only once.
func testUnspend(t *testing.T, s admission.SpentStore, c *Clock) {
	id, until := JTI(), c.Now().Add(time.Hour)
	if ok, err := s.Spend(ctx(t), id, "a", until); err != nil || !ok {
		t.Fatalf("spend = %v, %v", ok, err)
	}
	if err := s.Unspend(ctx(t), id, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Spend(ctx(t), id, "b", until); err != nil || !ok {
		t.Fatalf("spend after unspend = %v, %v; want ok", ok, err)
	}
	if ok, err := s.Spend(ctx(t), id, "c", until); err != nil || ok {
		t.Fatalf("third use = %v, %v; want refused", ok, err)
	}
}

// Unspend by a use that did not spend the token changes nothing.
func testUnspendOther(t *testing.T, s admission.SpentStore, c *Clock) {
	id, until := JTI(), c.Now().Add(time.Hour)
	if ok, err := s.Spend(ctx(t), id, "a", until); err != nil || !ok {
		t.Fatalf("spend = %v, %v", ok, err)
	}
	if err := s.Unspend(ctx(t), id, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.Unspend(ctx(t), JTI(), "b"); err != nil {
		t.Fatalf("unspend of an unknown id: %v", err)
	}
	if ok, err := s.Spend(ctx(t), id, "b", until); err != nil || ok {
		t.Fatalf("spend by b after b's unspend = %v, %v; want refused", ok, err)
	}
}
