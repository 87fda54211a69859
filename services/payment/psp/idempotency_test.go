package psp_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/psp"
)

func intentForm(amount string) url.Values {
	return url.Values{"amount": {amount}, "currency": {"eur"}, "metadata[order_id]": {"o1"}}
}

func idOf(t *testing.T, body []byte) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s", body)
	}
	return v.ID
}

func TestIdempotency(t *testing.T) {
	s := startSim(t)
	code, h, body := s.post("/v1/payment_intents", "order:o1", intentForm("100"))
	if code != 200 || h.Get("Idempotent-Replayed") != "" {
		t.Fatalf("%d %s", code, body)
	}
	id := idOf(t, body)
	// The same request again: the same answer, byte for byte.
	code2, h2, body2 := s.post("/v1/payment_intents", "order:o1", intentForm("100"))
	if code2 != 200 || string(body2) != string(body) || h2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay: %d %s %v", code2, body2, h2)
	}
	// The same key with other parameters, or on another path.
	code, _, body = s.post("/v1/payment_intents", "order:o1", intentForm("200"))
	if code != http.StatusBadRequest || !json.Valid(body) || !contains(body, "idempotency_error") {
		t.Errorf("other parameters: %d %s", code, body)
	}
	code, _, _ = s.post("/v1/payment_intents/"+id+"/cancel", "order:o1", url.Values{})
	if code != http.StatusBadRequest {
		t.Errorf("other path: %d", code)
	}
	if n := len(s.records().Intents); n != 1 {
		t.Errorf("%d intents, want 1", n)
	}
	// Through the client: Mismatch.
	_, err := s.gw.CreateIntent(t.Context(), payment.IntentRequest{Amount: 300, Currency: "eur", OrderID: "o1", IdempotencyKey: "order:o1"})
	if !errs.Is(errs.Mismatch, err) {
		t.Errorf("client: %v", err)
	}
	// A refused request stores nothing: the key is free for a good one.
	code, _, _ = s.post("/v1/payment_intents", "k2", url.Values{"amount": {"x"}, "currency": {"eur"}})
	if code != http.StatusBadRequest {
		t.Fatalf("bad amount: %d", code)
	}
	code, _, _ = s.post("/v1/payment_intents", "k2", intentForm("100"))
	if code != 200 {
		t.Errorf("after a refused request: %d", code)
	}
	// Keys survive a restart.
	s.restart()
	code, h, body = s.post("/v1/payment_intents", "order:o1", intentForm("100"))
	if code != 200 || idOf(t, body) != id || h.Get("Idempotent-Replayed") != "true" {
		t.Errorf("after a restart: %d %s", code, body)
	}
}

// TestIdempotencyKeyInFlight: of two requests with one key at once, the
// second to come is 409 (InFlight through the client) while the first
// runs (slowed down 3s); then the key answers as the first did.
func TestIdempotencyKeyInFlight(t *testing.T) {
	s := startSim(t, func(c *psp.Config) {
		c.Faults = psp.Faults{Slow: 1, SlowLatency: psp.Duration(3 * time.Second), Ops: []string{"create"}}
	})
	type answer struct {
		in  payment.Intent
		err error
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			in, err := s.gw.CreateIntent(t.Context(), payment.IntentRequest{Amount: 100, Currency: "eur", OrderID: "o1", IdempotencyKey: "k1"})
			answers <- answer{in, err}
		}()
	}
	a, b := <-answers, <-answers
	if !errs.Is(errs.InFlight, a.err) || b.err != nil {
		t.Fatalf("first answer %v, second %+v %v: want 409 in flight, then the intent", a.err, b.in, b.err)
	}
	in, err := s.gw.CreateIntent(t.Context(), payment.IntentRequest{Amount: 100, Currency: "eur", OrderID: "o1", IdempotencyKey: "k1"})
	if err != nil || in.ID != b.in.ID {
		t.Errorf("after: %+v %v", in, err)
	}
}

// TestIdempotencyStores5xx: an injected 500 is the key's answer; before
// the operation nothing happened, after it the effect is there.
func TestIdempotencyStores5xx(t *testing.T) {
	s := startSim(t)
	for _, when := range []string{"before", "after"} {
		f := psp.Faults{ErrorBefore: 1}
		if when == "after" {
			f = psp.Faults{ErrorAfter: 1}
		}
		if err := s.srv.Load().SetFaults(f); err != nil {
			t.Fatal(err)
		}
		key := "order:" + when
		_, err := s.gw.CreateIntent(t.Context(), payment.IntentRequest{Amount: 100, Currency: "eur", OrderID: when, IdempotencyKey: key})
		if !errs.Is(errs.Unavailable, err) {
			t.Fatalf("%s: %v", when, err)
		}
		_ = s.srv.Load().SetFaults(psp.Faults{})
		code, h, _ := s.post("/v1/payment_intents", key, url.Values{"amount": {"100"}, "currency": {"eur"}, "capture_method": {"automatic"}, "metadata[order_id]": {when}})
		if code != 500 || h.Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: the retry got %d, want the stored 500", when, code)
		}
	}
	var orders []string
	for _, in := range s.records().Intents {
		orders = append(orders, in.OrderID)
	}
	if len(orders) != 1 || orders[0] != "after" {
		t.Errorf("intents of orders %v, want only the one failed after the operation", orders)
	}
}

// TestIdempotencyKeysExpire: after 24 hours a key is free again.
func TestIdempotencyKeysExpire(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	s := startSim(t, func(c *psp.Config) {
		c.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	if code, _, _ := s.post("/v1/payment_intents", "k", intentForm("100")); code != 200 {
		t.Fatal(code)
	}
	mu.Lock()
	now = now.Add(23 * time.Hour)
	mu.Unlock()
	if code, _, _ := s.post("/v1/payment_intents", "k", intentForm("200")); code != http.StatusBadRequest {
		t.Errorf("at 23h: %d", code)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if code, _, _ := s.post("/v1/payment_intents", "k", intentForm("200")); code != 200 {
		t.Errorf("at 24h: %d", code)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }
