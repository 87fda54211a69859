// Package paymenttest is the contract suite of payment.Ledger: every
// implementation runs it (the embedded natskv store and the PostgreSQL
// store), so that they behave the same to the payment service.
package paymenttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Run runs the suite. newLedger returns an empty ledger for each subtest;
// ledgers are used from many goroutines at once.
func Run(t *testing.T, newLedger func(t *testing.T) payment.Ledger) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, payment.Ledger)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"NotFound", testNotFound},
		{"FnError", testFnError},
		{"NoChange", testNoChange},
		{"Invalid", testInvalid},
		{"AppendOnly", testAppendOnly},
		{"DuplicateEntry", testDuplicateEntry},
		{"Invariants", testInvariants},
		{"SkippingApply", testSkippingApply},
		{"Lifecycle", testLifecycle},
		{"ConcurrentCapture", testConcurrentCapture},
		{"ConcurrentRefunds", testConcurrentRefunds},
		{"ConcurrentCreate", testConcurrentCreate},
		{"UpdateFrom", testUpdateFrom},
		{"UpdateFromStale", testUpdateFromStale},
		{"UpdateFromConcurrent", testUpdateFromConcurrent},
		{"SeenEvent", testSeenEvent},
		{"SeenEventConcurrent", testSeenEventConcurrent},
		{"List", testList},
		{"ListInvalid", testListInvalid},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newLedger(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// at is a time with nanoseconds and a zone, so that the stores'
// normalization shows.
func at(minutes int) time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600)).Add(time.Duration(minutes) * time.Minute)
}

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("error %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("error %v has reason %q, want %q", err, errs.ReasonOf(err), reason)
	}
}

// create is an Update function creating a pending payment of amount EUR
// (currency in lower case, as the gateway writes it).
func create(event string, amount int64) func(*payment.Payment, bool) error {
	return func(p *payment.Payment, exists bool) error {
		if exists {
			return nil
		}
		p.Event, p.Account, p.IntentID = event, "u_1", "pi_"+p.OrderID
		p.Amount, p.Currency, p.Status = amount, "eur", payment.StatusPending
		return nil
	}
}

// apply is an Update function applying entries.
func apply(es ...payment.Entry) func(*payment.Payment, bool) error {
	return func(p *payment.Payment, exists bool) error {
		if !exists {
			return errs.E(errs.NotFound, "no payment")
		}
		for _, e := range es {
			if _, err := p.Apply(e); err != nil {
				return err
			}
		}
		return nil
	}
}

func capture(id string, amount int64, minute int) payment.Entry {
	return payment.Entry{ID: id, Kind: payment.EntryCapture, Amount: amount, At: at(minute), Source: payment.SourceWebhook}
}

func refund(id string, amount int64, minute int) payment.Entry {
	return payment.Entry{ID: id, Kind: payment.EntryRefund, Amount: amount, At: at(minute), Source: payment.SourceSaga}
}

func update(t *testing.T, l payment.Ledger, id string, fn func(*payment.Payment, bool) error) payment.Payment {
	t.Helper()
	p, err := l.Update(ctx(t), id, fn)
	if err != nil {
		t.Fatalf("Update %s: %v", id, err)
	}
	return p
}

func get(t *testing.T, l payment.Ledger, id string) payment.Payment {
	t.Helper()
	p, err := l.Get(ctx(t), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return p
}

// mustEqual compares payments by their JSON and checks that every time is
// in UTC with at most microseconds.
func mustEqual(t *testing.T, got, want payment.Payment) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("got  %s\nwant %s", g, w)
	}
	ts := []time.Time{got.Created, got.Updated}
	for _, e := range got.Entries {
		ts = append(ts, e.At)
	}
	for _, tm := range ts {
		if tm.Location() != time.UTC || tm.Nanosecond()%1000 != 0 {
			t.Fatalf("time %v of %s is not UTC microseconds", tm, g)
		}
	}
}

