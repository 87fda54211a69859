package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// VerifyWebhook checks the Stripe-Signature header of a webhook against
// its body with the client's webhook secret, and decodes it.
func (c *Client) VerifyWebhook(body []byte, signature string, now time.Time) (payment.WebhookEvent, error) {
	return VerifyWebhook(body, signature, c.cfg.WebhookSecret, c.cfg.WebhookTolerance, now)
}

// The reasons of VerifyWebhook's errors.
const (
	ReasonBadSignatureHeader = "bad_signature_header" // Invalid: not t=…,v1=…
	ReasonSignatureMismatch  = "signature_mismatch"   // Unauthorized: no v1 is the body's
	ReasonTimestampTolerance = "timestamp_tolerance"  // Unauthorized: t too far from now
	ReasonBadPayload         = "bad_payload"          // Invalid: not an event
)

// maxSignatureHeader bounds the header VerifyWebhook reads.
const maxSignatureHeader = 4096

// VerifyWebhook checks that one of header's v1 signatures is the HMAC-SHA256
// of "<t>.<body>" under secret (compared in constant time) and that t is
// within tolerance of now, then decodes body (DecodeEvent). Several v1
// signatures are accepted: while a secret is rotated the gateway signs
// with both.
func VerifyWebhook(body []byte, header, secret string, tolerance time.Duration, now time.Time) (payment.WebhookEvent, error) {
	const op = "gateway.verify_webhook"
	if secret == "" {
		return payment.WebhookEvent{}, errs.E(op, errs.Invalid, "no webhook secret is configured").WithReason(ReasonSignatureMismatch)
	}
	t, sigs, err := ParseSignature(header)
	if err != nil {
		return payment.WebhookEvent{}, err
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(t, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	want := m.Sum(nil)
	ok := false
	for _, s := range sigs {
		// Every signature is compared: the time taken says nothing of
		// which matched.
		if hmac.Equal(s, want) {
			ok = true
		}
	}
	if !ok {
		return payment.WebhookEvent{}, errs.E(op, errs.Unauthorized, "no signature of the webhook matches the secret").WithReason(ReasonSignatureMismatch)
	}
	if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
		return payment.WebhookEvent{}, errs.E(op, errs.Unauthorized, "the webhook's timestamp is outside the tolerance").WithReason(ReasonTimestampTolerance)
	}
	return DecodeEvent(body)
}

// ParseSignature reads a Stripe-Signature header: its timestamp t (once)
// and its v1 signatures (hex SHA-256 HMACs; entries of other schemes, and
// v1 entries that are not 64 hex digits, are skipped). At least one v1
// is required.
func ParseSignature(header string) (t int64, v1 [][]byte, err error) {
	const op = "gateway.verify_webhook"
	bad := func(msg string) error {
		return errs.E(op, errs.Invalid, msg).WithReason(ReasonBadSignatureHeader)
	}
	if len(header) > maxSignatureHeader {
		return 0, nil, bad("the signature header is too long")
	}
	seenT := false
	for part := range strings.SplitSeq(header, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return 0, nil, bad("the signature header is not a list of key=value")
		}
		switch k {
		case "t":
			if seenT {
				return 0, nil, bad("the signature header has two timestamps")
			}
			seenT = true
			if len(v) == 0 || len(v) > 12 || strings.TrimLeft(v, "0123456789") != "" {
				return 0, nil, bad("the signature header's timestamp is not a unix time")
			}
			t, _ = strconv.ParseInt(v, 10, 64)
		case "v1":
			if len(v) != 2*sha256.Size {
				continue
			}
			s, err := hex.DecodeString(v)
			if err != nil {
				continue
			}
			v1 = append(v1, s)
		}
	}
	if !seenT {
		return 0, nil, bad("the signature header has no timestamp")
	}
	if len(v1) == 0 {
		return 0, nil, bad("the signature header has no v1 signature")
	}
	return t, v1, nil
}

// DecodeEvent reads a webhook event: its id, type, time and the object it
// carries (an intent for payment_intent.* events, a refund for
// charge.refunded; objects of other kinds are left out).
func DecodeEvent(body []byte) (payment.WebhookEvent, error) {
	const op = "gateway.decode_event"
	bad := func(msg string, err error) error {
		return errs.E(op, errs.Invalid, msg, err).WithReason(ReasonBadPayload)
	}
	var e struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Created int64  `json:"created"`
		Data    struct {
			Object json.RawMessage `json:"object"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&e); err != nil {
		return payment.WebhookEvent{}, bad("the webhook is not a JSON event", err)
	}
	if e.ID == "" || e.Type == "" {
		return payment.WebhookEvent{}, bad("the webhook event has no id or type", nil)
	}
	ev := payment.WebhookEvent{ID: e.ID, Type: e.Type, Created: time.Unix(e.Created, 0).UTC()}
	var kind struct {
		Object string `json:"object"`
	}
	if len(e.Data.Object) == 0 || json.Unmarshal(e.Data.Object, &kind) != nil {
		return payment.WebhookEvent{}, bad("the webhook event carries no object", nil)
	}
	switch kind.Object {
	case "payment_intent":
		var w wireIntent
		if err := json.Unmarshal(e.Data.Object, &w); err != nil || w.ID == "" {
			return payment.WebhookEvent{}, bad("the webhook's payment intent does not decode", err)
		}
		in := w.intent()
		ev.Intent = &in
	case "refund":
		var w wireRefund
		if err := json.Unmarshal(e.Data.Object, &w); err != nil || w.ID == "" {
			return payment.WebhookEvent{}, bad("the webhook's refund does not decode", err)
		}
		rf := w.refund()
		ev.Refund = &rf
	}
	return ev, nil
}
