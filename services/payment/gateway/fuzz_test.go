package gateway_test

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// FuzzParseSignature: any header parses or is refused as Invalid; what
// parses has a timestamp and SHA-256-sized signatures.
func FuzzParseSignature(f *testing.F) {
	f.Add(psp.Sign([]byte("{}"), time.Unix(1700000000, 0), "whsec_a", "whsec_b"))
	f.Add("t=1,v1=zz,v0=00")
	f.Add("t=,v1=")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, header string) {
		ts, sigs, err := gateway.ParseSignature(header)
		if err != nil {
			if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != gateway.ReasonBadSignatureHeader {
				t.Fatalf("error %v", err)
			}
			return
		}
		if ts < 0 || len(sigs) == 0 || !strings.Contains(header, "t=") {
			t.Fatalf("t %d, %d signatures from %q", ts, len(sigs), header)
		}
		for _, s := range sigs {
			if len(s) != sha256.Size {
				t.Fatalf("a signature of %d bytes", len(s))
			}
		}
	})
}

// FuzzDecodeEvent: any body decodes or is refused as Invalid; what
// decodes has an id and a type, and at most one object.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(intentEvent))
	f.Add([]byte(refundEvent))
	f.Add([]byte(otherEvent))
	f.Add([]byte(`{"id":"e","type":"t","data":{"object":null}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := gateway.DecodeEvent(body)
		if err != nil {
			if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != gateway.ReasonBadPayload {
				t.Fatalf("error %v", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" || ev.Intent != nil && ev.Refund != nil {
			t.Fatalf("decoded %+v", ev)
		}
		if ev.Intent != nil && ev.Intent.ID == "" || ev.Refund != nil && ev.Refund.ID == "" {
			t.Fatalf("an object without an id: %+v", ev)
		}
	})
}

// FuzzVerifyWebhook: what the simulator signs verifies (unless the body
// is not an event), and any change to the body or a wrong secret fails.
func FuzzVerifyWebhook(f *testing.F) {
	f.Add([]byte(intentEvent), int64(1700000000), "whsec_x", int64(12))
	f.Add([]byte("not json"), int64(0), "s", int64(-300))
	f.Fuzz(func(t *testing.T, body []byte, unix int64, secret string, skew int64) {
		if secret == "" || unix < 0 || unix > 1<<40 {
			return
		}
		at := time.Unix(unix, 0)
		header := psp.Sign(body, at, secret)
		now := at.Add(time.Duration(skew%600) * time.Second)
		_, err := gateway.VerifyWebhook(body, header, secret, 300*time.Second, now)
		within := skew%600 >= -300 && skew%600 <= 300
		switch r := errs.ReasonOf(err); {
		case err == nil:
			if !within {
				t.Fatalf("accepted %ds of skew", skew%600)
			}
		case r == gateway.ReasonBadPayload:
		case r == gateway.ReasonTimestampTolerance && !within:
		default:
			t.Fatalf("the simulator's signature does not verify: %v", err)
		}
		if _, err := gateway.VerifyWebhook(append(body, ' '), header, secret, 300*time.Second, at); errs.ReasonOf(err) != gateway.ReasonSignatureMismatch {
			t.Fatalf("a changed body: %v", err)
		}
		if _, err := gateway.VerifyWebhook(body, header, secret+"x", 300*time.Second, at); errs.ReasonOf(err) != gateway.ReasonSignatureMismatch {
			t.Fatalf("another secret: %v", err)
		}
	})
}