func testCreateAndGet(t *testing.T, l payment.Ledger) {
	before := time.Now().Add(-time.Second)
	p := update(t, l, "o1", func(p *payment.Payment, exists bool) error {
		if exists || p.OrderID != "o1" || p.Version != 0 || len(p.Entries) != 0 {
			return fmt.Errorf("a new payment reads as %+v, exists %v", p, exists)
		}
		p.Event, p.Account, p.IntentID = "ev_1", "u_1", "pi_123"
		p.Amount, p.Currency, p.Status = 4200, "eur", payment.StatusRequiresAction
		p.RedirectURL = "https://psp.example/3ds/pi_123?x=1&y=ü"
		p.Decline = &payment.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "Your card has insufficient funds."}
		p.Card = &payment.CardSummary{Brand: payment.BrandVisa, Last4: "4242", Fingerprint: "0123456789abcdef0123456789abcdef"}
		p.Attempts = 2
		return nil
	})
	if p.Version <= 0 || p.Currency != "EUR" || p.Created.Before(before) || !p.Created.Equal(p.Updated) || p.Entries != nil {
		t.Fatalf("created %+v", p)
	}
	mustEqual(t, get(t, l, "o1"), p)

	// Captured: the entry, the totals and the status.
	q := update(t, l, "o1", apply(capture("ch_1", 4200, 1)))
	if q.Version <= p.Version || !q.Created.Equal(p.Created) || q.Updated.Before(p.Updated) || q.Captured != 4200 ||
		q.Status != payment.StatusSucceeded || q.RedirectURL != "" || len(q.Entries) != 1 {
		t.Fatalf("after capture %+v", q)
	}
	e := q.Entries[0]
	if e.ID != "ch_1" || e.Kind != payment.EntryCapture || e.Amount != 4200 || e.Currency != "EUR" ||
		!e.At.Equal(at(1).Truncate(time.Microsecond)) || e.Source != payment.SourceWebhook {
		t.Fatalf("entry %+v", e)
	}
	mustEqual(t, get(t, l, "o1"), q)
}

func testNotFound(t *testing.T, l payment.Ledger) {
	for _, id := range []string{"none", "", "a.b", "a*", "a>", "-x", string(make([]byte, 65))} {
		_, err := l.Get(ctx(t), id)
		wantKind(t, err, errs.NotFound, "")
	}
	_, err := l.Update(ctx(t), "a.b", create("ev", 1))
	wantKind(t, err, errs.Invalid, "")
}

func testFnError(t *testing.T, l payment.Ledger) {
	mine := errors.New("mine")
	_, err := l.Update(ctx(t), "o1", func(p *payment.Payment, exists bool) error {
		p.Amount, p.Currency, p.Status = 1, "EUR", payment.StatusPending
		return mine
	})
	if err != mine {
		t.Fatalf("Update returned %v, want fn's error as it is", err)
	}
	_, err = l.Get(ctx(t), "o1")
	wantKind(t, err, errs.NotFound, "")
	p := update(t, l, "o1", create("ev", 100))
	_, err = l.Update(ctx(t), "o1", func(p *payment.Payment, _ bool) error {
		p.Attempts = 7
		return mine
	})
	if err != mine {
		t.Fatalf("Update returned %v", err)
	}
	mustEqual(t, get(t, l, "o1"), p)
}

func testNoChange(t *testing.T, l payment.Ledger) {
	_, err := l.Update(ctx(t), "o1", func(*payment.Payment, bool) error { return nil })
	wantKind(t, err, errs.NotFound, "")
	_, err = l.Get(ctx(t), "o1")
	wantKind(t, err, errs.NotFound, "")
	p := update(t, l, "o1", create("ev", 100))
	again := update(t, l, "o1", create("ev", 100)) // exists: does nothing
	mustEqual(t, again, p)
	// Setting the currency in another case changes nothing either.
	again = update(t, l, "o1", func(p *payment.Payment, _ bool) error { p.Currency = "eur"; return nil })
	mustEqual(t, again, p)
}

