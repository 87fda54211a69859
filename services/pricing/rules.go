package pricing

import (
	"regexp"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits. They bound what a price list, a voucher and a cart may hold,
// and so every sum Price computes: with them no product or sum of amounts
// comes near the range of an int64 (the largest, a tax on the largest
// cart, is below 10^18).
const (
	// MaxAmount bounds a unit price, a fee and a voucher's amount, in
	// minor units (a billion dollars).
	MaxAmount = 100_000_000_000
	// MaxZones bounds the zones of a price list (the catalog's limit).
	MaxZones = 100
	// MaxAddOns bounds the add-ons of a price list.
	MaxAddOns = 50
	// MaxAddOnCapacity bounds an add-on's capacity.
	MaxAddOnCapacity = 1_000_000
	// MaxTickets bounds the tickets of one cart, all zones together.
	MaxTickets = 100
	// MaxAddOnUnits bounds the add-on units of one cart, all add-ons
	// together.
	MaxAddOnUnits = 100
	// MaxHolds bounds the holds a cart names.
	MaxHolds = 100
	// MaxVoucherScope bounds the events and the zones a voucher names.
	MaxVoucherScope = 100
	// MaxNameLen bounds names and tax regions, in bytes.
	MaxNameLen = 200
	// MaxRefLen bounds the ids of accounts, holds and orders, in bytes.
	MaxRefLen = 128
	// MaxRateBP bounds a tax rate: 100%.
	MaxRateBP = 10_000
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidID reports whether s may name an event, a zone or an add-on: the
// catalog's ids, 1-63 lower-case letters, digits and dashes. They appear
// in storage keys and NATS subjects, so nothing else is allowed.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// ValidRef reports whether s may be the id of an account, a hold or an
// order, which other services make: 1-MaxRefLen bytes of letters, digits
// and '.', '_', ':', '-'.
func ValidRef(s string) bool {
	if s == "" || len(s) > MaxRefLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// Rules is the price list of one event. Stores keep it versioned: every
// write is the next Version, and Quote records the version it priced
// with.
type Rules struct {
	Event string `json:"event"`
	// Version counts the writes, from 1 (see Store.PutRules).
	Version int64 `json:"version"`
	// Currency is the ISO 4217 code of every amount in the list.
	Currency string `json:"currency"`
	// Zones is the price of a ticket in each zone, in minor units: the
	// face value (seeded from the catalog zones' price_cents), or, with
	// Dynamic on, the price the last repricing set.
	Zones  map[string]int64 `json:"zones"`
	Fees   Fees             `json:"fees"`
	Tax    Tax              `json:"tax"`
	AddOns []AddOn          `json:"add_ons,omitempty"`
	// Dynamic sets how Reprice moves Zones; nil or not Enabled: the
	// prices are static.
	Dynamic *Dynamic `json:"dynamic,omitempty"`
	// OnSaleAt is the public on-sale: before it, only carts with a
	// presale voucher are priced. Required.
	OnSaleAt time.Time `json:"on_sale_at"`
	// Repricing records the repricing that wrote this version; nil for a
	// version written otherwise (by an operator), which must clear it.
	Repricing *Repricing `json:"repricing,omitempty"`
}

// Fees are added to every order with tickets, in minor units.
type Fees struct {
	// PerTicket is charged once per ticket.
	PerTicket int64 `json:"per_ticket"`
	// PerOrder is charged once per order.
	PerOrder int64 `json:"per_order"`
}

// Tax is the sales tax or VAT of the event's region, on everything an
// order charges: tickets, add-ons and fees, after the discount.
type Tax struct {
	// Region names the tax (e.g. "FR", "US-NY"); shown on the tax line.
	Region string `json:"region,omitempty"`
	// RateBP is the rate in basis points: 2000 is 20%. 0: no tax.
	RateBP int `json:"rate_bp"`
	// Inclusive says prices include the tax (VAT in Europe): the tax is
	// part of the total. Otherwise it is added to it (US sales tax).
	Inclusive bool `json:"inclusive,omitempty"`
}

// AddOn is something sold with tickets (parking, merchandise), with a
// capacity of its own.
type AddOn struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Price int64  `json:"price"`
	// Capacity is how many units can be sold, all orders together
	// (Store.ReserveAddOns keeps to it).
	Capacity int `json:"capacity"`
	// MaxPerOrder is how many units one order may have.
	MaxPerOrder int `json:"max_per_order"`
}

// AddOn returns the add-on with that id.
func (r *Rules) AddOn(id string) (AddOn, bool) {
	for _, a := range r.AddOns {
		if a.ID == id {
			return a, true
		}
	}
	return AddOn{}, false
}

// AddOnCapacity returns each add-on's capacity, for Store.ReserveAddOns.
func (r *Rules) AddOnCapacity() map[string]int {
	m := make(map[string]int, len(r.AddOns))
	for _, a := range r.AddOns {
		m[a.ID] = a.Capacity
	}
	return m
}

func amountOK(a int64) bool { return a >= 0 && a <= MaxAmount }

// validName reports whether s may be shown to buyers: valid UTF-8 within
// MaxNameLen bytes, no control characters.
func validName(s string) bool { return printable(s, MaxNameLen) }

// printable reports whether s is valid UTF-8 of at most limit bytes without
// control characters.
func printable(s string, limit int) bool {
	if len(s) > limit || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Validate checks the price list: ids, the currency, every amount within
// [0, MaxAmount], the limits, the tax rate, add-ons, the on-sale time and
// the dynamic pricing rules (Dynamic.Validate). Errors are errs.Invalid.
func (r *Rules) Validate() error {
	const op = "pricing.rules"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case !ValidID(r.Event):
		return bad("event id %q: use 1-63 lower-case letters, digits and dashes", r.Event)
	case r.Version < 1:
		return bad("version must be at least 1")
	case !ValidCurrency(r.Currency):
		return bad("currency %q is not an ISO 4217 code", r.Currency)
	case len(r.Zones) == 0 || len(r.Zones) > MaxZones:
		return bad("a price list needs 1-%d zones", MaxZones)
	case !amountOK(r.Fees.PerTicket) || !amountOK(r.Fees.PerOrder):
		return bad("fees must be 0-%d minor units", MaxAmount)
	case r.Tax.RateBP < 0 || r.Tax.RateBP > MaxRateBP:
		return bad("tax rate must be 0-%d basis points", MaxRateBP)
	case !validName(r.Tax.Region):
		return bad("tax region must be at most %d printable bytes", MaxNameLen)
	case len(r.AddOns) > MaxAddOns:
		return bad("at most %d add-ons", MaxAddOns)
	case r.OnSaleAt.IsZero():
		return bad("on_sale_at is required")
	}
	for _, z := range sortedKeys(r.Zones) {
		if !ValidID(z) {
			return bad("zone id %q is not a valid id", z)
		}
		if !amountOK(r.Zones[z]) {
			return bad("zone %q: price must be 0-%d minor units", z, MaxAmount)
		}
	}
	seen := map[string]bool{}
	for _, a := range r.AddOns {
		switch {
		case !ValidID(a.ID):
			return bad("add-on id %q is not a valid id", a.ID)
		case seen[a.ID]:
			return bad("add-on %q is listed twice", a.ID)
		case a.Name == "" || !validName(a.Name):
			return bad("add-on %q: name must be 1-%d printable bytes", a.ID, MaxNameLen)
		case !amountOK(a.Price):
			return bad("add-on %q: price must be 0-%d minor units", a.ID, MaxAmount)
		case a.Capacity < 1 || a.Capacity > MaxAddOnCapacity:
			return bad("add-on %q: capacity must be 1-%d", a.ID, MaxAddOnCapacity)
		case a.MaxPerOrder < 1 || a.MaxPerOrder > MaxAddOnUnits:
			return bad("add-on %q: max per order must be 1-%d", a.ID, MaxAddOnUnits)
		}
		seen[a.ID] = true
	}
	if r.Dynamic != nil {
		if err := r.Dynamic.Validate(r); err != nil {
			return err
		}
	}
	if r.Repricing != nil {
		if err := r.Repricing.validate(r); err != nil {
			return err
		}
	}
	return nil
}

// Normalize returns r ready to store: checked (Validate), times in UTC
// truncated to microseconds (what every store keeps), empty lists nil.
func (r Rules) Normalize() (Rules, error) {
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	r.Zones = cloneMap(r.Zones)
	r.OnSaleAt = normTime(r.OnSaleAt)
	r.AddOns = nilIfEmpty(slices.Clone(r.AddOns))
	if r.Dynamic != nil {
		d := r.Dynamic.clone()
		r.Dynamic = &d
	}
	if r.Repricing != nil {
		p := *r.Repricing
		p.At = normTime(p.At)
		p.Changes = slices.Clone(p.Changes)
		r.Repricing = &p
	}
	return r, nil
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func cloneMap[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return nil
	}
	c := make(M, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
