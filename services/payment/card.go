package payment

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Brand is a card network, as the vault detects it from the number's
// issuer identification (IIN) range.
type Brand string

// The brands the vault recognizes.
const (
	BrandVisa       Brand = "visa"
	BrandMastercard Brand = "mastercard"
	BrandAmex       Brand = "amex"
	BrandDiscover   Brand = "discover"
	BrandUnknown    Brand = "unknown"
)

// CardSummary is what may be known of a card outside the vault: the
// brand, the last four digits and the vault's fingerprint (equal for
// equal numbers, see services/payment/vault).
type CardSummary struct {
	Brand       Brand  `json:"brand"`
	Last4       string `json:"last4"`
	Fingerprint string `json:"fingerprint"`
}

// Card holds a card number: it never reaches a log, an error, an event or
// an answer. Its methods for fmt (Format, String, GoString), log/slog
// (LogValue) and encoding/json (MarshalJSON) all write the same redacted
// text, "card ****4242" (the last four digits only when Number is 12 to
// 19 digits, "card ****" otherwise), so that a Card passed to any of them
// by mistake, alone or in a struct (ConfirmRequest), shows no more than a
// receipt does. Code that needs the number reads the field.
func (c Card) String() string {
	return "card ****" + last4(c.Number)
}

// GoString is String, for %#v.
func (c Card) GoString() string { return c.String() }

// Format writes String for every verb, so that no verb (%d, %x, %+v, %#v)
// prints the fields.
func (c Card) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue is String, for log/slog.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON writes String as a JSON string: a Card is never sent or
// stored as JSON (the vault seals its own form of it).
func (c Card) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

var (
	_ fmt.Formatter  = Card{}
	_ fmt.Stringer   = Card{}
	_ fmt.GoStringer = Card{}
	_ slog.LogValuer = Card{}
	_ json.Marshaler = Card{}
)

// last4 is the last four digits of number when it is a plausible card
// number (12 to 19 ASCII digits), "" otherwise: of anything else, even
// four characters may say too much.
func last4(number string) string {
	if len(number) < 12 || len(number) > 19 {
		return ""
	}
	for i := 0; i < len(number); i++ {
		if number[i] < '0' || number[i] > '9' {
			return ""
		}
	}
	return number[len(number)-4:]
}