func testInvalid(t *testing.T, l payment.Ledger) {
	for name, fn := range map[string]func(*payment.Payment, bool) error{
		"no amount": func(p *payment.Payment, _ bool) error {
			p.Currency, p.Status = "EUR", payment.StatusPending
			return nil
		},
		"currency": func(p *payment.Payment, _ bool) error {
			p.Amount, p.Currency, p.Status = 1, "EURO", payment.StatusPending
			return nil
		},
		"status":    func(p *payment.Payment, _ bool) error { p.Amount, p.Currency, p.Status = 1, "EUR", "paid"; return nil },
		"no status": func(p *payment.Payment, _ bool) error { p.Amount, p.Currency = 1, "EUR"; return nil },
		"order id":  func(p *payment.Payment, _ bool) error { p.OrderID = "o2"; return nil },
		"event":     func(p *payment.Payment, _ bool) error { create("ev.1", 1)(p, false); return nil },
		"intent":    func(p *payment.Payment, _ bool) error { create("ev", 1)(p, false); p.IntentID = "pi 1"; return nil },
		"last4": func(p *payment.Payment, _ bool) error {
			create("ev", 1)(p, false)
			p.Card = &payment.CardSummary{Last4: "42"}
			return nil
		},
		"succeeded": func(p *payment.Payment, _ bool) error {
			create("ev", 1)(p, false)
			p.Status = payment.StatusSucceeded
			return nil
		},
		"attempts": func(p *payment.Payment, _ bool) error { create("ev", 1)(p, false); p.Attempts = -1; return nil },
		"captured": func(p *payment.Payment, _ bool) error { create("ev", 1)(p, false); p.Captured = 1; return nil },
		"bad entry": func(p *payment.Payment, _ bool) error {
			create("ev", 10)(p, false)
			p.Entries = []payment.Entry{{ID: "ch 1"}}
			return nil
		},
		"no entry at": func(p *payment.Payment, _ bool) error {
			create("ev", 10)(p, false)
			p.Entries = []payment.Entry{{ID: "ch_1", Kind: payment.EntryVoid, Amount: 1, Source: payment.SourceSync}}
			return nil
		},
	} {
		_, err := l.Update(ctx(t), "o1", fn)
		if !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: Update = %v, want invalid", name, err)
		}
		if _, err := l.Get(ctx(t), "o1"); !errs.Is(errs.NotFound, err) {
			t.Fatalf("%s: a refused update was written: %v", name, err)
		}
	}
}

func testAppendOnly(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 1000))
	p := update(t, l, "o1", apply(capture("ch_1", 1000, 1), refund("re_1", 100, 2)))
	for name, fn := range map[string]func(*payment.Payment, bool) error{
		"removed": func(p *payment.Payment, _ bool) error { p.Entries = p.Entries[:1]; return nil },
		"emptied": func(p *payment.Payment, _ bool) error { p.Entries = nil; return nil },
		"amount":  func(p *payment.Payment, _ bool) error { p.Entries[1].Amount = 50; p.Refunded = 50; return nil },
		"source":  func(p *payment.Payment, _ bool) error { p.Entries[0].Source = payment.SourceReturn; return nil },
		"at":      func(p *payment.Payment, _ bool) error { p.Entries[0].At = p.Entries[0].At.Add(time.Second); return nil },
		"reordered": func(p *payment.Payment, _ bool) error {
			p.Entries[0], p.Entries[1] = p.Entries[1], p.Entries[0]
			return nil
		},
	} {
		if _, err := l.Update(ctx(t), "o1", fn); !errs.Is(errs.Invalid, err) {
			t.Fatalf("%s: %v, want invalid", name, err)
		}
		mustEqual(t, get(t, l, "o1"), p)
	}
}

func testDuplicateEntry(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 1000))
	p := update(t, l, "o1", apply(capture("ch_1", 1000, 1)))
	// The same charge from the return page, later: a no-op, not even a
	// new version.
	dup := capture("ch_1", 1000, 5)
	dup.Source, dup.Currency = payment.SourceReturn, "eur"
	mustEqual(t, update(t, l, "o1", apply(dup)), p)
	// Appended directly, skipping Apply: dropped all the same.
	q := update(t, l, "o1", func(p *payment.Payment, _ bool) error {
		p.Entries = append(p.Entries, dup)
		p.Attempts = 1
		return nil
	})
	if len(q.Entries) != 1 || q.Attempts != 1 || q.Captured != 1000 {
		t.Fatalf("a direct duplicate append gave %+v", q)
	}
	// The same id with another amount is a conflict.
	_, err := l.Update(ctx(t), "o1", apply(capture("ch_1", 999, 1)))
	wantKind(t, err, errs.Conflict, payment.ReasonEntryIDReused)
	_, err = l.Update(ctx(t), "o1", func(p *payment.Payment, _ bool) error {
		p.Entries = append(p.Entries, refund("ch_1", 1000, 1))
		return nil
	})
	wantKind(t, err, errs.Conflict, payment.ReasonEntryIDReused)
	mustEqual(t, get(t, l, "o1"), q)
}

