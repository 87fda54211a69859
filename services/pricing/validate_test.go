package pricing

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

func TestRulesValidate(t *testing.T) {
	if r := testRules(); r.Validate() != nil {
		t.Fatal(r.Validate())
	}
	for name, f := range map[string]func(*Rules){
		"event id":             func(r *Rules) { r.Event = "Arena" },
		"version 0":            func(r *Rules) { r.Version = 0 },
		"currency":             func(r *Rules) { r.Currency = "US" },
		"no zones":             func(r *Rules) { r.Zones = nil },
		"zone id":              func(r *Rules) { r.Zones["Floor"] = 1 },
		"negative price":       func(r *Rules) { r.Zones["floor"] = -1 },
		"price too high":       func(r *Rules) { r.Zones["floor"] = MaxAmount + 1 },
		"negative fee":         func(r *Rules) { r.Fees.PerOrder = -1 },
		"tax rate":             func(r *Rules) { r.Tax.RateBP = MaxRateBP + 1 },
		"tax region":           func(r *Rules) { r.Tax.Region = "FR\n" },
		"no on-sale":           func(r *Rules) { r.OnSaleAt = time.Time{} },
		"add-on id":            func(r *Rules) { r.AddOns[0].ID = "" },
		"add-on twice":         func(r *Rules) { r.AddOns = append(r.AddOns, r.AddOns[0]) },
		"add-on name":          func(r *Rules) { r.AddOns[0].Name = "" },
		"add-on capacity":      func(r *Rules) { r.AddOns[0].Capacity = 0 },
		"add-on max per order": func(r *Rules) { r.AddOns[0].MaxPerOrder = 0 },
		"add-on price":         func(r *Rules) { r.AddOns[0].Price = -5 },
		"dynamic without base": func(r *Rules) {
			r.Dynamic = &Dynamic{Floor: Bound{BP: 1}, Ceiling: Bound{BP: 1}, MaxStep: Bound{BP: 1}}
		},
		"repricing of nothing": func(r *Rules) { r.Repricing = &Repricing{At: t0} },
		"repricing not matching": func(r *Rules) {
			r.Repricing = &Repricing{Version: 3, At: t0, Changes: []Change{{Zone: "floor", Old: 1, New: 2}}}
		},
		"repricing of another version": func(r *Rules) {
			r.Repricing = &Repricing{Version: 2, At: t0, Changes: []Change{{Zone: "floor", Old: 1, New: 18900, Reason: "x"}}}
		},
	} {
		r := testRules()
		f(&r)
		if err := r.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
		if _, err := r.Normalize(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: Normalize: %v, want invalid", name, err)
		}
	}
}

func TestRulesNormalize(t *testing.T) {
	r := testRules()
	r.OnSaleAt = time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("CET", 3600))
	r.AddOns = []AddOn{}
	n, err := r.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.OnSaleAt.Location() != time.UTC || n.OnSaleAt.Nanosecond() != 6000 || !n.OnSaleAt.Equal(r.OnSaleAt.Truncate(time.Microsecond)) || n.AddOns != nil {
		t.Fatalf("normalized %+v", n)
	}
	n.Zones["floor"] = 1
	if r.Zones["floor"] == 1 {
		t.Fatal("Normalize shares the zones' map")
	}
}

