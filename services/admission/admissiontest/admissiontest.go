// Package admissiontest is the contract suite of admission.SpentStore:
// RunSpentStore. Every implementation runs it (the in-memory store, the
// Redis store), so that the code above them can rely on one behaviour. The
// key stores have theirs in internal/keyring/keyringtest.
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