func testInvariants(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 1000))
	for _, tc := range []struct {
		e      payment.Entry
		reason string
	}{
		{capture("ch_1", 1001, 1), payment.ReasonExceedsAmount},
		{refund("re_1", 1, 1), payment.ReasonRefundExceedsCaptured},
		{payment.Entry{ID: "ch_1", Kind: payment.EntryCapture, Amount: 10, Currency: "usd", At: at(1), Source: payment.SourceSync}, payment.ReasonCurrencyMismatch},
	} {
		_, err := l.Update(ctx(t), "o1", apply(tc.e))
		wantKind(t, err, errs.Conflict, tc.reason)
	}
	update(t, l, "o1", apply(capture("ch_1", 1000, 1)))
	for _, tc := range []struct {
		e      payment.Entry
		reason string
	}{
		{capture("ch_2", 1000, 2), payment.ReasonAlreadyCaptured},
		{payment.Entry{ID: "pi_o1", Kind: payment.EntryVoid, Amount: 1000, At: at(2), Source: payment.SourceSaga}, payment.ReasonAlreadyCaptured},
		{refund("re_1", 1001, 2), payment.ReasonRefundExceedsCaptured},
	} {
		_, err := l.Update(ctx(t), "o1", apply(tc.e))
		wantKind(t, err, errs.Conflict, tc.reason)
	}
	for _, e := range []payment.Entry{
		{ID: "re_0", Kind: payment.EntryRefund, Amount: 0, At: at(2), Source: payment.SourceSaga},
		{ID: "re_0", Kind: payment.EntryRefund, Amount: -5, At: at(2), Source: payment.SourceSaga},
		{ID: "re_0", Kind: "chargeback", Amount: 5, At: at(2), Source: payment.SourceSaga},
		{ID: "re_0", Kind: payment.EntryRefund, Amount: 5, At: at(2), Source: "email"},
	} {
		_, err := l.Update(ctx(t), "o1", apply(e))
		wantKind(t, err, errs.Invalid, "")
	}
	p := update(t, l, "o1", apply(refund("re_1", 400, 3), refund("re_2", 600, 4)))
	if p.Refunded != 1000 || p.Status != payment.StatusRefunded {
		t.Fatalf("fully refunded: %+v", p)
	}
	_, err := l.Update(ctx(t), "o1", apply(refund("re_3", 1, 5)))
	wantKind(t, err, errs.Conflict, payment.ReasonRefundExceedsCaptured)
}

// Writers that change the ledger without Apply are held to the same
// invariants.
func testSkippingApply(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 1000))
	p := update(t, l, "o1", apply(capture("ch_1", 1000, 1)))
	for name, fn := range map[string]func(*payment.Payment, bool) error{
		"second capture": func(p *payment.Payment, _ bool) error {
			p.Entries = append(p.Entries, capture("ch_2", 1000, 2))
			p.Captured = 2000
			return nil
		},
		"refund over": func(p *payment.Payment, _ bool) error {
			p.Entries = append(p.Entries, refund("re_1", 1500, 2))
			p.Refunded, p.Status = 1500, payment.StatusRefunded
			return nil
		},
	} {
		_, err := l.Update(ctx(t), "o1", fn)
		if !errs.Is(errs.Conflict, err) {
			t.Fatalf("%s: %v, want conflict", name, err)
		}
	}
	// Totals not matching the entries.
	_, err := l.Update(ctx(t), "o1", func(p *payment.Payment, _ bool) error {
		p.Entries = append(p.Entries, refund("re_1", 100, 2))
		return nil
	})
	wantKind(t, err, errs.Invalid, "")
	mustEqual(t, get(t, l, "o1"), p)
}

