package psp_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/psp"
)

const hookSecret = "whsec_test"

func withHooks(urls []string, secrets ...string) func(*psp.Config) {
	return func(c *psp.Config) {
		c.WebhookURLs = urls
		c.WebhookSecrets = secrets
	}
}

// TestWebhooks: every change is announced, signed, and retried until the
// endpoint takes it.
func TestWebhooks(t *testing.T) {
	r := newReceiver(t, hookSecret)
	r.fail.Store(3)
	s := startSim(t, withHooks([]string{r.ts.URL}, hookSecret))
	ctx := t.Context()
	paid := s.pay("o1", 1000, false, "4242424242424242")
	declined := s.pay("o2", 1000, false, "4000000000000002")
	challenged := s.pay("o3", 1000, false, "4000000000003220")
	authorized := s.pay("o4", 1000, true, "4242424242424242")
	if _, err := s.gw.CancelIntent(ctx, authorized.ID, "cancel"); err != nil {
		t.Fatal(err)
	}
	refund, err := s.gw.Refund(ctx, payment.RefundRequest{IntentID: paid.ID, Amount: 400, IdempotencyKey: "r"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		paid.ID:       {"payment_intent.succeeded", "charge.refunded"},
		declined.ID:   {"payment_intent.payment_failed"},
		challenged.ID: {"payment_intent.requires_action"},
		authorized.ID: {"payment_intent.amount_capturable_updated", "payment_intent.canceled"},
	}
	eventually.Nil(t, 0, func() error {
		for id, types := range want {
			got := r.types(id)
			slices.Sort(got)
			w := slices.Sorted(slices.Values(types))
			if !slices.Equal(got, w) {
				return fmt.Errorf("events of %s: %v, want %v", id, got, w)
			}
		}
		return nil
	})
	for _, e := range r.got() {
		switch {
		case e.Type == "charge.refunded":
			if e.Refund == nil || e.Refund.ID != refund.ID || e.Refund.Amount != 400 || e.Refund.IntentID != paid.ID {
				t.Errorf("refund event %+v", e.Refund)
			}
		case e.Intent == nil:
			t.Errorf("%s without its intent", e.Type)
		case e.Type == "payment_intent.succeeded" && (e.Intent.AmountReceived != 1000 || e.Intent.OrderID != "o1"):
			t.Errorf("succeeded event %+v", e.Intent)
		case e.Type == "payment_intent.payment_failed" && (e.Intent.LastError == nil || e.Intent.LastError.DeclineCode != "generic_decline"):
			t.Errorf("failed event %+v", e.Intent)
		}
		if e.ID == "" || e.Created.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
	if r.fail.Load() >= 0 || r.badCount() != 0 {
		t.Errorf("failures left %d, bad signatures %d", r.fail.Load(), r.badCount())
	}
	eventually.True(t, 0, "every delivery acknowledged", func() bool { return s.records().PendingDeliveries == 0 })
}

// TestWebhookSecretRotation: during a rotation both secrets sign; an
// endpoint that knows either verifies.
func TestWebhookSecretRotation(t *testing.T) {
	old, cur, wrong := newReceiver(t, "whsec_old"), newReceiver(t, "whsec_new"), newReceiver(t, "whsec_wrong")
	s := startSim(t, withHooks([]string{old.ts.URL, cur.ts.URL, wrong.ts.URL}, "whsec_old", "whsec_new"))
	in := s.pay("o1", 100, false, "4242424242424242")
	eventually.True(t, 0, "both endpoints verified the event", func() bool {
		return len(old.types(in.ID)) == 1 && len(cur.types(in.ID)) == 1
	})
	eventually.True(t, 0, "the wrong secret refused the event", func() bool {
		return wrong.badCount() > 0 && len(wrong.got()) == 0
	})
}

// TestWebhookDuplicates: each event comes twice, with one id.
func TestWebhookDuplicates(t *testing.T) {
	r := newReceiver(t, hookSecret)
	s := startSim(t, withHooks([]string{r.ts.URL}, hookSecret), func(c *psp.Config) { c.Faults.WebhookDuplicate = 1 })
	in := s.pay("o1", 100, false, "4242424242424242")
	eventually.True(t, 0, "the event twice", func() bool { return len(r.types(in.ID)) == 2 })
	got := r.got()
	if got[0].ID != got[1].ID {
		t.Errorf("two ids: %s %s", got[0].ID, got[1].ID)
	}
}

// TestWebhookReorder: with one delivery at a time, each event waits for
// the next: the second payment is announced before the first.
func TestWebhookReorder(t *testing.T) {
	r := newReceiver(t, hookSecret)
	s := startSim(t, withHooks([]string{r.ts.URL}, hookSecret), func(c *psp.Config) {
		c.Webhook.Concurrency = 1
		c.Faults.WebhookReorder = 1
		c.Faults.WebhookReorderWindow = psp.Duration(time.Minute)
	})
	a := s.pay("a", 100, false, "4242424242424242")
	b := s.pay("b", 100, false, "4242424242424242")
	eventually.True(t, 0, "both events", func() bool { return len(r.got()) == 2 })
	got := r.got()
	if got[0].Intent.ID != b.ID || got[1].Intent.ID != a.ID {
		t.Errorf("order %s, %s; want b (%s) before a (%s)", got[0].Intent.ID, got[1].Intent.ID, b.ID, a.ID)
	}
	// A held event goes alone once its window passes.
	_ = s.srv.Load().SetFaults(psp.Faults{WebhookReorder: 1, WebhookReorderWindow: psp.Duration(50 * time.Millisecond)})
	c := s.pay("c", 100, false, "4242424242424242")
	eventually.True(t, 0, "the held event", func() bool { return len(r.types(c.ID)) == 1 })
}

// TestWebhookDelay: the first delivery waits.
func TestWebhookDelay(t *testing.T) {
	r := newReceiver(t, hookSecret)
	s := startSim(t, withHooks([]string{r.ts.URL}, hookSecret), func(c *psp.Config) {
		c.Faults.WebhookDelay = 1
		c.Faults.WebhookDelayBy = psp.Duration(400 * time.Millisecond)
	})
	start := time.Now()
	in := s.pay("o1", 100, false, "4242424242424242")
	eventually.True(t, 0, "the event", func() bool { return len(r.types(in.ID)) == 1 })
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("delivered after %v", took)
	}
}

// TestPendingWebhooksSurviveARestart: an event its endpoint has not taken
// is delivered by the next process; one it has taken is not.
func TestPendingWebhooksSurviveARestart(t *testing.T) {
	r := newReceiver(t, hookSecret)
	r.fail.Store(1 << 40)
	s := startSim(t, withHooks([]string{r.ts.URL}, hookSecret))
	in := s.pay("o1", 100, false, "4242424242424242")
	if n := s.records().PendingDeliveries; n != 1 {
		t.Fatalf("%d pending", n)
	}
	eventually.True(t, 0, "a failed attempt", func() bool { return r.fail.Load() < 1<<40-1 })
	s.restart()
	if n := s.records().PendingDeliveries; n != 1 {
		t.Fatalf("%d pending after the restart", n)
	}
	r.fail.Store(0)
	eventually.True(t, 0, "the event", func() bool { return len(r.types(in.ID)) == 1 })
	eventually.True(t, 0, "no delivery pending", func() bool { return s.records().PendingDeliveries == 0 })
	s.restart()
	if n := s.records().PendingDeliveries; n != 0 {
		t.Errorf("%d pending after the second restart", n)
	}
}
