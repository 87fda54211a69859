package pricing

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

const rulesDoc = `{
  "event": "arena-concert",
  "version": 1,
  "currency": "EUR",
  "zones": {"floor": 18900, "balcony": 7550},
  "fees": {"per_ticket": 350, "per_order": 0},
  "tax": {"region": "FR", "rate_bp": 2000, "inclusive": true},
  "add_ons": [{"id": "parking", "name": "Parking", "price": 1500, "capacity": 300, "max_per_order": 2}],
  "dynamic": {
    "enabled": true,
    "base": {"floor": 18900, "balcony": 7550},
    "sell_through": [{"at_bp": 8000, "multiplier_bp": 12000}],
    "demand": [{"at_per_minute": 50, "multiplier_bp": 11000}],
    "floor": {"bp": 9000},
    "ceiling": {"amount": 30000},
    "max_step": {"bp": 500}
  },
  "on_sale_at": "2026-06-01T10:00:00+02:00"
}`

func TestDecodeRules(t *testing.T) {
	r, err := DecodeRules([]byte(rulesDoc))
	if err != nil {
		t.Fatal(err)
	}
	if r.Zones["balcony"] != 7550 || r.Dynamic == nil || r.Dynamic.Ceiling.Amount != 30000 || r.Tax.RateBP != 2000 ||
		!r.OnSaleAt.Equal(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)) || r.OnSaleAt.Location() != time.UTC {
		t.Fatalf("decoded %+v", r)
	}
	for name, doc := range map[string]string{
		"unknown field":   strings.Replace(rulesDoc, `"version"`, `"versions"`, 1),
		"trailing data":   rulesDoc + `{}`,
		"not an object":   `[]`,
		"float amount":    strings.Replace(rulesDoc, `18900,`, `189.00,`, 1),
		"huge number":     strings.Replace(rulesDoc, `18900,`, `1e40,`, 1),
		"invalid":         strings.Replace(rulesDoc, `"EUR"`, `"eur"`, 1),
		"repricing":       strings.Replace(rulesDoc, `"version": 1,`, `"version": 1, "repricing": {"version": 1, "at": "2026-01-01T00:00:00Z", "changes": [{"zone": "floor", "old": 1, "new": 18900, "target": 18900, "reason": "x"}]},`, 1),
		"empty":           ``,
		"truncated":       rulesDoc[:100],
		"string for int":  strings.Replace(rulesDoc, `"version": 1`, `"version": "1"`, 1),
		"negative amount": strings.Replace(rulesDoc, `"per_ticket": 350`, `"per_ticket": -350`, 1),
	} {
		if _, err := DecodeRules([]byte(doc)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	big := `{"event": "` + strings.Repeat(" ", MaxRulesDoc) + `"}`
	if _, err := DecodeRules([]byte(big)); !errs.Is(errs.TooLarge, err) {
		t.Fatalf("large document: %v", err)
	}
}

func TestDecodeVoucher(t *testing.T) {
	v, err := DecodeVoucher([]byte(`{"code": "fan-club", "presale": true, "percent_bp": 500, "events": ["arena-concert"],
		"valid_until": "2026-06-01T10:00:00Z", "max_uses": 100, "max_per_account": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Voucher{Code: "FAN-CLUB", Presale: true, PercentBP: 500, Events: []string{"arena-concert"},
		ValidUntil: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), MaxUses: 100, MaxPerAccount: 2}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("decoded %+v", v)
	}
	for _, doc := range []string{`{"code": "X"}`, `{"code": "TEN", "percent_bp": 1000, "uses": 1}`, `{"code": "TEN", "percent_bp": 1000}x`} {
		if _, err := DecodeVoucher([]byte(doc)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", doc, err)
		}
	}
}

func TestDecodeCart(t *testing.T) {
	c, err := DecodeCart([]byte(`{"event": "arena-concert", "holds": ["arena-concert.0:h:01"],
		"tickets": [{"zone": "floor", "quantity": 2}], "add_ons": [{"id": "parking", "quantity": 1}], "voucher": "spring"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Cart{Event: "arena-concert", Holds: []string{"arena-concert.0:h:01"}, Tickets: []Item{{"floor", 2}},
		AddOns: []AddOnItem{{"parking", 1}}, Voucher: "spring"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v", c)
	}
	for name, doc := range map[string]string{
		"account from the buyer":   `{"event": "e", "account": "someone", "holds": ["h"], "tickets": [{"zone": "z", "quantity": 1}]}`,
		"expiry from the buyer":    `{"event": "e", "expires_at": "2030-01-01T00:00:00Z", "holds": ["h"], "tickets": [{"zone": "z", "quantity": 1}]}`,
		"too many tickets":         `{"event": "e", "holds": ["h"], "tickets": [{"zone": "z", "quantity": 101}]}`,
		"negative":                 `{"event": "e", "holds": ["h"], "tickets": [{"zone": "z", "quantity": -1}]}`,
		"quantity beyond an int64": `{"event": "e", "holds": ["h"], "tickets": [{"zone": "z", "quantity": 99999999999999999999}]}`,
		"no holds":                 `{"event": "e", "holds": [], "tickets": [{"zone": "z", "quantity": 1}]}`,
		"null":                     `null`,
	} {
		if _, err := DecodeCart([]byte(doc)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// largestRules is the largest price list Validate accepts, near enough:
// every list full and every string at its longest.
func largestRules() Rules {
	id := func(prefix string, i int) string { return fmt.Sprintf("%s%0*d", prefix, 63-len(prefix), i) }
	r := Rules{Event: id("e", 0), Version: 1 << 62, Currency: "USD", Zones: map[string]int64{},
		Fees: Fees{MaxAmount, MaxAmount}, Tax: Tax{Region: strings.Repeat("R", MaxNameLen), RateBP: MaxRateBP},
		OnSaleAt: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)}
	d := &Dynamic{Enabled: false, Base: map[string]int64{}, Floor: Bound{Amount: 1}, Ceiling: Bound{Amount: MaxAmount}, MaxStep: Bound{Amount: MaxAmount}}
	for i := range MaxZones {
		r.Zones[id("z", i)] = MaxAmount
		d.Base[id("z", i)] = MaxAmount
	}
	for i := range MaxSteps {
		d.SellThrough = append(d.SellThrough, SellThroughStep{AtBP: 9000 + i, MultiplierBP: MaxMultiplierBP})
		d.Demand = append(d.Demand, DemandStep{AtPerMinute: MaxDemand - MaxSteps + i, MultiplierBP: MaxMultiplierBP})
	}
	r.Dynamic = d
	for i := range MaxAddOns {
		r.AddOns = append(r.AddOns, AddOn{ID: id("a", i), Name: strings.Repeat("N", MaxNameLen), Price: MaxAmount,
			Capacity: MaxAddOnCapacity, MaxPerOrder: MaxAddOnUnits})
	}
	return r
}

// The decoders' size limits are twice the largest valid documents
// written with indentation.
func TestDocumentLimits(t *testing.T) {
	r := largestRules()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if 2*len(b) > MaxRulesDoc {
		t.Fatalf("largest rules: %d bytes", len(b))
	}
	if _, err := DecodeRules(b); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest rules: %d bytes", len(b))

	req := cartRequest{Event: r.Event, Voucher: strings.Repeat("V", 32)}
	for i := range MaxHolds {
		req.Holds = append(req.Holds, fmt.Sprintf("%0*d", MaxRefLen, i))
	}
	for z := range sortedKeys(r.Zones)[:MaxTickets] {
		req.Tickets = append(req.Tickets, Item{Zone: sortedKeys(r.Zones)[z], Quantity: 1})
	}
	for _, a := range r.AddOns {
		req.AddOns = append(req.AddOns, AddOnItem{ID: a.ID, Quantity: 1})
	}
	b, _ = json.MarshalIndent(req, "", "  ")
	if 2*len(b) > MaxCartDoc {
		t.Fatalf("largest cart: %d bytes", len(b))
	}
	if _, err := DecodeCart(b); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest cart: %d bytes", len(b))

	v := Voucher{Code: strings.Repeat("V", 32), Amount: MaxAmount, Currency: "USD", ValidFrom: r.OnSaleAt, ValidUntil: r.OnSaleAt.Add(1),
		MaxUses: MaxVoucherUses, MaxPerAccount: MaxVoucherUses, Presale: true}
	for i := range MaxVoucherScope {
		v.Events = append(v.Events, fmt.Sprintf("%063d", i))
		v.Zones = append(v.Zones, fmt.Sprintf("%063d", i))
	}
	b, _ = json.MarshalIndent(v, "", "  ")
	if 2*len(b) > MaxVoucherDoc {
		t.Fatalf("largest voucher: %d bytes", len(b))
	}
	if _, err := DecodeVoucher(b); err != nil {
		t.Fatal(err)
	}
	t.Logf("largest voucher: %d bytes", len(b))
}