// A payment's life as the payment service writes it: a decline, a
// challenge, the capture learnt twice, a partial refund.
func testLifecycle(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 5000))
	update(t, l, "o1", func(p *payment.Payment, _ bool) error {
		p.Attempts++
		p.Status = payment.StatusFailed
		p.Decline = &payment.Decline{Code: "card_declined", DeclineCode: "generic_decline", Message: "declined"}
		return nil
	})
	update(t, l, "o1", func(p *payment.Payment, _ bool) error {
		p.Attempts++
		p.Status, p.Decline = payment.StatusRequiresAction, nil
		p.RedirectURL = "https://psp.example/3ds"
		p.Card = &payment.CardSummary{Brand: payment.BrandVisa, Last4: "3220", Fingerprint: "ff"}
		return nil
	})
	ret := capture("ch_9", 5000, 10)
	ret.Source = payment.SourceReturn
	update(t, l, "o1", apply(ret))
	update(t, l, "o1", apply(capture("ch_9", 5000, 11))) // the webhook
	p := update(t, l, "o1", apply(refund("re_1", 1500, 20)))
	if p.Attempts != 2 || p.Status != payment.StatusPartiallyRefunded || p.Captured != 5000 || p.Refunded != 1500 ||
		p.RedirectURL != "" || len(p.Entries) != 2 || p.Entries[0].Source != payment.SourceReturn || p.Card == nil || p.Card.Last4 != "3220" {
		t.Fatalf("after the lifecycle: %+v", p)
	}
	mustEqual(t, get(t, l, "o1"), p)
	// A void on a fresh intent.
	update(t, l, "o2", create("ev", 700))
	v := update(t, l, "o2", apply(payment.Entry{ID: "pi_o2", Kind: payment.EntryVoid, Amount: 700, At: at(3), Source: payment.SourceSaga}))
	if v.Status != payment.StatusCanceled || v.Captured != 0 {
		t.Fatalf("voided: %+v", v)
	}
	_, err := l.Update(ctx(t), "o2", apply(capture("ch_late", 700, 4)))
	wantKind(t, err, errs.Conflict, payment.ReasonVoided)
}

// The return page and duplicated webhooks race to record one capture:
// exactly one entry, whatever the interleaving.
func testConcurrentCapture(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 2500))
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			e := capture("ch_1", 2500, i)
			if i%2 == 0 {
				e.Source = payment.SourceReturn
			}
			if _, err := l.Update(ctx(t), "o1", apply(e)); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	p := get(t, l, "o1")
	if len(p.Entries) != 1 || p.Captured != 2500 || p.Status != payment.StatusSucceeded {
		t.Fatalf("after 50 concurrent appends of one capture: %+v", p)
	}
	// Distinct captures racing: exactly one lands.
	update(t, l, "o2", create("ev", 2500))
	var won atomic.Int32
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			_, err := l.Update(ctx(t), "o2", apply(capture(fmt.Sprintf("ch_%d", i), 2500, i)))
			switch {
			case err == nil:
				won.Add(1)
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == payment.ReasonAlreadyCaptured:
			default:
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if p := get(t, l, "o2"); won.Load() != 1 || len(p.Entries) != 1 {
		t.Fatalf("%d of 20 distinct captures landed: %+v", won.Load(), p)
	}
}

