package natskv_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fulfillment"
	"github.com/ticketing/ticketing/services/fulfillment/fulfillmenttest"
	"github.com/ticketing/ticketing/services/fulfillment/natskv"
)

// TestContract runs the suite on one bucket, shared by the subtests as it
// allows.
func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	s, err := natskv.Open(context.Background(), js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fulfillmenttest.Run(t, func(t *testing.T) fulfillment.Store { return s })
}

func TestConfig(t *testing.T) {
	c := natskv.Config{Replicas: 2}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("replicas 2: %v", err)
	}
	c = natskv.Config{}
	c.Defaults()
	if c.Bucket != "fulfillment-tickets" || c.Validate() != nil || c.KeyValueConfig().Storage != jetstream.FileStorage {
		t.Fatalf("defaults: %+v", c)
	}
}

// An issue that died after taking the slot, before writing its pointers:
// the ticket is not yet found by id or order; the retry completes it, and
// a competing issue's conflict repairs it too.
func TestDiedAfterSlot(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s, err := natskv.Open(ctx, js, natskv.Config{Bucket: "tickets-died"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "tickets-died")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := fulfillment.Normalize(fulfillment.Ticket{EventID: "ev-1", HoldID: "h1", OrderID: "o1", Seat: "a-1-1", Holder: "u_1", KeyID: "k1", ValidFrom: time.Unix(1e9, 0), ValidUntil: time.Unix(2e9, 0), Device: "0123456789abcdef",
		TokenHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tk)
	if _, err := kv.Create(ctx, "slot.ev-1."+tk.Slot(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByID(ctx, tk.ID); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID before repair: %v", err)
	}
	// Another order's issue of the slot loses, and repairs the winner.
	other := tk
	other.ID, other.OrderID = fulfillment.NewID(), "o2"
	if got, err := s.Issue(ctx, other); !errs.Is(errs.Conflict, err) || got.ID != tk.ID {
		t.Fatalf("competing issue: %+v, %v", got, err)
	}
	got, err := s.ByID(ctx, tk.ID)
	if err != nil || got != tk {
		t.Fatalf("ByID after repair: %+v, %v", got, err)
	}
	list, err := s.ByOrder(ctx, "o1")
	if err != nil || len(list) != 1 {
		t.Fatalf("ByOrder after repair: %+v, %v", list, err)
	}
	// And the retry of the winner itself succeeds.
	if got, err := s.Issue(ctx, tk); err != nil || got != tk {
		t.Fatalf("retry: %+v, %v", got, err)
	}
}

// A pointer whose slot holds another ticket is not a ticket.
func TestStalePointerIgnored(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s, err := natskv.Open(ctx, js, natskv.Config{Bucket: "tickets-stale"})
	if err != nil {
		t.Fatal(err)
	}
	kv, _ := js.KeyValue(ctx, "tickets-stale")
	won, err := s.Issue(ctx, fulfillment.Ticket{EventID: "ev-1", HoldID: "h1", OrderID: "o1", Seat: "a-1-1", Holder: "u_1", KeyID: "k1", ValidFrom: time.Unix(1e9, 0), ValidUntil: time.Unix(2e9, 0), Device: "0123456789abcdef",
		TokenHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})
	if err != nil {
		t.Fatal(err)
	}
	ptr := []byte(`{"event_id":"ev-1","slot":"` + won.Slot() + `"}`)
	if _, err := kv.Put(ctx, "ticket.t_ghost", ptr); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "order.o9.t_ghost", ptr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByID(ctx, "t_ghost"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID of a ghost: %v", err)
	}
	if list, err := s.ByOrder(ctx, "o9"); err != nil || len(list) != 0 {
		t.Fatalf("ByOrder of a ghost's order: %+v, %v", list, err)
	}
}
