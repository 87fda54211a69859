package gateway_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

const testKey = "sk_test_gateway"

// startSim runs a simulator behind a loopback HTTP server.
func startSim(tb testing.TB, mods ...func(*psp.Config)) (*psp.Server, string) {
	tb.Helper()
	cfg := psp.Config{DataDir: tb.TempDir(), SecretKey: testKey, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := psp.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() {
		ts.Close()
		if err := srv.Close(); err != nil {
			tb.Error(err)
		}
	})
	return srv, ts.URL
}

func newClient(tb testing.TB, base string, mods ...func(*gateway.Config)) *gateway.Client {
	tb.Helper()
	cfg := gateway.Config{BaseURL: base, SecretKey: testKey, WebhookSecret: "whsec_x"}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

var visa = payment.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2040, CVC: "123"}

// TestPaymentThroughTheClient: the calls of a payment map the answers to
// payment.Intent and payment.Refund.
func TestPaymentThroughTheClient(t *testing.T) {
	_, base := startSim(t)
	c := newClient(t, base)
	ctx := t.Context()
	in, err := c.CreateIntent(ctx, payment.IntentRequest{Amount: 4999, Currency: "EUR", OrderID: "o1", IdempotencyKey: "order:o1"})
	if err != nil || in.Status != payment.RequiresPaymentMethod || in.Currency != "eur" || in.OrderID != "o1" || in.Amount != 4999 ||
		!strings.HasPrefix(in.ID, "pi_") || time.Since(in.Created) > time.Minute {
		t.Fatalf("create: %+v %v", in, err)
	}
	declined, err := c.ConfirmIntent(ctx, in.ID, payment.ConfirmRequest{Card: payment.Card{Number: "4000000000000069", ExpMonth: 1, ExpYear: 2040, CVC: "1"}, IdempotencyKey: "c1"})
	if err != nil || declined.Status != payment.RequiresPaymentMethod || declined.LastError == nil || declined.LastError.Code != "expired_card" {
		t.Fatalf("declined: %+v %v", declined, err)
	}
	paid, err := c.ConfirmIntent(ctx, in.ID, payment.ConfirmRequest{Card: visa, IdempotencyKey: "c2"})
	if err != nil || paid.Status != payment.Succeeded || paid.AmountReceived != 4999 || !strings.HasPrefix(paid.ChargeID, "ch_") || paid.LastError != nil {
		t.Fatalf("paid: %+v %v", paid, err)
	}
	rf, err := c.Refund(ctx, payment.RefundRequest{IntentID: in.ID, IdempotencyKey: "refund:o1"})
	if err != nil || rf.Amount != 4999 || rf.IntentID != in.ID || rf.Status != "succeeded" || rf.Currency != "eur" {
		t.Fatalf("refund: %+v %v", rf, err)
	}
	got, err := c.GetIntent(ctx, in.ID)
	if err != nil || got.AmountRefunded != 4999 {
		t.Fatalf("get: %+v %v", got, err)
	}
	manual, _ := c.CreateIntent(ctx, payment.IntentRequest{Amount: 10, Currency: "usd", CaptureManual: true, IdempotencyKey: "m"})
	if !manual.CaptureManual {
		t.Errorf("manual: %+v", manual)
	}
	challenged, err := c.ConfirmIntent(ctx, manual.ID, payment.ConfirmRequest{Card: payment.Card{Number: "4000000000003220", ExpMonth: 1, ExpYear: 2040, CVC: "1"},
		ReturnURL: "https://shop.example/back", IdempotencyKey: "m1"})
	if err != nil || challenged.Status != payment.RequiresAction || !strings.HasPrefix(challenged.RedirectURL, base+"/3ds/") {
		t.Errorf("challenge: %+v %v", challenged, err)
	}
}

