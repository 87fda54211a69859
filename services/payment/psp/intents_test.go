package psp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// TestCards: each test card takes the intent where the design says, with
// automatic and with manual capture.
func TestCards(t *testing.T) {
	s := startSim(t)
	cases := []struct {
		number       string
		want         payment.IntentStatus // automatic capture
		code, reason string
	}{
		{"4242424242424242", payment.Succeeded, "", ""},
		{"4000002760003184", payment.RequiresAction, "", ""},
		{"4000000000003220", payment.RequiresAction, "", ""},
		{"4000008400001629", payment.RequiresAction, "", ""},
		{"4000000000000002", payment.RequiresPaymentMethod, "card_declined", "generic_decline"},
		{"4000000000009995", payment.RequiresPaymentMethod, "card_declined", "insufficient_funds"},
		{"4000000000000069", payment.RequiresPaymentMethod, "expired_card", "expired_card"},
		{"4000000000000119", payment.RequiresPaymentMethod, "processing_error", "processing_error"},
		{"5555555555554444", payment.Succeeded, "", ""},                             // any Luhn-valid number
		{"4242424242424241", payment.RequiresPaymentMethod, "incorrect_number", ""}, // not Luhn-valid
	}
	for i, c := range cases {
		for _, manual := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/manual=%v", c.number, manual), func(t *testing.T) {
				in := s.pay(fmt.Sprintf("o-%d-%v", i, manual), 1250, manual, c.number)
				want := c.want
				if manual && want == payment.Succeeded {
					want = payment.RequiresCapture
				}
				if in.Status != want {
					t.Fatalf("status %s, want %s (%+v)", in.Status, want, in)
				}
				switch want {
				case payment.Succeeded:
					if in.AmountReceived != 1250 || in.ChargeID == "" || in.LastError != nil {
						t.Errorf("succeeded: %+v", in)
					}
				case payment.RequiresCapture:
					if in.AmountReceived != 0 || in.ChargeID == "" {
						t.Errorf("authorized: %+v", in)
					}
				case payment.RequiresAction:
					if !strings.HasPrefix(in.RedirectURL, s.ts.URL+"/3ds/") {
						t.Errorf("challenge URL %q", in.RedirectURL)
					}
				case payment.RequiresPaymentMethod:
					if in.LastError == nil || in.LastError.Code != c.code || in.LastError.DeclineCode != c.reason || in.LastError.Message == "" {
						t.Errorf("declined: %+v", in.LastError)
					}
				}
				if in.OrderID != fmt.Sprintf("o-%d-%v", i, manual) || in.Currency != "eur" || in.Amount != 1250 || in.CaptureManual != manual {
					t.Errorf("intent %+v", in)
				}
			})
		}
	}
	for _, in := range s.records().Intents {
		if strings.Contains(fmt.Sprint(in), "4242424242424242") {
			t.Errorf("a record holds a card number: %+v", in)
		}
	}
}

// TestDeclinedThenAnotherCard: a declined intent takes another card.
func TestDeclinedThenAnotherCard(t *testing.T) {
	s := startSim(t)
	in := s.pay("o1", 5000, false, "4000000000009995")
	if in.Status != payment.RequiresPaymentMethod {
		t.Fatalf("status %s", in.Status)
	}
	in, err := s.gw.ConfirmIntent(t.Context(), in.ID, payment.ConfirmRequest{Card: card("4242424242424242"), IdempotencyKey: "c2"})
	if err != nil || in.Status != payment.Succeeded || in.LastError != nil || in.AmountReceived != 5000 {
		t.Fatalf("%+v %v", in, err)
	}
	// A succeeded intent cannot be confirmed again, nor cancelled.
	_, err = s.gw.ConfirmIntent(t.Context(), in.ID, payment.ConfirmRequest{Card: card("4242424242424242"), IdempotencyKey: "c3"})
	if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != "payment_intent_unexpected_state" {
		t.Errorf("confirm again: %v", err)
	}
	_, err = s.gw.CancelIntent(t.Context(), in.ID, "x1")
	if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != "payment_intent_unexpected_state" {
		t.Errorf("cancel a succeeded intent: %v", err)
	}
}

