// Package pricingtest is the contract suite of pricing.Store: every
// implementation runs it (the embedded natskv store and the PostgreSQL
// store), so that they behave the same to the code above them. Its
// concurrency tests are the point: a voucher of 100 uses redeemed by
// 1,000 orders at once is redeemed exactly 100 times, on any store.
package pricingtest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/pricing"
)

// Run runs the suite. newStore returns an empty store for each subtest;
// stores are used from many goroutines at once.
func Run(t *testing.T, newStore func(t *testing.T) pricing.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, pricing.Store)
	}{
		{"RulesRoundTrip", testRulesRoundTrip},
		{"RulesVersions", testRulesVersions},
		{"RulesConcurrentVersions", testRulesConcurrentVersions},
		{"RulesInvalid", testRulesInvalid},
		{"RulesNotFound", testRulesNotFound},
		{"Voucher", testVoucher},
		{"VoucherInvalid", testVoucherInvalid},
		{"Quote", testQuote},
		{"QuoteCreateOnly", testQuoteCreateOnly},
		{"QuoteConcurrentCreate", testQuoteConcurrentCreate},
		{"QuoteInvalid", testQuoteInvalid},
		{"QuotePurge", testQuotePurge},
		{"RedeemConcurrent", testRedeemConcurrent},
		{"RedeemAccountLimitConcurrent", testRedeemAccountLimitConcurrent},
		{"RedeemUnlimitedAccountLimit", testRedeemUnlimitedAccountLimit},
		{"RedeemIdempotent", testRedeemIdempotent},
		{"RedeemSameOrderConcurrent", testRedeemSameOrderConcurrent},
		{"Unredeem", testUnredeem},
		{"UnredeemAccount", testUnredeemAccount},
		{"RedeemWindow", testRedeemWindow},
		{"RedeemLoweredLimit", testRedeemLoweredLimit},
		{"RedeemRefused", testRedeemRefused},
		{"AddOnsConcurrent", testAddOnsConcurrent},
		{"AddOnsAllOrNone", testAddOnsAllOrNone},
		{"AddOnsConcurrentMixed", testAddOnsConcurrentMixed},
		{"AddOnsIdempotent", testAddOnsIdempotent},
		{"AddOnsPerEvent", testAddOnsPerEvent},
		{"AddOnsInvalid", testAddOnsInvalid},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// t0 has nanoseconds and a zone, so that the stores' normalization shows.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("error %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("error %v has reason %q, want %q", err, errs.ReasonOf(err), reason)
	}
}

// mustEqual compares by value and by JSON, to show the difference.
func mustEqual[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got  %s\nwant %s", g, w)
	}
}

// rules is a price list with every field set.
func rules(event string, version int64) pricing.Rules {
	return pricing.Rules{Event: event, Version: version, Currency: "EUR",
		Zones: map[string]int64{"floor": 18900, "balcony": 7550},
		Fees:  pricing.Fees{PerTicket: 350, PerOrder: 99},
		Tax:   pricing.Tax{Region: "FR", RateBP: 2000, Inclusive: true},
		AddOns: []pricing.AddOn{{ID: "parking", Name: "Parking ✓", Price: 1500, Capacity: 300, MaxPerOrder: 2},
			{ID: "tee", Name: "T-shirt", Price: 2500, Capacity: 50, MaxPerOrder: 5}},
		Dynamic: &pricing.Dynamic{Enabled: true, Base: map[string]int64{"floor": 18900, "balcony": 7550},
			SellThrough: []pricing.SellThroughStep{{AtBP: 8000, MultiplierBP: 12000}},
			Demand:      []pricing.DemandStep{{AtPerMinute: 50, MultiplierBP: 11000}},
			Floor:       pricing.Bound{BP: 9000}, Ceiling: pricing.Bound{Amount: 30000}, MaxStep: pricing.Bound{BP: 500}},
		OnSaleAt: t0,
	}
}