func testConcurrentRefunds(t *testing.T, l payment.Ledger) {
	update(t, l, "o1", create("ev", 1000))
	update(t, l, "o1", apply(capture("ch_1", 1000, 0)))
	var ok, refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			_, err := l.Update(ctx(t), "o1", apply(refund(fmt.Sprintf("re_%d", i), 30, i)))
			switch {
			case err == nil:
				ok.Add(1)
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == payment.ReasonRefundExceedsCaptured:
				refused.Add(1)
			default:
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	p := get(t, l, "o1")
	if ok.Load() != 33 || refused.Load() != 17 || p.Refunded != 990 || len(p.Entries) != 34 || p.Status != payment.StatusPartiallyRefunded {
		t.Fatalf("%d refunds of 30 landed, %d refused: refunded %d, %d entries", ok.Load(), refused.Load(), p.Refunded, len(p.Entries))
	}
	// The same refund retried from many goroutines: once.
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := l.Update(ctx(t), "o1", apply(refund("re_last", 10, 60))); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if p := get(t, l, "o1"); p.Refunded != 1000 || len(p.Entries) != 35 || p.Status != payment.StatusRefunded {
		t.Fatalf("after one refund retried 20 times: refunded %d, %d entries", p.Refunded, len(p.Entries))
	}
}

// Concurrent first writers of one order: one creates, the others update
// what it created; none is lost.
func testConcurrentCreate(t *testing.T, l payment.Ledger) {
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			_, err := l.Update(ctx(t), "o1", func(p *payment.Payment, exists bool) error {
				if !exists {
					create("ev", 100)(p, false)
				}
				p.Attempts++
				return nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if p := get(t, l, "o1"); p.Attempts != 20 {
		t.Fatalf("20 concurrent increments left %d", p.Attempts)
	}
}

// counted wraps an Update function, counting its calls.
func counted(n *int, fn func(*payment.Payment, bool) error) func(*payment.Payment, bool) error {
	return func(p *payment.Payment, exists bool) error {
		*n++
		return fn(p, exists)
	}
}

func updateFrom(t *testing.T, l payment.Ledger, from payment.Payment, fn func(*payment.Payment, bool) error) payment.Payment {
	t.Helper()
	p, err := l.UpdateFrom(ctx(t), from, fn)
	if err != nil {
		t.Fatalf("UpdateFrom %s at %d: %v", from.OrderID, from.Version, err)
	}
	return p
}

// UpdateFrom on a current copy: fn is called once, on it, and the result
// is stored as Update would store it.
func testUpdateFrom(t *testing.T, l payment.Ledger) {
	calls := 0
	p := updateFrom(t, l, payment.Payment{OrderID: "o1"}, counted(&calls, func(p *payment.Payment, exists bool) error {
		if exists || p.Version != 0 {
			return fmt.Errorf("from none: %+v, exists %v", p, exists)
		}
		return create("ev", 1000)(p, exists)
	}))
	if calls != 1 || p.Version <= 0 || p.IntentID != "pi_o1" || p.Currency != "EUR" || !p.Created.Equal(p.Updated) {
		t.Fatalf("created from none with %d calls: %+v", calls, p)
	}
	mustEqual(t, get(t, l, "o1"), p)

	calls = 0
	q := updateFrom(t, l, p, counted(&calls, func(q *payment.Payment, exists bool) error {
		if !exists || q.Version != p.Version {
			return fmt.Errorf("from version %d: %+v, exists %v", p.Version, q, exists)
		}
		q.Attempts = 1
		return apply(capture("ch_1", 1000, 1))(q, exists)
	}))
	if calls != 1 || q.Version <= p.Version || q.Captured != 1000 || q.Attempts != 1 || !q.Created.Equal(p.Created) {
		t.Fatalf("updated from the current version with %d calls: %+v", calls, q)
	}
	mustEqual(t, get(t, l, "o1"), q)
	// What UpdateFrom returned is a copy to update from again.
	r := updateFrom(t, l, q, apply(refund("re_1", 400, 2)))
	if r.Version <= q.Version || r.Refunded != 400 || len(r.Entries) != 2 {
		t.Fatalf("updated from UpdateFrom's answer: %+v", r)
	}
	mustEqual(t, get(t, l, "o1"), r)

	// No change, and fn's error, are Update's.
	mustEqual(t, updateFrom(t, l, r, func(*payment.Payment, bool) error { return nil }), r)
	mine := errors.New("mine")
	if _, err := l.UpdateFrom(ctx(t), r, func(p *payment.Payment, _ bool) error { p.Attempts = 9; return mine }); err != mine {
		t.Fatalf("UpdateFrom returned %v, want fn's error as it is", err)
	}
	_, err := l.UpdateFrom(ctx(t), payment.Payment{OrderID: "o2"}, func(*payment.Payment, bool) error { return nil })
	wantKind(t, err, errs.NotFound, "")
	_, err = l.UpdateFrom(ctx(t), payment.Payment{OrderID: "a.b"}, create("ev", 1))
	wantKind(t, err, errs.Invalid, "")
	mustEqual(t, get(t, l, "o1"), r)
}

// UpdateFrom on a stale copy reads and calls fn again on what is
// stored: whatever fn made of the stale copy (a write, no change, an
// error) is judged again.
func testUpdateFromStale(t *testing.T, l payment.Ledger) {
	stale := update(t, l, "o1", create("ev", 1000))
	current := update(t, l, "o1", apply(capture("ch_1", 1000, 1)))

	// A write: lands on the current payment, keeping its capture.
	calls := 0
	p := updateFrom(t, l, stale, counted(&calls, func(p *payment.Payment, _ bool) error { p.Attempts++; return nil }))
	if calls != 2 || p.Attempts != 1 || p.Captured != 1000 || len(p.Entries) != 1 || p.Version <= current.Version {
		t.Fatalf("updated from a stale copy with %d calls: %+v", calls, p)
	}
	mustEqual(t, get(t, l, "o1"), p)

	// An error on the stale copy (a refund of nothing captured) but not
	// on the current payment.
	calls = 0
	q := updateFrom(t, l, stale, counted(&calls, apply(refund("re_1", 300, 2))))
	if calls != 2 || q.Refunded != 300 || len(q.Entries) != 2 {
		t.Fatalf("refunded from a stale copy with %d calls: %+v", calls, q)
	}
	// No change on the stale copy: the current payment, not the copy.
	mustEqual(t, updateFrom(t, l, stale, func(*payment.Payment, bool) error { return nil }), q)
	// A capture the current payment has already: no change.
	mustEqual(t, updateFrom(t, l, stale, apply(capture("ch_1", 1000, 5))), q)
	// A stale copy's capture of another charge: the current payment's
	// conflict.
	_, err := l.UpdateFrom(ctx(t), stale, apply(capture("ch_2", 1000, 5)))
	wantKind(t, err, errs.Conflict, payment.ReasonAlreadyCaptured)

	// From none while a payment exists: fn sees it.
	calls = 0
	r := updateFrom(t, l, payment.Payment{OrderID: "o1"}, counted(&calls, func(p *payment.Payment, exists bool) error {
		if !exists {
			return create("ev", 5)(p, exists)
		}
		p.Attempts = 5
		return nil
	}))
	if calls != 2 || r.Attempts != 5 || r.Amount != 1000 || r.Refunded != 300 {
		t.Fatalf("from none over a payment, %d calls: %+v", calls, r)
	}
	mustEqual(t, get(t, l, "o1"), r)
}

// Concurrent writers from one copy: one lands on it, the others read
// again; none is lost.
func testUpdateFromConcurrent(t *testing.T, l payment.Ledger) {
	from := update(t, l, "o1", create("ev", 100))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			if _, err := l.UpdateFrom(ctx(t), from, func(p *payment.Payment, _ bool) error { p.Attempts++; return nil }); err != nil {
				t.Errorf("UpdateFrom: %v", err)
			}
		})
	}
	// And first writers from none.
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			_, err := l.UpdateFrom(ctx(t), payment.Payment{OrderID: "o2"}, func(p *payment.Payment, exists bool) error {
				if !exists {
					create("ev", 100)(p, false)
				}
				p.Attempts++
				return nil
			})
			if err != nil {
				t.Errorf("UpdateFrom: %v", err)
			}
		})
	}
	wg.Wait()
	if p := get(t, l, "o1"); p.Attempts != 20 {
		t.Fatalf("20 concurrent increments from one copy left %d", p.Attempts)
	}
	if p := get(t, l, "o2"); p.Attempts != 20 {
		t.Fatalf("20 concurrent increments from none left %d", p.Attempts)
	}
}

