package barcode_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

// FuzzDecode feeds Decode arbitrary payloads: it must never panic, every
// refusal is errs.Invalid with ReasonMalformed, and what it accepts Encode
// writes back byte for byte (one encoding per payload). The seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, p []byte) {
		c, err := barcode.Decode(p)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid || e.Reason != barcode.ReasonMalformed {
				t.Fatalf("Decode(%x): refusal %v is not Invalid/malformed", p, err)
			}
			return
		}
		if len(p) > barcode.MaxPayloadLen {
			t.Fatalf("Decode accepted %d bytes, above MaxPayloadLen", len(p))
		}
		back, err := barcode.Encode(c)
		if err != nil || !bytes.Equal(back, p) {
			t.Fatalf("Encode(Decode(%x)) = %x, %v", p, back, err)
		}
	})
}

// reasons are the refusals Verify may give, with their kinds.
var reasons = map[string]errs.Kind{
	barcode.ReasonMalformed:         errs.Invalid,
	barcode.ReasonUnknownKey:        errs.Unauthorized,
	barcode.ReasonBadSignature:      errs.Unauthorized,
	barcode.ReasonWrongEvent:        errs.Forbidden,
	barcode.ReasonNotYetValid:       errs.Forbidden,
	barcode.ReasonExpired:           errs.Gone,
	barcode.ReasonRevoked:           errs.Forbidden,
	barcode.ReasonStaleCode:         errs.Unauthorized,
	barcode.ReasonPrintedNotAllowed: errs.Forbidden,
	barcode.ReasonCodeMissing:       errs.Unauthorized,
}

// FuzzVerify feeds a verifier (clock at t0, printed barcodes allowed)
// arbitrary texts: it must never panic, every refusal has one of the
// reasons with its kind, and what it accepts is a barcode of its event
// that Parse reads the same. The seeds are in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	fx := newFixture()
	fx.ver.AllowPrinted = true
	fx.ver.Revoked = barcode.NewRevocationList(1)
	fx.ver.Revoked.Revoke("t_revoked")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := fx.ver.Verify(text)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify(%q): %v is not an *errs.Error", text, err)
			}
			if k, ok := reasons[e.Reason]; !ok || k != e.Kind {
				t.Fatalf("Verify(%q): refusal %v has reason %q, kind %v", text, err, e.Reason, e.Kind)
			}
			return
		}
		if c.EventID != event || c.KeyID != fx.key.ID || c.TicketID == "t_revoked" {
			t.Fatalf("Verify(%q) accepted %+v", text, c)
		}
		if p, err := barcode.Parse(text); err != nil || p != c {
			t.Fatalf("Verify(%q) = %+v, Parse = %+v, %v", text, c, p, err)
		}
	})
}
