package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// TestPSPProcess runs `ticketing psp` as an operator would (the secret key
// from TICKETING_SECRET_KEY, two webhook endpoints), pays through the
// gateway client, kills the process with SIGKILL, starts it again on the
// same directory, and finds every acknowledged payment and refund there
// and every event delivered, signed.
func TestPSPProcess(t *testing.T) {
	var mu sync.Mutex
	events := map[string]int{} // event id → deliveries verified
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ev, err := gateway.VerifyWebhook(body, r.Header.Get("Stripe-Signature"), "whsec_cmd", gateway.DefaultWebhookTolerance, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events[ev.ID+" "+r.URL.Path]++
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	dir := t.TempDir()
	addr, ops := freeAddr(t), freeAddr(t)
	args := []string{"psp", "--addr", addr, "--ops", ops, "--data", dir, "--log-format", "text",
		"--webhook-url", hook.URL + "/a", "--webhook-url", hook.URL + "/b", "--webhook-secret", "whsec_cmd", "--webhook-retry-initial", "50ms"}
	env := []string{"TICKETING_SECRET_KEY=sk_test_cmd"}
	p := startProc(t, "psp", env, args...)
	waitHealthy := func() {
		eventually.Nil(t, 30*time.Second, func() error {
			resp, err := http.Get("http://" + ops + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("readyz %d", resp.StatusCode)
			}
			return nil
		})
	}
	waitHealthy()
	gw, err := gateway.New(gateway.Config{BaseURL: "http://" + addr, SecretKey: "sk_test_cmd"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	ctx := t.Context()
	type paid struct{ intent, refund string }
	var wg sync.WaitGroup
	acks := make([]paid, 40)
	for i := range acks {
		wg.Go(func() {
			order := fmt.Sprint("o", i)
			in, err := gw.CreateIntent(ctx, payment.IntentRequest{Amount: 2000, Currency: "eur", OrderID: order, IdempotencyKey: "order:" + order})
			if err == nil {
				in, err = gw.ConfirmIntent(ctx, in.ID, payment.ConfirmRequest{Card: payment.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2040, CVC: "123"}, IdempotencyKey: "confirm:" + order})
			}
			if err != nil || in.Status != payment.Succeeded {
				t.Errorf("%s: %+v %v", order, in, err)
				return
			}
			rf, err := gw.Refund(ctx, payment.RefundRequest{IntentID: in.ID, Amount: 500, IdempotencyKey: "refund:" + order})
			if err != nil {
				t.Errorf("%s: refund: %v", order, err)
				return
			}
			acks[i] = paid{in.ID, rf.ID}
		})
	}
	wg.Wait()
	p.kill9()
	p.start()
	waitHealthy()

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/_sim/records", nil)
	req.Header.Set("Authorization", "Bearer sk_test_cmd")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rec psp.Records
	err = json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	intents := map[string]psp.RecordIntent{}
	for _, in := range rec.Intents {
		intents[in.ID] = in
	}
	refunds := map[string]psp.Refund{}
	for _, rf := range rec.Refunds {
		refunds[rf.ID] = rf
	}
	if len(rec.Intents) != len(acks) || len(rec.Refunds) != len(acks) {
		t.Errorf("%d intents and %d refunds, want %d of each", len(rec.Intents), len(rec.Refunds), len(acks))
	}
	for i, a := range acks {
		in, rf := intents[a.intent], refunds[a.refund]
		if in.Status != psp.StatusSucceeded || in.AmountReceived != 2000 || in.AmountRefunded != 500 || in.OrderID != fmt.Sprint("o", i) || rf.PaymentIntent != a.intent {
			t.Errorf("order o%d: intent %+v, refund %+v", i, in, rf)
		}
	}
	// Two events an order (succeeded, charge.refunded) at each of two
	// endpoints: 2 × 2 × 40, some more than once after the kill.
	eventually.True(t, 30*time.Second, "every event delivered to both endpoints", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 2*2*len(acks)
	})
	resp, err = http.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `ticketing_psp_webhook_deliveries_total`) || !strings.Contains(string(b), "ticketing_psp_journal_syncs_total") {
		t.Errorf("metrics:\n%s", b)
	}
	if strings.Contains(p.out.String(), "4242424242424242") {
		t.Error("the log holds a card number")
	}
}