func testSeenEvent(t *testing.T, l payment.Ledger) {
	c := ctx(t)
	first, err := l.SeenEvent(c, "evt_1")
	if err != nil || !first {
		t.Fatalf("first SeenEvent = %v, %v", first, err)
	}
	for i := 0; i < 3; i++ {
		first, err = l.SeenEvent(c, "evt_1")
		if err != nil || first {
			t.Fatalf("repeated SeenEvent = %v, %v", first, err)
		}
	}
	if first, err := l.SeenEvent(c, "evt_2"); err != nil || !first {
		t.Fatalf("another event = %v, %v", first, err)
	}
	for _, id := range []string{"", "evt.1", "evt 1", "evt*", string(make([]byte, 256))} {
		_, err := l.SeenEvent(c, id)
		wantKind(t, err, errs.Invalid, "")
	}
}

func testSeenEventConcurrent(t *testing.T, l payment.Ledger) {
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			first, err := l.SeenEvent(ctx(t), "evt_dup")
			if err != nil {
				t.Errorf("SeenEvent: %v", err)
			}
			if first {
				firsts.Add(1)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d of 50 concurrent SeenEvent calls were first", firsts.Load())
	}
}

func ids(ps []payment.Payment) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.OrderID)
	}
	return out
}

func list(t *testing.T, l payment.Ledger, f payment.ListFilter) []string {
	t.Helper()
	var out []string
	for pages := 0; ; pages++ {
		page, err := l.List(ctx(t), f)
		if err != nil {
			t.Fatalf("List %+v: %v", f, err)
		}
		if f.Limit > 0 && len(page.Payments) > f.Limit || pages > 20 {
			t.Fatalf("page of %d for limit %d", len(page.Payments), f.Limit)
		}
		out = append(out, ids(page.Payments)...)
		if page.Next == "" {
			return out
		}
		if len(page.Payments) == 0 || page.Next != page.Payments[len(page.Payments)-1].OrderID {
			t.Fatalf("page %v with next %q", ids(page.Payments), page.Next)
		}
		f.After = page.Next
	}
}

