package httpapi

import (
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
)

// The scan's body decoder: whatever the bytes, it never panics; a refusal
// is a client error (errs.TooLarge exactly when the body is over its
// limit); what it accepts keeps to the documented limits and is accepted
// again, unchanged, once encoded.
func FuzzDecodeScan(f *testing.F) {
	for _, s := range []string{
		`{"barcode":"AQ1rM3hxN20y.12345678","gate":"north-1","nonce":"n-1"}`,
		`{"barcode":"AQ","gate":"g","nonce":"n","scanned_at":"2026-06-12T19:31:02.123Z"}`,
		`{"barcode":"AQ","gate":"g","nonce":"n","scanned_at":"0001-01-01T00:00:00Z"}`,
		`{"barcode":"AQ","gate":"g","nonce":"n","scanned_at":null}`,
		`{"barcode":"AQ","gate":"g","nonce":"n","scanned_at":"yesterday"}`,
		`{"barcode":"` + strings.Repeat("A", maxBarcodeLen+1) + `","gate":"g","nonce":"n"}`,
		`{"barcode":"AQ","gate":"` + strings.Repeat("g", maxGateLen+1) + `","nonce":"n"}`,
		`{"barcode":"AQ","gate":"g 1","nonce":"n"}`, `{"barcode":"AQ","gate":"-g","nonce":"n"}`,
		`{"barcode":"AQ","gate":"g","nonce":""}`, `{"barcode":"","gate":"g","nonce":"n"}`,
		`{"barcode":"AQ","gate":"g","nonce":"n","admin":true}`, `{"Barcode":"AQ","gate":"g","nonce":"n"}`,
		`{"barcode":"AQ","gate":"g","nonce":"n"} {}`, `{"barcode":"\u0000","gate":"g","nonce":"n"}`,
		`null`, `[]`, `""`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodeScan(body)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxScanBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		if len(body) > maxScanBody || b.Barcode == "" || len(b.Barcode) > maxBarcodeLen ||
			!scanRef.MatchString(b.Gate) || len(b.Gate) > maxGateLen || !scanRef.MatchString(b.Nonce) || len(b.Nonce) > maxNonceLen {
			t.Fatalf("accepted %q: %+v", body, b)
		}
		roundTrip(t, b, decodeScan)
	})
}
