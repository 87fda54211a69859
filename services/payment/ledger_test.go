package payment_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

func entry(id string, kind payment.EntryKind, amount int64) payment.Entry {
	return payment.Entry{ID: id, Kind: kind, Amount: amount, At: t0, Source: payment.SourceWebhook}
}

func pending(amount int64) payment.Payment {
	return payment.Payment{OrderID: "o1", Amount: amount, Currency: "EUR", Status: payment.StatusPending}
}

func TestApply(t *testing.T) {
	p := pending(1000)
	p.RedirectURL = "https://psp.example/3ds"
	steps := []struct {
		e        payment.Entry
		applied  bool
		status   payment.PaymentStatus
		captured int64
		refunded int64
	}{
		{entry("ch_1", payment.EntryCapture, 1000), true, payment.StatusSucceeded, 1000, 0},
		{entry("ch_1", payment.EntryCapture, 1000), false, payment.StatusSucceeded, 1000, 0},
		{entry("re_1", payment.EntryRefund, 300), true, payment.StatusPartiallyRefunded, 1000, 300},
		{entry("re_1", payment.EntryRefund, 300), false, payment.StatusPartiallyRefunded, 1000, 300},
		{entry("re_2", payment.EntryRefund, 700), true, payment.StatusRefunded, 1000, 1000},
	}
	for i, s := range steps {
		applied, err := p.Apply(s.e)
		if err != nil || applied != s.applied || p.Status != s.status || p.Captured != s.captured || p.Refunded != s.refunded {
			t.Fatalf("step %d: %v, %v: %+v", i, applied, err, p)
		}
	}
	if p.RedirectURL != "" || len(p.Entries) != 3 || p.Entries[0].Currency != "EUR" || p.Entries[0].At.Location() != time.UTC ||
		p.Entries[0].At.Nanosecond()%1000 != 0 {
		t.Fatalf("after the steps: %+v", p)
	}
	if err := p.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestApplyRefused(t *testing.T) {
	captured := pending(1000)
	if _, err := captured.Apply(entry("ch_1", payment.EntryCapture, 800)); err != nil {
		t.Fatal(err)
	}
	voided := pending(1000)
	if _, err := voided.Apply(entry("pi_1", payment.EntryVoid, 1000)); err != nil || voided.Status != payment.StatusCanceled {
		t.Fatal(err, voided.Status)
	}
	usd := entry("ch_9", payment.EntryCapture, 10)
	usd.Currency = "usd"
	lower := entry("ch_9", payment.EntryCapture, 10)
	lower.Currency = "eur"
	noTime := entry("ch_9", payment.EntryCapture, 10)
	noTime.At = time.Time{}
	for _, tc := range []struct {
		name   string
		p      payment.Payment
		e      payment.Entry
		kind   errs.Kind
		reason string
	}{
		{"second capture", captured, entry("ch_2", payment.EntryCapture, 100), errs.Conflict, payment.ReasonAlreadyCaptured},
		{"void after capture", captured, entry("pi_1", payment.EntryVoid, 100), errs.Conflict, payment.ReasonAlreadyCaptured},
		{"refund over", captured, entry("re_1", payment.EntryRefund, 801), errs.Conflict, payment.ReasonRefundExceedsCaptured},
		{"refund before capture", pending(1000), entry("re_1", payment.EntryRefund, 1), errs.Conflict, payment.ReasonRefundExceedsCaptured},
		{"capture over amount", pending(1000), entry("ch_1", payment.EntryCapture, 1001), errs.Conflict, payment.ReasonExceedsAmount},
		{"capture after void", voided, entry("ch_1", payment.EntryCapture, 1), errs.Conflict, payment.ReasonVoided},
		{"second void", voided, entry("pi_2", payment.EntryVoid, 1), errs.Conflict, payment.ReasonVoided},
		{"id reused", captured, entry("ch_1", payment.EntryRefund, 800), errs.Conflict, payment.ReasonEntryIDReused},
		{"id reused amount", captured, entry("ch_1", payment.EntryCapture, 801), errs.Conflict, payment.ReasonEntryIDReused},
		{"currency", pending(1000), usd, errs.Conflict, payment.ReasonCurrencyMismatch},
		{"zero", pending(1000), entry("ch_1", payment.EntryCapture, 0), errs.Invalid, ""},
		{"negative", captured, entry("re_1", payment.EntryRefund, -1), errs.Invalid, ""},
		{"kind", pending(1000), entry("x_1", "dispute", 1), errs.Invalid, ""},
		{"source", pending(1000), payment.Entry{ID: "ch_1", Kind: payment.EntryCapture, Amount: 1, At: t0, Source: "mail"}, errs.Invalid, ""},
		{"id", pending(1000), entry("ch 1", payment.EntryCapture, 1), errs.Invalid, ""},
		{"no id", pending(1000), entry("", payment.EntryCapture, 1), errs.Invalid, ""},
		{"no time", pending(1000), noTime, errs.Invalid, ""},
	} {
		p := tc.p.Clone()
		before := p.Clone()
		applied, err := p.Apply(tc.e)
		if applied || !errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.reason {
			t.Errorf("%s: %v, %v (reason %q)", tc.name, applied, err, errs.ReasonOf(err))
		}
		if len(p.Entries) != len(before.Entries) || p.Status != before.Status || p.Captured != before.Captured || p.Refunded != before.Refunded {
			t.Errorf("%s: a refused entry changed the payment", tc.name)
		}
	}
	// The payment's currency in lower case is the same currency.
	p := pending(1000)
	if ok, err := p.Apply(lower); !ok || err != nil || p.Entries[0].Currency != "EUR" {
		t.Fatalf("lower case currency: %v, %v", ok, err)
	}
}

func TestApplyTooMany(t *testing.T) {
	p := pending(1_000_000)
	if _, err := p.Apply(entry("ch_1", payment.EntryCapture, 1_000_000)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < payment.MaxEntries; i++ {
		if _, err := p.Apply(entry("re_"+itoa(i), payment.EntryRefund, 1)); err != nil {
			t.Fatal(i, err)
		}
	}
	_, err := p.Apply(entry("re_last", payment.EntryRefund, 1))
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != payment.ReasonTooManyEntries {
		t.Fatalf("entry %d: %v", payment.MaxEntries+1, err)
	}
}

func itoa(i int) string {
	return string(rune('a'+i/26/26%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i%26))
}

func TestCheck(t *testing.T) {
	ok := pending(1000)
	if _, err := ok.Apply(entry("ch_1", payment.EntryCapture, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*payment.Payment){
		"captured sum":     func(p *payment.Payment) { p.Captured = 999 },
		"status":           func(p *payment.Payment) { p.Status = payment.StatusPending },
		"unknown status":   func(p *payment.Payment) { p.Status = "paid" },
		"lower currency":   func(p *payment.Payment) { p.Currency = "eur" },
		"entry currency":   func(p *payment.Payment) { p.Entries[0].Currency = "eur" },
		"entry time":       func(p *payment.Payment) { p.Entries[0].At = t0 },
		"duplicate entry":  func(p *payment.Payment) { p.Entries = append(p.Entries, p.Entries[0]) },
		"order id":         func(p *payment.Payment) { p.OrderID = "" },
		"amount":           func(p *payment.Payment) { p.Amount = 0 },
		"attempts":         func(p *payment.Payment) { p.Attempts = -1 },
		"redirect":         func(p *payment.Payment) { p.RedirectURL = string(make([]byte, payment.MaxRedirectURL+1)) },
		"decline":          func(p *payment.Payment) { p.Decline = &payment.Decline{Message: "\xff"} },
		"card":             func(p *payment.Payment) { p.Card = &payment.CardSummary{Last4: "42a2"} },
		"account":          func(p *payment.Payment) { p.Account = "a b" },
		"refunded no sum":  func(p *payment.Payment) { p.Status = payment.StatusRefunded },
		"captured nothing": func(p *payment.Payment) { p.Entries, p.Captured = nil, 0 },
	} {
		p := ok.Clone()
		mod(&p)
		if err := p.Check(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	p := ok.Clone()
	p.Entries = append(p.Entries, payment.Entry{ID: "ch_2", Kind: payment.EntryCapture, Amount: 1, Currency: "EUR", At: t0.UTC().Truncate(time.Microsecond), Source: payment.SourceSync})
	if err := p.Check(); !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != payment.ReasonAlreadyCaptured {
		t.Fatalf("second capture: %v", err)
	}
}

func TestPrepare(t *testing.T) {
	now := t0.Add(time.Hour)
	before := pending(1000)
	before.Version, before.Created, before.Updated = 3, payment.Timestamp(t0), payment.Timestamp(t0)
	if _, err := before.Apply(entry("ch_1", payment.EntryCapture, 1000)); err != nil {
		t.Fatal(err)
	}

	// Unchanged: nothing to write.
	p, appended, changed, err := payment.Prepare(before, true, before.Clone(), now)
	if err != nil || changed || appended != nil || p.Version != 3 {
		t.Fatalf("unchanged: %v %v %v", changed, appended, err)
	}
	// Version, Created and Updated are the ledger's.
	after := before.Clone()
	after.Attempts, after.Version, after.Created = 2, 99, t0.Add(-time.Hour)
	p, _, changed, err = payment.Prepare(before, true, after, now)
	if err != nil || !changed || p.Version != 3 || !p.Created.Equal(before.Created) || !p.Updated.Equal(payment.Timestamp(now)) {
		t.Fatalf("changed: %+v, %v", p, err)
	}
	// Appended entries are returned; duplicates of old ones dropped.
	after = before.Clone()
	dup := entry("ch_1", payment.EntryCapture, 1000)
	dup.Source = payment.SourceReturn
	after.Entries = append(after.Entries, dup, entry("re_1", payment.EntryRefund, 10), entry("re_1", payment.EntryRefund, 10))
	after.Refunded, after.Status = 10, payment.StatusPartiallyRefunded
	p, appended, changed, err = payment.Prepare(before, true, after, now)
	if err != nil || !changed || len(appended) != 1 || appended[0].ID != "re_1" || len(p.Entries) != 2 {
		t.Fatalf("appended: %v, %+v, %v", appended, p, err)
	}
	// A new payment gets Created; one left empty is not written.
	fresh := payment.Payment{OrderID: "o2"}
	p, _, changed, err = payment.Prepare(fresh, false, pending(5), now)
	if err == nil || changed {
		t.Fatalf("new payment with another order id: %v", err)
	}
	n := pending(5)
	n.OrderID = "o2"
	p, _, changed, err = payment.Prepare(fresh, false, n, now)
	if err != nil || !changed || !p.Created.Equal(payment.Timestamp(now)) || p.Version != 0 {
		t.Fatalf("new payment: %+v, %v", p, err)
	}
	if _, _, changed, err := payment.Prepare(fresh, false, fresh, now); err != nil || changed {
		t.Fatalf("empty new payment: %v, %v", changed, err)
	}
}

func TestListFilter(t *testing.T) {
	f, err := payment.ListFilter{From: t0}.Normalize()
	if err != nil || f.Limit != 100 || f.From.Location() != time.UTC || f.From.Nanosecond()%1000 != 0 {
		t.Fatalf("Normalize = %+v, %v", f, err)
	}
	p := pending(10)
	p.Event = "ev1"
	if _, err := p.Apply(entry("ch_1", payment.EntryCapture, 10)); err != nil {
		t.Fatal(err)
	}
	at := p.Entries[0].At
	for _, tc := range []struct {
		f    payment.ListFilter
		want bool
	}{
		{payment.ListFilter{}, true},
		{payment.ListFilter{Event: "ev1"}, true},
		{payment.ListFilter{Event: "ev2"}, false},
		{payment.ListFilter{From: at}, true},
		{payment.ListFilter{From: at.Add(time.Microsecond)}, false},
		{payment.ListFilter{To: at}, false},
		{payment.ListFilter{To: at.Add(time.Microsecond)}, true},
		{payment.ListFilter{From: at, To: at.Add(time.Microsecond), Event: "ev1"}, true},
	} {
		if got := tc.f.Match(p); got != tc.want {
			t.Errorf("Match %+v = %v", tc.f, got)
		}
	}
	if (payment.ListFilter{From: t0}).Match(pending(10)) {
		t.Fatal("a payment without entries matched a time range")
	}
}
