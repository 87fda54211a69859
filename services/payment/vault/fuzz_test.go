package vault_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

// digitRuns returns the runs of at least four ASCII digits in b: the
// parts of the input no error may repeat.
func digitRuns(b []byte) []string {
	var runs []string
	start := -1
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= 4 {
			runs = append(runs, string(b[start:i]))
		}
		start = -1
	}
	return runs
}

// FuzzParseCardRequest feeds arbitrary content types and bodies to the
// tokenization request's decoder (seeds in
// testdata/fuzz/FuzzParseCardRequest). It must not panic; a refusal is
// errs.Invalid (ReasonInvalidRequest) or errs.TooLarge and repeats no run
// of digits of the body; what it accepts has every value within the
// limits, reads the same when written again as a form and as JSON, and
// CheckCard's verdict on it repeats no digits of the number either.
func FuzzParseCardRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		c, err := vault.ParseCardRequest(contentType, body)
		if err != nil {
			switch {
			case errs.Is(errs.TooLarge, err):
				if len(body) <= vault.MaxRequestBytes {
					t.Fatalf("too large at %d bytes", len(body))
				}
			case !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != vault.ReasonInvalidRequest:
				t.Fatalf("error %v (kind %v, reason %q)", err, errs.KindOf(err), errs.ReasonOf(err))
			}
			for _, run := range digitRuns(body) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("error %q repeats %q of the body", err, run)
				}
			}
			if c != (payment.Card{}) {
				t.Fatal("refused but returned a card")
			}
			return
		}
		if c.Number == "" || len(c.Number) > vault.MaxFieldBytes || len(c.CVC) > vault.MaxFieldBytes ||
			!utf8.ValidString(c.Number+c.CVC) || c.ExpMonth < 0 || c.ExpMonth > 9999 || c.ExpYear < 0 || c.ExpYear > 9999 {
			t.Fatalf("accepted a card out of the limits (%d number bytes, %d/%d, %d cvc bytes)", len(c.Number), c.ExpMonth, c.ExpYear, len(c.CVC))
		}
		again, err := vault.ParseCardRequest("application/x-www-form-urlencoded", vault.EncodeCardForm(c))
		if err != nil || again != c {
			t.Fatalf("written as a form, it reads differently: %v", err)
		}
		js, _ := json.Marshal(map[string]any{"number": c.Number, "exp_month": c.ExpMonth, "exp_year": c.ExpYear, "cvc": c.CVC})
		again, err = vault.ParseCardRequest("application/json", js)
		if err != nil || again != c {
			t.Fatalf("written as JSON, it reads differently: %v", err)
		}
		checked, brand, err := vault.CheckCard(c, testNow)
		if err != nil {
			if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) == "" {
				t.Fatalf("CheckCard: %v", err)
			}
			for _, run := range digitRuns([]byte(c.Number)) {
				if strings.Contains(err.Error(), run) {
					t.Fatalf("CheckCard's error %q repeats digits of the number", err)
				}
			}
			return
		}
		if !vault.Luhn(checked.Number) || vault.DetectBrand(checked.Number) != brand || checked.ExpYear < 2000 {
			t.Fatalf("CheckCard accepted a card it should not have (brand %s)", brand)
		}
	})
}

// FuzzParseKeyring feeds arbitrary text to the keyring parser (seeds in
// testdata/fuzz/FuzzParseKeyring). It must not panic; a refusal is
// errs.Invalid and repeats no key value of the input; an accepted
// keyring has its active and fingerprint keys among its ids.
func FuzzParseKeyring(f *testing.F) {
	f.Fuzz(func(t *testing.T, text []byte) {
		k, err := vault.ParseKeyring(text)
		if err != nil {
			if !errs.Is(errs.Invalid, err) {
				t.Fatalf("error %v of kind %v", err, errs.KindOf(err))
			}
			var f struct {
				Keys map[string]string `json:"keys"`
			}
			if json.Unmarshal(text, &f) == nil {
				for _, v := range f.Keys {
					if len(v) >= 8 && strings.Contains(err.Error(), v) {
						t.Fatalf("error %q repeats a key", err)
					}
				}
			}
			return
		}
		if !k.Has(k.Active()) || !k.Has(k.FingerprintID()) || len(k.IDs()) == 0 {
			t.Fatalf("accepted %v", k)
		}
		for _, id := range k.IDs() {
			if !vault.ValidKEKID(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
	})
}