func testList(t *testing.T, l payment.Ledger) {
	// o0..o9: even ones of event A, odd of B; o0..o6 captured at minute
	// 10*i; o2 refunded at minute 100.
	for i := 0; i < 10; i++ {
		id, event := fmt.Sprintf("o%d", i), "evA"
		if i%2 == 1 {
			event = "evB"
		}
		update(t, l, id, create(event, 1000))
		if i <= 6 {
			update(t, l, id, apply(capture("ch_"+id, 1000, 10*i)))
		}
	}
	update(t, l, "o2", apply(refund("re_o2", 10, 100)))
	all := []string{"o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"}
	for _, tc := range []struct {
		f    payment.ListFilter
		want []string
	}{
		{payment.ListFilter{}, all},
		{payment.ListFilter{Limit: 3}, all},
		{payment.ListFilter{Limit: 1}, all},
		{payment.ListFilter{Limit: 10}, all},
		{payment.ListFilter{Limit: 9}, all},
		{payment.ListFilter{After: "o4"}, all[5:]},
		{payment.ListFilter{After: "o"}, all},
		{payment.ListFilter{After: "o9"}, nil},
		{payment.ListFilter{Event: "evA"}, []string{"o0", "o2", "o4", "o6", "o8"}},
		{payment.ListFilter{Event: "evB", Limit: 2}, []string{"o1", "o3", "o5", "o7", "o9"}},
		{payment.ListFilter{Event: "evC"}, nil},
		{payment.ListFilter{From: at(20), To: at(50)}, []string{"o2", "o3", "o4"}},
		{payment.ListFilter{From: at(20).Add(time.Nanosecond), To: at(50)}, []string{"o2", "o3", "o4"}}, // µs precision
		{payment.ListFilter{From: at(21), To: at(50)}, []string{"o2", "o3", "o4"}[1:]},
		{payment.ListFilter{From: at(50)}, []string{"o2", "o5", "o6"}},
		{payment.ListFilter{To: at(10)}, []string{"o0"}},
		{payment.ListFilter{From: at(90), Limit: 1}, []string{"o2"}},
		{payment.ListFilter{Event: "evB", From: at(10), To: at(40), Limit: 1}, []string{"o1", "o3"}},
	} {
		if got := list(t, l, tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("List %+v = %v, want %v", tc.f, got, tc.want)
		}
	}
	page, err := l.List(ctx(t), payment.ListFilter{Event: "evA", Limit: 2})
	if err != nil || len(page.Payments) != 2 {
		t.Fatalf("List = %+v, %v", page, err)
	}
	mustEqual(t, page.Payments[1], get(t, l, "o2"))
}

func testListInvalid(t *testing.T, l payment.Ledger) {
	for _, f := range []payment.ListFilter{
		{Limit: -1},
		{Limit: payment.MaxListLimit + 1},
		{From: at(10), To: at(10)},
		{From: at(10), To: at(5)},
		{After: "o.1"},
		{Event: "ev>"},
	} {
		_, err := l.List(ctx(t), f)
		wantKind(t, err, errs.Invalid, "")
	}
}

func testCancelledContext(t *testing.T, l payment.Ledger) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Update(c, "o1", create("ev", 1)); err == nil {
		t.Fatal("Update with a cancelled context succeeded")
	}
	if _, err := l.Get(c, "o1"); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	if _, err := l.SeenEvent(c, "evt_1"); err == nil {
		t.Fatal("SeenEvent with a cancelled context succeeded")
	}
}
