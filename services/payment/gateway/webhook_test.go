package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

const (
	intentEvent = `{"id":"evt_1","object":"event","type":"payment_intent.payment_failed","created":1700000000,"data":{"object":` +
		`{"id":"pi_1","object":"payment_intent","amount":500,"amount_received":0,"amount_refunded":0,"currency":"eur","status":"requires_payment_method",` +
		`"capture_method":"automatic","metadata":{"order_id":"o1"},"last_payment_error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"no"},` +
		`"next_action":null,"created":1700000000,"livemode":false}},"livemode":false}`
	refundEvent = `{"id":"evt_2","object":"event","type":"charge.refunded","created":1700000001,"data":{"object":` +
		`{"id":"re_1","object":"refund","amount":200,"currency":"eur","payment_intent":"pi_1","charge":"ch_1","status":"succeeded","created":1700000001}}}`
	otherEvent = `{"id":"evt_3","object":"event","type":"customer.created","created":1700000002,"data":{"object":{"id":"cus_1","object":"customer"}}}`
)

func TestVerifyWebhook(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", func(c *gateway.Config) { c.WebhookSecret = "whsec_new" })
	t0 := time.Unix(1700000000, 0)
	body := []byte(intentEvent)
	sig := psp.Sign(body, t0, "whsec_new")
	cases := []struct {
		name   string
		body   string
		header string
		now    time.Time
		kind   errs.Kind
		reason string
	}{
		{"valid", intentEvent, sig, t0, 0, ""},
		{"rotation: the old secret's signature first", intentEvent, psp.Sign(body, t0, "whsec_old", "whsec_new"), t0, 0, ""},
		{"rotation: the new secret's first", intentEvent, psp.Sign(body, t0, "whsec_new", "whsec_old"), t0, 0, ""},
		{"spaces and other schemes", intentEvent, strings.ReplaceAll(sig, ",", ", ") + ",v0=abc", t0, 0, ""},
		{"299s late", intentEvent, sig, t0.Add(299 * time.Second), 0, ""},
		{"301s late", intentEvent, sig, t0.Add(301 * time.Second), errs.Unauthorized, gateway.ReasonTimestampTolerance},
		{"301s early", intentEvent, sig, t0.Add(-301 * time.Second), errs.Unauthorized, gateway.ReasonTimestampTolerance},
		{"body changed", strings.Replace(intentEvent, "500", "5000", 1), sig, t0, errs.Unauthorized, gateway.ReasonSignatureMismatch},
		{"other secret", intentEvent, psp.Sign(body, t0, "whsec_old"), t0, errs.Unauthorized, gateway.ReasonSignatureMismatch},
		{"timestamp changed", intentEvent, strings.Replace(sig, "t=1700000000", "t=1700000001", 1), t0, errs.Unauthorized, gateway.ReasonSignatureMismatch},
		{"empty", intentEvent, "", t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"no v1", intentEvent, "t=1700000000", t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"no t", intentEvent, sig[strings.Index(sig, ",")+1:], t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"two t", intentEvent, "t=1," + sig, t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"t not a number", intentEvent, strings.Replace(sig, "t=1700000000", "t=17e8", 1), t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"short v1", intentEvent, "t=1700000000,v1=abcd", t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"not key=value", intentEvent, sig + ",junk", t0, errs.Invalid, gateway.ReasonBadSignatureHeader},
		{"signed garbage", "not json", psp.Sign([]byte("not json"), t0, "whsec_new"), t0, errs.Invalid, gateway.ReasonBadPayload},
	}
	for _, tc := range cases {
		_, err := c.VerifyWebhook([]byte(tc.body), tc.header, tc.now)
		if tc.reason == "" && err != nil || tc.reason != "" && (!errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.reason) {
			t.Errorf("%s: %v (reason %q), want %v %q", tc.name, err, errs.ReasonOf(err), tc.kind, tc.reason)
		}
	}
}

func TestDecodeEvent(t *testing.T) {
	ev, err := gateway.DecodeEvent([]byte(intentEvent))
	want := payment.Intent{ID: "pi_1", Status: payment.RequiresPaymentMethod, Amount: 500, Currency: "eur", OrderID: "o1",
		LastError: &payment.Decline{Code: "card_declined", DeclineCode: "insufficient_funds", Message: "no"}, Created: time.Unix(1700000000, 0).UTC()}
	if err != nil || ev.ID != "evt_1" || ev.Type != "payment_intent.payment_failed" || !ev.Created.Equal(time.Unix(1700000000, 0)) ||
		ev.Intent == nil || ev.Refund != nil || *ev.Intent.LastError != *want.LastError {
		t.Fatalf("%+v %v", ev, err)
	}
	ev.Intent.LastError, want.LastError = nil, nil
	if *ev.Intent != want {
		t.Errorf("intent %+v, want %+v", *ev.Intent, want)
	}
	ev, err = gateway.DecodeEvent([]byte(refundEvent))
	if err != nil || ev.Refund == nil || *ev.Refund != (payment.Refund{ID: "re_1", IntentID: "pi_1", Amount: 200, Currency: "eur", Status: "succeeded"}) {
		t.Errorf("refund %+v %v", ev.Refund, err)
	}
	ev, err = gateway.DecodeEvent([]byte(otherEvent))
	if err != nil || ev.Intent != nil || ev.Refund != nil || ev.Type != "customer.created" {
		t.Errorf("other %+v %v", ev, err)
	}
	for _, bad := range []string{`{}`, `{"id":"evt_1","type":"x"}`, `{"id":"evt_1","type":"x","data":{"object":{"object":"payment_intent"}}}`, `[]`} {
		if _, err := gateway.DecodeEvent([]byte(bad)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
