package httpapi

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/pricing"
)

// The orders' body decoders: whatever the bytes, a decoder never panics;
// a refusal is a client error (errs.Invalid, or errs.TooLarge exactly
// when the body is over its limit); what it accepts keeps to the limits
// the edge documents, and is accepted again, unchanged, once encoded.

func FuzzDecodeCart(f *testing.F) {
	for _, s := range []string{
		`{"holds":["arena-finals.0.k3xq7m2pa4bz5wcd"]}`,
		`{"holds":["arena-finals.0.k3xq7m2pa4bz5wcd","arena-finals.1.m4ta2bq5r7xcz3ed"],"add_ons":[{"id":"parking","quantity":1}],"voucher":"spring10"}`,
		`{"holds":["h"],"quote_id":"q_k3xq7m2pa4bz5wcdm4ta"}`,
		`{"holds":["h"],"add_ons":null,"voucher":"","quote_id":""}`,
		`{"holds":["a","b","c","d","e","f","g","h","i","j"]}`,
		`{"holds":["a","b","c","d","e","f","g","h","i","j","k"]}`,
		`{"holds":["a","a"]}`,
		`{"holds":[]}`, `{"holds":[""]}`, `{"holds":null}`,
		`{"holds":["h"],"add_ons":[{"id":"Parking","quantity":1}]}`,
		`{"holds":["h"],"add_ons":[{"id":"p","quantity":0}]}`,
		`{"holds":["h"],"add_ons":[{"id":"p","quantity":1e3}]}`,
		`{"holds":["h"],"quote_id":"q k"}`,
		`{"holds":["h"],"voucher":" Spring10\u0000"}`,
		`{"HOLDS":["h"],"Voucher":"x"}`,
		`{"holds":["h"],"holds":["i"]}`,
		`{"holds":["h"],"account":"u_1"}`,
		`{"holds":["h\ud800"]}`,
		`{"holds":["h"]} {}`,
		`null`, `[]`, `""`, `{`, ``, " \t\n",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, order bool) {
		b, err := decodeCart(body, order)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxOrderBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		// Accepted: within the documented limits.
		if len(body) > maxOrderBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if len(b.Holds) < 1 || len(b.Holds) > orders.MaxHolds || len(b.AddOns) > orders.MaxAddOns || len(b.Voucher) > maxVoucherLen {
			t.Fatalf("accepted %+v", b)
		}
		for _, h := range b.Holds {
			if h == "" || len(h) > 200 {
				t.Fatalf("accepted hold %q", h)
			}
		}
		for _, a := range b.AddOns {
			if !pricing.ValidID(a.ID) || a.Quantity < 1 || a.Quantity > maxQuantity {
				t.Fatalf("accepted add-on %+v", a)
			}
		}
		if (!order && b.QuoteID != "") || (b.QuoteID != "" && !pricing.ValidQuoteID(b.QuoteID)) {
			t.Fatalf("accepted quote_id %q (order %v)", b.QuoteID, order)
		}
		if enc, _ := json.Marshal(b); len(enc) <= maxOrderBody { // re-encoding may escape more
			roundTrip(t, b, func(raw []byte) (cartBody, error) { return decodeCart(raw, order) })
		}

		// The fingerprint: 32 hex digits, the same for the same request
		// however it is written, different for any other.
		fp := b.fingerprint()
		if len(fp) != 32 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Fatalf("fingerprint %q", fp)
		}
		same := b
		same.Holds, same.AddOns = slices.Clone(b.Holds), slices.Clone(b.AddOns)
		rand.Shuffle(len(same.Holds), func(i, j int) { same.Holds[i], same.Holds[j] = same.Holds[j], same.Holds[i] })
		rand.Shuffle(len(same.AddOns), func(i, j int) { same.AddOns[i], same.AddOns[j] = same.AddOns[j], same.AddOns[i] })
		same.Voucher = " " + strings.ToLower(b.Voucher) + " "
		if pricing.NormalizeCode(same.Voucher) != pricing.NormalizeCode(b.Voucher) {
			same.Voucher = b.Voucher // lower-casing is not undone by upper-casing for every letter
		}
		if same.fingerprint() != fp {
			t.Fatalf("the same request %+v has another fingerprint than %+v", same, b)
		}
		again, err := json.MarshalIndent(same, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		if b2, err := decodeCart(again, order); err == nil && b2.fingerprint() != fp {
			t.Fatalf("re-encoding %q as %s changes the fingerprint", body, again)
		} else if err != nil && len(again) <= maxOrderBody && len(same.Voucher) <= maxVoucherLen {
			t.Fatalf("re-encoded %s: %v", again, err)
		}
		for name, other := range map[string]cartBody{
			"a hold more or less": func() cartBody {
				o := b
				if len(b.Holds) < orders.MaxHolds {
					o.Holds = append(slices.Clone(b.Holds), "fuzz.0."+strings.Repeat("z", 16)+fp)
				} else {
					o.Holds = b.Holds[1:]
				}
				return o
			}(),
			"an add-on more": func() cartBody {
				o := b
				o.AddOns = append(slices.Clone(b.AddOns), pricing.AddOnItem{ID: "fuzz-" + fp[:8], Quantity: 1})
				return o
			}(),
			"another voucher": func() cartBody { o := b; o.Voucher = b.Voucher + "X"; return o }(),
			"another quote":   func() cartBody { o := b; o.QuoteID = b.QuoteID + "x"; return o }(),
		} {
			if other.fingerprint() == fp {
				t.Fatalf("%s: %+v has the fingerprint of %+v", name, other, b)
			}
		}
		if len(b.AddOns) > 0 {
			o := b
			o.AddOns = slices.Clone(b.AddOns)
			o.AddOns[0].Quantity++
			if o.fingerprint() == fp {
				t.Fatalf("another quantity: %+v has the fingerprint of %+v", o, b)
			}
		}
	})
}

