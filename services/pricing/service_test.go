package pricing_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/pricing"
	"github.com/ticketing/ticketing/services/pricing/natskv"
)

var t0 = time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)

// recorder is a Publisher that keeps what it is given, and fails while
// fail is set.
type recorder struct {
	mu   sync.Mutex
	evs  []pricing.Changed
	fail bool
}

func (r *recorder) Publish(_ context.Context, ev pricing.Changed) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errs.E("test.publish", errs.Unavailable, "down")
	}
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) events() []pricing.Changed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pricing.Changed(nil), r.evs...)
}

func newStore(t *testing.T) pricing.Store {
	_, _, js := nodetest.Start(t)
	s, err := natskv.Open(context.Background(), js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testRules() pricing.Rules {
	return pricing.Rules{Event: "arena-concert", Version: 1, Currency: "USD",
		Zones: map[string]int64{"floor": 20000, "balcony": 10000},
		Fees:  pricing.Fees{PerOrder: 250},
		Dynamic: &pricing.Dynamic{Enabled: true, Base: map[string]int64{"floor": 20000, "balcony": 10000},
			SellThrough: []pricing.SellThroughStep{{AtBP: 8000, MultiplierBP: 12500}},
			Demand:      []pricing.DemandStep{{AtPerMinute: 100, MultiplierBP: 12000}},
			Floor:       pricing.Bound{BP: 8000}, Ceiling: pricing.Bound{BP: 15000}, MaxStep: pricing.Bound{Amount: 2000}},
		OnSaleAt: t0.Add(-time.Hour)}
}

func cart() pricing.Cart {
	return pricing.Cart{Event: "arena-concert", Account: "u_1", Holds: []string{"arena-concert.0:h:01"},
		Tickets: []pricing.Item{{Zone: "floor", Quantity: 2}}, ExpiresAt: t0.Add(10 * time.Minute)}
}

func setup(t *testing.T) (context.Context, pricing.Store, *pricing.Service, *recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s := newStore(t)
	if err := s.PutRules(ctx, testRules()); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return ctx, s, &pricing.Service{Store: s, Events: rec, Clock: func() time.Time { return t0 }}, rec
}

func TestQuote(t *testing.T) {
	ctx, s, svc, _ := setup(t)
	if err := s.PutVoucher(ctx, pricing.Voucher{Code: "TEN", PercentBP: 1000}); err != nil {
		t.Fatal(err)
	}
	c := cart()
	c.Voucher = "ten"
	q, err := svc.Quote(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !pricing.ValidQuoteID(q.ID) || len(q.ID) != 22 || q.Total.Amount != 36250 || q.Voucher != "TEN" || !q.CreatedAt.Equal(t0) {
		t.Fatalf("quote %+v", q)
	}
	want, err := pricing.Price(testRules(), c, &pricing.Voucher{Code: "TEN", PercentBP: 1000}, t0)
	if err != nil {
		t.Fatal(err)
	}
	want.ID = q.ID
	got, err := s.Quote(ctx, q.ID)
	if err != nil || !reflect.DeepEqual(got, want) || !reflect.DeepEqual(q, want) {
		t.Fatalf("stored %+v, %v\nwant %+v", got, err, want)
	}
}

func TestQuoteIDs(t *testing.T) {
	ctx, _, svc, _ := setup(t)
	n := 0
	svc.NewID = func() string { n++; return fmt.Sprintf("q_test%d", n) }
	for i := 1; i <= 2; i++ {
		q, err := svc.Quote(ctx, cart())
		if err != nil || q.ID != fmt.Sprintf("q_test%d", i) {
			t.Fatalf("quote %q, %v", q.ID, err)
		}
	}
	// An id generator that repeats itself is found out by the store.
	svc.NewID = func() string { return "q_test1" }
	if _, err := svc.Quote(ctx, cart()); !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != pricing.ReasonQuoteExists {
		t.Fatalf("a repeated id: %v", err)
	}
}

func TestQuoteRefuses(t *testing.T) {
	ctx, _, svc, _ := setup(t)
	c := cart()
	c.Voucher = "NOSUCH"
	if _, err := svc.Quote(ctx, c); !errs.Is(errs.NotFound, err) || errs.ReasonOf(err) != pricing.ReasonVoucherNotFound {
		t.Fatalf("unknown voucher: %v", err)
	}
	c = cart()
	c.Event = "other"
	if _, err := svc.Quote(ctx, c); !errs.Is(errs.NotFound, err) {
		t.Fatalf("event without prices: %v", err)
	}
	svc.Clock = func() time.Time { return t0.Add(-2 * time.Hour) }
	if _, err := svc.Quote(ctx, cart()); !errs.Is(errs.Forbidden, err) || errs.ReasonOf(err) != pricing.ReasonNotOnSale {
		t.Fatalf("before the on-sale: %v", err)
	}
	c = cart()
	c.Account = ""
	if _, err := svc.Quote(ctx, c); !errs.Is(errs.Invalid, err) {
		t.Fatalf("no account: %v", err)
	}
}

func TestReprice(t *testing.T) {
	ctx, s, svc, rec := setup(t)
	q, err := svc.Quote(ctx, cart())
	if err != nil {
		t.Fatal(err)
	}
	hot := pricing.Demand{Sold: 850, Capacity: 1000, HoldsPerMinute: 150} // ×1.5: to the ceiling
	var versions []int64
	for i := range 10 {
		changed, err := svc.Reprice(ctx, "arena-concert", hot, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			break
		}
		r, err := s.Rules(ctx, "arena-concert")
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, r.Version)
	}
	// floor: 20000 → 22000 → … → 30000 in five steps of $20.
	if !reflect.DeepEqual(versions, []int64{2, 3, 4, 5, 6}) {
		t.Fatalf("versions %v", versions)
	}
	r, _ := s.Rules(ctx, "arena-concert")
	if r.Zones["floor"] != 30000 || r.Zones["balcony"] != 15000 {
		t.Fatalf("zones %v", r.Zones)
	}
	evs := rec.events()
	if len(evs) != 8 { // floor 5 steps, balcony 3 (to its ceiling of 15000)
		t.Fatalf("%d events: %+v", len(evs), evs)
	}
	ids := map[string]bool{}
	for _, ev := range evs {
		if ids[ev.ID] || ev.Event != "arena-concert" || ev.New.Amount <= ev.Old.Amount || ev.New.Amount-ev.Old.Amount > 2000 ||
			ev.Reason == "" || ev.RulesVersion < 2 {
			t.Fatalf("event %+v", ev)
		}
		ids[ev.ID] = true
	}
	// The quote made before keeps its prices.
	if got, err := s.Quote(ctx, q.ID); err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("quote after repricing: %+v, %v", got, err)
	}
	// A new one has the new prices.
	q2, err := svc.Quote(ctx, cart())
	if err != nil || q2.Total.Amount != 60250 || q2.RulesVersion != 6 {
		t.Fatalf("quote after repricing: %+v, %v", q2, err)
	}
}

// Two services repricing one event at once write each version once, and
// each change is published once.
func TestRepriceConcurrent(t *testing.T) {
	ctx, s, a, rec := setup(t)
	b := &pricing.Service{Store: s, Events: rec}
	hot := pricing.Demand{Sold: 1000, Capacity: 1000}
	var wg sync.WaitGroup
	for _, svc := range []*pricing.Service{a, b} {
		wg.Go(func() {
			for range 10 {
				if _, err := svc.Reprice(ctx, "arena-concert", hot, t0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	r, err := s.Rules(ctx, "arena-concert")
	if err != nil || r.Zones["floor"] != 25000 {
		t.Fatalf("rules %+v, %v", r, err)
	}
	ids := map[string]bool{}
	for _, ev := range rec.events() {
		if ids[ev.ID] {
			t.Fatalf("event %s published twice", ev.ID)
		}
		ids[ev.ID] = true
	}
	if len(ids) != 3+2 { // floor 20000→22000→24000→25000, balcony 10000→12000→12500
		t.Fatalf("%d events", len(ids))
	}
}

func TestRepriceStatic(t *testing.T) {
	ctx, s, svc, rec := setup(t)
	r := testRules()
	r.Version, r.Dynamic = 2, nil
	if err := s.PutRules(ctx, r); err != nil {
		t.Fatal(err)
	}
	changed, err := svc.Reprice(ctx, "arena-concert", pricing.Demand{Sold: 1000, Capacity: 1000}, t0)
	if changed || err != nil || len(rec.events()) != 0 {
		t.Fatalf("static prices: %v, %v", changed, err)
	}
	if _, err := svc.Reprice(ctx, "nothing", pricing.Demand{}, t0); !errs.Is(errs.NotFound, err) {
		t.Fatalf("no price list: %v", err)
	}
	if _, err := svc.Reprice(ctx, "arena-concert", pricing.Demand{Sold: 2, Capacity: 1}, t0); !errs.Is(errs.Invalid, err) {
		t.Fatalf("bad demand: %v", err)
	}
	svc.Events = nil
	if _, err := svc.Reprice(ctx, "arena-concert", pricing.Demand{}, t0); err == nil {
		t.Fatal("Reprice without a publisher")
	}
}

// A change whose event could not be published is written all the same,
// and published with the next Reprice of the event.
func TestRepricePublishFails(t *testing.T) {
	ctx, s, svc, rec := setup(t)
	rec.fail = true
	hot := pricing.Demand{Sold: 1000, Capacity: 1000}
	changed, err := svc.Reprice(ctx, "arena-concert", hot, t0)
	if !changed || !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Reprice with the publisher down: %v, %v", changed, err)
	}
	if r, _ := s.Rules(ctx, "arena-concert"); r.Version != 2 {
		t.Fatalf("version %d", r.Version)
	}
	// Still down: the next Reprice fails before writing anything.
	if changed, err := svc.Reprice(ctx, "arena-concert", hot, t0); changed || !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Reprice still down: %v, %v", changed, err)
	}
	if r, _ := s.Rules(ctx, "arena-concert"); r.Version != 2 {
		t.Fatalf("version %d", r.Version)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	changed, err = svc.Reprice(ctx, "arena-concert", hot, t0)
	if !changed || err != nil {
		t.Fatalf("Reprice back up: %v, %v", changed, err)
	}
	var versions []int64
	for _, ev := range rec.events() {
		versions = append(versions, ev.RulesVersion)
	}
	if !reflect.DeepEqual(versions, []int64{2, 2, 3, 3}) {
		t.Fatalf("published versions %v", versions)
	}
}