func normalized[T interface{ Normalize() (T, error) }](t *testing.T, v T) T {
	t.Helper()
	n, err := v.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func putRules(t *testing.T, s pricing.Store, r pricing.Rules) {
	t.Helper()
	if err := s.PutRules(ctx(t), r); err != nil {
		t.Fatalf("PutRules %s v%d: %v", r.Event, r.Version, err)
	}
}

func getRules(t *testing.T, s pricing.Store, event string) pricing.Rules {
	t.Helper()
	r, err := s.Rules(ctx(t), event)
	if err != nil {
		t.Fatalf("Rules(%s): %v", event, err)
	}
	return r
}

func testRulesRoundTrip(t *testing.T, s pricing.Store) {
	r := rules("arena-concert", 1)
	putRules(t, s, r)
	got := getRules(t, s, "arena-concert")
	mustEqual(t, got, normalized(t, r))
	if got.OnSaleAt.Location() != time.UTC {
		t.Fatalf("on-sale time in %v", got.OnSaleAt.Location())
	}

	// A repriced version, with its record; and a static minimal one.
	next, changed, err := pricing.Repriced(got, pricing.Demand{Sold: 90, Capacity: 100, HoldsPerMinute: 60}, t0.Add(time.Hour))
	if err != nil || !changed {
		t.Fatalf("Repriced: %v, %v", changed, err)
	}
	putRules(t, s, next)
	mustEqual(t, getRules(t, s, "arena-concert"), normalized(t, next))

	minimal := pricing.Rules{Event: "small", Version: 1, Currency: "JPY", Zones: map[string]int64{"ga": 3000}, OnSaleAt: t0}
	putRules(t, s, minimal)
	mustEqual(t, getRules(t, s, "small"), normalized(t, minimal))
}

func testRulesVersions(t *testing.T, s pricing.Store) {
	c := ctx(t)
	wantKind(t, s.PutRules(c, rules("e", 2)), errs.Conflict, pricing.ReasonVersionMismatch)
	if _, err := s.Rules(c, "e"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("after a refused first write: %v", err)
	}
	putRules(t, s, rules("e", 1))
	wantKind(t, s.PutRules(c, rules("e", 1)), errs.Conflict, pricing.ReasonVersionMismatch)
	wantKind(t, s.PutRules(c, rules("e", 3)), errs.Conflict, pricing.ReasonVersionMismatch)
	r2 := rules("e", 2)
	r2.Zones["floor"] = 20000
	r2.Dynamic = nil
	putRules(t, s, r2)
	mustEqual(t, getRules(t, s, "e"), normalized(t, r2))
	wantKind(t, s.PutRules(c, rules("e", 2)), errs.Conflict, pricing.ReasonVersionMismatch)
	putRules(t, s, rules("e", 3))
	if got := getRules(t, s, "e"); got.Version != 3 {
		t.Fatalf("version %d", got.Version)
	}
}

// Of concurrent writes of one version exactly one lands, and it is the
// one read back.
func testRulesConcurrentVersions(t *testing.T, s pricing.Store) {
	putRules(t, s, rules("e", 1))
	const n = 20
	var wg sync.WaitGroup
	var won atomic.Int64
	errc := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r := rules("e", 2)
			r.Dynamic = nil
			r.Zones["floor"] = int64(10000 + i)
			err := s.PutRules(ctx(t), r)
			switch {
			case err == nil:
				won.Store(int64(10000 + i))
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == pricing.ReasonVersionMismatch:
				errc <- nil
			default:
				errc <- err
			}
		})
	}
	wg.Wait()
	close(errc)
	lost := 0
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
		lost++
	}
	if lost != n-1 {
		t.Fatalf("%d of %d concurrent writes of version 2 succeeded", n-lost, n)
	}
	if got := getRules(t, s, "e"); got.Version != 2 || got.Zones["floor"] != won.Load() {
		t.Fatalf("read back version %d floor %d, the winner wrote %d", got.Version, got.Zones["floor"], won.Load())
	}
}

func testRulesInvalid(t *testing.T, s pricing.Store) {
	r := rules("e", 1)
	r.Currency = "euro"
	wantKind(t, s.PutRules(ctx(t), r), errs.Invalid, "")
	if _, err := s.Rules(ctx(t), "e"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("after an invalid write: %v", err)
	}
}

