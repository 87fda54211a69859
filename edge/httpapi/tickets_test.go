package httpapi

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/services/fulfillment"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	fulfillmentkv "github.com/ticketing/ticketing/services/fulfillment/natskv"
)

// ticketsService is the real tickets service on a test node, its barcodes
// signed by one key (the core's signer is tested in core).
type ticketsService struct {
	client *ticketsapi.Client
	issuer *fulfillment.Issuer
}

type testSigner ed25519.PrivateKey

func (k testSigner) Sign(t fulfillment.Ticket) (string, []byte, error) {
	return "k1", ed25519.Sign(ed25519.PrivateKey(k), []byte(t.ID+"|"+t.Holder)), nil
}

func newTicketsService(tb testing.TB, nc *nats.Conn, js jetstream.JetStream, o *fakeOrders) *ticketsService {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	store, err := fulfillmentkv.Open(ctx, js, fulfillmentkv.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	signer := testSigner(priv)
	var admitted atomic.Pointer[fulfillment.CheckIn]
	svc, err := ticketsapi.Serve(nc, ticketsapi.Server{Store: store,
		Show: func(t fulfillment.Ticket) (fulfillment.View, error) {
			_, token, err := signer.Sign(t)
			return fulfillment.View{ID: t.ID, Order: t.OrderID, Event: t.EventID, Seat: t.Seat, Zone: t.Zone, Index: t.Index,
				IssuedAt: t.IssuedAt, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil,
				Barcode: base64.RawURLEncoding.EncodeToString(token), Secret: "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U"}, err
		},
		Owner: func(ctx context.Context, order string) (string, error) {
			v, err := o.checkout.Saga.Store.Get(ctx, order)
			return v.Account, err
		},
		Organizer: func(string) (string, error) { return "", nil },
		// Scan admits the barcode "good" once, by nonce, and refuses
		// anything else as the core's gate keeper would.
		Scan: func(_ context.Context, r ticketsapi.ScanRequest) (ticketsapi.Scan, error) {
			first := fulfillment.CheckIn{TicketID: "t_1", EventID: r.Event, Gate: r.Gate, Nonce: r.Nonce, At: time.Now().UTC()}
			switch {
			case r.Barcode != "good":
				return ticketsapi.Scan{Reason: "bad_signature", Message: "forged"}, nil
			case !admitted.CompareAndSwap(nil, &first) && admitted.Load().Nonce != r.Nonce:
				return ticketsapi.Scan{Reason: fulfillment.ReasonCheckedIn, CheckIn: admitted.Load()}, nil
			}
			return ticketsapi.Scan{Admitted: true, CheckIn: admitted.Load()}, nil
		},
		Gate: func(_ context.Context, event string) (ticketsapi.Gate, error) {
			return ticketsapi.Gate{Event: event, Keys: []byte(`{"keys":[]}`), RotationSecret: []byte("0123456789abcdef0123456789abcdef"),
				Revoked: []byte(`{"sequence":1,"tickets":[{"ticket":"t_1"}]}`)}, nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = svc.Stop() })
	return &ticketsService{client: &ticketsapi.Client{NC: nc}, issuer: &fulfillment.Issuer{Store: store, Signer: signer}}
}

// An order's tickets: none before they are issued, then each of its
// seats'; another account's order is 404.
func TestOrderTickets(t *testing.T) {
	e := newOrdersEnv(t)
	me := e.account(t, buyer)
	h := holdAs(t, e, buyer, "h0", `{"seats":["101-A-1","101-A-2"]}`)
	o := wantOrder(t, placeOrder(t, e, buyer, "o1", cartOf(h)), 201)
	path := orderPath(o.ID, "/tickets")
	read := func() ticketsapi.Tickets {
		t.Helper()
		r := e.callAs(t, buyer, "GET", path, "")
		if r.status != 200 {
			t.Fatal(r)
		}
		return decode[ticketsapi.Tickets](t, r)
	}
	if got := read(); len(got.Tickets) != 0 {
		t.Fatalf("tickets before any was issued: %+v", got)
	}
	sale := fulfillment.Sale{Order: o.ID, Account: me.ID, Event: o.Event,
		ValidFrom: time.Now(), ValidUntil: time.Now().Add(time.Hour)}
	for _, oh := range o.Holds {
		sale.Holds = append(sale.Holds, fulfillment.SoldHold{ID: oh.ID, Seats: oh.Seats})
	}
	if _, err := e.tickets.issuer.Issue(context.Background(), sale); err != nil {
		t.Fatal(err)
	}
	got := read()
	if len(got.Tickets) != 2 || got.Tickets[0].Order != o.ID || got.Tickets[0].Barcode == "" {
		t.Fatalf("tickets: %+v", got)
	}
	// The caller's tickets: the buyer's two, no one else's.
	r := e.callAs(t, buyer, "GET", "/v1/me/tickets", "")
	if mine := decode[ticketsapi.Tickets](t, r); r.status != 200 || len(mine.Tickets) != 2 || mine.Tickets[0].Seat != "101-A-1" {
		t.Fatalf("my tickets: %s", r)
	}
	r = e.callAs(t, otherBuyer, "GET", "/v1/me/tickets", "")
	if theirs := decode[ticketsapi.Tickets](t, r); r.status != 200 || len(theirs.Tickets) != 0 {
		t.Fatalf("another buyer's tickets: %s", r)
	}
	for _, r := range []result{
		e.callAs(t, otherBuyer, "GET", path, ""),
		e.callAs(t, buyer, "GET", orderPath("o_nosuchorder", "/tickets"), ""),
	} {
		if r.status != 404 {
			t.Fatalf("got %s, want 404", r)
		}
	}
}

// An event's gate material: an admin's (or its organizer's staff), no
// buyer's.
func TestEventGate(t *testing.T) {
	e := newOrdersEnv(t)
	path := "/v1/admin/events/arena-finals/gate"
	if r := e.callAs(t, buyer, "GET", path, ""); r.status != 403 {
		t.Fatalf("a buyer: %s", r)
	}
	r := e.callAs(t, adminUser, "GET", path, "")
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("an admin: %s", r)
	}
	if g := decode[ticketsapi.Gate](t, r); g.Event != "arena-finals" || len(g.RotationSecret) != 32 {
		t.Fatalf("gate %+v", g)
	}
	if r := e.callAs(t, adminUser, "GET", "/v1/admin/events/nope/gate", ""); r.status != 404 {
		t.Fatalf("no such event: %s", r)
	}
}

// A scan at an event's gate: staff only; the verdict is the answer, the
// same scan again gets it again, a second scan of the ticket is refused
// with the first; a bad body is 400.
func TestScanTicket(t *testing.T) {
	e := newOrdersEnv(t)
	path := "/v1/admin/events/arena-finals/scans"
	if r := e.callAs(t, buyer, "POST", path, `{"barcode":"good","gate":"north-1","nonce":"n1"}`); r.status != 403 {
		t.Fatalf("a buyer scans: %s", r)
	}
	scan := func(body string) ticketsapi.Scan {
		t.Helper()
		r := e.callAs(t, adminUser, "POST", path, body)
		if r.status != 200 {
			t.Fatal(r)
		}
		return decode[ticketsapi.Scan](t, r)
	}
	if v := scan(`{"barcode":"good","gate":"north-1","nonce":"n1"}`); !v.Admitted || v.CheckIn.Gate != "north-1" {
		t.Fatalf("first scan: %+v", v)
	}
	if v := scan(`{"barcode":"good","gate":"north-1","nonce":"n1","scanned_at":"2026-06-12T19:31:02.123Z"}`); !v.Admitted {
		t.Fatalf("the same scan again: %+v", v)
	}
	if v := scan(`{"barcode":"good","gate":"south-2","nonce":"n2"}`); v.Admitted || v.Reason != fulfillment.ReasonCheckedIn || v.CheckIn.Gate != "north-1" {
		t.Fatalf("a second scan: %+v", v)
	}
	if v := scan(`{"barcode":"forged","gate":"south-2","nonce":"n3"}`); v.Admitted || v.Reason != "bad_signature" {
		t.Fatalf("a forged barcode: %+v", v)
	}
	for _, body := range []string{`{"barcode":"good","gate":"north 1","nonce":"n4"}`, `{"barcode":"good","gate":"g"}`, `{}`, `[`} {
		if r := e.callAs(t, adminUser, "POST", path, body); r.status != 400 {
			t.Fatalf("%s: %s", body, r)
		}
	}
	if r := e.callAs(t, adminUser, "POST", "/v1/admin/events/nope/scans", `{"barcode":"good","gate":"g","nonce":"n5"}`); r.status != 404 {
		t.Fatalf("no such event: %s", r)
	}
}
