package pricing

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// The decoders read what operators and buyers send. Their fuzz targets
// check that nothing panics, that every refusal is errs.Invalid or
// errs.TooLarge, and that whatever is accepted validates, encodes and
// decodes to itself, and prices without surprise. Seeds are in
// testdata/fuzz/<target>.

func decodeRefusal(t *testing.T, err error) {
	t.Helper()
	if !errs.Is(errs.Invalid, err) && !errs.Is(errs.TooLarge, err) {
		t.Fatalf("refused with %v (kind %v)", err, errs.KindOf(err))
	}
}

// FuzzDecodeRules: an accepted price list round-trips, reprices into a
// valid next version, and prices a cart of one ticket of each zone and one
// of each add-on at its on-sale.
func FuzzDecodeRules(f *testing.F) {
	f.Add([]byte(rulesDoc))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRules(b)
		if err != nil {
			decodeRefusal(t, err)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted rules do not validate: %v", err)
		}
		again, err := DecodeRules(mustJSON(t, r))
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, r)
		}
		next, changed, err := Repriced(r, Demand{Sold: 9, Capacity: 10, HoldsPerMinute: 40}, r.OnSaleAt)
		if err != nil {
			t.Fatalf("Repriced: %v", err)
		}
		if changed {
			if err := next.Validate(); err != nil {
				t.Fatalf("repriced rules do not validate: %v", err)
			}
		}
		c := Cart{Event: r.Event, Account: "a", Holds: []string{"h"}, ExpiresAt: r.OnSaleAt.Add(time.Minute)}
		for _, z := range sortedKeys(r.Zones) {
			c.Tickets = append(c.Tickets, Item{Zone: z, Quantity: 1})
		}
		for _, a := range r.AddOns {
			c.AddOns = append(c.AddOns, AddOnItem{ID: a.ID, Quantity: 1})
		}
		q, err := Price(r, c, nil, r.OnSaleAt)
		if err != nil {
			t.Fatalf("Price: %v", err)
		}
		checkQuote(t, r, q)
	})
}

// FuzzDecodeVoucher: an accepted voucher round-trips.
func FuzzDecodeVoucher(f *testing.F) {
	f.Add([]byte(`{"code": "ten", "percent_bp": 1000}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVoucher(b)
		if err != nil {
			decodeRefusal(t, err)
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("accepted voucher does not validate: %v", err)
		}
		again, err := DecodeVoucher(mustJSON(t, v))
		if err != nil || !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, v)
		}
	})
}

// FuzzDecodeCart: an accepted cart round-trips, validates once the
// caller's fields are set, and is priced by testRules (with a 10% voucher
// when it names one) or refused with a kind Price documents.
func FuzzDecodeCart(f *testing.F) {
	f.Add([]byte(`{"event": "arena-concert", "holds": ["h1"], "tickets": [{"zone": "floor", "quantity": 2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCart(b)
		if err != nil {
			decodeRefusal(t, err)
			return
		}
		if c.Account != "" || !c.ExpiresAt.IsZero() {
			t.Fatalf("the buyer set %q, %v", c.Account, c.ExpiresAt)
		}
		again, err := DecodeCart(mustJSON(t, cartRequest{c.Event, c.Holds, c.Tickets, c.AddOns, c.Voucher}))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, c)
		}
		c.Account, c.ExpiresAt = "u_1", t0.Add(time.Minute)
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted cart does not validate: %v", err)
		}
		r := testRules()
		r.Event = c.Event
		var v *Voucher
		if c.Voucher != "" {
			v = &Voucher{Code: NormalizeCode(c.Voucher), PercentBP: 1000}
		}
		q, err := Price(r, c, v, t0)
		if err != nil {
			if !errs.Is(errs.Invalid, err) {
				t.Fatalf("Price: %v", err)
			}
			return
		}
		checkQuote(t, r, q)
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
