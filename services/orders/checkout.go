package orders

import (
	"context"
	"crypto/sha256"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/pricing"
)

// HoldReader reads a hold for its holder (another holder's is
// errs.NotFound).
type HoldReader interface {
	Get(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error)
}

// Catalog answers what the checkout needs of an event.
type Catalog interface {
	Event(id string) (catalog.Event, catalog.Venue, bool)
}

// Checkout turns a buyer's holds into a quote and the quote into an
// order: the first steps of the purchase, before the saga takes over.
type Checkout struct {
	Saga    *Saga
	Holds   HoldReader
	Catalog Catalog
	Prices  *pricing.Service
	// DefaultLimit is how many tickets of an event an account may buy
	// when the event sets no limit (catalog.Event.PurchaseLimit).
	// Default 8.
	DefaultLimit int
}

// Limits of a request.
const (
	MaxHolds  = 10
	MaxAddOns = 10
)

// Reasons refining the checkout's errors.
const (
	ReasonHoldNotLive     = "hold_not_live"     // a hold expired, was released or sold (errs.Conflict)
	ReasonMixedEvents     = "mixed_events"      // holds of several events (errs.Invalid)
	ReasonQuoteMismatch   = "quote_mismatch"    // the quote is not for these holds or this account (errs.Invalid)
	ReasonQuoteExpired    = "quote_expired"     // errs.Gone
	ReasonUnknownQuote    = "unknown_quote"     // errs.NotFound
	ReasonVoucherRefused  = "voucher_refused"   // the voucher's limits (errs.Conflict), when the pricing store names none of its own
	ReasonAddOnsSoldOut   = "add_ons_sold_out"  // errs.Conflict
	ReasonEventNotForSale = "event_not_on_sale" // unknown event (errs.NotFound)
)

// QuoteRequest asks the price of holds of the account, with add-ons and
// a voucher.
type QuoteRequest struct {
	Account string              `json:"account"`
	Holds   []string            `json:"holds"`
	AddOns  []pricing.AddOnItem `json:"add_ons,omitempty"`
	Voucher string              `json:"voucher,omitempty"`
}

// Quote prices the account's live holds (all of one event) with the
// add-ons and voucher, and stores the quote, fixed until the holds'
// first expiry.
func (c *Checkout) Quote(ctx context.Context, r QuoteRequest) (pricing.Quote, error) {
	held, event, err := c.live(ctx, r.Account, r.Holds)
	if err != nil {
		return pricing.Quote{}, err
	}
	return c.quote(ctx, r, held, event)
}

func (c *Checkout) quote(ctx context.Context, r QuoteRequest, held []Hold, event catalog.Event) (pricing.Quote, error) {
	_, venue, _ := c.Catalog.Event(event.ID)
	cart := pricing.Cart{Event: event.ID, Account: r.Account, AddOns: r.AddOns, Voucher: r.Voucher}
	zones := map[string]int{}
	var order []string
	for _, h := range held {
		cart.Holds = append(cart.Holds, h.ID)
		if cart.ExpiresAt.IsZero() || h.ExpiresAt.Before(cart.ExpiresAt) {
			cart.ExpiresAt = h.ExpiresAt
		}
		add := func(zone string, n int) {
			if _, ok := zones[zone]; !ok {
				order = append(order, zone)
			}
			zones[zone] += n
		}
		if h.Zone != "" {
			add(h.Zone, h.Quantity)
			continue
		}
		for _, s := range h.Seats {
			z, ok := venue.SeatZone(s)
			if !ok {
				return pricing.Quote{}, errs.Errorf("orders.quote", errs.Other, "seat %s of hold %s is not in the venue", s, h.ID)
			}
			add(z, 1)
		}
	}
	for _, z := range order {
		cart.Tickets = append(cart.Tickets, pricing.Item{Zone: z, Quantity: zones[z]})
	}
	if err := c.ensureRules(ctx, event, venue); err != nil {
		return pricing.Quote{}, err
	}
	return c.Prices.Quote(ctx, cart)
}

// ensureRules writes an event's first price list from its catalog zones
// (face values, no fees, no tax) when it has none: every event on sale
// can be priced.
func (c *Checkout) ensureRules(ctx context.Context, e catalog.Event, v catalog.Venue) error {
	_, err := c.Prices.Store.Rules(ctx, e.ID)
	if !errs.Is(errs.NotFound, err) {
		return err
	}
	r := BaseRules(e, v)
	if err := c.Prices.Store.PutRules(ctx, r); err != nil && !errs.Is(errs.Conflict, err) {
		return err
	}
	return nil
}

// BaseRules is an event's price list from its catalog: each zone's face
// value, no fees, no tax.
func BaseRules(e catalog.Event, v catalog.Venue) pricing.Rules {
	r := pricing.Rules{Event: e.ID, Version: 1, Zones: map[string]int64{}, OnSaleAt: e.OnSaleAt}
	for _, z := range v.Zones {
		r.Zones[z.ID] = z.PriceCents
		if r.Currency == "" {
			r.Currency = strings.ToUpper(z.Currency)
		}
	}
	return r
}

