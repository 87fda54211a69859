package pricing

import (
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Cart is what a buyer asks a quote for: tickets they hold, add-ons, and
// a voucher code.
type Cart struct {
	Event string `json:"event"`
	// Account is the buyer's account id (from their session, never from
	// the request).
	Account string `json:"account"`
	// Holds are the inventory holds of the tickets; the quote is for
	// them and lives as long as they do.
	Holds   []string    `json:"holds"`
	Tickets []Item      `json:"tickets"`
	AddOns  []AddOnItem `json:"add_ons,omitempty"`
	// Voucher is a code as the buyer typed it; empty: none.
	Voucher string `json:"voucher,omitempty"`
	// ExpiresAt is when the quote expires: the earliest expiry of the
	// holds, set by the caller.
	ExpiresAt time.Time `json:"expires_at"`
}

// Item is a number of tickets of one zone.
type Item struct {
	Zone     string `json:"zone"`
	Quantity int    `json:"quantity"`
}

// AddOnItem is a number of units of one add-on.
type AddOnItem struct {
	ID       string `json:"id"`
	Quantity int    `json:"quantity"`
}

// Validate checks the cart: the ids, 1-MaxHolds distinct holds, 1-MaxTickets
// tickets in lines of distinct zones, at most MaxAddOnUnits add-ons in
// lines of distinct add-ons, each line a quantity of at least 1, a voucher
// code of the right form, an expiry. Whether the zones and add-ons exist
// is for Price, which has the price list. Errors are errs.Invalid.
func (c *Cart) Validate() error {
	const op = "pricing.cart"
	if !ValidRef(c.Account) {
		return errs.Errorf(op, errs.Invalid, "account id must be 1-%d letters, digits, '.', '_', ':' or '-'", MaxRefLen)
	}
	if c.ExpiresAt.IsZero() {
		return errs.E(op, errs.Invalid, "a cart needs the expiry of its holds")
	}
	return c.validateRequest()
}

// validateRequest is Validate without the fields the caller sets.
func (c *Cart) validateRequest() error {
	const op = "pricing.cart"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case !ValidID(c.Event):
		return bad("event id %q is not a valid id", c.Event)
	case len(c.Holds) == 0 || len(c.Holds) > MaxHolds:
		return bad("a cart names 1-%d holds", MaxHolds)
	case len(c.Tickets) == 0 || len(c.Tickets) > MaxZones:
		return bad("a cart has 1-%d lines of tickets", MaxZones)
	case len(c.AddOns) > MaxAddOns:
		return bad("a cart has at most %d lines of add-ons", MaxAddOns)
	case c.Voucher != "" && !ValidCode(NormalizeCode(c.Voucher)):
		return bad("voucher code %q is not of the form of a code", c.Voucher)
	}
	holds := map[string]bool{}
	for _, h := range c.Holds {
		if !ValidRef(h) {
			return bad("hold id %q is not a valid id", h)
		}
		if holds[h] {
			return bad("hold %q is listed twice", h)
		}
		holds[h] = true
	}
	zones, tickets := map[string]bool{}, 0
	for _, it := range c.Tickets {
		switch {
		case !ValidID(it.Zone):
			return bad("zone id %q is not a valid id", it.Zone)
		case zones[it.Zone]:
			return bad("zone %q has two lines", it.Zone)
		case it.Quantity < 1 || it.Quantity > MaxTickets:
			return bad("zone %q: quantity must be 1-%d", it.Zone, MaxTickets)
		}
		zones[it.Zone] = true
		if tickets += it.Quantity; tickets > MaxTickets {
			return bad("a cart has at most %d tickets", MaxTickets)
		}
	}
	addOns, units := map[string]bool{}, 0
	for _, it := range c.AddOns {
		switch {
		case !ValidID(it.ID):
			return bad("add-on id %q is not a valid id", it.ID)
		case addOns[it.ID]:
			return bad("add-on %q has two lines", it.ID)
		case it.Quantity < 1 || it.Quantity > MaxAddOnUnits:
			return bad("add-on %q: quantity must be 1-%d", it.ID, MaxAddOnUnits)
		}
		addOns[it.ID] = true
		if units += it.Quantity; units > MaxAddOnUnits {
			return bad("a cart has at most %d add-ons", MaxAddOnUnits)
		}
	}
	return nil
}

// TicketCount is the number of tickets in the cart.
func (c *Cart) TicketCount() int {
	n := 0
	for _, it := range c.Tickets {
		n += it.Quantity
	}
	return n
}
