package pricing

import (
	"context"
	"time"
)

// Reasons refining the errors of this package and its stores
// (errs.ReasonOf).
const (
	// ReasonNotOnSale: errs.Forbidden, the event is not on sale yet and
	// the cart has no presale voucher that opens it.
	ReasonNotOnSale = "not_on_sale"
	// ReasonHoldsExpired: errs.Gone, the cart's holds expire before it
	// could be priced.
	ReasonHoldsExpired = "holds_expired"
	// ReasonUnknownZone, ReasonUnknownAddOn: errs.Invalid, the cart names
	// a zone or add-on the price list has not.
	ReasonUnknownZone  = "unknown_zone"
	ReasonUnknownAddOn = "unknown_addon"
	// ReasonAddOnLimit: errs.Invalid, more units of an add-on than one
	// order may have.
	ReasonAddOnLimit = "addon_limit"
	// ReasonVoucherNotFound: errs.NotFound, no voucher has the code.
	ReasonVoucherNotFound = "voucher_not_found"
	// ReasonVoucherNotYetValid: errs.Forbidden, before its ValidFrom.
	ReasonVoucherNotYetValid = "voucher_not_yet_valid"
	// ReasonVoucherExpired: errs.Gone, from its ValidUntil on.
	ReasonVoucherExpired = "voucher_expired"
	// ReasonVoucherNotApplicable: errs.Invalid, the voucher is for other
	// events, zones or another currency.
	ReasonVoucherNotApplicable = "voucher_not_applicable"
	// ReasonVoucherExhausted: errs.Conflict, MaxUses redemptions exist.
	ReasonVoucherExhausted = "voucher_exhausted"
	// ReasonVoucherAccountLimit: errs.Conflict, the account has
	// MaxPerAccount redemptions.
	ReasonVoucherAccountLimit = "voucher_account_limit"
	// ReasonAddOnSoldOut: errs.Conflict, an add-on's capacity is taken.
	ReasonAddOnSoldOut = "addon_sold_out"
	// ReasonVersionMismatch: errs.Conflict, PutRules of a version that
	// does not follow the stored one.
	ReasonVersionMismatch = "version_mismatch"
	// ReasonQuoteExists: errs.Conflict, PutQuote of an id that is taken.
	ReasonQuoteExists = "quote_exists"
	// ReasonStoreLimit: errs.TooLarge, a store's record would outgrow
	// its bound (see the store's documentation).
	ReasonStoreLimit = "store_limit"
)

// QuoteRetention is how long after its expiry a quote is kept (for
// support and audit) before the core purges it.
const QuoteRetention = 24 * time.Hour

// Store keeps price lists, vouchers and their redemptions, quotes, and
// add-on reservations. Implementations are safe for concurrent use, also
// from several processes on one backing store: services/pricing/natskv
// (embedded, `ticketing dev`) and services/pricing/postgres
// (production), which pass the same contract suite,
// services/pricing/pricingtest. Cancelling the context abandons the call;
// a write abandoned midway may or may not have taken effect (read again,
// or repeat it: the writes that can be repeated say so).
//
// Records are checked before they are written (Normalize: errs.Invalid,
// nothing written) and read back as Normalize returned them.
type Store interface {
	// Rules returns the event's price list, or errs.NotFound.
	Rules(ctx context.Context, event string) (Rules, error)
	// PutRules writes a version of a price list: the first is version 1,
	// each next one the stored version + 1 (a compare-and-set: of
	// concurrent writes of one version exactly one succeeds). Any other
	// version is errs.Conflict with ReasonVersionMismatch.
	PutRules(ctx context.Context, r Rules) error

	// Voucher returns the voucher with the code (NormalizeCode applied),
	// or errs.NotFound with ReasonVoucherNotFound.
	Voucher(ctx context.Context, code string) (Voucher, error)
	// PutVoucher creates or replaces a voucher. Its redemptions stay:
	// lowering MaxUses below them refuses further ones, it cancels none.
	PutVoucher(ctx context.Context, v Voucher) error

	// PutQuote stores a new quote; an id that exists is errs.Conflict
	// with ReasonQuoteExists, and the stored quote stays as it is.
	PutQuote(ctx context.Context, q Quote) error
	// Quote returns the quote, or errs.NotFound.
	Quote(ctx context.Context, id string) (Quote, error)
	// PurgeQuotes removes the quotes that expired before before and
	// says how many: a quote is read only to place an order before it
	// expires (the order keeps its lines and amounts). The core purges
	// what expired QuoteRetention ago.
	PurgeQuotes(ctx context.Context, before time.Time) (int, error)

	// Redeem records a use of the voucher by the account for an order.
	// It is atomic under any concurrency: the voucher's redemptions never
	// exceed MaxUses (errs.Conflict, ReasonVoucherExhausted), nor the
	// account's MaxPerAccount (errs.Conflict, ReasonVoucherAccountLimit).
	// It is idempotent per order: an order that has redeemed the voucher
	// succeeds again without another use, whatever the limits and the
	// time say now; the same order for another account is errs.Mismatch.
	// Outside the voucher's window at now it fails as Voucher.ActiveAt
	// says. An unknown voucher is errs.NotFound.
	Redeem(ctx context.Context, code, account, orderID string, now time.Time) error
	// Unredeem removes the order's redemption of the voucher, freeing the
	// use (and the account's). An order without one succeeds: it is
	// idempotent. An unknown voucher is errs.NotFound.
	Unredeem(ctx context.Context, code, orderID string) error

	// ReserveAddOns reserves the items for the order, all or none: the
	// units reserved of an add-on, all orders together, never exceed its
	// capacity (from capacity, which must name every item: errs.Invalid
	// otherwise); an item that does not fit is errs.Conflict with
	// ReasonAddOnSoldOut, and nothing is reserved. It is idempotent per
	// order: the same items again succeed without reserving more; other
	// items for an order that has a reservation are errs.Mismatch. No
	// items: nothing to do.
	ReserveAddOns(ctx context.Context, event, orderID string, items []AddOnItem, capacity map[string]int) error
	// ReleaseAddOns releases the order's reservation; an order without one
	// succeeds (idempotent).
	ReleaseAddOns(ctx context.Context, event, orderID string) error
}
