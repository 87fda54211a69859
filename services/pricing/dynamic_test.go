package pricing

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
)

// dynamicRules prices floor at $200 and balcony at $100 with dynamic
// pricing on: ×1.1 from 50% sold, ×1.25 from 80%; ×1.1 from 30 holds a
// minute, ×1.3 from 100; between 80% and 150% of the base, at most $20 a
// step.
func dynamicRules() Rules {
	r := testRules()
	r.Zones = map[string]int64{"floor": 20000, "balcony": 10000}
	r.Dynamic = &Dynamic{Enabled: true, Base: map[string]int64{"floor": 20000, "balcony": 10000},
		SellThrough: []SellThroughStep{{5000, 11000}, {8000, 12500}},
		Demand:      []DemandStep{{30, 11000}, {100, 13000}},
		Floor:       Bound{BP: 8000}, Ceiling: Bound{BP: 15000}, MaxStep: Bound{Amount: 2000}}
	return r
}

func TestRepriced(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules func(*Rules)
		d     Demand
		want  map[string]int64 // nil: no change
		mult  int              // of floor
	}{
		{name: "no demand", d: Demand{Sold: 0, Capacity: 1000}},
		{name: "below the first steps", d: Demand{Sold: 499, Capacity: 1000, HoldsPerMinute: 29}},
		{name: "sell-through, one step at a time", d: Demand{Sold: 850, Capacity: 1000},
			want: map[string]int64{"floor": 22000, "balcony": 12000}, mult: 12500},
		{name: "both, up to the ceiling", rules: func(r *Rules) { r.Zones["floor"] = 29000 },
			d: Demand{Sold: 850, Capacity: 1000, HoldsPerMinute: 120}, want: map[string]int64{"floor": 30000, "balcony": 12000}, mult: 16250},
		{name: "within one step", d: Demand{Sold: 500, Capacity: 1000},
			want: map[string]int64{"floor": 22000, "balcony": 11000}, mult: 11000},
		{name: "down to the floor", rules: func(r *Rules) {
			r.Dynamic.SellThrough = []SellThroughStep{{0, 5000}}
			r.Zones["floor"] = 17000
		}, d: Demand{Sold: 1, Capacity: 1000}, want: map[string]int64{"floor": 16000, "balcony": 8000}, mult: 5000},
		{name: "down a step", rules: func(r *Rules) { r.Zones["floor"] = 30000 }, d: Demand{Capacity: 1000},
			want: map[string]int64{"floor": 28000}, mult: 10000},
		{name: "zone figures", d: Demand{Sold: 850, Capacity: 1000, Zones: map[string]ZoneDemand{"balcony": {Sold: 10, Capacity: 500}}},
			want: map[string]int64{"floor": 22000}, mult: 12500},
		{name: "no capacity: sell-through unknown", d: Demand{HoldsPerMinute: 30},
			want: map[string]int64{"floor": 22000, "balcony": 11000}, mult: 11000},
		{name: "bounds in amounts, step in bp", rules: func(r *Rules) {
			r.Dynamic.Floor, r.Dynamic.Ceiling, r.Dynamic.MaxStep = Bound{Amount: 9000}, Bound{Amount: 21000}, Bound{BP: 250}
		}, d: Demand{Sold: 1000, Capacity: 1000}, want: map[string]int64{"floor": 20500, "balcony": 10250}, mult: 12500},
		{name: "disabled", rules: func(r *Rules) { r.Dynamic.Enabled = false }, d: Demand{Sold: 1000, Capacity: 1000, HoldsPerMinute: 1000}},
		{name: "static", rules: func(r *Rules) { r.Dynamic = nil }, d: Demand{Sold: 1000, Capacity: 1000, HoldsPerMinute: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dynamicRules()
			if tc.rules != nil {
				tc.rules(&r)
			}
			before := cloneMap(r.Zones)
			next, changed, err := Repriced(r, tc.d, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Zones, before) {
				t.Fatal("Repriced changed its argument's zones")
			}
			if tc.want == nil {
				if changed || !reflect.DeepEqual(next, r) {
					t.Fatalf("changed to %+v", next.Zones)
				}
				return
			}
			if !changed || next.Version != r.Version+1 || next.Repricing == nil || !next.Repricing.At.Equal(t0) {
				t.Fatalf("changed %v, version %d, repricing %+v", changed, next.Version, next.Repricing)
			}
			if err := next.Validate(); err != nil {
				t.Fatalf("the next version does not validate: %v", err)
			}
			zones := []string{}
			for _, c := range next.Repricing.Changes {
				zones = append(zones, c.Zone)
				if c.Old != r.Zones[c.Zone] || c.New != next.Zones[c.Zone] || c.New != tc.want[c.Zone] || c.Reason == "" {
					t.Fatalf("change %+v, want new %d", c, tc.want[c.Zone])
				}
				if c.Zone == "floor" && c.MultiplierBP != tc.mult {
					t.Fatalf("change %+v: multiplier, want %d", c, tc.mult)
				}
			}
			if len(zones) != len(tc.want) || !sortedStrings(zones) {
				t.Fatalf("changes of %v, want %v in order", zones, tc.want)
			}
			for z, p := range next.Zones {
				if w, ok := tc.want[z]; ok && p != w || !ok && p != r.Zones[z] {
					t.Fatalf("zone %s at %d", z, p)
				}
			}
		})
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func TestRepricedReason(t *testing.T) {
	r := dynamicRules()
	r.Zones["floor"] = 29000
	next, _, err := Repriced(r, Demand{Sold: 850, Capacity: 1000, HoldsPerMinute: 120}, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := next.Repricing.Changes[1].Reason // floor, after balcony
	want := "sell-through 85% >= 80%: x1.25; demand 120 holds/min >= 100: x1.3; target $200.00 x1.625 = $325.00; lowered to the ceiling $300.00"
	if got != want {
		t.Fatalf("reason\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(next.Repricing.Changes[0].Reason, "moved by the largest step $20.00") {
		t.Fatalf("balcony's reason %q", next.Repricing.Changes[0].Reason)
	}
}

// With the same demand, repricing converges on the target in steps of at
// most MaxStep, never leaves the bounds, and then stops.
func TestRepricedConverges(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		r := dynamicRules()
		d := Demand{Capacity: 1 + rng.IntN(10_000), HoldsPerMinute: rng.IntN(200)}
		d.Sold = rng.IntN(d.Capacity + 1)
		r.Dynamic.MaxStep = Bound{Amount: 100 + rng.Int64N(3000)}
		for steps := 0; ; steps++ {
			next, changed, err := Repriced(r, d, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !changed {
				break
			}
			if steps > 30000/100+1 {
				t.Fatalf("no convergence for %+v", d)
			}
			for z, p := range next.Zones {
				base := r.Dynamic.Base[z]
				if abs(p-r.Zones[z]) > r.Dynamic.MaxStep.Amount || p < base*8/10 || p > base*15/10 {
					t.Fatalf("zone %s from %d to %d (base %d, step %d)", z, r.Zones[z], p, base, r.Dynamic.MaxStep.Amount)
				}
			}
			again, _, _ := Repriced(r, d, t0)
			if !reflect.DeepEqual(next, again) {
				t.Fatal("Repriced is not deterministic")
			}
			r = next
		}
	}
}

func TestDynamicValidate(t *testing.T) {
	for name, f := range map[string]func(*Dynamic, *Rules){
		"base of another zone":     func(d *Dynamic, _ *Rules) { delete(d.Base, "floor"); d.Base["vip"] = 1 },
		"base missing":             func(d *Dynamic, _ *Rules) { delete(d.Base, "floor") },
		"steps out of order":       func(d *Dynamic, _ *Rules) { d.SellThrough[1].AtBP = 5000 },
		"sell-through above 100%":  func(d *Dynamic, _ *Rules) { d.SellThrough[1].AtBP = 10_001 },
		"demand out of order":      func(d *Dynamic, _ *Rules) { d.Demand[0].AtPerMinute = 100 },
		"multiplier 0":             func(d *Dynamic, _ *Rules) { d.Demand[0].MultiplierBP = 0 },
		"multiplier too high":      func(d *Dynamic, _ *Rules) { d.SellThrough[0].MultiplierBP = MaxMultiplierBP + 1 },
		"bound with both":          func(d *Dynamic, _ *Rules) { d.Floor.Amount = 1 },
		"bound with neither":       func(d *Dynamic, _ *Rules) { d.MaxStep = Bound{} },
		"negative bound":           func(d *Dynamic, _ *Rules) { d.Ceiling = Bound{Amount: -1} },
		"floor above ceiling":      func(d *Dynamic, _ *Rules) { d.Floor = Bound{BP: 16000} },
		"price outside its bounds": func(_ *Dynamic, r *Rules) { r.Zones["floor"] = 30001 },
		"too many steps":           func(d *Dynamic, _ *Rules) { d.Demand = make([]DemandStep, MaxSteps+1) },
		"base price too high":      func(d *Dynamic, _ *Rules) { d.Base["floor"] = MaxAmount + 1 },
	} {
		r := dynamicRules()
		f(r.Dynamic, &r)
		if err := r.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	// Disabled, the prices may be anywhere (an operator set them).
	r := dynamicRules()
	r.Dynamic.Enabled = false
	r.Zones["floor"] = 1
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]Demand{
		"sold above capacity": {Sold: 2, Capacity: 1},
		"negative":            {HoldsPerMinute: -1},
		"zone":                {Zones: map[string]ZoneDemand{"Z": {}}},
		"zone figures":        {Zones: map[string]ZoneDemand{"z": {Sold: -1}}},
	} {
		if err := d.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", name, err)
		}
		if _, _, err := Repriced(dynamicRules(), d, t0); !errs.Is(errs.Invalid, err) {
			t.Errorf("Repriced with %s: %v", name, err)
		}
	}
}
