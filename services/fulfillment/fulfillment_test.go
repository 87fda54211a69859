package fulfillment_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fulfillment"
)

const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		t    fulfillment.Ticket
		want string
	}{
		{fulfillment.Ticket{Seat: "a-12-7"}, "seat.a-12-7"},
		{fulfillment.Ticket{Zone: "floor", HoldID: "h-1", Index: 42}, "ga.floor.h-1.42"},
	} {
		if got := tc.t.Slot(); got != tc.want {
			t.Errorf("Slot() = %q, want %q", got, tc.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 987654321, time.FixedZone("X", 7200))
	tk, err := fulfillment.Normalize(fulfillment.Ticket{EventID: "ev-1", HoldID: "h", OrderID: "o", Holder: "u_1", KeyID: "k1", ValidFrom: time.Unix(1e9, 0), ValidUntil: time.Unix(2e9, 0), Device: "0123456789abcdef", Zone: "floor", Index: 1, TokenHash: hash}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !fulfillment.ValidRef(tk.ID) || tk.IssuedAt.Location() != time.UTC || !tk.IssuedAt.Equal(now.Truncate(time.Millisecond)) {
		t.Fatalf("Normalize = %+v", tk)
	}
	if _, err := fulfillment.Normalize(fulfillment.Ticket{EventID: "ev-1", HoldID: "h", OrderID: "o", Holder: "u_1", KeyID: "k1", ValidFrom: time.Unix(1e9, 0), ValidUntil: time.Unix(2e9, 0), Device: "0123456789abcdef", TokenHash: hash}, now); !errs.Is(errs.Invalid, err) {
		t.Fatalf("no slot: %v", err)
	}
}

func TestSame(t *testing.T) {
	a := fulfillment.Ticket{ID: "t1", EventID: "e", HoldID: "h", OrderID: "o", Seat: "s", TokenHash: hash, IssuedAt: time.Now()}
	b := a
	b.IssuedAt = b.IssuedAt.Add(time.Hour)
	if !a.Same(b) {
		t.Error("a retry at another time is the same issue")
	}
	b.OrderID = "o2"
	if a.Same(b) {
		t.Error("another order is another issue")
	}
}
