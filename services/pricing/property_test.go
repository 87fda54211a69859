package pricing

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// randomAmount is an amount in [0, MaxAmount], often small, sometimes at
// the ends of the range.
func randomAmount(rng *rand.Rand) int64 {
	switch rng.IntN(10) {
	case 0:
		return 0
	case 1:
		return MaxAmount
	case 2:
		return rng.Int64N(MaxAmount + 1)
	}
	return rng.Int64N(100_000)
}

// randomCase is a valid price list, a cart for it and maybe a voucher.
func randomCase(rng *rand.Rand) (Rules, Cart, *Voucher) {
	currencies := []string{"USD", "EUR", "JPY", "KWD"}
	r := Rules{Event: "e", Version: 1 + rng.Int64N(100), Currency: currencies[rng.IntN(len(currencies))],
		Zones: map[string]int64{}, OnSaleAt: t0.Add(-time.Hour)}
	nz := 1 + rng.IntN(6)
	for i := range nz {
		r.Zones[fmt.Sprintf("z%d", i)] = randomAmount(rng)
	}
	if rng.IntN(2) == 0 {
		r.Fees = Fees{PerTicket: randomAmount(rng), PerOrder: randomAmount(rng)}
	}
	switch rng.IntN(4) {
	case 0:
	case 1:
		r.Tax = Tax{RateBP: MaxRateBP, Inclusive: rng.IntN(2) == 0}
	default:
		r.Tax = Tax{RateBP: rng.IntN(MaxRateBP + 1), Inclusive: rng.IntN(2) == 0}
	}
	for i := range rng.IntN(4) {
		m := 1 + rng.IntN(5)
		r.AddOns = append(r.AddOns, AddOn{ID: fmt.Sprintf("a%d", i), Name: "Add-on", Price: randomAmount(rng), Capacity: 100, MaxPerOrder: m})
	}

	c := Cart{Event: "e", Account: "acct", Holds: []string{"h1"}, ExpiresAt: t0.Add(time.Minute)}
	left := MaxTickets
	for _, z := range rng.Perm(nz)[:1+rng.IntN(nz)] {
		q := 1 + rng.IntN(min(left, 1+rng.IntN(MaxTickets)))
		if rng.IntN(8) == 0 {
			q = left
		}
		c.Tickets = append(c.Tickets, Item{Zone: fmt.Sprintf("z%d", z), Quantity: q})
		if left -= q; left == 0 {
			break
		}
	}
	for _, a := range r.AddOns {
		if rng.IntN(2) == 0 {
			c.AddOns = append(c.AddOns, AddOnItem{ID: a.ID, Quantity: 1 + rng.IntN(a.MaxPerOrder)})
		}
	}

	if rng.IntN(2) == 0 {
		return r, c, nil
	}
	v := &Voucher{Code: "CODE"}
	if rng.IntN(2) == 0 {
		v.PercentBP = 1 + rng.IntN(10_000)
	} else {
		v.Amount, v.Currency = 1+randomAmount(rng)%MaxAmount, r.Currency
	}
	if rng.IntN(2) == 0 {
		v.Zones = []string{c.Tickets[0].Zone}
		for _, z := range sortedKeys(r.Zones) {
			if rng.IntN(3) == 0 && z != c.Tickets[0].Zone {
				v.Zones = append(v.Zones, z)
			}
		}
	}
	c.Voucher = v.Code
	return r, c, v
}

// Random carts: every quote sums to its total, is never negative, has
// the tax of its rate, and comes out the same every time.
func TestPriceProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for _, s := range []uint64{1, 2, 3, seed} {
		rng := rand.New(rand.NewPCG(s, 14))
		for i := range 3000 {
			r, c, v := randomCase(rng)
			q, err := Price(r, c, v, t0)
			if err != nil {
				t.Fatalf("seed %d case %d: %v\nrules %+v\ncart %+v\nvoucher %+v", s, i, err, r, c, v)
			}
			checkQuote(t, r, q)
			again, err := Price(r, c, v, t0)
			if err != nil || !reflect.DeepEqual(q, again) {
				t.Fatalf("seed %d case %d: priced twice, %+v and %+v, %v", s, i, q, again, err)
			}
		}
	}
}

// The largest cart at the largest prices and rate fits in an int64 with
// room to spare.
func TestPriceLargest(t *testing.T) {
	for _, inclusive := range []bool{false, true} {
		r := Rules{Event: "e", Version: 1, Currency: "USD", Zones: map[string]int64{"z": MaxAmount},
			Fees: Fees{PerTicket: MaxAmount, PerOrder: MaxAmount}, Tax: Tax{RateBP: MaxRateBP, Inclusive: inclusive},
			AddOns:   []AddOn{{ID: "a", Name: "A", Price: MaxAmount, Capacity: 1, MaxPerOrder: MaxAddOnUnits}},
			OnSaleAt: t0}
		c := Cart{Event: "e", Account: "acct", Holds: []string{"h"}, Tickets: []Item{{"z", MaxTickets}},
			AddOns: []AddOnItem{{"a", MaxAddOnUnits}}, ExpiresAt: t0.Add(time.Minute)}
		q, err := Price(r, c, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		checkQuote(t, r, q)
		want := int64(MaxTickets+MaxAddOnUnits+MaxTickets+1) * MaxAmount
		if !inclusive {
			want *= 2
		}
		if q.Total.Amount != want {
			t.Fatalf("inclusive %v: total %d, want %d", inclusive, q.Total.Amount, want)
		}
	}
}
