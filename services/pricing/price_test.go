package pricing

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

var t0 = time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)

// testRules is an on-sale price list in dollars: two zones, fees, an
// add-on, no tax.
func testRules() Rules {
	return Rules{Event: "arena-concert", Version: 3, Currency: "USD",
		Zones:    map[string]int64{"floor": 18900, "balcony": 7550},
		Fees:     Fees{PerTicket: 350, PerOrder: 200},
		AddOns:   []AddOn{{ID: "parking", Name: "Parking", Price: 2500, Capacity: 10, MaxPerOrder: 2}},
		OnSaleAt: t0.Add(-time.Hour)}
}

func testCart(items ...Item) Cart {
	if len(items) == 0 {
		items = []Item{{"floor", 2}}
	}
	return Cart{Event: "arena-concert", Account: "u_1", Holds: []string{"arena-concert.0:h:0123456789abcdef"},
		Tickets: items, ExpiresAt: t0.Add(10 * time.Minute)}
}

func percent(code string, bp int, zones ...string) *Voucher {
	return &Voucher{Code: code, PercentBP: bp, Zones: zones}
}

func TestPricePlain(t *testing.T) {
	q, err := Price(testRules(), testCart(), nil, t0.Add(123456789))
	if err != nil {
		t.Fatal(err)
	}
	usd := func(a int64) Money { return Money{a, "USD"} }
	want := Quote{Event: "arena-concert", Account: "u_1", Holds: []string{"arena-concert.0:h:0123456789abcdef"}, RulesVersion: 3,
		Lines: []Line{
			{Kind: LineTicket, Ref: "floor", Description: "Ticket, zone floor", Quantity: 2, Unit: 18900, Amount: 37800},
			{Kind: LineFee, Ref: FeePerTicket, Description: "Service fee per ticket", Quantity: 2, Unit: 350, Amount: 700},
			{Kind: LineFee, Ref: FeePerOrder, Description: "Order fee", Quantity: 1, Unit: 200, Amount: 200},
		},
		Subtotal: usd(37800), Fees: usd(900), Discount: usd(0), Tax: usd(0), Total: usd(38700),
		CreatedAt: t0.Add(123456000), ExpiresAt: t0.Add(10 * time.Minute)}
	if !reflect.DeepEqual(q, want) {
		g, _ := json.MarshalIndent(q, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("got %s\nwant %s", g, w)
	}
}

func TestPrice(t *testing.T) {
	eur := func(r *Rules) { r.Currency = "EUR" }
	noFees := func(r *Rules) { r.Fees = Fees{} }
	for _, tc := range []struct {
		name    string
		rules   func(*Rules)
		cart    Cart
		voucher *Voucher
		// the lines after the tickets and add-ons, as "kind ref amount"
		// (or, for a tax line, "tax ref unit/amount")
		total, subtotal, fees, discount, tax int64
		last                                 string
	}{
		{name: "add-ons", cart: func() Cart { c := testCart(); c.AddOns = []AddOnItem{{"parking", 2}}; return c }(),
			subtotal: 42800, fees: 900, total: 43700},
		{name: "percent floors", rules: noFees, cart: testCart(Item{"floor", 1}, Item{"balcony", 1}),
			voucher: percent("SPRING15", 1500), subtotal: 26450, discount: 3967, total: 22483,
			last: "Voucher SPRING15: 15% off"},
		{name: "percent of its zones only", rules: noFees, cart: testCart(Item{"floor", 1}, Item{"balcony", 2}),
			voucher: percent("BALC10", 1000, "balcony"), subtotal: 34000, discount: 1510, total: 32490},
		{name: "add-ons not discounted", rules: noFees,
			cart:    func() Cart { c := testCart(Item{"balcony", 1}); c.AddOns = []AddOnItem{{"parking", 1}}; return c }(),
			voucher: percent("HALF", 5000), subtotal: 10050, discount: 3775, total: 6275},
		{name: "amount at most the eligible tickets", cart: testCart(Item{"floor", 1}, Item{"balcony", 1}),
			voucher:  &Voucher{Code: "GIFT100", Amount: 10000, Currency: "USD", Zones: []string{"balcony"}},
			subtotal: 26450, fees: 900, discount: 7550, total: 19800, last: "Voucher GIFT100: $100.00 off"},
		{name: "amount", cart: testCart(Item{"floor", 1}),
			voucher:  &Voucher{Code: "FIVE", Amount: 500, Currency: "USD"},
			subtotal: 18900, fees: 550, discount: 500, total: 18950},
		{name: "tax added", rules: func(r *Rules) { r.Tax = Tax{Region: "US-NY", RateBP: 888} },
			cart: testCart(), subtotal: 37800, fees: 900, tax: 3437, total: 42137, last: "US-NY tax 8.88%"},
		{name: "tax added after discount", rules: func(r *Rules) { r.Tax = Tax{RateBP: 1000} },
			cart: testCart(), voucher: percent("TEN", 1000), subtotal: 37800, fees: 900, discount: 3780,
			tax: 3492, total: 38412, last: "Tax 10%"},
		{name: "tax included", rules: func(r *Rules) { eur(r); r.Tax = Tax{Region: "FR", RateBP: 2000, Inclusive: true} },
			cart: testCart(), subtotal: 37800, fees: 900, tax: 6450, total: 38700, last: "Includes FR tax 20%"},
		{name: "tax included, half to even down", rules: func(r *Rules) {
			noFees(r)
			r.Zones = map[string]int64{"ga": 3}
			r.Tax = Tax{RateBP: 2000, Inclusive: true}
		}, cart: testCart(Item{"ga", 1}), subtotal: 3, tax: 0, total: 3},
		{name: "tax included, half to even up", rules: func(r *Rules) {
			noFees(r)
			r.Zones = map[string]int64{"ga": 3}
			r.Tax = Tax{RateBP: 2000, Inclusive: true}
		}, cart: testCart(Item{"ga", 3}), subtotal: 9, tax: 2, total: 9},
		{name: "tax included after discount, half to even", rules: func(r *Rules) { noFees(r); eur(r); r.Tax = Tax{RateBP: 2000, Inclusive: true} },
			cart: testCart(Item{"balcony", 1}), voucher: percent("X10", 1000),
			subtotal: 7550, discount: 755, tax: 1132, total: 6795, last: "Includes tax 20%"},
		{name: "yen", rules: func(r *Rules) {
			r.Currency = "JPY"
			r.Zones = map[string]int64{"floor": 12000}
			r.Fees = Fees{PerOrder: 330}
		}, cart: testCart(Item{"floor", 3}), voucher: &Voucher{Code: "YEN500", Amount: 500, Currency: "JPY"},
			subtotal: 36000, fees: 330, discount: 500, total: 35830, last: "Voucher YEN500: ¥500 off"},
		{name: "free tickets", rules: func(r *Rules) { noFees(r); r.Zones = map[string]int64{"guest": 0} },
			cart: testCart(Item{"guest", 2}), voucher: percent("TEN", 1000), total: 0},
		{name: "presale voucher before on-sale", rules: func(r *Rules) { r.OnSaleAt = t0.Add(time.Hour) },
			cart: testCart(), voucher: &Voucher{Code: "FANCLUB", Presale: true, Events: []string{"arena-concert"}},
			subtotal: 37800, fees: 900, total: 38700},
		{name: "presale voucher of its zones with a discount", rules: func(r *Rules) { r.OnSaleAt = t0.Add(time.Hour) },
			cart:     testCart(Item{"floor", 1}),
			voucher:  &Voucher{Code: "FANCLUB", Presale: true, PercentBP: 1000, Events: []string{"arena-concert"}, Zones: []string{"floor"}},
			subtotal: 18900, fees: 550, discount: 1890, total: 17560},
		{name: "voucher within its window", cart: testCart(),
			voucher:  &Voucher{Code: "NOW", PercentBP: 100, ValidFrom: t0, ValidUntil: t0.Add(time.Nanosecond)},
			subtotal: 37800, fees: 900, discount: 378, total: 38322},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRules()
			if tc.rules != nil {
				tc.rules(&r)
			}
			c := tc.cart
			if tc.voucher != nil {
				c.Voucher = strings.ToLower(tc.voucher.Code) // typed in any case
			}
			q, err := Price(r, c, tc.voucher, t0)
			if err != nil {
				t.Fatal(err)
			}
			got := [5]int64{q.Total.Amount, q.Subtotal.Amount, q.Fees.Amount, q.Discount.Amount, q.Tax.Amount}
			want := [5]int64{tc.total, tc.subtotal, tc.fees, tc.discount, tc.tax}
			if got != want {
				t.Fatalf("total, subtotal, fees, discount, tax = %v, want %v; lines %+v", got, want, q.Lines)
			}
			checkQuote(t, r, q)
			if tc.last != "" && q.Lines[len(q.Lines)-1].Description != tc.last {
				t.Fatalf("last line %+v, want description %q", q.Lines[len(q.Lines)-1], tc.last)
			}
			if tc.voucher != nil && q.Voucher != tc.voucher.Code {
				t.Fatalf("quote's voucher %q", q.Voucher)
			}
		})
	}
}

