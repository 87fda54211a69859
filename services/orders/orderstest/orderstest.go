// Package orderstest is the contract suite of orders.Store: every adapter
// runs Run against its real backend (JetStream for natskv, PostgreSQL for
// postgres), so that both keep the same promises, outbox included.
package orderstest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/orders"
)

// Fixture is one fresh, empty store and a view of what its outbox
// published.
type Fixture struct {
	Store orders.Store
	// Published returns the ids of the order events published to EVENTS
	// so far, in the order published, repeats included.
	Published func(t *testing.T) []string
}

// Run runs the suite; open returns a fresh fixture for each test.
func Run(t *testing.T, open func(t *testing.T) Fixture) {
	tests := []struct {
		name string
		fn   func(*testing.T, Fixture)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"Idempotency", testIdempotency},
		{"HoldClaims", testHoldClaims},
		{"PurchaseLimitUnderConcurrency", testPurchaseLimit},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"UpdateError", testUpdateError},
		{"NoOpUpdate", testNoOpUpdate},
		{"ByAccount", testByAccount},
		{"Due", testDue},
		{"Outbox", testOutbox},
		{"LatePaymentCountsAgain", testLatePayment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var seq atomic.Int64

// newOrder is a started order of account for event with one hold of
// tickets GA units expiring in 10 minutes.
func newOrder(account, event string, tickets int) orders.Order {
	n := seq.Add(1)
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orders.Order{
		ID: orders.NewID(), Account: account, Event: event, Channel: "web",
		Holds:   []orders.Hold{{Partition: event + ".0", ID: fmt.Sprintf("h-%d-%d", time.Now().UnixNano(), n), Zone: "ga", Quantity: tickets, ExpiresAt: now.Add(10 * time.Minute)}},
		QuoteID: "q_test", Lines: []orders.Line{{Kind: "ticket", Ref: "ga", Description: "GA", Quantity: tickets, Unit: 5000, Amount: 5000 * int64(tickets)}},
		Amounts: orders.Amounts{Currency: "USD", Subtotal: 5000 * int64(tickets), Total: 5000 * int64(tickets)},
	}
	if err := o.Start(now); err != nil {
		panic(err)
	}
	return o
}

func mustCreate(t *testing.T, s orders.Store, o orders.Order, limit int) orders.Order {
	t.Helper()
	got, created, err := s.Create(context.Background(), o, limit)
	if err != nil || !created {
		t.Fatalf("create %s: created %v, %v", o.ID, created, err)
	}
	return got
}

func move(t *testing.T, s orders.Store, id string, to orders.State) orders.Order {
	t.Helper()
	o, err := s.Update(context.Background(), id, func(o *orders.Order) error { return o.Move(to, "test", time.Now()) })
	if err != nil {
		t.Fatalf("move %s to %s: %v", id, to, err)
	}
	return o
}

func testCreateAndGet(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := newOrder("acct-1", "ev-1", 2)
	got := mustCreate(t, f.Store, o, 0)
	if got.Version == 0 {
		t.Fatal("a stored order has a version")
	}
	read, err := f.Store.Get(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if read.Version != got.Version || read.State != orders.AwaitingPayment || read.Tickets != 2 || read.Account != "acct-1" ||
		!read.PayBy.Equal(o.PayBy) || len(read.Holds) != 1 || read.Holds[0].ID != o.Holds[0].ID || read.Amounts != o.Amounts ||
		len(read.History) != 1 || !read.Created.Equal(o.Created) {
		t.Fatalf("read back %+v\nstored %+v", read, got)
	}
	if _, err := f.Store.Get(ctx, orders.NewID()); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown order: %v", err)
	}
	if _, err := f.Store.Update(ctx, orders.NewID(), func(*orders.Order) error { return nil }); !errs.Is(errs.NotFound, err) {
		t.Fatalf("update of an unknown order: %v", err)
	}
	// An order id is unique.
	dup := newOrder("acct-1", "ev-1", 1)
	dup.ID = o.ID
	if _, _, err := f.Store.Create(ctx, dup, 0); err == nil {
		t.Fatal("a second order with the same id was stored")
	}
}

func testIdempotency(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := newOrder("acct-2", "ev-1", 1)
	o.IdemKey, o.Fingerprint = "acct-2:key-1", "fp-1"
	first := mustCreate(t, f.Store, o, 0)

	retry := newOrder("acct-2", "ev-1", 1)
	retry.Holds = o.Holds
	retry.IdemKey, retry.Fingerprint = o.IdemKey, o.Fingerprint
	got, created, err := f.Store.Create(ctx, retry, 0)
	if err != nil || created || got.ID != first.ID {
		t.Fatalf("replay: %s created %v %v, want %s", got.ID, created, err, first.ID)
	}
	retry.Fingerprint = "fp-2"
	if _, _, err := f.Store.Create(ctx, retry, 0); !errs.Is(errs.Mismatch, err) {
		t.Fatalf("the key with another request: %v", err)
	}
	// Concurrent requests with one key make one order, whether each
	// makes its own id or all derive it from the key (orders.IDFor).
	for _, derived := range []bool{false, true} {
		concurrentCreates(t, f, derived)
	}
}

func concurrentCreates(t *testing.T, f Fixture, derived bool) {
	ctx := context.Background()
	first := newOrder("acct-2", "ev-1", 1)
	key := fmt.Sprintf("acct-2:key-%v-%d", derived, seq.Add(1))
	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newOrder("acct-2", "ev-1", 1)
			c.Holds = first.Holds
			c.IdemKey, c.Fingerprint = key, "fp"
			if derived {
				c.ID = orders.IDFor(key)
				_ = c.Events()
				_ = c.Start(c.Created)
			}
			got, _, err := f.Store.Create(ctx, c, 0)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = got.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("one key made orders %v", ids)
		}
	}
}

