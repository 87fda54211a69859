package pricing

import (
	"slices"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// NormalizeAddOnItems checks the items and capacities of
// Store.ReserveAddOns and returns the items sorted by id, the form stores
// keep and compare: valid distinct ids, quantities of 1-MaxAddOnUnits, and
// a capacity of 1-MaxAddOnCapacity for each. Errors are errs.Invalid.
func NormalizeAddOnItems(items []AddOnItem, capacity map[string]int) ([]AddOnItem, error) {
	const op = "pricing.addons"
	if len(items) > MaxAddOns {
		return nil, errs.Errorf(op, errs.Invalid, "at most %d add-ons per order", MaxAddOns)
	}
	out := slices.Clone(items)
	slices.SortFunc(out, func(a, b AddOnItem) int { return strings.Compare(a.ID, b.ID) })
	for i, it := range out {
		switch c, ok := capacity[it.ID]; {
		case !ValidID(it.ID):
			return nil, errs.Errorf(op, errs.Invalid, "add-on id %q is not a valid id", it.ID)
		case i > 0 && out[i-1].ID == it.ID:
			return nil, errs.Errorf(op, errs.Invalid, "add-on %q is listed twice", it.ID)
		case it.Quantity < 1 || it.Quantity > MaxAddOnUnits:
			return nil, errs.Errorf(op, errs.Invalid, "add-on %q: quantity must be 1-%d", it.ID, MaxAddOnUnits)
		case !ok || c < 1 || c > MaxAddOnCapacity:
			return nil, errs.Errorf(op, errs.Invalid, "add-on %q: capacity must be given, 1-%d", it.ID, MaxAddOnCapacity)
		}
	}
	return out, nil
}

// CheckRedemption checks the arguments of Store.Redeem and returns the
// normalized code. A code that cannot be one is errs.NotFound (no voucher
// has it); an account or order id that is not valid (ValidRef) is
// errs.Invalid.
func CheckRedemption(code, account, orderID string) (string, error) {
	code, err := CheckUnredemption(code, orderID)
	if err == nil && !ValidRef(account) {
		return "", errs.E("pricing.redeem", errs.Invalid, "account id is not valid")
	}
	return code, err
}

// CheckUnredemption checks the arguments of Store.Unredeem as
// CheckRedemption does.
func CheckUnredemption(code, orderID string) (string, error) {
	const op = "pricing.redeem"
	code = NormalizeCode(code)
	switch {
	case !ValidCode(code):
		return "", errs.E(op, errs.NotFound, "no such voucher").WithReason(ReasonVoucherNotFound)
	case !ValidRef(orderID):
		return "", errs.E(op, errs.Invalid, "order id is not valid")
	}
	return code, nil
}
