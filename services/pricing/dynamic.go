package pricing

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits of dynamic pricing.
const (
	// MaxSteps bounds each list of thresholds.
	MaxSteps = 20
	// MaxMultiplierBP bounds a multiplier and a bound in basis points of
	// the base price: 10×.
	MaxMultiplierBP = 100_000
	// MaxDemand bounds the figures of a Demand.
	MaxDemand = 1_000_000_000
	// maxReasonLen bounds a change's reason.
	maxReasonLen = 1000
)

// Dynamic is the dynamic pricing of an event: how Reprice moves each
// zone's price from the demand it sees.
//
// Each zone has a base price (Base, its face value). Two lists of
// thresholds give a multiplier each: SellThrough by the share of the
// zone's capacity sold, Demand by the holds placed in the last minute.
// Of each list the last step whose threshold is reached applies (steps
// are in increasing order of their thresholds); none reached, or a
// capacity of 0 for sell-through, is ×1 (10000). The zone's target is
//
//	target = base × (sellThroughMult × demandMult / 10000) / 10000
//
// (each division rounded half to even), then clamped to [Floor,
// Ceiling]. The price moves from where it is toward the target by at
// most MaxStep per repricing, so a surge raises it in steps, each one a
// new rules version and an event.
type Dynamic struct {
	// Enabled switches repricing on. Off, Reprice changes nothing and
	// the prices stay as they are.
	Enabled bool `json:"enabled"`
	// Base is each zone's price before multipliers, minor units. It has
	// exactly the zones of Rules.Zones.
	Base        map[string]int64  `json:"base"`
	SellThrough []SellThroughStep `json:"sell_through,omitempty"`
	Demand      []DemandStep      `json:"demand,omitempty"`
	// Floor and Ceiling bound every zone's price; MaxStep bounds how far
	// one repricing moves it. Each is required.
	Floor   Bound `json:"floor"`
	Ceiling Bound `json:"ceiling"`
	MaxStep Bound `json:"max_step"`
}

// SellThroughStep applies MultiplierBP from a sell-through of AtBP basis
// points of the zone's capacity (8000: 80% sold) upward.
type SellThroughStep struct {
	AtBP         int `json:"at_bp"`
	MultiplierBP int `json:"multiplier_bp"`
}

// DemandStep applies MultiplierBP from AtPerMinute holds placed in the
// last minute upward.
type DemandStep struct {
	AtPerMinute  int `json:"at_per_minute"`
	MultiplierBP int `json:"multiplier_bp"`
}

// Bound is an amount per zone: either absolute (Amount, minor units, the
// same for every zone) or relative to the zone's base price (BP, basis
// points of it, rounded half to even). Exactly one is set.
type Bound struct {
	Amount int64 `json:"amount,omitempty"`
	BP     int   `json:"bp,omitempty"`
}

func (b Bound) validate(name string) error {
	switch {
	case (b.Amount != 0) == (b.BP != 0):
		return errs.Errorf("pricing.dynamic", errs.Invalid, "%s: set exactly one of amount and bp", name)
	case b.Amount < 0 || b.Amount > MaxAmount:
		return errs.Errorf("pricing.dynamic", errs.Invalid, "%s: amount must be 1-%d minor units", name, MaxAmount)
	case b.BP < 0 || b.BP > MaxMultiplierBP:
		return errs.Errorf("pricing.dynamic", errs.Invalid, "%s: bp must be 1-%d", name, MaxMultiplierBP)
	}
	return nil
}

// of is the bound for a zone with this base price.
func (b Bound) of(base int64) int64 {
	if b.Amount != 0 {
		return b.Amount
	}
	return divRound(base*int64(b.BP), 10_000)
}

// String describes the bound.
func (b Bound) String() string {
	if b.Amount != 0 {
		return strconv.FormatInt(b.Amount, 10)
	}
	return formatBP(b.BP) + " of base"
}

