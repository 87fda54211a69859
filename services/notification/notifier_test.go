package notification_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	maildir "github.com/ticketing/ticketing/services/mail/dir"
	"github.com/ticketing/ticketing/services/notification"
	"github.com/ticketing/ticketing/services/notification/natskv"
	"github.com/ticketing/ticketing/services/pricing"
)

// lostFinish is a ledger whose Finish is lost, as when the notifier dies
// between the mail server's answer and its ledger write.
type lostFinish struct{ notification.Ledger }

func (lostFinish) Finish(context.Context, string) error { return nil }

// A confirmation is mailed once however often its event comes, in the
// recipient's language; after a lost ledger write it is mailed again with
// the same Message-ID, by which receivers drop the copy.
func TestNotifierConfirmsOnce(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	ledger, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	box, err := maildir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := &notification.Notifier{Ledger: ledger, Mailer: box, From: "Ticketing <no-reply@tickets.example>", Domain: "tickets.example"}
	c := notification.Confirmation{Order: "o_1", EventName: "Club Night", Places: []notification.Place{{Zone: "floor", Index: 1}},
		Total: pricing.Money{Amount: 5000, Currency: "USD"}, TicketsURL: "https://tickets.example/tickets"}
	de := notification.Recipient{Email: "grete@example.com", Name: "Grete", Locale: "de-AT"}
	for range 3 {
		if err := n.Confirm(ctx, "evt-1", de, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Confirm(ctx, "evt-2", notification.Recipient{Email: "ada@example.com"}, c); err != nil {
		t.Fatal(err)
	}
	list, err := box.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("%d messages (%v), want one per event", len(list), err)
	}
	for _, e := range list {
		m := e.Message
		switch m.To[0] {
		case de.Email:
			if m.Subject != "Ihre Tickets für Club Night" || !strings.Contains(m.Text, "Hallo Grete") ||
				m.ID != notification.Key("evt-1", "email", de.Email)+"@tickets.example" {
				t.Errorf("the German confirmation: %+v", m)
			}
		default:
			if m.Subject != "Your tickets for Club Night" || !strings.Contains(m.Text, "Hello ada@example.com") {
				t.Errorf("the English confirmation: %+v", m)
			}
		}
	}

	lossy := &notification.Notifier{Ledger: lostFinish{ledger}, Mailer: box, From: n.From, Domain: n.Domain}
	for range 2 {
		if err := lossy.Confirm(ctx, "evt-3", de, c); err != nil {
			t.Fatal(err)
		}
	}
	list, _ = box.List()
	ids := map[string]int{}
	for _, e := range list {
		ids[e.Message.ID]++
	}
	if len(list) != 4 || len(ids) != 3 || ids[notification.Key("evt-3", "email", de.Email)+"@tickets.example"] != 2 {
		t.Fatalf("after lost ledger writes: %d messages, ids %v", len(list), ids)
	}
}