// checkQuote checks what holds of every quote: the lines sum to the
// total, amounts are quantity × unit, only the discount is negative, the
// totals are the sums of their lines, the tax is the rounding of the rate
// on what is charged, and Validate accepts it.
func checkQuote(t *testing.T, r Rules, q Quote) {
	t.Helper()
	var sum, subtotal, fees, discount, tax int64
	for _, l := range q.Lines {
		sum += l.Amount
		switch l.Kind {
		case LineTicket, LineAddOn:
			subtotal += l.Amount
		case LineFee:
			fees += l.Amount
		case LineDiscount:
			discount -= l.Amount
		case LineTax:
			tax += l.Unit
			if (l.Amount == 0) != r.Tax.Inclusive && l.Unit != 0 {
				t.Fatalf("tax line %+v with inclusive %v", l, r.Tax.Inclusive)
			}
		}
		if l.Kind != LineTax && l.Amount != int64(l.Quantity)*l.Unit {
			t.Fatalf("line %+v: amount is not quantity × unit", l)
		}
		if l.Amount < 0 && l.Kind != LineDiscount || l.Amount > 0 && l.Kind == LineDiscount {
			t.Fatalf("line %+v has the wrong sign", l)
		}
	}
	if sum != q.Total.Amount || q.Total.Amount < 0 {
		t.Fatalf("lines sum to %d, total %v", sum, q.Total)
	}
	if subtotal != q.Subtotal.Amount || fees != q.Fees.Amount || discount != q.Discount.Amount || tax != q.Tax.Amount {
		t.Fatalf("totals %v %v %v %v, lines give %d %d %d %d", q.Subtotal, q.Fees, q.Discount, q.Tax, subtotal, fees, discount, tax)
	}
	if discount > subtotal {
		t.Fatalf("discount %d above the subtotal %d", discount, subtotal)
	}
	rate := int64(r.Tax.RateBP)
	charged := subtotal + fees - discount
	switch {
	case rate == 0:
		if tax != 0 {
			t.Fatalf("tax %d at rate 0", tax)
		}
	case r.Tax.Inclusive:
		// The tax is the share of the gross, and the net it leaves
		// taxed at the rate gives it back within rounding.
		if 2*abs(tax*(10_000+rate)-charged*rate) > 10_000+rate || abs((charged-tax)*rate-tax*10_000) > 10_000+rate {
			t.Fatalf("included tax %d of %d at %d bp", tax, charged, rate)
		}
		if q.Total.Amount != charged {
			t.Fatalf("total %d, charged %d", q.Total.Amount, charged)
		}
	default:
		if 2*abs(tax*10_000-charged*rate) > 10_000 {
			t.Fatalf("added tax %d of %d at %d bp", tax, charged, rate)
		}
		if q.Total.Amount != charged+tax {
			t.Fatalf("total %d, charged %d + tax %d", q.Total.Amount, charged, tax)
		}
	}
	for _, m := range []Money{q.Subtotal, q.Fees, q.Discount, q.Tax, q.Total} {
		if m.Currency != r.Currency {
			t.Fatalf("amount %+v not in %s", m, r.Currency)
		}
	}
	q.ID = "q_test"
	if err := q.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func abs(a int64) int64 {
	if a < 0 {
		return -a
	}
	return a
}

func TestPriceRefuses(t *testing.T) {
	later := func(r *Rules) { r.OnSaleAt = t0.Add(time.Hour) }
	presale := &Voucher{Code: "FANCLUB", Presale: true, Events: []string{"arena-concert"}, Zones: []string{"balcony"}}
	for _, tc := range []struct {
		name    string
		rules   func(*Rules)
		cart    func(*Cart)
		voucher *Voucher
		kind    errs.Kind
		reason  string
	}{
		{name: "before the on-sale", rules: later, kind: errs.Forbidden, reason: ReasonNotOnSale},
		{name: "before the on-sale with a plain voucher", rules: later, voucher: percent("TEN", 1000),
			kind: errs.Forbidden, reason: ReasonNotOnSale},
		{name: "presale voucher of other zones", rules: later, voucher: presale, kind: errs.Forbidden, reason: ReasonNotOnSale},
		{name: "presale voucher of another event", rules: later,
			voucher: &Voucher{Code: "FANCLUB", Presale: true, Events: []string{"other"}}, kind: errs.Invalid, reason: ReasonVoucherNotApplicable},
		{name: "expired presale voucher", rules: later,
			voucher: &Voucher{Code: "FANCLUB", Presale: true, Events: []string{"arena-concert"}, ValidUntil: t0},
			kind:    errs.Gone, reason: ReasonVoucherExpired},
		{name: "voucher not yet valid", voucher: &Voucher{Code: "SOON", PercentBP: 1, ValidFrom: t0.Add(1)},
			kind: errs.Forbidden, reason: ReasonVoucherNotYetValid},
		{name: "voucher expired", voucher: &Voucher{Code: "OLD", PercentBP: 1, ValidUntil: t0},
			kind: errs.Gone, reason: ReasonVoucherExpired},
		{name: "voucher of another event", voucher: &Voucher{Code: "OTHER", PercentBP: 1, Events: []string{"other"}},
			kind: errs.Invalid, reason: ReasonVoucherNotApplicable},
		{name: "voucher of zones not in the cart", voucher: percent("BALC", 1000, "balcony"),
			kind: errs.Invalid, reason: ReasonVoucherNotApplicable},
		{name: "voucher in another currency", voucher: &Voucher{Code: "EURO", Amount: 100, Currency: "EUR"},
			kind: errs.Invalid, reason: ReasonVoucherNotApplicable},
		{name: "invalid voucher", voucher: &Voucher{Code: "BOTH", Amount: 100, PercentBP: 100, Currency: "USD"}, kind: errs.Invalid},
		{name: "unknown zone", cart: func(c *Cart) { c.Tickets = []Item{{"vip", 1}} }, kind: errs.Invalid, reason: ReasonUnknownZone},
		{name: "unknown add-on", cart: func(c *Cart) { c.AddOns = []AddOnItem{{"bus", 1}} }, kind: errs.Invalid, reason: ReasonUnknownAddOn},
		{name: "too many of an add-on", cart: func(c *Cart) { c.AddOns = []AddOnItem{{"parking", 3}} }, kind: errs.Invalid, reason: ReasonAddOnLimit},
		{name: "holds expired", cart: func(c *Cart) { c.ExpiresAt = t0 }, kind: errs.Gone, reason: ReasonHoldsExpired},
		{name: "another event", cart: func(c *Cart) { c.Event = "other" }, kind: errs.Invalid},
		{name: "voucher code without the voucher", cart: func(c *Cart) { c.Voucher = "TEN" }, kind: errs.Invalid},
		{name: "voucher without its code", voucher: percent("TEN", 1000), cart: func(c *Cart) { c.Voucher = "" }, kind: errs.Invalid},
		{name: "another voucher than the code", voucher: percent("TEN", 1000), cart: func(c *Cart) { c.Voucher = "ELEVEN" }, kind: errs.Invalid},
		{name: "invalid rules", rules: func(r *Rules) { r.Currency = "usd" }, kind: errs.Invalid},
		{name: "invalid cart", cart: func(c *Cart) { c.Tickets[0].Quantity = 0 }, kind: errs.Invalid},
		{name: "no account", cart: func(c *Cart) { c.Account = "" }, kind: errs.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, c := testRules(), testCart()
			if tc.rules != nil {
				tc.rules(&r)
			}
			if tc.voucher != nil {
				c.Voucher = tc.voucher.Code
			}
			if tc.cart != nil {
				tc.cart(&c)
			}
			_, err := Price(r, c, tc.voucher, t0)
			if !errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.reason {
				t.Fatalf("error %v (kind %v, reason %q), want kind %v reason %q", err, errs.KindOf(err), errs.ReasonOf(err), tc.kind, tc.reason)
			}
		})
	}
}

// The on-sale refusal says when the sale opens.
func TestNotOnSaleMessage(t *testing.T) {
	r := testRules()
	r.OnSaleAt = time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	_, err := Price(r, testCart(), nil, t0)
	if msg := errs.Message(err); !strings.Contains(msg, "2026-07-01T10:00:00Z") {
		t.Fatalf("message %q", msg)
	}
}

// Price does not change its arguments.
func TestPriceLeavesItsArguments(t *testing.T) {
	r, c := testRules(), testCart(Item{"floor", 1}, Item{"balcony", 1})
	c.AddOns = []AddOnItem{{"parking", 1}}
	v := percent("TEN", 1000)
	c.Voucher = "TEN"
	rb, _ := json.Marshal(r)
	cb, _ := json.Marshal(c)
	q, err := Price(r, c, v, t0)
	if err != nil {
		t.Fatal(err)
	}
	q.Holds[0] = "changed"
	ra, _ := json.Marshal(r)
	ca, _ := json.Marshal(c)
	if string(ra) != string(rb) || string(ca) != string(cb) || v.Code != "TEN" {
		t.Fatal("Price changed its arguments")
	}
}