func testHoldClaims(t *testing.T, f Fixture) {
	ctx := context.Background()
	a := mustCreate(t, f.Store, newOrder("acct-3", "ev-1", 1), 0)
	b := newOrder("acct-4", "ev-1", 1)
	b.Holds = a.Holds
	if _, _, err := f.Store.Create(ctx, b, 0); !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != orders.ReasonHoldTaken {
		t.Fatalf("a claimed hold in another order: %v", err)
	}
	// Once the first order ended without a sale its hold is free.
	move(t, f.Store, a.ID, orders.Cancelled)
	mustCreate(t, f.Store, b, 0)
}

func testPurchaseLimit(t *testing.T, f Fixture) {
	ctx := context.Background()
	const limit, each, tries = 6, 2, 20
	var ok atomic.Int64
	var wg sync.WaitGroup
	created := make(chan orders.Order, tries)
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, _, err := f.Store.Create(ctx, newOrder("acct-5", "ev-2", each), limit)
			switch {
			case err == nil:
				ok.Add(1)
				created <- o
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == orders.ReasonPurchaseLimit:
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(created)
	if ok.Load() != limit/each {
		t.Fatalf("%d orders of %d tickets under a limit of %d", ok.Load(), each, limit)
	}
	// Other events and accounts have their own counts.
	mustCreate(t, f.Store, newOrder("acct-5", "ev-3", each), limit)
	mustCreate(t, f.Store, newOrder("acct-6", "ev-2", each), limit)
	// An order that ends unsold gives its tickets back; a sold one keeps
	// them.
	first := <-created
	move(t, f.Store, first.ID, orders.Expired)
	sold := <-created
	move(t, f.Store, sold.ID, orders.Paid)
	mustCreate(t, f.Store, newOrder("acct-5", "ev-2", each), limit)
	if _, _, err := f.Store.Create(ctx, newOrder("acct-5", "ev-2", 1), limit); errs.ReasonOf(err) != orders.ReasonPurchaseLimit {
		t.Fatalf("over the limit after a sale: %v", err)
	}
}

func testConcurrentUpdates(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := mustCreate(t, f.Store, newOrder("acct-7", "ev-1", 1), 0)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.Store.Update(ctx, o.ID, func(o *orders.Order) error {
				o.Payment.Attempts++
				o.Note("payment_declined", fmt.Sprint("attempt ", i), time.Now())
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := f.Store.Get(ctx, o.ID)
	if err != nil || got.Payment.Attempts != n || got.Version <= o.Version {
		t.Fatalf("after %d concurrent updates: attempts %d version %d→%d (%v)", n, got.Payment.Attempts, o.Version, got.Version, err)
	}
	// Of concurrent moves to different ends, exactly one is made.
	var moved atomic.Int64
	for _, to := range []orders.State{orders.Expired, orders.Cancelled, orders.Paid, orders.PaymentFailed} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Store.Update(ctx, o.ID, func(o *orders.Order) error {
				if !o.State.Open() {
					return errs.E("test", errs.Conflict, "ended")
				}
				return o.Move(to, "race", time.Now())
			})
			if err == nil {
				moved.Add(1)
			}
		}()
	}
	wg.Wait()
	if moved.Load() != 1 {
		t.Fatalf("%d concurrent ends were made", moved.Load())
	}
}

func testUpdateError(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := mustCreate(t, f.Store, newOrder("acct-8", "ev-1", 1), 0)
	_, err := f.Store.Update(ctx, o.ID, func(o *orders.Order) error {
		o.State = orders.Confirmed
		return errs.E("test", errs.Invalid, "no")
	})
	if !errs.Is(errs.Invalid, err) {
		t.Fatalf("fn's error: %v", err)
	}
	got, _ := f.Store.Get(ctx, o.ID)
	if got.State != orders.AwaitingPayment || got.Version != o.Version {
		t.Fatalf("a failed update wrote: %s v%d", got.State, got.Version)
	}
	// A transition the state machine lacks is refused by the domain.
	if _, err := f.Store.Update(ctx, o.ID, func(o *orders.Order) error { return o.Move(orders.Refunded, "test", time.Now()) }); !errs.Is(errs.Conflict, err) {
		t.Fatalf("awaiting payment → refunded: %v", err)
	}
}

// An update that leaves the order as it was writes nothing: its version
// stays and no event is published.
func testNoOpUpdate(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := mustCreate(t, f.Store, newOrder("acct-14", "ev-1", 1), 0)
	o = move(t, f.Store, o.ID, orders.RequiresAction)
	for name, fn := range map[string]func(*orders.Order) error{
		"nothing":          func(*orders.Order) error { return nil },
		"the same values":  func(o *orders.Order) error { o.State = orders.RequiresAction; o.Payment.Attempts += 0; return nil },
		"changed and back": func(o *orders.Order) error { o.Reason = "x"; o.Reason = ""; return nil },
		"a repeated move": func(o *orders.Order) error {
			if o.State == orders.RequiresAction {
				return nil // as the saga does with a payment event it applied before
			}
			return o.Move(orders.RequiresAction, "test", time.Now())
		},
	} {
		got, err := f.Store.Update(ctx, o.ID, fn)
		if err != nil || got.Version != o.Version || got.State != orders.RequiresAction {
			t.Fatalf("%s: version %d→%d, %s, %v", name, o.Version, got.Version, got.State, err)
		}
		if read, err := f.Store.Get(ctx, o.ID); err != nil || read.Version != o.Version {
			t.Fatalf("%s: read back version %d, want %d (%v)", name, read.Version, o.Version, err)
		}
	}
	// A change is written, with its event only.
	paid := move(t, f.Store, o.ID, orders.Paid)
	if paid.Version == o.Version {
		t.Fatalf("a move kept version %d", o.Version)
	}
	eventually.True(t, 15*time.Second, "three events of the order published", func() bool {
		return len(f.Published(t)) >= 3
	})
	seen := map[string]bool{}
	for _, id := range f.Published(t) {
		seen[id] = true
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct events published, want 3 (created, requires_action, paid)", len(seen))
	}
}

func testByAccount(t *testing.T, f Fixture) {
	ctx := context.Background()
	var mine []string
	for i := range 5 {
		o := newOrder("acct-9", "ev-1", 1)
		o.Created = o.Created.Add(time.Duration(i) * time.Second)
		mine = append(mine, mustCreate(t, f.Store, o, 0).ID)
	}
	mustCreate(t, f.Store, newOrder("acct-10", "ev-1", 1), 0)
	slices.Reverse(mine)
	var got []string
	after := ""
	for {
		page, err := f.Store.ByAccount(ctx, "acct-9", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, o := range page {
			if o.Account != "acct-9" {
				t.Fatalf("another account's order %s", o.ID)
			}
			got = append(got, o.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, mine) {
		t.Fatalf("pages %v, want newest first %v", got, mine)
	}
	if none, err := f.Store.ByAccount(ctx, "nobody", "", 10); err != nil || len(none) != 0 {
		t.Fatalf("an account without orders: %v %v", none, err)
	}
}

func testDue(t *testing.T, f Fixture) {
	ctx := context.Background()
	soon := newOrder("acct-11", "ev-1", 1)
	soon.PayBy, soon.NextAt = time.Now().Add(-time.Second), time.Now().Add(-time.Second)
	soon = mustCreate(t, f.Store, soon, 0)
	later := mustCreate(t, f.Store, newOrder("acct-11", "ev-1", 1), 0) // due in 10 minutes
	eventually.True(t, 10*time.Second, "the due order listed", func() bool {
		ids, err := f.Store.Due(ctx, time.Now(), 100)
		return err == nil && slices.Contains(ids, soon.ID) && !slices.Contains(ids, later.ID)
	})
	ids, _ := f.Store.Due(ctx, time.Now().Add(11*time.Minute), 100)
	if !slices.Contains(ids, later.ID) {
		t.Fatalf("in 11 minutes %v should list %s", ids, later.ID)
	}
	// Paid with its confirm done and nothing owed: no longer due.
	move(t, f.Store, soon.ID, orders.Paid)
	if _, err := f.Store.Update(ctx, soon.ID, func(o *orders.Order) error {
		o.Done(orders.StepConfirm, time.Now())
		return o.Move(orders.Confirmed, "test", time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "the confirmed order gone from the due list", func() bool {
		ids, err := f.Store.Due(ctx, time.Now().Add(time.Hour), 1000)
		return err == nil && !slices.Contains(ids, soon.ID)
	})
}

func testOutbox(t *testing.T, f Fixture) {
	o := mustCreate(t, f.Store, newOrder("acct-12", "ev-1", 1), 0)
	move(t, f.Store, o.ID, orders.RequiresAction)
	move(t, f.Store, o.ID, orders.Paid)
	eventually.True(t, 15*time.Second, "three events of the order published", func() bool {
		return len(f.Published(t)) >= 3
	})
	seen := map[string]int{}
	for _, id := range f.Published(t) {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("%d distinct events published, want 3 (created, requires_action, paid): %v", len(seen), seen)
	}
}

func testLatePayment(t *testing.T, f Fixture) {
	ctx := context.Background()
	o := mustCreate(t, f.Store, newOrder("acct-13", "ev-4", 3), 0)
	move(t, f.Store, o.ID, orders.Expired)
	mustCreate(t, f.Store, newOrder("acct-13", "ev-4", 3), 3) // the expired order's tickets are free
	late := move(t, f.Store, o.ID, orders.Paid)
	if !late.Owes(orders.StepConfirm) {
		t.Fatalf("a late payment owes a confirm: %v", late.Todo)
	}
	if _, _, err := f.Store.Create(ctx, newOrder("acct-13", "ev-4", 1), 6); errs.ReasonOf(err) != orders.ReasonPurchaseLimit {
		t.Fatalf("the late sale counts again: %v", err)
	}
}