func testRulesNotFound(t *testing.T, s pricing.Store) {
	for _, event := range []string{"nothing", "Not-An-Id", "", "a.b", "*", ">"} {
		if _, err := s.Rules(ctx(t), event); !errs.Is(errs.NotFound, err) {
			t.Errorf("Rules(%q): %v", event, err)
		}
	}
}

func voucher(code string, maxUses, maxPerAccount int) pricing.Voucher {
	return pricing.Voucher{Code: code, PercentBP: 1000, MaxUses: maxUses, MaxPerAccount: maxPerAccount}
}

func putVoucher(t *testing.T, s pricing.Store, v pricing.Voucher) {
	t.Helper()
	if err := s.PutVoucher(ctx(t), v); err != nil {
		t.Fatalf("PutVoucher %s: %v", v.Code, err)
	}
}

func testVoucher(t *testing.T, s pricing.Store) {
	c := ctx(t)
	v := pricing.Voucher{Code: " fan-club_26 ", Presale: true, Amount: 500, Currency: "EUR", Events: []string{"arena-concert", "other"},
		Zones: []string{"floor"}, ValidFrom: t0, ValidUntil: t0.Add(24 * time.Hour), MaxUses: 100, MaxPerAccount: 2}
	putVoucher(t, s, v)
	want := normalized(t, v)
	for _, code := range []string{"FAN-CLUB_26", "fan-club_26", " Fan-Club_26"} {
		got, err := s.Voucher(c, code)
		if err != nil {
			t.Fatalf("Voucher(%q): %v", code, err)
		}
		mustEqual(t, got, want)
	}
	// Replacing it.
	v2 := voucher("FAN-CLUB_26", 5, 0)
	putVoucher(t, s, v2)
	got, err := s.Voucher(c, "FAN-CLUB_26")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, normalized(t, v2))

	for _, code := range []string{"NOPE", "no spaces", "", "A.B", "*", ">"} {
		_, err := s.Voucher(c, code)
		wantKind(t, err, errs.NotFound, pricing.ReasonVoucherNotFound)
	}
}

func testVoucherInvalid(t *testing.T, s pricing.Store) {
	wantKind(t, s.PutVoucher(ctx(t), pricing.Voucher{Code: "NONE"}), errs.Invalid, "")
	_, err := s.Voucher(ctx(t), "NONE")
	wantKind(t, err, errs.NotFound, "")
}