func TestManualCaptureAndCancel(t *testing.T) {
	s := startSim(t)
	ctx := t.Context()
	in := s.pay("o1", 700, true, "4242424242424242")
	in, err := s.gw.CaptureIntent(ctx, in.ID, "cap1")
	if err != nil || in.Status != payment.Succeeded || in.AmountReceived != 700 {
		t.Fatalf("capture: %+v %v", in, err)
	}
	if _, err := s.gw.CaptureIntent(ctx, in.ID, "cap2"); errs.ReasonOf(err) != "payment_intent_unexpected_state" {
		t.Errorf("capture twice: %v", err)
	}
	// A partial capture through the API.
	in2 := s.pay("o2", 900, true, "4242424242424242")
	code, _, body := s.post("/v1/payment_intents/"+in2.ID+"/capture", "cap3", url.Values{"amount_to_capture": {"400"}})
	var got struct {
		Status         string `json:"status"`
		AmountReceived int64  `json:"amount_received"`
	}
	if json.Unmarshal(body, &got); code != 200 || got.Status != "succeeded" || got.AmountReceived != 400 {
		t.Errorf("partial capture: %d %s", code, body)
	}
	// Cancel: an authorized intent, a fresh one, one waiting for its challenge.
	for _, in := range []payment.Intent{s.pay("o3", 100, true, "4242424242424242"), s.pay("o4", 100, false, "4000000000000002"), s.pay("o5", 100, false, "4000000000003220")} {
		c, err := s.gw.CancelIntent(ctx, in.ID, "cancel:"+in.ID)
		if err != nil || c.Status != payment.Canceled || c.AmountReceived != 0 {
			t.Errorf("cancel %s: %+v %v", in.Status, c, err)
		}
		if _, err := s.gw.CaptureIntent(ctx, in.ID, "cap:"+in.ID); !errs.Is(errs.Invalid, err) {
			t.Errorf("capture a cancelled intent: %v", err)
		}
	}
	if _, err := s.gw.GetIntent(ctx, "pi_nope"); !errs.Is(errs.NotFound, err) {
		t.Errorf("get unknown: %v", err)
	}
	if _, err := s.gw.CancelIntent(ctx, "pi_nope", "k"); !errs.Is(errs.NotFound, err) {
		t.Errorf("cancel unknown: %v", err)
	}
}

func TestRefunds(t *testing.T) {
	s := startSim(t)
	ctx := t.Context()
	in := s.pay("o1", 1000, false, "4242424242424242")
	r1, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, Amount: 300, IdempotencyKey: "r1"})
	if err != nil || r1.Amount != 300 || r1.IntentID != in.ID || r1.Status != "succeeded" || r1.Currency != "eur" {
		t.Fatalf("partial: %+v %v", r1, err)
	}
	if _, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, Amount: 701, IdempotencyKey: "r2"}); errs.ReasonOf(err) != "amount_too_large" {
		t.Errorf("more than left: %v", err)
	}
	// The same key again is the same refund, not a second one.
	again, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, Amount: 300, IdempotencyKey: "r1"})
	if err != nil || again.ID != r1.ID {
		t.Errorf("replayed refund %+v %v, want %s", again, err, r1.ID)
	}
	rest, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, IdempotencyKey: "r3"})
	if err != nil || rest.Amount != 700 {
		t.Errorf("the rest: %+v %v", rest, err)
	}
	if _, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, Amount: 1, IdempotencyKey: "r4"}); errs.ReasonOf(err) != "charge_already_refunded" {
		t.Errorf("refund a refunded charge: %v", err)
	}
	got, _ := s.gw.GetIntent(ctx, in.ID)
	if got.AmountRefunded != 1000 {
		t.Errorf("amount refunded %d", got.AmountRefunded)
	}
	code, body := s.get("/v1/refunds/" + r1.ID)
	if code != 200 || !strings.Contains(string(body), `"amount":300`) {
		t.Errorf("retrieve refund: %d %s", code, body)
	}
	// Not captured yet: nothing to refund.
	auth := s.pay("o2", 1000, true, "4242424242424242")
	if _, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: auth.ID, IdempotencyKey: "r5"}); errs.ReasonOf(err) != "payment_intent_unexpected_state" {
		t.Errorf("refund before capture: %v", err)
	}
	if _, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: "pi_nope", IdempotencyKey: "r6"}); !errs.Is(errs.NotFound, err) {
		t.Errorf("refund unknown: %v", err)
	}
}

