package fulfillment_test

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fulfillment"
	"github.com/ticketing/ticketing/services/fulfillment/natskv"
)

// keySigner signs a ticket's id, event, slot and holder with one key.
type keySigner struct {
	kid string
	key ed25519.PrivateKey
}

func (k keySigner) Sign(t fulfillment.Ticket) (string, []byte, error) {
	return k.kid, ed25519.Sign(k.key, []byte(t.ID+"|"+t.EventID+"|"+t.Slot()+"|"+t.Holder)), nil
}

func newSigner(t *testing.T, kid string) keySigner {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return keySigner{kid, priv}
}

func sale(order string) fulfillment.Sale {
	return fulfillment.Sale{Order: order, Account: "u_buyer", Event: "ev-1",
		ValidFrom: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), Holds: []fulfillment.SoldHold{
			{ID: "h-seats-" + order, Seats: []string{"a-1-1", "a-1-2"}},
			{ID: "h-ga-" + order, Zone: "floor", Quantity: 3},
		}}
}

func TestSaleTickets(t *testing.T) {
	got := sale("o1").Tickets()
	if len(got) != 5 {
		t.Fatalf("%d tickets, want 5", len(got))
	}
	seen := map[string]bool{}
	for _, tk := range got {
		if seen[tk.ID] || seen[tk.Slot()] || tk.Holder != "u_buyer" || tk.OrderID != "o1" {
			t.Fatalf("ticket %+v: repeated or not the sale's", tk)
		}
		seen[tk.ID], seen[tk.Slot()] = true, true
	}
	if again := sale("o1").Tickets(); again[4].ID != got[4].ID {
		t.Fatalf("ids differ between calls: %s, %s", again[4].ID, got[4].ID)
	}
}

// Issuing a sale again, concurrently, after its key was rotated: the same
// tickets, each once; another order on the same seats is refused.
func TestIssuerExactlyOnce(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	is := &fulfillment.Issuer{Store: store, Signer: newSigner(t, "k1")}
	first, err := is.Issue(ctx, sale("o1"))
	if err != nil || len(first) != 5 {
		t.Fatalf("first issue: %d tickets, %v", len(first), err)
	}
	rotated := &fulfillment.Issuer{Store: store, Signer: newSigner(t, "k2")}
	var wg sync.WaitGroup
	results := make([][]fulfillment.Ticket, 8)
	errors := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i], errors[i] = rotated.Issue(ctx, sale("o1")) })
	}
	wg.Wait()
	for i, got := range results {
		if errors[i] != nil {
			t.Fatalf("issue %d: %v", i, errors[i])
		}
		for j := range got {
			if got[j] != first[j] {
				t.Fatalf("issue %d, ticket %d: %+v, want %+v", i, j, got[j], first[j])
			}
		}
	}
	list, err := store.ByOrder(ctx, "o1")
	if err != nil || len(list) != 5 {
		t.Fatalf("ByOrder: %d tickets, %v", len(list), err)
	}
	other := sale("o2")
	other.Holds = other.Holds[:1]
	other.Holds[0].ID = "h-seats-o1" // the same hold, sold to another order
	if _, err := is.Issue(ctx, other); !errs.Is(errs.Conflict, err) {
		t.Fatalf("another order's ticket on an issued slot: %v", err)
	}
	if _, err := is.Issue(ctx, fulfillment.Sale{Order: "o3", Account: "u_buyer", Event: "ev-1"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a sale without tickets: %v", err)
	}
}