func TestVoucherValidate(t *testing.T) {
	ok := []Voucher{
		{Code: "TEN", PercentBP: 1000},
		{Code: "FIVE-EUR", Amount: 500, Currency: "EUR", Events: []string{"a", "b"}, Zones: []string{"z"}, MaxUses: 100, MaxPerAccount: 1},
		{Code: "FANS_2026", Presale: true, Events: []string{"a"}},
		{Code: "WINDOW", PercentBP: 1, ValidFrom: t0, ValidUntil: t0.Add(time.Second)},
	}
	for _, v := range ok {
		if err := v.Validate(); err != nil {
			t.Errorf("%+v: %v", v, err)
		}
	}
	for name, v := range map[string]Voucher{
		"short code":                  {Code: "AB", PercentBP: 1},
		"lower-case code":             {Code: "ten", PercentBP: 1},
		"long code":                   {Code: strings.Repeat("A", 33), PercentBP: 1},
		"nothing off":                 {Code: "NONE"},
		"both":                        {Code: "BOTH", PercentBP: 1, Amount: 1, Currency: "USD"},
		"over 100%":                   {Code: "MORE", PercentBP: 10_001},
		"amount without its currency": {Code: "AMT", Amount: 1},
		"currency without amount":     {Code: "CUR", PercentBP: 1, Currency: "USD"},
		"presale of any event":        {Code: "PRE", Presale: true},
		"event id":                    {Code: "EV", PercentBP: 1, Events: []string{"A"}},
		"zone twice":                  {Code: "ZZZ", PercentBP: 1, Zones: []string{"z", "z"}},
		"empty window":                {Code: "WIN", PercentBP: 1, ValidFrom: t0, ValidUntil: t0},
		"negative uses":               {Code: "USE", PercentBP: 1, MaxUses: -1},
		"negative account uses":       {Code: "USE", PercentBP: 1, MaxPerAccount: -1},
	} {
		if err := v.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	n, err := Voucher{Code: " spring-10 ", PercentBP: 1000, Events: []string{}}.Normalize()
	if err != nil || n.Code != "SPRING-10" || n.Events != nil {
		t.Fatalf("Normalize: %+v, %v", n, err)
	}
}

func TestVoucherActiveAt(t *testing.T) {
	v := Voucher{Code: "WIN", PercentBP: 1, ValidFrom: t0, ValidUntil: t0.Add(time.Hour)}
	for _, tc := range []struct {
		at     time.Time
		kind   errs.Kind
		reason string
	}{
		{t0.Add(-1), errs.Forbidden, ReasonVoucherNotYetValid},
		{t0, 0, ""},
		{t0.Add(time.Hour - 1), 0, ""},
		{t0.Add(time.Hour), errs.Gone, ReasonVoucherExpired},
	} {
		err := v.ActiveAt(tc.at)
		if tc.reason == "" && err != nil || tc.reason != "" && (!errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.reason) {
			t.Errorf("at %v: %v", tc.at, err)
		}
	}
	open := Voucher{Code: "OPEN", PercentBP: 1}
	if open.ActiveAt(time.Time{}) != nil || open.ActiveAt(t0.AddDate(100, 0, 0)) != nil {
		t.Fatal("a voucher without a window is always active")
	}
}

func TestCartValidate(t *testing.T) {
	if c := testCart(); c.Validate() != nil {
		t.Fatal(c.Validate())
	}
	for name, f := range map[string]func(*Cart){
		"event":             func(c *Cart) { c.Event = "" },
		"account":           func(c *Cart) { c.Account = "a b" },
		"no holds":          func(c *Cart) { c.Holds = nil },
		"hold twice":        func(c *Cart) { c.Holds = append(c.Holds, c.Holds[0]) },
		"hold id":           func(c *Cart) { c.Holds[0] = strings.Repeat("h", MaxRefLen+1) },
		"no tickets":        func(c *Cart) { c.Tickets = nil },
		"zone twice":        func(c *Cart) { c.Tickets = append(c.Tickets, c.Tickets[0]) },
		"quantity 0":        func(c *Cart) { c.Tickets[0].Quantity = 0 },
		"too many tickets":  func(c *Cart) { c.Tickets = []Item{{"a", 60}, {"b", 41}} },
		"add-on twice":      func(c *Cart) { c.AddOns = []AddOnItem{{"p", 1}, {"p", 1}} },
		"too many add-ons":  func(c *Cart) { c.AddOns = []AddOnItem{{"p", 50}, {"q", 51}} },
		"negative add-ons":  func(c *Cart) { c.AddOns = []AddOnItem{{"p", -1}} },
		"voucher code":      func(c *Cart) { c.Voucher = "no spaces" },
		"no expiry":         func(c *Cart) { c.ExpiresAt = time.Time{} },
		"negative quantity": func(c *Cart) { c.Tickets[0].Quantity = -3 },
		"huge quantity":     func(c *Cart) { c.Tickets[0].Quantity = 1 << 62 },
		"add-on id":         func(c *Cart) { c.AddOns = []AddOnItem{{"P", 1}} },
	} {
		c := testCart()
		f(&c)
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestAddOnItems(t *testing.T) {
	caps := map[string]int{"a": 1, "b": 2}
	got, err := NormalizeAddOnItems([]AddOnItem{{"b", 2}, {"a", 1}}, caps)
	if err != nil || len(got) != 2 || got[0].ID != "a" {
		t.Fatalf("%+v, %v", got, err)
	}
	for name, items := range map[string][]AddOnItem{
		"twice":       {{"a", 1}, {"a", 1}},
		"no capacity": {{"c", 1}},
		"quantity":    {{"a", 0}},
		"id":          {{"A", 1}},
	} {
		if _, err := NormalizeAddOnItems(items, caps); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := CheckRedemption("bad code", "a", "o"); !errs.Is(errs.NotFound, err) {
		t.Fatal(err)
	}
	if _, err := CheckRedemption("CODE", "", "o"); !errs.Is(errs.Invalid, err) {
		t.Fatal(err)
	}
	if c, err := CheckRedemption(" code ", "a", "o-1"); err != nil || c != "CODE" {
		t.Fatal(c, err)
	}
	if _, err := CheckUnredemption("CODE", ""); !errs.Is(errs.Invalid, err) {
		t.Fatal(err)
	}
}

func TestQuoteIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewQuoteID()
		if len(id) != 22 || !strings.HasPrefix(id, "q_") || strings.Trim(id[2:], "abcdefghijklmnopqrstuvwxyz234567") != "" || !ValidQuoteID(id) {
			t.Fatalf("id %q", id)
		}
		if seen[id] {
			t.Fatalf("id %q twice", id)
		}
		seen[id] = true
	}
	for _, id := range []string{"", "q.1", "_q", strings.Repeat("q", 65)} {
		if ValidQuoteID(id) {
			t.Errorf("%q valid", id)
		}
	}
}