// TestConcurrentRefundsNeverExceedTheCapture: 20 refunds of 100 race on
// an intent of 1000: ten succeed.
func TestConcurrentRefundsNeverExceedTheCapture(t *testing.T) {
	s := startSim(t)
	in := s.pay("o1", 1000, false, "4242424242424242")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, tooLarge := 0, 0
	for i := range 20 {
		wg.Go(func() {
			_, err := s.gw.Refund(t.Context(), payment.RefundRequest{IntentID: in.ID, Amount: 100, IdempotencyKey: fmt.Sprint("r", i)})
			mu.Lock()
			defer mu.Unlock()
			switch r := errs.ReasonOf(err); {
			case err == nil:
				ok++
			case r == "amount_too_large" || r == "charge_already_refunded":
				tooLarge++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rec := s.records()
	if ok != 10 || tooLarge != 10 || len(rec.Refunds) != 10 || rec.Intents[0].AmountRefunded != 1000 {
		t.Fatalf("%d refunded, %d refused; records %+v", ok, tooLarge, rec)
	}
}

// TestCreateAndConfirmAtOnce: confirm=true on create, as Stripe has it.
func TestCreateAndConfirmAtOnce(t *testing.T) {
	s := startSim(t)
	f := url.Values{"amount": {"4200"}, "currency": {"USD"}, "metadata[order_id]": {"o9"}, "confirm": {"true"},
		"payment_method_data[type]": {"card"}, "payment_method_data[card][number]": {"4000000000000002"},
		"payment_method_data[card][exp_month]": {"4"}, "payment_method_data[card][exp_year]": {"2099"}, "payment_method_data[card][cvc]": {"314"}}
	code, _, body := s.post("/v1/payment_intents", "k1", f)
	var e struct {
		Error struct {
			Type, Code, DeclineCode string
			PaymentIntent           struct{ ID, Status, Currency string } `json:"payment_intent"`
		}
	}
	if err := json.Unmarshal(body, &e); err != nil || code != http.StatusPaymentRequired || e.Error.Type != "card_error" ||
		e.Error.PaymentIntent.Status != "requires_payment_method" || e.Error.PaymentIntent.Currency != "usd" {
		t.Fatalf("%d %s", code, body)
	}
	if strings.Contains(string(body), "4000000000000002") {
		t.Error("the answer holds the card number")
	}
	// Refused parameters.
	for _, bad := range []url.Values{
		{"currency": {"eur"}},
		{"amount": {"-1"}, "currency": {"eur"}},
		{"amount": {"1.5"}, "currency": {"eur"}},
		{"amount": {"100"}, "currency": {"euro"}},
		{"amount": {"100"}, "currency": {"eur"}, "capture_method": {"later"}},
		{"amount": {"100"}, "currency": {"eur"}, "confirm": {"true"}},
		{"amount": {"100"}, "currency": {"eur"}, "colour": {"red"}},
		{"amount": {"100"}, "currency": {"eur"}, "payment_method_data[card][number]": {"4242424242424242"}},
	} {
		if code, _, body := s.post("/v1/payment_intents", "", bad); code != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request_error") {
			t.Errorf("%v: %d %s", bad, code, body)
		}
	}
	if code, _, _ := s.post("/v1/payment_intents", "", url.Values{"amount": {"1", "2"}, "currency": {"eur"}}); code != http.StatusBadRequest {
		t.Errorf("a parameter twice: %d", code)
	}
}

func TestCredentials(t *testing.T) {
	s := startSim(t)
	for _, auth := range []string{"", "Bearer sk_test_other", "Basic Zm9v"} {
		req, _ := http.NewRequest(http.MethodGet, s.ts.URL+"/_sim/records", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if code, _, _ := s.do(req); code != http.StatusUnauthorized {
			t.Errorf("%q: %d", auth, code)
		}
		req, _ = http.NewRequest(http.MethodPost, s.ts.URL+"/v1/payment_intents", strings.NewReader("amount=1&currency=eur"))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if code, _, _ := s.do(req); code != http.StatusUnauthorized {
			t.Errorf("%q: %d", auth, code)
		}
	}
	// Stripe's basic auth: the key as the user name.
	req, _ := http.NewRequest(http.MethodGet, s.ts.URL+"/_sim/records", nil)
	req.SetBasicAuth(testKey, "")
	if code, _, _ := s.do(req); code != http.StatusOK {
		t.Errorf("basic auth: %d", code)
	}
}
