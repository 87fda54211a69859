package pricing

import (
	"strconv"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// Money is an amount in a currency's minor units (cents for USD and EUR,
// yen for JPY) with its ISO 4217 code. Amounts are integers: no float
// ever holds money.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ValidCurrency reports whether c has the form of an ISO 4217 code: three
// upper-case ASCII letters. The code is not checked against the list of
// currencies in use; Exponent knows the ones whose minor unit is not a
// hundredth.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}

// exponents are the ISO 4217 minor-unit exponents other than 2.
var exponents = map[string]int{
	// no minor unit
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	// thousandths
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	// ten-thousandths
	"CLF": 4, "UYW": 4,
}

// Exponent is the number of decimals of currency's minor unit in ISO
// 4217: 2 for most (USD, EUR, GBP), 0 for JPY or KRW, 3 for KWD or BHD.
// A code it does not list has 2.
func Exponent(currency string) int {
	if e, ok := exponents[currency]; ok {
		return e
	}
	return 2
}

// symbols are the currency signs String writes before the amount; other
// currencies are written as their code and a space.
var symbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩",
	"ILS": "₪", "NGN": "₦", "PHP": "₱", "UAH": "₴", "VND": "₫", "TRY": "₺",
}

// Validate checks that the currency is a valid code.
func (m Money) Validate() error {
	if !ValidCurrency(m.Currency) {
		return errs.Errorf("pricing.money", errs.Invalid, "currency %q is not an ISO 4217 code", m.Currency)
	}
	return nil
}

// Add returns m+o. Different currencies are errs.Invalid, and so is a sum
// that does not fit in an int64.
func (m Money) Add(o Money) (Money, error) {
	const op = "pricing.money.add"
	if m.Currency != o.Currency {
		return Money{}, errs.Errorf(op, errs.Invalid, "cannot add %s to %s", o.Currency, m.Currency)
	}
	s := m.Amount + o.Amount
	if (o.Amount > 0 && s < m.Amount) || (o.Amount < 0 && s > m.Amount) {
		return Money{}, errs.E(op, errs.Invalid, "amount out of range")
	}
	return Money{Amount: s, Currency: m.Currency}, nil
}

// Compare returns -1, 0 or +1 as m is less than, equal to or more than o.
// Different currencies are errs.Invalid: they have no order.
func (m Money) Compare(o Money) (int, error) {
	if m.Currency != o.Currency {
		return 0, errs.Errorf("pricing.money.compare", errs.Invalid, "cannot compare %s with %s", m.Currency, o.Currency)
	}
	switch {
	case m.Amount < o.Amount:
		return -1, nil
	case m.Amount > o.Amount:
		return 1, nil
	}
	return 0, nil
}

// String formats m for people, in the English way whatever the currency:
// the sign of the currency before the amount when it has a well-known one
// ("$189.00", "€12.50", "¥1,200", "-£3.05"), else its code and a space
// ("CHF 1,250.00"); thousands grouped with commas and as many decimals as
// the currency's minor unit has (Exponent). It is for display only:
// machines exchange Amount and Currency.
func (m Money) String() string {
	var b strings.Builder
	neg := m.Amount < 0
	u := uint64(m.Amount)
	if neg {
		b.WriteByte('-')
		u = -u // two's complement: right for math.MinInt64 too
	}
	if s, ok := symbols[m.Currency]; ok {
		b.WriteString(s)
	} else {
		b.WriteString(m.Currency)
		b.WriteByte(' ')
	}
	digits := strconv.FormatUint(u, 10)
	exp := Exponent(m.Currency)
	if len(digits) <= exp {
		digits = strings.Repeat("0", exp-len(digits)+1) + digits
	}
	whole, frac := digits[:len(digits)-exp], digits[len(digits)-exp:]
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if exp > 0 {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}

// divRound returns n/d rounded half to even, for n >= 0 and d > 0: the
// rounding of every division in this package but the percent discount's
// (which floors).
func divRound(n, d int64) int64 {
	q, r := n/d, n%d
	switch {
	case 2*r > d, 2*r == d && q%2 == 1:
		return q + 1
	}
	return q
}

// formatBP formats basis points as a percentage: 2000 is "20%", 1250 is
// "12.5%", 5 is "0.05%".
func formatBP(bp int) string {
	s := strconv.Itoa(bp/100) + "." + strconv.Itoa(bp%100/10) + strconv.Itoa(bp%10)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}
