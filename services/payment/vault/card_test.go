package vault_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

func TestLuhn(t *testing.T) {
	for _, n := range []string{"4242424242424242", "4000002760003184", "4000000000003220", "4000008400001629",
		"4000000000000002", "4000000000009995", "4000000000000069", "4000000000000119", "378282246310005", "0"} {
		if !vault.Luhn(n) {
			t.Errorf("%s fails Luhn", n)
		}
	}
	for _, n := range []string{"4242424242424241", "4242424242424243", "1", "", "42424242424242a2", "4242 4242 4242 4242", "-0"} {
		if vault.Luhn(n) {
			t.Errorf("%q passes Luhn", n)
		}
	}
}

func TestDetectBrand(t *testing.T) {
	for n, want := range map[string]payment.Brand{
		"4242424242424242": payment.BrandVisa,
		"4":                payment.BrandVisa,
		"5105105105105100": payment.BrandMastercard,
		"5555555555554444": payment.BrandMastercard,
		"2221000000000009": payment.BrandMastercard,
		"2720990000000007": payment.BrandMastercard,
		"2220990000000000": payment.BrandUnknown,
		"2721000000000000": payment.BrandUnknown,
		"5000000000000000": payment.BrandUnknown,
		"5600000000000000": payment.BrandUnknown,
		"378282246310005":  payment.BrandAmex,
		"340000000000009":  payment.BrandAmex,
		"350000000000000":  payment.BrandUnknown,
		"6011111111111117": payment.BrandDiscover,
		"6445644564456445": payment.BrandDiscover,
		"6500000000000002": payment.BrandDiscover,
		"6221260000000000": payment.BrandDiscover,
		"6229250000000000": payment.BrandDiscover,
		"6221250000000000": payment.BrandUnknown,
		"6229260000000000": payment.BrandUnknown,
		"6430000000000000": payment.BrandUnknown,
		"3530111333300000": payment.BrandUnknown, // JCB
		"":                 payment.BrandUnknown,
		"x":                payment.BrandUnknown,
	} {
		if got := vault.DetectBrand(n); got != want {
			t.Errorf("DetectBrand(%q) = %s, want %s", n, got, want)
		}
	}
}

var testNow = time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC)

func TestCheckCard(t *testing.T) {
	for _, tc := range []struct {
		in     payment.Card
		number string
		year   int
		brand  payment.Brand
	}{
		{payment.Card{Number: "4242424242424242", ExpMonth: 5, ExpYear: 2026, CVC: "123"}, "4242424242424242", 2026, payment.BrandVisa},
		{payment.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 30}, "4242424242424242", 2030, payment.BrandVisa},
		{payment.Card{Number: "3782-822463-10005", ExpMonth: 1, ExpYear: 2046, CVC: "1234"}, "378282246310005", 2046, payment.BrandAmex},
		{payment.Card{Number: "6011111111111117", ExpMonth: 6, ExpYear: 2026, CVC: "000"}, "6011111111111117", 2026, payment.BrandDiscover},
		{payment.Card{Number: "4222222222222", ExpMonth: 6, ExpYear: 2027}, "4222222222222", 2027, payment.BrandVisa},
		{payment.Card{Number: "3530111333300000", ExpMonth: 6, ExpYear: 2027}, "3530111333300000", 2027, payment.BrandUnknown},
	} {
		got, brand, err := vault.CheckCard(tc.in, testNow)
		if err != nil {
			t.Fatalf("%v: %v", tc.in, err)
		}
		if got.Number != tc.number || got.ExpYear != tc.year || got.ExpMonth != tc.in.ExpMonth || got.CVC != tc.in.CVC || brand != tc.brand {
			t.Fatalf("%v: normalized to a card ending %s, %d/%d, %s", tc.in, got.Number[len(got.Number)-4:], got.ExpMonth, got.ExpYear, brand)
		}
	}
}

func TestCheckCardInvalid(t *testing.T) {
	for _, tc := range []struct {
		in     payment.Card
		reason string
	}{
		{payment.Card{Number: "4242424242424241", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "42424242424", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "42424242424242424242", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "4242424242424242x", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "４２４２424242424242", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: strings.Repeat(" ", 40) + "4242424242424242", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},
		{payment.Card{Number: "424242424242424", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber}, // visa of 15 digits (Luhn-valid)
		{payment.Card{Number: "37828224631000", ExpMonth: 5, ExpYear: 2027}, vault.ReasonIncorrectNumber},  // amex of 14
		{payment.Card{Number: "5555555555554444", ExpMonth: 0, ExpYear: 2027}, vault.ReasonInvalidExpiryMonth},
		{payment.Card{Number: "5555555555554444", ExpMonth: 13, ExpYear: 2027}, vault.ReasonInvalidExpiryMonth},
		{payment.Card{Number: "5555555555554444", ExpMonth: 4, ExpYear: 2026}, vault.ReasonExpiredCard},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2025}, vault.ReasonExpiredCard},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 25}, vault.ReasonExpiredCard},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 1999}, vault.ReasonInvalidExpiryYear},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2047}, vault.ReasonInvalidExpiryYear},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: -1}, vault.ReasonInvalidExpiryYear},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2027, CVC: "12"}, vault.ReasonInvalidCVC},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2027, CVC: "1234"}, vault.ReasonInvalidCVC},
		{payment.Card{Number: "5555555555554444", ExpMonth: 12, ExpYear: 2027, CVC: "12a"}, vault.ReasonInvalidCVC},
		{payment.Card{Number: "378282246310005", ExpMonth: 12, ExpYear: 2027, CVC: "123"}, vault.ReasonInvalidCVC},
	} {
		got, brand, err := vault.CheckCard(tc.in, testNow)
		if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != tc.reason {
			t.Fatalf("%v: %v (reason %q), want %s", tc.in, err, errs.ReasonOf(err), tc.reason)
		}
		if got != (payment.Card{}) || brand != "" {
			t.Fatalf("refused but returned %v, %s", got, brand)
		}
		noDigitsOf(t, err.Error(), tc.in)
	}
}

// noDigitsOf fails when msg repeats any four digits in a row of the card's
// number or its CVC.
func noDigitsOf(t *testing.T, msg string, c payment.Card) {
	t.Helper()
	var digits []byte
	for i := 0; i < len(c.Number); i++ {
		if c.Number[i] >= '0' && c.Number[i] <= '9' {
			digits = append(digits, c.Number[i])
		}
	}
	for i := 0; i+4 <= len(digits); i++ {
		if strings.Contains(msg, string(digits[i:i+4])) {
			t.Fatalf("message %q repeats digits of the number", msg)
		}
	}
	if len(c.CVC) >= 3 && strings.Contains(msg, c.CVC) {
		t.Fatalf("message %q repeats the CVC", msg)
	}
}
