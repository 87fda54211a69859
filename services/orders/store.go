package orders

import (
	"context"
	"time"
)

// Reasons refining errs.Conflict from Store.Create.
const (
	ReasonHoldTaken     = "hold_in_other_order" // a hold is in another open order
	ReasonPurchaseLimit = "purchase_limit"      // the account would pass its limit for the event
	ReasonVersion       = "version"             // the order changed since it was read
)

// Store keeps orders. Each write is atomic: the order, its claims on its
// holds, the account's purchase count for the event and the events of
// its transitions (the outbox, relayed to EVENTS by the adapter's Relay)
// are stored together or not at all. Implementations are safe for
// concurrent use, also from several processes on one backing store. A
// cancelled context abandons the call; a write abandoned midway may or
// may not have taken effect (read again).
type Store interface {
	// Create stores a new order (Start was called on it) and returns it
	// as stored, with created true. When o.IdemKey names an order
	// already (the same caller retried), that order is returned with
	// created false if its Fingerprint is o's, else errs.Mismatch.
	// A hold that an order of any account has claimed (one that counts:
	// State.Counts) is errs.Conflict (ReasonHoldTaken); tickets of the account's orders for
	// the event that count (State.Counts) plus o.Tickets above limit is
	// errs.Conflict (ReasonPurchaseLimit); limit 0 means none. Of
	// concurrent creates that together pass the limit or share a hold,
	// only those that fit are stored.
	Create(ctx context.Context, o Order, limit int) (stored Order, created bool, err error)
	// Get returns the order, or errs.NotFound.
	Get(ctx context.Context, id string) (Order, error)
	// Update reads the order, applies fn and writes the result if the
	// order did not change meanwhile, retrying fn on the newest order
	// otherwise; it returns the order as stored. fn's error is returned
	// as is and nothing is written. When the write leaves the states
	// that count against the purchase limit, the account's count and
	// the claims on the holds are released with it; when it enters them
	// again (a late payment), they are taken again (a claim another order
	// holds meanwhile stays that order's). When fn leaves the order as
	// it was (its JSON encoding unchanged) and records no event, nothing
	// is written: the order is returned as read, its Version unchanged
	// (a payment event applied again, a step another node did).
	Update(ctx context.Context, id string, fn func(*Order) error) (Order, error)
	// ByAccount lists the account's orders, newest first, at most limit
	// (≤ 100) from after (the id of the last order of the previous page,
	// empty for the first).
	ByAccount(ctx context.Context, account string, after string, limit int) ([]Order, error)
	// Due lists up to limit orders whose NextAt is at or before now,
	// earliest first.
	Due(ctx context.Context, now time.Time, limit int) ([]string, error)
}