func (d Dynamic) clone() Dynamic {
	d.Base = cloneMap(d.Base)
	d.SellThrough = nilIfEmpty(slices.Clone(d.SellThrough))
	d.Demand = nilIfEmpty(slices.Clone(d.Demand))
	return d
}

// Validate checks the dynamic pricing of r: a base price for exactly
// r's zones, thresholds in increasing order within range, multipliers of
// 1-MaxMultiplierBP, the three bounds, and for every zone a floor at most
// its ceiling. Enabled, every zone's price must lie within its bounds.
// Errors are errs.Invalid.
func (d *Dynamic) Validate(r *Rules) error {
	const op = "pricing.dynamic"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if len(d.Base) != len(r.Zones) {
		return bad("base prices must name exactly the price list's zones")
	}
	if len(d.SellThrough) > MaxSteps || len(d.Demand) > MaxSteps {
		return bad("at most %d steps of each kind", MaxSteps)
	}
	for i, s := range d.SellThrough {
		switch {
		case s.AtBP < 0 || s.AtBP > 10_000:
			return bad("sell-through step %d: at_bp must be 0-10000", i)
		case i > 0 && s.AtBP <= d.SellThrough[i-1].AtBP:
			return bad("sell-through steps must be in increasing order of at_bp")
		case s.MultiplierBP < 1 || s.MultiplierBP > MaxMultiplierBP:
			return bad("sell-through step %d: multiplier_bp must be 1-%d", i, MaxMultiplierBP)
		}
	}
	for i, s := range d.Demand {
		switch {
		case s.AtPerMinute < 0 || s.AtPerMinute > MaxDemand:
			return bad("demand step %d: at_per_minute must be 0-%d", i, MaxDemand)
		case i > 0 && s.AtPerMinute <= d.Demand[i-1].AtPerMinute:
			return bad("demand steps must be in increasing order of at_per_minute")
		case s.MultiplierBP < 1 || s.MultiplierBP > MaxMultiplierBP:
			return bad("demand step %d: multiplier_bp must be 1-%d", i, MaxMultiplierBP)
		}
	}
	for _, b := range []struct {
		name string
		b    Bound
	}{{"floor", d.Floor}, {"ceiling", d.Ceiling}, {"max_step", d.MaxStep}} {
		if err := b.b.validate(b.name); err != nil {
			return err
		}
	}
	for _, z := range sortedKeys(d.Base) {
		price, ok := r.Zones[z]
		base := d.Base[z]
		switch {
		case !ok:
			return bad("base price of zone %q, which the price list does not have", z)
		case !amountOK(base):
			return bad("zone %q: base price must be 0-%d minor units", z, MaxAmount)
		case d.Floor.of(base) > d.Ceiling.of(base):
			return bad("zone %q: floor %d is above ceiling %d", z, d.Floor.of(base), d.Ceiling.of(base))
		case d.Enabled && (price < d.Floor.of(base) || price > d.Ceiling.of(base)):
			return bad("zone %q: price %d is outside its bounds [%d, %d]", z, price, d.Floor.of(base), d.Ceiling.of(base))
		}
	}
	return nil
}

// Demand is what Reprice sees of an event: event-wide figures, and
// figures per zone where known. A zone that Zones does not name is judged
// by the event-wide ones.
type Demand struct {
	// Sold and Capacity give the sell-through: Sold/Capacity.
	Sold     int `json:"sold"`
	Capacity int `json:"capacity"`
	// HoldsPerMinute is the holds placed in the last minute.
	HoldsPerMinute int                   `json:"holds_per_minute"`
	Zones          map[string]ZoneDemand `json:"zones,omitempty"`
}

// ZoneDemand is the demand of one zone.
type ZoneDemand struct {
	Sold           int `json:"sold"`
	Capacity       int `json:"capacity"`
	HoldsPerMinute int `json:"holds_per_minute"`
}