// live reads the account's holds: each must be held now, by the account,
// and all of one event.
func (c *Checkout) live(ctx context.Context, account string, ids []string) ([]Hold, catalog.Event, error) {
	const op = "orders.holds"
	if len(ids) == 0 || len(ids) > MaxHolds {
		return nil, catalog.Event{}, errs.Errorf(op, errs.Invalid, "an order needs 1-%d holds", MaxHolds)
	}
	var event catalog.Event
	held := make([]Hold, 0, len(ids))
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return nil, catalog.Event{}, errs.Errorf(op, errs.Invalid, "hold %s is listed twice", id)
		}
		partition, ok := inventory.PartitionOfHold(id)
		if !ok {
			return nil, catalog.Event{}, errs.Errorf(op, errs.NotFound, "no hold %q", id)
		}
		ev := partition[:strings.LastIndexByte(partition, '.')]
		e, _, ok := c.Catalog.Event(ev)
		if !ok {
			return nil, catalog.Event{}, errs.Errorf(op, errs.NotFound, "no hold %q", id).WithReason(ReasonEventNotForSale)
		}
		if i > 0 && e.ID != event.ID {
			return nil, catalog.Event{}, errs.E(op, errs.Invalid, "the holds of an order are all of one event").WithReason(ReasonMixedEvents)
		}
		event = e
		h, err := c.Holds.Get(ctx, inventory.HoldRef{HoldID: id, Holder: account})
		if err != nil {
			return nil, catalog.Event{}, err
		}
		if h.Status != inventory.Held || !c.Saga.now().Before(h.ExpiresAt) {
			return nil, catalog.Event{}, errs.Errorf(op, errs.Conflict, "hold %s is %s", id, h.Status).WithReason(ReasonHoldNotLive)
		}
		held = append(held, Hold{Partition: partition, ID: h.HoldID, Seats: h.Seats, Zone: h.Zone, Quantity: h.Quantity, ExpiresAt: h.ExpiresAt})
	}
	return held, event, nil
}

// CreateRequest places an order for the account's holds, priced by the
// quote QuoteID names (made for these holds and this account), or priced
// now from Holds, AddOns and Voucher when QuoteID is empty.
type CreateRequest struct {
	QuoteRequest
	QuoteID string `json:"quote_id,omitempty"`
	Channel string `json:"channel,omitempty"`
	// IdemKey is the request's idempotency key scoped to the caller;
	// Fingerprint the digest of its body.
	IdemKey     string `json:"idem_key"`
	Fingerprint string `json:"fingerprint"`
}

// IDFor is the order id an idempotency key makes: the same key always
// names the same order, so that a retry after a crash finishes what the
// first try started (its voucher use and add-ons are the order's, by id).
func IDFor(idemKey string) string {
	sum := sha256.Sum256([]byte("order:" + idemKey))
	return "o_" + lower.EncodeToString(sum[:16])
}

// Create places the order: the holds are checked live and the account's,
// the quote made or read and checked, the voucher redeemed and the
// add-ons reserved (both by order id), then the order stored awaiting
// payment, with the purchase limit and the holds' claims checked in the
// same write. A request repeated with its idempotency key answers the
// same order (created false).
func (c *Checkout) Create(ctx context.Context, r CreateRequest) (Order, bool, error) {
	const op = "orders.create"
	if r.IdemKey == "" {
		return Order{}, false, errs.E(op, errs.Invalid, "an order needs an idempotency key")
	}
	if len(r.AddOns) > MaxAddOns {
		return Order{}, false, errs.Errorf(op, errs.Invalid, "at most %d add-on lines", MaxAddOns)
	}
	id := IDFor(r.IdemKey)
	if o, err := c.Saga.Store.Get(ctx, id); err == nil {
		if o.Fingerprint != r.Fingerprint || o.Account != r.Account {
			return Order{}, false, errs.E(op, errs.Mismatch, "the idempotency key was used with another request")
		}
		return o, false, nil
	} else if !errs.Is(errs.NotFound, err) {
		return Order{}, false, err
	}
	held, event, err := c.live(ctx, r.Account, r.Holds)
	if err != nil {
		return Order{}, false, err
	}
	var q pricing.Quote
	if r.QuoteID != "" {
		if q, err = c.storedQuote(ctx, r, held); err != nil {
			return Order{}, false, err
		}
	} else if q, err = c.quote(ctx, r.QuoteRequest, held, event); err != nil {
		return Order{}, false, err
	}
	now := c.Saga.now()
	o := Order{
		ID: id, Account: r.Account, Event: event.ID, Organizer: event.OrganizerID, Channel: r.Channel,
		Holds: held, Voucher: q.Voucher, QuoteID: q.ID,
		Amounts:     Amounts{Currency: q.Total.Currency, Subtotal: q.Subtotal.Amount, Fees: q.Fees.Amount, Tax: q.Tax.Amount, Discount: q.Discount.Amount, Total: q.Total.Amount},
		IdemKey:     r.IdemKey,
		Fingerprint: r.Fingerprint,
	}
	for _, l := range q.Lines {
		o.Lines = append(o.Lines, Line(l))
		if l.Kind == pricing.LineAddOn {
			o.AddOns = append(o.AddOns, AddOn{ID: l.Ref, Quantity: l.Quantity})
		}
	}
	if err := o.Start(now); err != nil {
		return Order{}, false, err
	}
	if err := c.secureExtras(ctx, &o, now); err != nil {
		return Order{}, false, err
	}
	limit := event.PurchaseLimit
	if limit == 0 {
		limit = c.DefaultLimit
		if limit == 0 {
			limit = 8
		}
	}
	stored, created, err := c.Saga.Store.Create(ctx, o, limit)
	if err != nil {
		c.giveBack(ctx, &o)
		return Order{}, false, err
	}
	return stored, created, nil
}