func FuzzDecodePay(f *testing.F) {
	for _, s := range []string{
		`{"method":"pm_8f14e45fceea167a5a36dedd4bea2543"}`,
		`{"method":"` + strings.Repeat("m", maxMethodLen) + `"}`,
		`{"method":"` + strings.Repeat("m", maxMethodLen+1) + `"}`,
		`{"method":""}`, `{"method":null}`, `{"method":1}`, `{}`,
		`{"method":"pm_1","return_url":"https://evil.example/"}`,
		`{"METHOD":"pm_1"}`, `{"method":"pm_1"} x`, `{"method":"é\u0000"}`,
		`null`, `[]`, `""`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodePay(body)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxOrderBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		if len(body) > maxOrderBody || b.Method == "" || len(b.Method) > maxMethodLen {
			t.Fatalf("accepted %q: %+v", body, b)
		}
		roundTrip(t, b, decodePay)
	})
}

func FuzzDecodeRefund(f *testing.F) {
	for _, s := range []string{
		`{"reason":"event_cancelled"}`,
		`{"reason":"` + strings.Repeat("r", maxReasonLen) + `"}`,
		`{"reason":"` + strings.Repeat("r", maxReasonLen+1) + `"}`,
		`{"reason":""}`, `{"reason":null}`, `{"reason":[]}`, `{}`,
		`{"reason":"x","admin":true}`, `{"reason":"x","staff":["org"]}`,
		`{"Reason":"x"}`, `{"reason":"x"}{}`, `{"reason":"\ud83d\ude00"}`,
		`null`, `[]`, `""`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := decodeRefund(body)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxOrderBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		if len(body) > maxOrderBody || b.Reason == "" || len(b.Reason) > maxReasonLen {
			t.Fatalf("accepted %q: %+v", body, b)
		}
		roundTrip(t, b, decodeRefund)
	})
}