// TestErrorKinds: every kind of failure maps to its errs kind, and no
// error holds the card number.
func TestErrorKinds(t *testing.T) {
	srv, base := startSim(t)
	c := newClient(t, base)
	ctx := t.Context()
	paid, _ := c.CreateIntent(ctx, payment.IntentRequest{Amount: 100, Currency: "eur", IdempotencyKey: "a"})
	paid, _ = c.ConfirmIntent(ctx, paid.ID, payment.ConfirmRequest{Card: visa, IdempotencyKey: "b"})

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()
	canned := func(status int, body string) string {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, body)
		}))
		t.Cleanup(ts.Close)
		return ts.URL
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a closed connection once the body is read
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)

	cases := []struct {
		name   string
		call   func() error
		kind   errs.Kind
		reason string
	}{
		{"unknown intent", func() error { _, err := c.GetIntent(ctx, "pi_missing"); return err }, errs.NotFound, "resource_missing"},
		{"wrong key", func() error {
			_, err := newClient(t, base, func(c *gateway.Config) { c.SecretKey = "sk_test_wrong" }).GetIntent(ctx, paid.ID)
			return err
		}, errs.Unauthorized, "api_key_invalid"},
		{"key reused", func() error {
			_, err := c.CreateIntent(ctx, payment.IntentRequest{Amount: 999, Currency: "eur", IdempotencyKey: "a"})
			return err
		}, errs.Mismatch, "idempotency_key_reused"},
		{"refund too large", func() error {
			_, err := c.Refund(ctx, payment.RefundRequest{IntentID: paid.ID, Amount: 101, IdempotencyKey: "r"})
			return err
		}, errs.Invalid, "amount_too_large"},
		{"wrong state", func() error { _, err := c.CaptureIntent(ctx, paid.ID, "cap"); return err }, errs.Invalid, "payment_intent_unexpected_state"},
		{"no idempotency key", func() error { _, err := c.CancelIntent(ctx, paid.ID, ""); return err }, errs.Invalid, "idempotency_key_required"},
		{"no currency", func() error {
			_, err := c.CreateIntent(ctx, payment.IntentRequest{Amount: 1, IdempotencyKey: "x"})
			return err
		}, errs.Invalid, "parameter_invalid"},
		{"injected 500", func() error {
			_ = srv.SetFaults(psp.Faults{ErrorBefore: 1, Ops: []string{"retrieve"}})
			defer srv.SetFaults(psp.Faults{})
			_, err := c.GetIntent(ctx, paid.ID)
			return err
		}, errs.Unavailable, "api_error"},
		{"nobody listens", func() error {
			_, err := newClient(t, deadURL).ConfirmIntent(ctx, "pi_1", payment.ConfirmRequest{Card: visa, IdempotencyKey: "k"})
			return err
		}, errs.Unavailable, ""},
		{"timeout", func() error {
			_, err := newClient(t, slow.URL, func(c *gateway.Config) { c.Timeout = 100 * time.Millisecond }).ConfirmIntent(ctx, "pi_1", payment.ConfirmRequest{Card: visa, IdempotencyKey: "k"})
			return err
		}, errs.Unavailable, ""},
		{"429", func() error {
			_, err := newClient(t, canned(429, `{"error":{"type":"rate_limit_error"}}`)).GetIntent(ctx, "pi_1")
			return err
		}, errs.TooMany, "rate_limit_error"},
		{"502 page", func() error {
			_, err := newClient(t, canned(502, "<html>bad gateway</html>")).GetIntent(ctx, "pi_1")
			return err
		}, errs.Unavailable, ""},
		{"garbled 200", func() error { _, err := newClient(t, canned(200, "{")).GetIntent(ctx, "pi_1"); return err }, errs.Unavailable, ""},
		{"409 in flight", func() error {
			_, err := newClient(t, canned(409, `{"error":{"type":"idempotency_error","code":"idempotency_key_in_use"}}`)).CancelIntent(ctx, "pi_1", "k")
			return err
		}, errs.InFlight, "idempotency_key_in_use"},
	}
	for _, tc := range cases {
		err := tc.call()
		if !errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.reason {
			t.Errorf("%s: %v (kind %v, reason %q), want kind %v reason %q", tc.name, err, errs.KindOf(err), errs.ReasonOf(err), tc.kind, tc.reason)
		}
		if err != nil && strings.Contains(err.Error(), visa.Number) {
			t.Errorf("%s: the error holds the card number: %v", tc.name, err)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []gateway.Config{{}, {BaseURL: "ftp://x", SecretKey: "k"}, {BaseURL: "http://x"}, {BaseURL: "http://x", SecretKey: "k", Timeout: -1}} {
		if _, err := gateway.New(cfg); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
	cfg := gateway.Config{BaseURL: "http://x/", SecretKey: "k"}
	cfg.Defaults()
	if cfg.BaseURL != "http://x" || cfg.Timeout != gateway.DefaultTimeout || cfg.WebhookTolerance != 300*time.Second || cfg.Validate() != nil {
		t.Errorf("defaults %+v", cfg)
	}
}