func (z ZoneDemand) validate() error {
	if z.Sold < 0 || z.Capacity < 0 || z.HoldsPerMinute < 0 || z.Sold > z.Capacity || z.Capacity > MaxDemand || z.HoldsPerMinute > MaxDemand {
		return errs.Errorf("pricing.demand", errs.Invalid, "demand must have 0 <= sold <= capacity <= %d and 0 <= holds per minute <= %d", MaxDemand, MaxDemand)
	}
	return nil
}

// Validate checks the figures: 0 <= Sold <= Capacity <= MaxDemand, 0 <=
// HoldsPerMinute <= MaxDemand, at most MaxZones zones with valid ids.
func (d *Demand) Validate() error {
	if err := (ZoneDemand{d.Sold, d.Capacity, d.HoldsPerMinute}).validate(); err != nil {
		return err
	}
	if len(d.Zones) > MaxZones {
		return errs.Errorf("pricing.demand", errs.Invalid, "at most %d zones", MaxZones)
	}
	for z, zd := range d.Zones {
		if !ValidID(z) {
			return errs.Errorf("pricing.demand", errs.Invalid, "zone id %q is not a valid id", z)
		}
		if err := zd.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (d *Demand) zone(z string) ZoneDemand {
	if zd, ok := d.Zones[z]; ok {
		return zd
	}
	return ZoneDemand{d.Sold, d.Capacity, d.HoldsPerMinute}
}

// Repricing is the record of a repricing in the rules version it wrote:
// which version, when, and what changed and why. It must name the
// version that holds it, so that a record carried over into a version
// written otherwise (an operator's edit of the rules read back) is
// refused rather than taken for that version's own.
type Repricing struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Changes []Change  `json:"changes"`
}

// Change is the move of one zone's price by a repricing, with what
// decided it.
type Change struct {
	Zone string `json:"zone"`
	Old  int64  `json:"old"`
	New  int64  `json:"new"`
	// Target is where the zone's price is heading (after the floor and
	// ceiling); New differs from it when MaxStep held the move back.
	Target         int64 `json:"target"`
	MultiplierBP   int   `json:"multiplier_bp"`
	SellThroughBP  int   `json:"sell_through_bp"`
	HoldsPerMinute int   `json:"holds_per_minute"`
	// Reason says the same in words.
	Reason string `json:"reason"`
}

func (p *Repricing) validate(r *Rules) error {
	const op = "pricing.repricing"
	if p.Version != r.Version {
		return errs.Errorf(op, errs.Invalid, "the repricing record is of version %d, not of this version %d: clear it when writing a version otherwise", p.Version, r.Version)
	}
	if p.At.IsZero() || len(p.Changes) == 0 || len(p.Changes) > MaxZones {
		return errs.Errorf(op, errs.Invalid, "a repricing has a time and 1-%d changes", MaxZones)
	}
	for _, c := range p.Changes {
		price, ok := r.Zones[c.Zone]
		switch {
		case !ok || price != c.New:
			return errs.Errorf(op, errs.Invalid, "change of zone %q does not match the price list", c.Zone)
		case !amountOK(c.Old) || !amountOK(c.Target) || c.Old == c.New:
			return errs.Errorf(op, errs.Invalid, "change of zone %q: amounts out of range", c.Zone)
		case c.MultiplierBP < 0 || c.SellThroughBP < 0 || c.SellThroughBP > 10_000 || c.HoldsPerMinute < 0:
			return errs.Errorf(op, errs.Invalid, "change of zone %q: figures out of range", c.Zone)
		case !printable(c.Reason, maxReasonLen):
			return errs.Errorf(op, errs.Invalid, "change of zone %q: reason is not printable text of at most %d bytes", c.Zone, maxReasonLen)
		}
	}
	return nil
}

// Repriced returns the rules after one repricing for demand d at now:
// Version+1, the zones' new prices, and Repricing recording the changes.
// It reports false, and returns r as it is, when dynamic pricing is off
// or no price moves. It is pure: the same arguments give the same result.
func Repriced(r Rules, d Demand, now time.Time) (Rules, bool, error) {
	const op = "pricing.repriced"
	if err := r.Validate(); err != nil {
		return r, false, errs.E(op, err)
	}
	if err := d.Validate(); err != nil {
		return r, false, errs.E(op, err)
	}
	dy := r.Dynamic
	if dy == nil || !dy.Enabled {
		return r, false, nil
	}
	var changes []Change
	for _, z := range sortedKeys(r.Zones) {
		if c, moved := dy.reprice(r.Currency, z, r.Zones[z], d.zone(z)); moved {
			changes = append(changes, c)
		}
	}
	if len(changes) == 0 {
		return r, false, nil
	}
	next := r
	next.Zones = cloneMap(r.Zones)
	for _, c := range changes {
		next.Zones[c.Zone] = c.New
	}
	next.Version = r.Version + 1
	next.Repricing = &Repricing{Version: next.Version, At: normTime(now), Changes: changes}
	return next, true, nil
}

// reprice computes the move of zone z from price cur.
func (dy *Dynamic) reprice(currency, z string, cur int64, zd ZoneDemand) (Change, bool) {
	base := dy.Base[z]
	c := Change{Zone: z, Old: cur, HoldsPerMinute: zd.HoldsPerMinute}
	var why []string

	stMult := 10_000
	if zd.Capacity > 0 {
		c.SellThroughBP = int(int64(zd.Sold) * 10_000 / int64(zd.Capacity))
		step := -1
		for i, s := range dy.SellThrough {
			if c.SellThroughBP >= s.AtBP {
				step = i
			}
		}
		if step >= 0 {
			s := dy.SellThrough[step]
			stMult = s.MultiplierBP
			why = append(why, fmt.Sprintf("sell-through %s >= %s: %s", formatBP(c.SellThroughBP), formatBP(s.AtBP), formatMult(stMult)))
		} else {
			why = append(why, fmt.Sprintf("sell-through %s: no step", formatBP(c.SellThroughBP)))
		}
	} else {
		why = append(why, "sell-through unknown")
	}
	dMult := 10_000
	step := -1
	for i, s := range dy.Demand {
		if zd.HoldsPerMinute >= s.AtPerMinute {
			step = i
		}
	}
	if step >= 0 {
		s := dy.Demand[step]
		dMult = s.MultiplierBP
		why = append(why, fmt.Sprintf("demand %d holds/min >= %d: %s", zd.HoldsPerMinute, s.AtPerMinute, formatMult(dMult)))
	} else {
		why = append(why, fmt.Sprintf("demand %d holds/min: no step", zd.HoldsPerMinute))
	}
	c.MultiplierBP = int(divRound(int64(stMult)*int64(dMult), 10_000))

	money := func(a int64) string { return Money{a, currency}.String() }
	target := divRound(base*int64(c.MultiplierBP), 10_000)
	why = append(why, fmt.Sprintf("target %s %s = %s", money(base), formatMult(c.MultiplierBP), money(target)))
	floor, ceiling := dy.Floor.of(base), min(dy.Ceiling.of(base), MaxAmount)
	switch {
	case target < floor:
		target = floor
		why = append(why, "raised to the floor "+money(floor))
	case target > ceiling:
		target = ceiling
		why = append(why, "lowered to the ceiling "+money(ceiling))
	}
	c.Target = target
	maxStep := dy.MaxStep.of(base)
	c.New = target
	switch {
	case target > cur+maxStep:
		c.New = cur + maxStep
		why = append(why, "moved by the largest step "+money(maxStep))
	case target < cur-maxStep:
		c.New = cur - maxStep
		why = append(why, "moved by the largest step "+money(maxStep))
	}
	c.Reason = strings.Join(why, "; ")
	return c, c.New != cur
}

// formatMult formats a multiplier in basis points: 12500 is "x1.25".
func formatMult(bp int) string {
	s := strconv.Itoa(bp/10_000) + "." + fmt.Sprintf("%04d", bp%10_000)
	return "x" + strings.TrimRight(strings.TrimRight(s, "0"), ".")
}
