package pricing

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// MaxVoucherUses bounds a voucher's MaxUses and MaxPerAccount.
const MaxVoucherUses = 1_000_000_000

// Voucher is a code a buyer enters: a discount, an early access to an
// event before its public on-sale (Presale), or both.
type Voucher struct {
	// Code is what the buyer types: 3-32 upper-case letters, digits, '_'
	// and '-'. Codes are compared upper-cased (NormalizeCode).
	Code string `json:"code"`
	// PercentBP takes basis points off the tickets it applies to (1000:
	// 10%); Amount takes a sum off them, in minor units of Currency. A
	// voucher has exactly one of them, or, a presale voucher, at most
	// one.
	PercentBP int    `json:"percent_bp,omitempty"`
	Amount    int64  `json:"amount,omitempty"`
	Currency  string `json:"currency,omitempty"`
	// Events and Zones restrict the voucher to those events, and to the
	// tickets of those zones; empty: any.
	Events []string `json:"events,omitempty"`
	Zones  []string `json:"zones,omitempty"`
	// ValidFrom and ValidUntil bound when it can be used: from ValidFrom,
	// until before ValidUntil. Zero: open.
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// MaxUses bounds its redemptions, all accounts together;
	// MaxPerAccount those of one account. 0: unlimited.
	MaxUses       int `json:"max_uses,omitempty"`
	MaxPerAccount int `json:"max_per_account,omitempty"`
	// Presale lets its holder buy tickets of its events (and zones, when
	// it names some) before the event's public on-sale. A presale
	// voucher must name its events.
	Presale bool `json:"presale,omitempty"`
}

var codePattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_-]{2,31}$`)

// NormalizeCode is a code as buyers may type it, trimmed and upper-cased.
func NormalizeCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// ValidCode reports whether s is a normalized voucher code.
func ValidCode(s string) bool { return codePattern.MatchString(s) }

// Validate checks the voucher. Errors are errs.Invalid.
func (v *Voucher) Validate() error {
	const op = "pricing.voucher"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case !ValidCode(v.Code):
		return bad("voucher code %q: use 3-32 upper-case letters, digits, '_' and '-'", v.Code)
	case v.PercentBP < 0 || v.PercentBP > 10_000:
		return bad("percent_bp must be 0-10000")
	case v.Amount < 0 || v.Amount > MaxAmount:
		return bad("amount must be 0-%d minor units", MaxAmount)
	case v.PercentBP > 0 && v.Amount > 0:
		return bad("a voucher has a percentage or an amount, not both")
	case v.PercentBP == 0 && v.Amount == 0 && !v.Presale:
		return bad("a voucher that is not a presale voucher needs a percentage or an amount")
	case v.Amount > 0 && !ValidCurrency(v.Currency):
		return bad("an amount needs the ISO 4217 code of its currency")
	case v.Amount == 0 && v.Currency != "":
		return bad("currency is for an amount")
	case len(v.Events) > MaxVoucherScope || len(v.Zones) > MaxVoucherScope:
		return bad("a voucher names at most %d events and %d zones", MaxVoucherScope, MaxVoucherScope)
	case v.Presale && len(v.Events) == 0:
		return bad("a presale voucher must name its events")
	case !v.ValidFrom.IsZero() && !v.ValidUntil.IsZero() && !v.ValidFrom.Before(v.ValidUntil):
		return bad("valid_from must be before valid_until")
	case v.MaxUses < 0 || v.MaxUses > MaxVoucherUses || v.MaxPerAccount < 0 || v.MaxPerAccount > MaxVoucherUses:
		return bad("max_uses and max_per_account must be 0-%d", MaxVoucherUses)
	}
	for _, list := range []struct {
		name string
		ids  []string
	}{{"event", v.Events}, {"zone", v.Zones}} {
		seen := map[string]bool{}
		for _, id := range list.ids {
			if !ValidID(id) {
				return bad("%s id %q is not a valid id", list.name, id)
			}
			if seen[id] {
				return bad("%s %q is listed twice", list.name, id)
			}
			seen[id] = true
		}
	}
	return nil
}

// Normalize returns v ready to store: the code upper-cased, checked
// (Validate), times in UTC truncated to microseconds, empty lists nil.
func (v Voucher) Normalize() (Voucher, error) {
	v.Code = NormalizeCode(v.Code)
	if err := v.Validate(); err != nil {
		return Voucher{}, err
	}
	v.ValidFrom, v.ValidUntil = normTime(v.ValidFrom), normTime(v.ValidUntil)
	v.Events = nilIfEmpty(slices.Clone(v.Events))
	v.Zones = nilIfEmpty(slices.Clone(v.Zones))
	return v, nil
}

// ActiveAt says whether the voucher can be used at now: nil, or
// errs.Forbidden with reason ReasonVoucherNotYetValid before ValidFrom,
// errs.Gone with ReasonVoucherExpired from ValidUntil on.
func (v *Voucher) ActiveAt(now time.Time) error {
	const op = "pricing.voucher"
	if !v.ValidFrom.IsZero() && now.Before(v.ValidFrom) {
		return errs.E(op, errs.Forbidden, "this voucher is not valid yet").WithReason(ReasonVoucherNotYetValid)
	}
	if !v.ValidUntil.IsZero() && !now.Before(v.ValidUntil) {
		return errs.E(op, errs.Gone, "this voucher has expired").WithReason(ReasonVoucherExpired)
	}
	return nil
}

// ForEvent reports whether the voucher may be used for the event.
func (v *Voucher) ForEvent(event string) bool {
	return len(v.Events) == 0 || slices.Contains(v.Events, event)
}

// ForZone reports whether the voucher applies to the tickets of the zone.
func (v *Voucher) ForZone(zone string) bool {
	return len(v.Zones) == 0 || slices.Contains(v.Zones, zone)
}

// discounts reports whether the voucher takes anything off.
func (v *Voucher) discounts() bool { return v.PercentBP > 0 || v.Amount > 0 }
