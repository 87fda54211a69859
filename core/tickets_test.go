package core_test

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/orders"
)

// A paid order's tickets are issued from its confirmation: one per seat
// and GA unit, the order fulfilled; its owner alone reads them, and each
// barcode, with its rotating code, verifies with what the event's gates
// download, while a stale code, a forged barcode and another event's gate
// refuse it.
func TestTicketsIssuedOnConfirmation(t *testing.T) {
	s := startShop(t, 0)
	ctx := context.Background()
	ga, seat := s.hold("u_tix", 2), s.hold("u_tix", 0, "s-A-5")
	o := s.mustOrder("u_tix", ga, seat)
	if _, err := s.pay("u_tix", o.ID, "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	done := s.waitState("u_tix", o.ID, orders.Fulfilled)
	if done.History[len(done.History)-1].Cause != "tickets_issued" {
		t.Fatalf("history: %+v", done.History)
	}
	tickets := &ticketsapi.Client{NC: s.core.NC}
	list, err := tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: "u_tix", Order: o.ID})
	if err != nil || len(list.Tickets) != 3 {
		t.Fatalf("the order's tickets: %+v, %v", list, err)
	}
	var places []string
	for _, v := range list.Tickets {
		places = append(places, v.Seat+v.Zone)
	}
	slices.Sort(places)
	if !slices.Equal(places, []string{"floor", "floor", "s-A-5"}) {
		t.Fatalf("places %v", places)
	}
	for _, who := range []string{"u_mallory", ""} {
		if _, err := tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: who, Order: o.ID}); !errs.Is(errs.NotFound, err) {
			t.Fatalf("%q reads the tickets: %v", who, err)
		}
	}
	if _, err := tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: "u_tix", Order: "o_none"}); !errs.Is(errs.NotFound, err) {
		t.Fatalf("no such order: %v", err)
	}
	if mine, err := tickets.Mine(ctx, ticketsapi.AccountRequest{Account: "u_tix"}); err != nil || len(mine.Tickets) != 3 {
		t.Fatalf("the holder's tickets: %d, %v", len(mine.Tickets), err)
	}
	if theirs, err := tickets.Mine(ctx, ticketsapi.AccountRequest{Account: "u_mallory"}); err != nil || len(theirs.Tickets) != 0 {
		t.Fatalf("another account's tickets: %d, %v", len(theirs.Tickets), err)
	}

	// The gate's download: staff of the organizer or an admin only.
	if _, err := tickets.Gate(ctx, ticketsapi.GateRequest{Event: shopEvent, Staff: []string{"org-other"}}); !errs.Is(errs.NotFound, err) {
		t.Fatalf("another organizer's staff: %v", err)
	}
	gate, err := tickets.Gate(ctx, ticketsapi.GateRequest{Event: shopEvent, Staff: []string{"org-shop"}})
	if err != nil {
		t.Fatal(err)
	}
	var keys barcode.KeySet
	if err := json.Unmarshal(gate.Keys, &keys); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(30 * 24 * time.Hour) // the night
	v := barcode.Verifier{Keys: keys, Event: shopEvent, RotationSecret: gate.RotationSecret, Now: func() time.Time { return at }}
	for _, tk := range list.Tickets {
		secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(tk.Secret)
		if err != nil {
			t.Fatal(err)
		}
		shown, err := barcode.Show(tk.Barcode, secret, at)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(shown)
		if err != nil || c.TicketID != tk.ID || c.Holder != "u_tix" || c.EventID != shopEvent {
			t.Fatalf("ticket %s: %+v, %v", tk.ID, c, err)
		}
		stale, _ := barcode.Show(tk.Barcode, secret, at.Add(-2*time.Minute))
		if _, err := v.Verify(stale); errs.ReasonOf(err) != barcode.ReasonStaleCode {
			t.Fatalf("a screenshot two minutes old: %v", err)
		}
		forged := []byte(shown)
		forged[10] ^= 'A' ^ 'B'
		if forged[10] == shown[10] {
			forged[10] = 'C'
		}
		if _, err := v.Verify(string(forged)); err == nil {
			t.Fatal("a forged barcode verifies")
		}
		other := v
		other.Event = "another-night"
		if _, err := other.Verify(shown); err == nil {
			t.Fatal("another event's gate admits it")
		}
	}
}
