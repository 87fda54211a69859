package pricing

import (
	"slices"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Kinds of Line.
const (
	LineTicket   = "ticket"
	LineAddOn    = "addon"
	LineFee      = "fee"
	LineDiscount = "discount"
	LineTax      = "tax"
)

// Refs of the fee lines.
const (
	FeePerTicket = "per_ticket"
	FeePerOrder  = "per_order"
)

// maxTotal bounds every amount of a quote: the largest cart (MaxTickets
// tickets, MaxAddOnUnits add-ons and their fees at MaxAmount each) with a
// tax of 100% added.
const maxTotal = 2 * (MaxTickets + MaxAddOnUnits + MaxTickets + 1) * MaxAmount

// Quote is the price of a cart, fixed for the life of its holds: the
// order charges exactly Total.
type Quote struct {
	// ID is unguessable (NewQuoteID); Price leaves it empty, the Service
	// sets it.
	ID      string   `json:"id"`
	Event   string   `json:"event"`
	Account string   `json:"account"`
	Holds   []string `json:"holds"`
	// RulesVersion is the version of the price list it was priced with.
	RulesVersion int64  `json:"rules_version"`
	Lines        []Line `json:"lines"`
	// Subtotal is tickets and add-ons; Fees the fee lines; Discount what
	// the voucher takes off (positive); Tax the tax, included in the
	// other amounts or added to them (Rules.Tax.Inclusive); Total what
	// is charged, the sum of the lines' amounts.
	Subtotal Money `json:"subtotal"`
	Fees     Money `json:"fees"`
	Discount Money `json:"discount"`
	Tax      Money `json:"tax"`
	Total    Money `json:"total"`
	// Voucher is the normalized code it was priced with; empty: none.
	Voucher   string    `json:"voucher,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Line is one line of a quote. Amount is what the line adds to the total:
// Quantity × Unit, negative for the discount. The tax line has Quantity
// 1 and the tax as Unit; its Amount is the tax when it is added to the
// prices, and 0 when it is included in them (it is then inside the other
// lines' amounts, and the line only says how much of them it is).
type Line struct {
	Kind        string `json:"kind"`
	Ref         string `json:"ref"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity"`
	Unit        int64  `json:"unit"`
	Amount      int64  `json:"amount"`
}

// Price prices cart c with price list r and voucher v (nil without one;
// it must be the voucher c names) at time now. It is pure and
// deterministic: the same arguments give the same quote (without an ID;
// the Service gives it one), and it never fails for a reason outside
// them.
//
// Lines come in this order: tickets (in the cart's order), add-ons, fees
// (per ticket, then per order), the discount, the tax. Arithmetic is on
// integers only, and rounds as follows:
//
//   - a percent discount is floor(eligible × percent_bp / 10000), where
//     eligible is the tickets the voucher applies to (its zones); an
//     amount discount is at most eligible; add-ons and fees are never
//     discounted, so no total is negative;
//   - the tax is on everything after the discount, fees included, once
//     for the whole order: included in the prices, tax =
//     round-half-even(gross × rate / (10000 + rate)); added to them, tax
//     = round-half-even(net × rate / 10000);
//   - Total is the sum of the lines' amounts, exactly: Subtotal + Fees −
//     Discount, plus Tax when it is added.
//
// Errors: errs.Invalid for a price list, cart or voucher that does not
// validate or do not belong together (reasons ReasonUnknownZone,
// ReasonUnknownAddOn, ReasonAddOnLimit, ReasonVoucherNotApplicable);
// errs.Forbidden with ReasonNotOnSale before the event's on-sale without a
// presale voucher for its event and the cart's zones; the voucher's
// window (Voucher.ActiveAt); errs.Gone with ReasonHoldsExpired when the
// cart expires at or before now.
func Price(r Rules, c Cart, v *Voucher, now time.Time) (Quote, error) {
	const op = "pricing.price"
	if err := r.Validate(); err != nil {
		return Quote{}, errs.E(op, err)
	}
	if err := c.Validate(); err != nil {
		return Quote{}, errs.E(op, err)
	}
	if c.Event != r.Event {
		return Quote{}, errs.Errorf(op, errs.Invalid, "the cart is for event %q, the price list for %q", c.Event, r.Event)
	}
	code := NormalizeCode(c.Voucher)
	switch {
	case code == "" && v != nil:
		return Quote{}, errs.E(op, errs.Invalid, "a voucher for a cart without one")
	case code != "" && (v == nil || v.Code != code):
		return Quote{}, errs.Errorf(op, errs.Invalid, "the cart's voucher %q was not given", code)
	}
	now = normTime(now)
	q := Quote{Event: r.Event, Account: c.Account, Holds: slices.Clone(c.Holds), RulesVersion: r.Version,
		Voucher: code, CreatedAt: now, ExpiresAt: normTime(c.ExpiresAt)}
	if !q.ExpiresAt.After(now) {
		return Quote{}, errs.E(op, errs.Gone, "the holds have expired").WithReason(ReasonHoldsExpired)
	}
	notApplicable := func(format string, args ...any) error {
		return errs.Errorf(op, errs.Invalid, format, args...).WithReason(ReasonVoucherNotApplicable)
	}
	if v != nil {
		if err := v.Validate(); err != nil {
			return Quote{}, errs.E(op, err)
		}
		if err := v.ActiveAt(now); err != nil {
			return Quote{}, err
		}
		if !v.ForEvent(r.Event) {
			return Quote{}, notApplicable("voucher %s is not for this event", v.Code)
		}
		if v.Amount > 0 && v.Currency != r.Currency {
			return Quote{}, notApplicable("voucher %s is in %s, the event's prices in %s", v.Code, v.Currency, r.Currency)
		}
	}
	if now.Before(r.OnSaleAt) {
		if v == nil || !v.Presale {
			return Quote{}, errs.Errorf(op, errs.Forbidden, "tickets go on sale at %s", r.OnSaleAt.UTC().Format(time.RFC3339)).WithReason(ReasonNotOnSale)
		}
		for _, it := range c.Tickets {
			if !v.ForZone(it.Zone) {
				return Quote{}, errs.Errorf(op, errs.Forbidden, "voucher %s does not open zone %s before the on-sale at %s",
					v.Code, it.Zone, r.OnSaleAt.UTC().Format(time.RFC3339)).WithReason(ReasonNotOnSale)
			}
		}
	}

	money := func(a int64) Money { return Money{Amount: a, Currency: r.Currency} }
	var subtotal, eligible int64
	eligibleLines := 0
	for _, it := range c.Tickets {
		price, ok := r.Zones[it.Zone]
		if !ok {
			return Quote{}, errs.Errorf(op, errs.Invalid, "the event has no zone %q", it.Zone).WithReason(ReasonUnknownZone)
		}
		l := Line{Kind: LineTicket, Ref: it.Zone, Description: "Ticket, zone " + it.Zone,
			Quantity: it.Quantity, Unit: price, Amount: price * int64(it.Quantity)}
		q.Lines = append(q.Lines, l)
		subtotal += l.Amount
		if v != nil && v.ForZone(it.Zone) {
			eligible += l.Amount
			eligibleLines++
		}
	}
	for _, it := range c.AddOns {
		a, ok := r.AddOn(it.ID)
		if !ok {
			return Quote{}, errs.Errorf(op, errs.Invalid, "the event has no add-on %q", it.ID).WithReason(ReasonUnknownAddOn)
		}
		if it.Quantity > a.MaxPerOrder {
			return Quote{}, errs.Errorf(op, errs.Invalid, "at most %d of %s per order", a.MaxPerOrder, a.Name).WithReason(ReasonAddOnLimit)
		}
		l := Line{Kind: LineAddOn, Ref: a.ID, Description: a.Name, Quantity: it.Quantity, Unit: a.Price, Amount: a.Price * int64(it.Quantity)}
		q.Lines = append(q.Lines, l)
		subtotal += l.Amount
	}

	var fees int64
	if f := r.Fees.PerTicket; f > 0 {
		n := c.TicketCount()
		q.Lines = append(q.Lines, Line{Kind: LineFee, Ref: FeePerTicket, Description: "Service fee per ticket",
			Quantity: n, Unit: f, Amount: f * int64(n)})
		fees += f * int64(n)
	}
	if f := r.Fees.PerOrder; f > 0 {
		q.Lines = append(q.Lines, Line{Kind: LineFee, Ref: FeePerOrder, Description: "Order fee", Quantity: 1, Unit: f, Amount: f})
		fees += f
	}

	var discount int64
	if v != nil && v.discounts() {
		if eligibleLines == 0 {
			return Quote{}, notApplicable("voucher %s applies to none of the tickets in the cart", v.Code)
		}
		var what string
		if v.PercentBP > 0 {
			discount = eligible * int64(v.PercentBP) / 10_000 // floor: the buyer is never given more than the rate
			what = formatBP(v.PercentBP) + " off"
		} else {
			discount = min(v.Amount, eligible)
			what = money(v.Amount).String() + " off"
		}
		q.Lines = append(q.Lines, Line{Kind: LineDiscount, Ref: v.Code, Description: "Voucher " + v.Code + ": " + what,
			Quantity: 1, Unit: -discount, Amount: -discount})
	}

	var tax, added int64
	if rate := int64(r.Tax.RateBP); rate > 0 {
		base := subtotal + fees - discount
		name := "tax " + formatBP(r.Tax.RateBP)
		if r.Tax.Region != "" {
			name = r.Tax.Region + " " + name
		}
		l := Line{Kind: LineTax, Ref: r.Tax.Region, Quantity: 1}
		if r.Tax.Inclusive {
			tax = divRound(base*rate, 10_000+rate)
			l.Description = "Includes " + name
		} else {
			tax = divRound(base*rate, 10_000)
			added = tax
			l.Description = name
			if r.Tax.Region == "" {
				l.Description = "Tax " + formatBP(r.Tax.RateBP)
			}
		}
		l.Unit, l.Amount = tax, added
		q.Lines = append(q.Lines, l)
	}

	var total int64
	for _, l := range q.Lines {
		total += l.Amount
	}
	if total != subtotal+fees-discount+added || total < 0 {
		// Cannot happen; a bug must not charge a wrong amount.
		return Quote{}, errs.Errorf(op, errs.Other, "lines sum to %d, totals to %d", total, subtotal+fees-discount+added)
	}
	q.Subtotal, q.Fees, q.Discount, q.Tax, q.Total = money(subtotal), money(fees), money(discount), money(tax), money(total)
	return q, nil
}

// Validate checks a quote as stores keep it: its ids and times, lines of
// known kinds, and totals that are the sums of its lines in one currency
// (as Price makes them). Errors are errs.Invalid.
func (q *Quote) Validate() error {
	const op = "pricing.quote"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case !ValidQuoteID(q.ID):
		return bad("quote id %q: use 1-64 letters, digits, '_' and '-'", q.ID)
	case !ValidID(q.Event) || !ValidRef(q.Account):
		return bad("a quote needs an event and an account")
	case len(q.Holds) == 0 || len(q.Holds) > MaxHolds:
		return bad("a quote names 1-%d holds", MaxHolds)
	case q.RulesVersion < 1:
		return bad("a quote needs the version of its price list")
	case len(q.Lines) == 0 || len(q.Lines) > MaxZones+MaxAddOns+4:
		return bad("a quote has 1-%d lines", MaxZones+MaxAddOns+4)
	case q.Voucher != "" && !ValidCode(q.Voucher):
		return bad("voucher code %q is not a code", q.Voucher)
	case q.CreatedAt.IsZero() || !q.ExpiresAt.After(q.CreatedAt):
		return bad("a quote expires after it is created")
	}
	for _, h := range q.Holds {
		if !ValidRef(h) {
			return bad("hold id %q is not a valid id", h)
		}
	}
	cur := q.Total.Currency
	for _, m := range []Money{q.Subtotal, q.Fees, q.Discount, q.Tax, q.Total} {
		if m.Currency != cur || !ValidCurrency(cur) || m.Amount < 0 || m.Amount > maxTotal {
			return bad("amounts must be non-negative and in one currency")
		}
	}
	var sum int64
	for _, l := range q.Lines {
		switch l.Kind {
		case LineTicket, LineAddOn, LineFee, LineDiscount, LineTax:
		default:
			return bad("line kind %q is unknown", l.Kind)
		}
		if len(l.Ref) > MaxNameLen || !validName(l.Description) || l.Quantity < 0 || l.Quantity > MaxTickets+MaxAddOnUnits ||
			l.Unit < -maxTotal || l.Unit > maxTotal || l.Amount < -maxTotal || l.Amount > maxTotal {
			return bad("line %s %q is out of range", l.Kind, l.Ref)
		}
		sum += l.Amount
	}
	if sum != q.Total.Amount {
		return bad("the lines sum to %d, the total is %d", sum, q.Total.Amount)
	}
	return nil
}

// Normalize returns q ready to store: checked (Validate), times in UTC
// truncated to microseconds, its lists copied.
func (q Quote) Normalize() (Quote, error) {
	if err := q.Validate(); err != nil {
		return Quote{}, err
	}
	q.CreatedAt, q.ExpiresAt = normTime(q.CreatedAt), normTime(q.ExpiresAt)
	q.Holds = slices.Clone(q.Holds)
	q.Lines = slices.Clone(q.Lines)
	return q, nil
}
