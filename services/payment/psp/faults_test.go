package psp_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// failing returns which of n creates (keys k0…) the faults fail.
func failing(t *testing.T, f psp.Faults, n int) []int {
	s := startSim(t, func(c *psp.Config) { c.Faults = f })
	var out []int
	for i := range n {
		_, err := s.gw.CreateIntent(t.Context(), payment.IntentRequest{Amount: 100, Currency: "eur", IdempotencyKey: fmt.Sprint("k", i)})
		if errs.Is(errs.Unavailable, err) {
			out = append(out, i)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestFaultsAreDeterministic: the same seed fails the same requests;
// another seed others; the rate is about right.
func TestFaultsAreDeterministic(t *testing.T) {
	a := failing(t, psp.Faults{Seed: 7, ErrorBefore: 0.3}, 200)
	b := failing(t, psp.Faults{Seed: 7, ErrorBefore: 0.3}, 200)
	c := failing(t, psp.Faults{Seed: 8, ErrorBefore: 0.3}, 200)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("seed 7 failed %v, then %v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 7 and 8 failed the same requests %v", a)
	}
	if len(a) < 35 || len(a) > 85 {
		t.Errorf("%d of 200 failed at a rate of 0.3", len(a))
	}
	// Ops limits the faults.
	if got := failing(t, psp.Faults{ErrorBefore: 1, Ops: []string{"confirm"}}, 5); len(got) != 0 {
		t.Errorf("creates failed under a fault on confirm: %v", got)
	}
}

// TestTimeoutFault: the confirm happens, its answer never comes; the
// client gives up (Unavailable), and the retry with the same key gets
// the answer.
func TestTimeoutFault(t *testing.T) {
	s := startSim(t, func(c *psp.Config) { c.Faults = psp.Faults{Timeout: 1, Ops: []string{"confirm"}} })
	impatient, err := gateway.New(gateway.Config{BaseURL: s.ts.URL, SecretKey: testKey, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	in, err := impatient.CreateIntent(ctx, payment.IntentRequest{Amount: 100, Currency: "eur", IdempotencyKey: "c"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	req := payment.ConfirmRequest{Card: card("4242424242424242"), IdempotencyKey: "k"}
	if _, err := impatient.ConfirmIntent(ctx, in.ID, req); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("confirm: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the client waited %v", took)
	}
	got, err := impatient.GetIntent(ctx, in.ID)
	if err != nil || got.Status != payment.Succeeded {
		t.Fatalf("after the timeout: %+v %v", got, err)
	}
	_ = s.srv.Load().SetFaults(psp.Faults{})
	again, err := impatient.ConfirmIntent(ctx, in.ID, req)
	if err != nil || again.Status != payment.Succeeded || again.ChargeID != got.ChargeID {
		t.Errorf("retry: %+v %v", again, err)
	}
}

// TestErrorAfterFault: the effect is there, the answer lost.
func TestErrorAfterFault(t *testing.T) {
	s := startSim(t)
	in := s.pay("o1", 500, false, "4242424242424242")
	_ = s.srv.Load().SetFaults(psp.Faults{ErrorAfter: 1, Ops: []string{"refund"}})
	if _, err := s.gw.Refund(t.Context(), payment.RefundRequest{IntentID: in.ID, IdempotencyKey: "refund:o1"}); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("refund: %v", err)
	}
	if got, _ := s.gw.GetIntent(t.Context(), in.ID); got.AmountRefunded != 500 {
		t.Errorf("refunded %d", got.AmountRefunded)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	s := startSim(t)
	post := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, s.ts.URL+"/_sim/faults", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		code, _, b := s.do(req)
		return code, string(b)
	}
	code, body := post(`{"seed":3,"error_after":0.25,"timeout":0.1,"timeout_hold":"5s","ops":["confirm"],"webhook_duplicate":1}`)
	if code != 200 || !strings.Contains(body, `"timeout_hold":"5s"`) {
		t.Fatalf("%d %s", code, body)
	}
	f := s.srv.Load().Faults()
	if f.Seed != 3 || f.ErrorAfter != 0.25 || time.Duration(f.TimeoutHold) != 5*time.Second || f.WebhookDuplicate != 1 ||
		time.Duration(f.SlowLatency) != psp.DefaultSlowLatency {
		t.Errorf("faults %+v", f)
	}
	for _, bad := range []string{`{"error_before":2}`, `{"colour":1}`, `{"timeout_hold":5}`, `{"ops":["dance"]}`, `{} {}`, `[`} {
		if code, body := post(bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	code, b := s.get("/_sim/faults")
	if code != 200 || !strings.Contains(string(b), `"seed":3`) {
		t.Errorf("get: %d %s", code, b)
	}
}
