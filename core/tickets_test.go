package core_test

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/internal/cql/cqltest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/barcode"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/fulfillment"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
)

// A paid order's tickets are issued from its confirmation: one per seat
// and GA unit, the order fulfilled; its owner alone reads them, and each
// barcode, with its rotating code, verifies with what the event's gates
// download, while a stale code, a forged barcode and another event's gate
// refuse it.
func TestTicketsIssuedOnConfirmation(t *testing.T) {
	t.Run("jetstream", func(t *testing.T) { testTickets(t, startShop(t, 0)) })
	t.Run("cql", func(t *testing.T) {
		cc := cqltest.Config(t)
		testTickets(t, startShopWith(t, 0, io.Discard, func(c *core.Config) { c.Checkout.Tickets = &cc }))
	})
}

func testTickets(t *testing.T, s *shop) {
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

	// Online at the gate: the first scan admits, the same scan again is
	// the same verdict, a second one is refused with the first; a stale
	// code, a forged barcode, another event's gate are refused.
	tk := list.Tickets[0]
	secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(tk.Secret)
	scan := func(event, text, gate, nonce string, when time.Time) ticketsapi.Scan {
		t.Helper()
		v, err := tickets.Scan(ctx, ticketsapi.ScanRequest{Event: event, Barcode: text, Gate: gate, Nonce: nonce, At: when, Staff: []string{"org-shop"}})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		return v
	}
	now := time.Now()
	fresh, _ := barcode.Show(tk.Barcode, secret, now)
	// The ticket admits from a day before the night: not yet.
	if v := scan(shopEvent, fresh, "north-1", "n1", now); v.Admitted || v.Reason != barcode.ReasonNotYetValid {
		t.Fatalf("a month early: %+v", v)
	}
	if _, err := tickets.Scan(ctx, ticketsapi.ScanRequest{Event: shopEvent, Barcode: fresh, Gate: "g", Nonce: "n",
		At: now.Add(time.Hour), Staff: []string{"org-shop"}}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a scan dated ahead: %v", err)
	}
	if _, err := tickets.Scan(ctx, ticketsapi.ScanRequest{Event: shopEvent, Barcode: fresh, Gate: "g", Nonce: "n"}); !errs.Is(errs.NotFound, err) {
		t.Fatalf("a scan without the staff role: %v", err)
	}

	// Tonight's ticket, at the door.
	var h inventory.Hold
	eventually.Nil(t, 30*time.Second, func() error {
		var err error
		h, err = s.inv.Hold(ctx, catalog.PartitionKey(shopTonight, 0), inventory.HoldRequest{Holder: "u_tix", TTLSeconds: 600,
			IdempotencyKey: "u_tix:tonight", Fingerprint: "1", Zone: "floor", Quantity: 1})
		return err
	})
	tonight := s.mustOrder("u_tix", h)
	if _, err := s.pay("u_tix", tonight.ID, "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	s.waitState("u_tix", tonight.ID, orders.Fulfilled)
	tl, err := tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: "u_tix", Order: tonight.ID})
	if err != nil || len(tl.Tickets) != 1 {
		t.Fatalf("tonight's ticket: %+v, %v", tl, err)
	}
	tk = tl.Tickets[0]
	secret, _ = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(tk.Secret)
	fresh, _ = barcode.Show(tk.Barcode, secret, now)
	if v := scan(shopEvent, fresh, "north-1", "t0", now); v.Admitted || v.Reason != barcode.ReasonWrongEvent {
		t.Fatalf("at another event's gate: %+v", v)
	}
	stale, _ := barcode.Show(tk.Barcode, secret, now.Add(-2*time.Minute))
	if v := scan(shopTonight, stale, "north-1", "t0", now); v.Admitted || v.Reason != barcode.ReasonStaleCode {
		t.Fatalf("a stale code: %+v", v)
	}
	i := len(fresh) / 2
	forged := fresh[:i] + map[bool]string{true: "B", false: "A"}[fresh[i] == 'A'] + fresh[i+1:]
	if v := scan(shopTonight, forged, "north-1", "t0", now); v.Admitted || v.Reason == "" {
		t.Fatalf("a forged barcode: %+v", v)
	}
	first := scan(shopTonight, fresh, "north-1", "t1", now)
	if !first.Admitted || first.Ticket.ID != tk.ID || first.CheckIn.Gate != "north-1" || first.Ticket.Barcode != "" {
		t.Fatalf("at the door: %+v", first)
	}
	if v := scan(shopTonight, fresh, "north-1", "t1", now); !v.Admitted || *v.CheckIn != *first.CheckIn {
		t.Fatalf("the same scan again: %+v", v)
	}
	again := scan(shopTonight, fresh, "south-2", "t2", now)
	if again.Admitted || again.Reason != fulfillment.ReasonCheckedIn || *again.CheckIn != *first.CheckIn {
		t.Fatalf("a second scan: %+v", again)
	}

	// A refund takes the tickets back: the gates' list has them, a scan
	// is refused.
	if _, err := s.orders.Refund(ctx, ordersapi.RefundRequest{ID: o.ID, Reason: "event_moved", Admin: true}); err != nil {
		t.Fatal(err)
	}
	s.waitState("u_tix", o.ID, orders.Refunded)
	eventually.True(t, 10*time.Second, "the refunded order's tickets on the gates' list", func() bool {
		g, err := tickets.Gate(ctx, ticketsapi.GateRequest{Event: shopEvent, Admin: true})
		if err != nil {
			return false
		}
		var revoked barcode.RevocationList
		if err := json.Unmarshal(g.Revoked, &revoked); err != nil {
			t.Fatal(err)
		}
		for _, tk := range list.Tickets {
			if !revoked.Revoked(tk.ID, barcode.DeviceBinding{}) {
				return false
			}
		}
		return revoked.Len() == len(list.Tickets)
	})
	if _, err := s.orders.Refund(ctx, ordersapi.RefundRequest{ID: tonight.ID, Reason: "event_moved", Admin: true}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "tonight's ticket revoked at the door", func() bool {
		v := scan(shopTonight, fresh, "south-2", fmt.Sprintf("t3-%d", time.Now().UnixNano()), time.Now())
		return !v.Admitted && v.Reason == barcode.ReasonRevoked
	})
}