// quote is a quote as the Service makes them, with a voucher, add-ons and
// an included tax.
func quote(t *testing.T, id string) pricing.Quote {
	t.Helper()
	c := pricing.Cart{Event: "arena-concert", Account: "u_buyer", Holds: []string{"arena-concert.0:h:0123456789abcdef", "arena-concert.1:h:fedcba9876543210"},
		Tickets: []pricing.Item{{Zone: "floor", Quantity: 2}, {Zone: "balcony", Quantity: 1}},
		AddOns:  []pricing.AddOnItem{{ID: "parking", Quantity: 1}}, Voucher: "ten", ExpiresAt: t0.Add(10 * time.Minute)}
	v := voucher("TEN", 0, 0)
	q, err := pricing.Price(rules("arena-concert", 4), c, &v, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	q.ID = id
	return q
}

func testQuote(t *testing.T, s pricing.Store) {
	c := ctx(t)
	q := quote(t, pricing.NewQuoteID())
	if err := s.PutQuote(c, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.Quote(c, q.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, q) // Price's quote is normalized already
	if got.CreatedAt.Location() != time.UTC || got.ExpiresAt.Location() != time.UTC {
		t.Fatal("times not in UTC")
	}
	for _, id := range []string{pricing.NewQuoteID(), "", "q.1", "*", ">"} {
		_, err := s.Quote(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
}

// PurgeQuotes removes the quotes expired before its time, and only them.
func testQuotePurge(t *testing.T, s pricing.Store) {
	c := ctx(t)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var old, live []pricing.Quote
	for i := range 3 {
		q := quote(t, pricing.NewQuoteID())
		q.CreatedAt, q.ExpiresAt = now.Add(-4*time.Hour), now.Add(-time.Duration(i+1)*time.Hour)
		old = append(old, q)
		q = quote(t, pricing.NewQuoteID())
		q.CreatedAt, q.ExpiresAt = now.Add(-time.Minute), now.Add(time.Duration(i+1)*time.Minute)
		live = append(live, q)
	}
	for _, q := range append(slices.Clone(old), live...) {
		if err := s.PutQuote(c, q); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeQuotes(c, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(old) {
		t.Fatalf("purged %d quotes, want %d", n, len(old))
	}
	for _, q := range old {
		_, err := s.Quote(c, q.ID)
		wantKind(t, err, errs.NotFound, "")
	}
	for _, q := range live {
		if _, err := s.Quote(c, q.ID); err != nil {
			t.Fatalf("a live quote: %v", err)
		}
	}
	if n, err := s.PurgeQuotes(c, now); err != nil || n != 0 {
		t.Fatalf("a second purge: %d, %v", n, err)
	}
}

// A quote is never overwritten.
func testQuoteCreateOnly(t *testing.T, s pricing.Store) {
	c := ctx(t)
	q := quote(t, "q_fixed")
	if err := s.PutQuote(c, q); err != nil {
		t.Fatal(err)
	}
	other := quote(t, "q_fixed")
	other.Account = "u_other"
	wantKind(t, s.PutQuote(c, other), errs.Conflict, pricing.ReasonQuoteExists)
	wantKind(t, s.PutQuote(c, q), errs.Conflict, pricing.ReasonQuoteExists)
	got, err := s.Quote(c, "q_fixed")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, q)
}

func testQuoteConcurrentCreate(t *testing.T, s pricing.Store) {
	const n = 20
	var wg sync.WaitGroup
	var ok atomic.Int64
	var winner atomic.Value
	for i := range n {
		wg.Go(func() {
			q := quote(t, "q_race")
			q.Account = fmt.Sprintf("u_%d", i)
			err := s.PutQuote(ctx(t), q)
			switch {
			case err == nil:
				ok.Add(1)
				winner.Store(q)
			case !errs.Is(errs.Conflict, err):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent creates of one quote succeeded", ok.Load())
	}
	got, err := s.Quote(ctx(t), "q_race")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, winner.Load().(pricing.Quote))
}

func testQuoteInvalid(t *testing.T, s pricing.Store) {
	q := quote(t, "q_bad")
	q.Total.Amount++
	wantKind(t, s.PutQuote(ctx(t), q), errs.Invalid, "")
	q = quote(t, "bad id")
	wantKind(t, s.PutQuote(ctx(t), q), errs.Invalid, "")
	_, err := s.Quote(ctx(t), "q_bad")
	wantKind(t, err, errs.NotFound, "")
}

// redeemAll runs n redemptions at once, of order "o-<i>" by account(i),
// and returns how many succeeded per account and the refusals' reasons.
func redeemAll(t *testing.T, s pricing.Store, code string, n int, account func(int) string) (map[string]int, map[string]int) {
	t.Helper()
	var mu sync.Mutex
	ok, refused := map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			a := account(i)
			err := s.Redeem(ctx(t), code, a, fmt.Sprintf("o-%d", i), t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok[a]++
			case errs.Is(errs.Conflict, err):
				refused[errs.ReasonOf(err)]++
			default:
				t.Errorf("redeem %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, refused
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// 1,000 orders redeem a voucher of 100 uses at once: exactly 100 get it.
func testRedeemConcurrent(t *testing.T, s pricing.Store) {
	putVoucher(t, s, voucher("HUNDRED", 100, 0))
	ok, refused := redeemAll(t, s, "HUNDRED", 1000, func(i int) string { return fmt.Sprintf("u_%d", i) })
	if sum(ok) != 100 || refused[pricing.ReasonVoucherExhausted] != 900 {
		t.Fatalf("%d redemptions succeeded, refused %v; want 100 and 900 exhausted", sum(ok), refused)
	}
	err := s.Redeem(ctx(t), "HUNDRED", "u_late", "o-late", t0)
	wantKind(t, err, errs.Conflict, pricing.ReasonVoucherExhausted)
}

// 1,000 orders of 50 accounts redeem a voucher of 100 uses, 3 per
// account, at once: no account gets more than 3, and exactly 100 succeed
// (50 accounts could use 150).
func testRedeemAccountLimitConcurrent(t *testing.T, s pricing.Store) {
	putVoucher(t, s, voucher("CAPPED", 100, 3))
	ok, refused := redeemAll(t, s, "CAPPED", 1000, func(i int) string { return fmt.Sprintf("u_%d", i%50) })
	for a, n := range ok {
		if n > 3 {
			t.Fatalf("account %s redeemed %d times, at most 3 allowed", a, n)
		}
	}
	if sum(ok) != 100 || sum(refused) != 900 {
		t.Fatalf("%d succeeded, refused %v", sum(ok), refused)
	}
}

// Without a total limit, the per-account one holds under concurrency.
func testRedeemUnlimitedAccountLimit(t *testing.T, s pricing.Store) {
	putVoucher(t, s, voucher("TWOEACH", 0, 2))
	ok, refused := redeemAll(t, s, "TWOEACH", 100, func(i int) string { return fmt.Sprintf("u_%d", i%4) })
	if sum(ok) != 8 || refused[pricing.ReasonVoucherAccountLimit] != 92 {
		t.Fatalf("succeeded %v, refused %v; want 2 for each of 4 accounts", ok, refused)
	}
}

func testRedeemIdempotent(t *testing.T, s pricing.Store) {
	c := ctx(t)
	putVoucher(t, s, voucher("ONCE", 1, 0))
	for range 3 {
		if err := s.Redeem(c, "ONCE", "u_a", "o-1", t0); err != nil {
			t.Fatalf("redeeming again for the same order: %v", err)
		}
	}
	if err := s.Redeem(c, "once", "u_a", "o-1", t0); err != nil {
		t.Fatalf("redeeming with the code in lower case: %v", err)
	}
	wantKind(t, s.Redeem(c, "ONCE", "u_b", "o-2", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
	wantKind(t, s.Redeem(c, "ONCE", "u_b", "o-1", t0), errs.Mismatch, "")
}

// Concurrent redemptions for one order use the voucher once.
func testRedeemSameOrderConcurrent(t *testing.T, s pricing.Store) {
	putVoucher(t, s, voucher("FIVE", 5, 0))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := s.Redeem(ctx(t), "FIVE", "u_a", "o-same", t0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 4 {
		if err := s.Redeem(ctx(t), "FIVE", "u_b", fmt.Sprintf("o-%d", i), t0); err != nil {
			t.Fatalf("use %d of the 4 left: %v", i+2, err)
		}
	}
	wantKind(t, s.Redeem(ctx(t), "FIVE", "u_b", "o-4", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
}

func testUnredeem(t *testing.T, s pricing.Store) {
	c := ctx(t)
	putVoucher(t, s, voucher("SINGLE", 1, 0))
	if err := s.Redeem(c, "SINGLE", "u_a", "o-1", t0); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Redeem(c, "SINGLE", "u_b", "o-2", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
	for range 2 {
		if err := s.Unredeem(c, "single", "o-1"); err != nil {
			t.Fatalf("Unredeem: %v", err)
		}
	}
	if err := s.Redeem(c, "SINGLE", "u_b", "o-2", t0); err != nil {
		t.Fatalf("redeem after the use was freed: %v", err)
	}
	wantKind(t, s.Redeem(c, "SINGLE", "u_a", "o-1", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
	if err := s.Unredeem(c, "SINGLE", "o-never"); err != nil {
		t.Fatalf("Unredeem of an order without a redemption: %v", err)
	}
	wantKind(t, s.Unredeem(c, "NOSUCH", "o-1"), errs.NotFound, "")
	wantKind(t, s.Unredeem(c, "SINGLE", ""), errs.Invalid, "")
}

func testUnredeemAccount(t *testing.T, s pricing.Store) {
	c := ctx(t)
	putVoucher(t, s, voucher("PERACCT", 0, 1))
	if err := s.Redeem(c, "PERACCT", "u_a", "o-1", t0); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Redeem(c, "PERACCT", "u_a", "o-2", t0), errs.Conflict, pricing.ReasonVoucherAccountLimit)
	if err := s.Redeem(c, "PERACCT", "u_b", "o-3", t0); err != nil {
		t.Fatalf("another account: %v", err)
	}
	if err := s.Unredeem(c, "PERACCT", "o-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Redeem(c, "PERACCT", "u_a", "o-2", t0); err != nil {
		t.Fatalf("redeem after the account's use was freed: %v", err)
	}
}

func testRedeemWindow(t *testing.T, s pricing.Store) {
	c := ctx(t)
	v := voucher("WINDOW", 0, 0)
	from := t0.Truncate(time.Microsecond) // as stored
	v.ValidFrom, v.ValidUntil = from, from.Add(time.Hour)
	putVoucher(t, s, v)
	wantKind(t, s.Redeem(c, "WINDOW", "u_a", "o-1", from.Add(-time.Nanosecond)), errs.Forbidden, pricing.ReasonVoucherNotYetValid)
	wantKind(t, s.Redeem(c, "WINDOW", "u_a", "o-1", from.Add(time.Hour)), errs.Gone, pricing.ReasonVoucherExpired)
	if err := s.Redeem(c, "WINDOW", "u_a", "o-1", from.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	// Idempotent whatever the time says now.
	if err := s.Redeem(c, "WINDOW", "u_a", "o-1", from.Add(2*time.Hour)); err != nil {
		t.Fatalf("redeeming again after the window: %v", err)
	}
}

// Lowering a voucher's limit below its uses refuses further ones and
// cancels none.
func testRedeemLoweredLimit(t *testing.T, s pricing.Store) {
	c := ctx(t)
	putVoucher(t, s, voucher("LOWER", 5, 0))
	for i := range 3 {
		if err := s.Redeem(c, "LOWER", "u_a", fmt.Sprintf("o-%d", i), t0); err != nil {
			t.Fatal(err)
		}
	}
	putVoucher(t, s, voucher("LOWER", 2, 0))
	wantKind(t, s.Redeem(c, "LOWER", "u_a", "o-3", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
	if err := s.Redeem(c, "LOWER", "u_a", "o-0", t0); err != nil {
		t.Fatalf("an existing redemption: %v", err)
	}
	if err := s.Unredeem(c, "LOWER", "o-0"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Redeem(c, "LOWER", "u_a", "o-3", t0), errs.Conflict, pricing.ReasonVoucherExhausted)
	if err := s.Unredeem(c, "LOWER", "o-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Redeem(c, "LOWER", "u_a", "o-3", t0); err != nil {
		t.Fatalf("redeem once below the new limit: %v", err)
	}
}

func testRedeemRefused(t *testing.T, s pricing.Store) {
	c := ctx(t)
	putVoucher(t, s, voucher("REAL", 0, 0))
	wantKind(t, s.Redeem(c, "NOSUCH", "u_a", "o-1", t0), errs.NotFound, pricing.ReasonVoucherNotFound)
	wantKind(t, s.Redeem(c, "not a code", "u_a", "o-1", t0), errs.NotFound, pricing.ReasonVoucherNotFound)
	wantKind(t, s.Redeem(c, "REAL", "", "o-1", t0), errs.Invalid, "")
	wantKind(t, s.Redeem(c, "REAL", "u_a", "", t0), errs.Invalid, "")
	wantKind(t, s.Redeem(c, "REAL", "u a", "o-1", t0), errs.Invalid, "")
}

// reserveAll runs one reservation per element of items at once, for order
// "o-<i>", and returns the items of those that succeeded.
func reserveAll(t *testing.T, s pricing.Store, event string, items [][]pricing.AddOnItem, capacity map[string]int) [][]pricing.AddOnItem {
	t.Helper()
	var mu sync.Mutex
	var ok [][]pricing.AddOnItem
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, it := range items {
		wg.Go(func() {
			<-start
			err := s.ReserveAddOns(ctx(t), event, fmt.Sprintf("o-%d", i), it, capacity)
			switch {
			case err == nil:
				mu.Lock()
				ok = append(ok, it)
				mu.Unlock()
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == pricing.ReasonAddOnSoldOut:
			default:
				t.Errorf("reserve %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return ok
}

func testAddOnsConcurrent(t *testing.T, s pricing.Store) {
	items := make([][]pricing.AddOnItem, 200)
	for i := range items {
		items[i] = []pricing.AddOnItem{{ID: "parking", Quantity: 1}}
	}
	ok := reserveAll(t, s, "e", items, map[string]int{"parking": 30})
	if len(ok) != 30 {
		t.Fatalf("%d of 200 reservations of 1 of 30 succeeded", len(ok))
	}
	err := s.ReserveAddOns(ctx(t), "e", "o-late", []pricing.AddOnItem{{ID: "parking", Quantity: 1}}, map[string]int{"parking": 30})
	wantKind(t, err, errs.Conflict, pricing.ReasonAddOnSoldOut)
	// A larger capacity (the price list changed) makes room.
	if err := s.ReserveAddOns(ctx(t), "e", "o-late", []pricing.AddOnItem{{ID: "parking", Quantity: 1}}, map[string]int{"parking": 31}); err != nil {
		t.Fatal(err)
	}
}

// A reservation that does not fit takes nothing.
func testAddOnsAllOrNone(t *testing.T, s pricing.Store) {
	c := ctx(t)
	caps := map[string]int{"parking": 5, "tee": 1}
	if err := s.ReserveAddOns(c, "e", "o-1", []pricing.AddOnItem{{ID: "tee", Quantity: 1}}, caps); err != nil {
		t.Fatal(err)
	}
	err := s.ReserveAddOns(c, "e", "o-2", []pricing.AddOnItem{{ID: "parking", Quantity: 2}, {ID: "tee", Quantity: 1}}, caps)
	wantKind(t, err, errs.Conflict, pricing.ReasonAddOnSoldOut)
	if err := s.ReserveAddOns(c, "e", "o-3", []pricing.AddOnItem{{ID: "parking", Quantity: 5}}, caps); err != nil {
		t.Fatalf("the failed reservation took parking: %v", err)
	}
	// o-2 has no reservation: it may try other items.
	if err := s.ReserveAddOns(c, "e", "o-2", nil, caps); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseAddOns(c, "e", "o-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReserveAddOns(c, "e", "o-2", []pricing.AddOnItem{{ID: "tee", Quantity: 1}}, caps); err != nil {
		t.Fatal(err)
	}
}

// Concurrent reservations of several add-ons each never exceed any
// capacity.
func testAddOnsConcurrentMixed(t *testing.T, s pricing.Store) {
	caps := map[string]int{"a": 20, "b": 15, "c": 10}
	ids := []string{"a", "b", "c"}
	items := make([][]pricing.AddOnItem, 150)
	for i := range items {
		for k, id := range ids {
			if (i>>k)&1 == 1 || k == i%3 {
				items[i] = append(items[i], pricing.AddOnItem{ID: id, Quantity: 1 + (i/8)%3})
			}
		}
	}
	ok := reserveAll(t, s, "e", items, caps)
	used := map[string]int{}
	for _, it := range ok {
		for _, x := range it {
			used[x.ID] += x.Quantity
		}
	}
	for id, n := range used {
		if n > caps[id] {
			t.Fatalf("%d of %s reserved, capacity %d", n, id, caps[id])
		}
	}
	if len(ok) == 0 {
		t.Fatal("nothing reserved")
	}
	// What is left is exactly capacity − used: a reservation of that
	// much fits, one more does not.
	for _, id := range ids {
		if left := caps[id] - used[id]; left > 0 {
			if err := s.ReserveAddOns(ctx(t), "e", "fill-"+id, []pricing.AddOnItem{{ID: id, Quantity: left}}, caps); err != nil {
				t.Fatalf("filling %s with %d: %v", id, left, err)
			}
		}
		err := s.ReserveAddOns(ctx(t), "e", "over-"+id, []pricing.AddOnItem{{ID: id, Quantity: 1}}, caps)
		wantKind(t, err, errs.Conflict, pricing.ReasonAddOnSoldOut)
	}
}

func testAddOnsIdempotent(t *testing.T, s pricing.Store) {
	c := ctx(t)
	caps := map[string]int{"parking": 3, "tee": 10}
	two := []pricing.AddOnItem{{ID: "tee", Quantity: 1}, {ID: "parking", Quantity: 2}}
	for range 3 {
		if err := s.ReserveAddOns(c, "e", "o-1", two, caps); err != nil {
			t.Fatal(err)
		}
	}
	// The same items in another order are the same reservation.
	if err := s.ReserveAddOns(c, "e", "o-1", []pricing.AddOnItem{two[1], two[0]}, caps); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.ReserveAddOns(c, "e", "o-1", two[:1], caps), errs.Mismatch, "")
	if err := s.ReserveAddOns(c, "e", "o-2", []pricing.AddOnItem{{ID: "parking", Quantity: 1}}, caps); err != nil {
		t.Fatalf("o-1 was counted more than once: %v", err)
	}
	wantKind(t, s.ReserveAddOns(c, "e", "o-3", []pricing.AddOnItem{{ID: "parking", Quantity: 1}}, caps), errs.Conflict, pricing.ReasonAddOnSoldOut)
	for range 2 {
		if err := s.ReleaseAddOns(c, "e", "o-1"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReserveAddOns(c, "e", "o-3", []pricing.AddOnItem{{ID: "parking", Quantity: 2}}, caps); err != nil {
		t.Fatalf("after the release: %v", err)
	}
	if err := s.ReleaseAddOns(c, "e", "o-never"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseAddOns(c, "never", "o-never"); err != nil {
		t.Fatal(err)
	}
}

func testAddOnsPerEvent(t *testing.T, s pricing.Store) {
	c := ctx(t)
	caps := map[string]int{"parking": 1}
	one := []pricing.AddOnItem{{ID: "parking", Quantity: 1}}
	for _, e := range []string{"e1", "e2"} {
		if err := s.ReserveAddOns(c, e, "o-1", one, caps); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
	}
	if err := s.ReleaseAddOns(c, "e1", "o-1"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.ReserveAddOns(c, "e2", "o-2", one, caps), errs.Conflict, pricing.ReasonAddOnSoldOut)
	if err := s.ReserveAddOns(c, "e1", "o-2", one, caps); err != nil {
		t.Fatal(err)
	}
}

func testAddOnsInvalid(t *testing.T, s pricing.Store) {
	c := ctx(t)
	one := []pricing.AddOnItem{{ID: "parking", Quantity: 1}}
	for name, err := range map[string]error{
		"no capacity":    s.ReserveAddOns(c, "e", "o-1", one, map[string]int{"tee": 1}),
		"capacity 0":     s.ReserveAddOns(c, "e", "o-1", one, map[string]int{"parking": 0}),
		"quantity 0":     s.ReserveAddOns(c, "e", "o-1", []pricing.AddOnItem{{ID: "parking"}}, map[string]int{"parking": 1}),
		"twice":          s.ReserveAddOns(c, "e", "o-1", append(one, one...), map[string]int{"parking": 5}),
		"event":          s.ReserveAddOns(c, "E", "o-1", one, map[string]int{"parking": 1}),
		"order":          s.ReserveAddOns(c, "e", "", one, map[string]int{"parking": 1}),
		"release event":  s.ReleaseAddOns(c, "E", "o-1"),
		"release order":  s.ReleaseAddOns(c, "e", "o 1"),
		"unredeem order": s.Unredeem(c, "CODE", "o 1"),
	} {
		if !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	// Nothing was reserved by them.
	if err := s.ReserveAddOns(c, "e", "o-1", one, map[string]int{"parking": 1}); err != nil {
		t.Fatal(err)
	}
}

func testCancelledContext(t *testing.T, s pricing.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range map[string]error{
		"PutRules":      s.PutRules(c, rules("e", 1)),
		"PutVoucher":    s.PutVoucher(c, voucher("TEN", 0, 0)),
		"PutQuote":      s.PutQuote(c, quote(t, "q_cancelled")),
		"Redeem":        s.Redeem(c, "TEN", "u_a", "o-1", t0),
		"ReserveAddOns": s.ReserveAddOns(c, "e", "o-1", []pricing.AddOnItem{{ID: "p", Quantity: 1}}, map[string]int{"p": 1}),
	} {
		if !errs.Is(errs.Unavailable, err) {
			t.Errorf("%s with a cancelled context: %v, want unavailable", name, err)
		}
	}
}
