package vault

import (
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Reasons refining errs.Invalid from CheckCard, named as the gateway (and
// Stripe) names them, so that the card form can point at the field.
const (
	ReasonIncorrectNumber    = "incorrect_number"
	ReasonInvalidExpiryMonth = "invalid_expiry_month"
	ReasonInvalidExpiryYear  = "invalid_expiry_year"
	ReasonExpiredCard        = "expired_card"
	ReasonInvalidCVC         = "invalid_cvc"
)

// Limits of card input.
const (
	MinNumberDigits = 12 // ISO/IEC 7812 allows 8, but no brand the gateway takes issues fewer than 12
	MaxNumberDigits = 19
	// MaxNumberInput bounds the number as typed, spaces and dashes
	// included, before anything else is looked at.
	MaxNumberInput = 32
	// MaxYearsAhead is how far in the future an expiry year may be.
	MaxYearsAhead = 20
)

// CheckCard validates a card as the buyer typed it and returns it
// normalized, with its brand: the number without the spaces and dashes
// people type (12 to 19 digits, Luhn-valid, of a length its brand
// issues), the month 1 to 12, the year with four digits (two digits are
// taken as 20yy) and not past (the card is valid to the end of its
// expiry month, judged in UTC), nor more than MaxYearsAhead years ahead,
// and the CVC, when present, of 3 digits (4 for amex). The CVC is
// optional: the gateway decides whether a card without one is accepted.
//
// Every error is errs.Invalid with one of the Reason constants, and none
// repeats any part of the input.
func CheckCard(c payment.Card, now time.Time) (payment.Card, payment.Brand, error) {
	const op = "vault.card"
	number, ok := normalizeNumber(c.Number)
	if !ok {
		return payment.Card{}, "", errs.Errorf(op, errs.Invalid, "card number must be %d to %d digits", MinNumberDigits, MaxNumberDigits).
			WithReason(ReasonIncorrectNumber)
	}
	if !Luhn(number) {
		return payment.Card{}, "", errs.E(op, errs.Invalid, "card number is not valid").WithReason(ReasonIncorrectNumber)
	}
	brand := DetectBrand(number)
	if !brandLength(brand, len(number)) {
		return payment.Card{}, "", errs.E(op, errs.Invalid, "card number has the wrong length for its brand").WithReason(ReasonIncorrectNumber)
	}
	if c.ExpMonth < 1 || c.ExpMonth > 12 {
		return payment.Card{}, "", errs.E(op, errs.Invalid, "expiry month must be 1 to 12").WithReason(ReasonInvalidExpiryMonth)
	}
	year := c.ExpYear
	if year >= 0 && year < 100 {
		year += 2000
	}
	now = now.UTC()
	if year < 2000 || year > now.Year()+MaxYearsAhead {
		return payment.Card{}, "", errs.Errorf(op, errs.Invalid, "expiry year must be this year or up to %d years ahead", MaxYearsAhead).
			WithReason(ReasonInvalidExpiryYear)
	}
	if year < now.Year() || (year == now.Year() && c.ExpMonth < int(now.Month())) {
		return payment.Card{}, "", errs.E(op, errs.Invalid, "the card has expired").WithReason(ReasonExpiredCard)
	}
	if c.CVC != "" {
		want := 3
		if brand == payment.BrandAmex {
			want = 4
		}
		if len(c.CVC) != want || !digits(c.CVC) {
			return payment.Card{}, "", errs.Errorf(op, errs.Invalid, "security code must be %d digits", want).WithReason(ReasonInvalidCVC)
		}
	}
	return payment.Card{Number: number, ExpMonth: c.ExpMonth, ExpYear: year, CVC: c.CVC}, brand, nil
}

// normalizeNumber drops spaces and dashes and reports whether the rest is
// MinNumberDigits to MaxNumberDigits ASCII digits.
func normalizeNumber(s string) (string, bool) {
	if len(s) > MaxNumberInput {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-':
		default:
			return "", false
		}
	}
	n := b.String()
	return n, len(n) >= MinNumberDigits && len(n) <= MaxNumberDigits
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Luhn reports whether number, ASCII digits only, passes the Luhn (mod
// 10) check. Anything but digits fails.
func Luhn(number string) bool {
	if !digits(number) {
		return false
	}
	sum := 0
	double := false
	for i := len(number) - 1; i >= 0; i-- {
		d := int(number[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// DetectBrand names the card network of a number (ASCII digits) by its
// issuer identification number range:
//
//	visa        4
//	mastercard  51–55, 2221–2720
//	amex        34, 37
//	discover    6011, 644–649, 65, 622126–622925 (UnionPay co-branded)
//
// and payment.BrandUnknown for anything else.
func DetectBrand(number string) payment.Brand {
	prefix := func(n int) int {
		if len(number) < n || !digits(number[:n]) {
			return -1
		}
		v := 0
		for i := 0; i < n; i++ {
			v = v*10 + int(number[i]-'0')
		}
		return v
	}
	switch p2, p3, p4, p6 := prefix(2), prefix(3), prefix(4), prefix(6); {
	case prefix(1) == 4:
		return payment.BrandVisa
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return payment.BrandMastercard
	case p2 == 34, p2 == 37:
		return payment.BrandAmex
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925:
		return payment.BrandDiscover
	}
	return payment.BrandUnknown
}

// brandLength reports whether a brand issues numbers of n digits.
func brandLength(b payment.Brand, n int) bool {
	switch b {
	case payment.BrandVisa:
		return n == 13 || n == 16 || n == 19
	case payment.BrandMastercard:
		return n == 16
	case payment.BrandAmex:
		return n == 15
	case payment.BrandDiscover:
		return n >= 16 && n <= 19
	}
	return n >= MinNumberDigits && n <= MaxNumberDigits
}
