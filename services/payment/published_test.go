package payment

import (
	"strconv"
	"testing"
	"time"
)

func TestPublishedSettles(t *testing.T) {
	var m publishedVersions
	at := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	captured := Payment{OrderID: "o1", IntentID: "pi_1", Amount: 500, Currency: "EUR", Status: StatusSucceeded, Captured: 500, Version: 3,
		Entries: []Entry{{ID: "ch_1", Kind: EntryCapture, Amount: 500, Currency: "EUR", At: at, Source: SourceReturn}}}
	refunded := captured.Clone()
	refunded.Status, refunded.Refunded, refunded.Version = StatusRefunded, 500, 4
	refunded.Entries = append(refunded.Entries, Entry{ID: "re_1", Kind: EntryRefund, Amount: 500, Currency: "EUR", At: at, Source: SourceSaga})
	voided := Payment{OrderID: "o2", IntentID: "pi_2", Amount: 700, Currency: "EUR", Status: StatusCanceled, Version: 5,
		Entries: []Entry{{ID: "pi_2", Kind: EntryVoid, Amount: 700, Currency: "EUR", At: at, Source: SourceSaga}}}
	pending := Payment{OrderID: "o3", IntentID: "pi_3", Amount: 700, Currency: "EUR", Status: StatusRequiresAction, Version: 2}
	for _, p := range []Payment{captured, voided, pending} {
		m.add(p)
	}
	for _, tc := range []struct {
		name  string
		order string
		in    Intent
		want  bool
	}{
		{"its capture", "o1", Intent{ID: "pi_1", Status: Succeeded, ChargeID: "ch_1", AmountReceived: 500, Currency: "eur"}, true},
		{"another charge", "o1", Intent{ID: "pi_1", Status: Succeeded, ChargeID: "ch_2", AmountReceived: 500, Currency: "eur"}, false},
		{"another amount", "o1", Intent{ID: "pi_1", Status: Succeeded, ChargeID: "ch_1", AmountReceived: 400, Currency: "eur"}, false},
		{"another currency", "o1", Intent{ID: "pi_1", Status: Succeeded, ChargeID: "ch_1", AmountReceived: 500, Currency: "usd"}, false},
		{"another intent", "o1", Intent{ID: "pi_9", Status: RequiresAction}, false},
		{"a late challenge", "o1", Intent{ID: "pi_1", Status: RequiresAction}, true},
		{"canceled after the capture", "o1", Intent{ID: "pi_1", Status: Canceled, Amount: 500, Currency: "eur"}, true},
		{"its void", "o2", Intent{ID: "pi_2", Status: Canceled, Amount: 700, Currency: "EUR"}, true},
		{"a success after the void", "o2", Intent{ID: "pi_2", Status: Succeeded, ChargeID: "ch_2", AmountReceived: 700, Currency: "EUR"}, false},
		{"a late decline", "o2", Intent{ID: "pi_2", Status: RequiresPaymentMethod, LastError: &Decline{Code: "card_declined"}}, true},
		{"not settled", "o3", Intent{ID: "pi_3", Status: Succeeded, ChargeID: "ch_3", AmountReceived: 700, Currency: "EUR"}, false},
		{"not published", "o4", Intent{ID: "pi_4", Status: Succeeded, ChargeID: "ch_4", AmountReceived: 700, Currency: "EUR"}, false},
	} {
		if got := m.settles(tc.order, tc.in); got != tc.want {
			t.Errorf("%s: settles = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A newer version (a refund) keeps the settlement; an older one
	// changes nothing.
	m.add(refunded)
	m.add(Payment{OrderID: "o1", IntentID: "pi_1", Status: StatusPending, Version: 1})
	if !m.settles("o1", Intent{ID: "pi_1", Status: Succeeded, ChargeID: "ch_1", AmountReceived: 500, Currency: "EUR"}) {
		t.Error("a refunded payment no longer settles its capture's report")
	}
	if known, _, _ := m.begin("o1", 4); !known {
		t.Error("version 4 published, not known")
	}
}

func TestPublishedFlights(t *testing.T) {
	var m publishedVersions
	p := Payment{OrderID: "o1", Version: 2}
	known, wait, mine := m.begin("o1", 2)
	if known || wait != nil || mine == nil {
		t.Fatalf("first begin: %v %v %v", known, wait, mine)
	}
	// The same version, or an older one: wait for the first.
	for _, v := range []int64{2, 1} {
		if known, wait, mine := m.begin("o1", v); known || wait == nil || mine != nil {
			t.Fatalf("begin of version %d while 2 is under way: %v %v %v", v, known, wait, mine)
		}
	}
	// A newer one goes beside it.
	if known, wait, mine := m.begin("o1", 3); known || wait != nil || mine != nil {
		t.Fatalf("begin of version 3 while 2 is under way: %v %v %v", known, wait, mine)
	}
	_, wait, _ = m.begin("o1", 2)
	// Failed: the waiter is woken and publishes.
	m.end(p, false, mine)
	<-wait
	known, wait, mine = m.begin("o1", 2)
	if known || wait != nil || mine == nil {
		t.Fatalf("begin after a failed publish: %v %v %v", known, wait, mine)
	}
	_, wait, _ = m.begin("o1", 2)
	m.end(p, true, mine)
	<-wait
	if known, _, _ := m.begin("o1", 2); !known {
		t.Fatal("a published version is not known")
	}
}

// The memory is bounded: two generations.
func TestPublishedBounded(t *testing.T) {
	var m publishedVersions
	for i := range 3 * maxPublished {
		m.add(Payment{OrderID: "o" + strconv.Itoa(i), Version: 1})
	}
	if n := len(m.cur) + len(m.old); n > 2*maxPublished {
		t.Fatalf("%d orders remembered", n)
	}
}