// storedQuote reads the quote r names and checks it is for r's account
// and exactly its holds, and still valid.
func (c *Checkout) storedQuote(ctx context.Context, r CreateRequest, held []Hold) (pricing.Quote, error) {
	const op = "orders.quote"
	q, err := c.Prices.Store.Quote(ctx, r.QuoteID)
	if errs.Is(errs.NotFound, err) {
		return q, errs.Errorf(op, errs.NotFound, "no quote %s", r.QuoteID).WithReason(ReasonUnknownQuote)
	}
	if err != nil {
		return q, err
	}
	ids := make([]string, len(held))
	for i, h := range held {
		ids[i] = h.ID
	}
	a, b := slices.Clone(q.Holds), slices.Clone(ids)
	slices.Sort(a)
	slices.Sort(b)
	if q.Account != r.Account {
		return q, errs.Errorf(op, errs.NotFound, "no quote %s", r.QuoteID).WithReason(ReasonUnknownQuote)
	}
	if !slices.Equal(a, b) || (r.Voucher != "" && pricing.NormalizeCode(r.Voucher) != q.Voucher) {
		return q, errs.E(op, errs.Invalid, "the quote is for other holds or another voucher: ask a new one").WithReason(ReasonQuoteMismatch)
	}
	if !c.Saga.now().Before(q.ExpiresAt) {
		return q, errs.E(op, errs.Gone, "the quote has expired").WithReason(ReasonQuoteExpired)
	}
	return q, nil
}

// secureExtras redeems the order's voucher and reserves its add-ons, by
// order id (a repeat is a no-op).
func (c *Checkout) secureExtras(ctx context.Context, o *Order, now time.Time) error {
	if o.Voucher != "" {
		if err := c.Prices.Store.Redeem(ctx, o.Voucher, o.Account, o.ID, now); err != nil {
			if errs.Is(errs.Conflict, err) {
				// The store's reason (voucher_exhausted,
				// voucher_account_limit) tells the buyer which limit.
				reason := errs.ReasonOf(err)
				if reason == "" {
					reason = ReasonVoucherRefused
				}
				return errs.E("orders.create", errs.Conflict, errs.Message(err), err).WithReason(reason)
			}
			return err
		}
	}
	if len(o.AddOns) > 0 {
		rules, err := c.Prices.Store.Rules(ctx, o.Event)
		if err != nil {
			c.giveBack(ctx, o)
			return err
		}
		items := make([]pricing.AddOnItem, len(o.AddOns))
		for i, a := range o.AddOns {
			items[i] = pricing.AddOnItem{ID: a.ID, Quantity: a.Quantity}
		}
		if err := c.Prices.Store.ReserveAddOns(ctx, o.Event, o.ID, items, rules.AddOnCapacity()); err != nil {
			c.giveBack(ctx, o)
			if errs.Is(errs.Conflict, err) {
				return errs.E("orders.create", errs.Conflict, errs.Message(err), err).WithReason(ReasonAddOnsSoldOut)
			}
			return err
		}
	}
	return nil
}

// giveBack undoes secureExtras for an order that was not stored. A
// failure leaves a use or a reservation to an order that does not exist
// until the same request is retried (IDFor): logged.
func (c *Checkout) giveBack(ctx context.Context, o *Order) {
	if o.Voucher != "" {
		if err := c.Prices.Store.Unredeem(ctx, o.Voucher, o.ID); err != nil {
			c.Saga.log().Warn("voucher use not given back", "order", o.ID, "err", err)
		}
	}
	if len(o.AddOns) > 0 {
		if err := c.Prices.Store.ReleaseAddOns(ctx, o.Event, o.ID); err != nil {
			c.Saga.log().Warn("add-ons not given back", "order", o.ID, "err", err)
		}
	}
}
