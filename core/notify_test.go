package core_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/mail/smtp"
	"github.com/ticketing/ticketing/services/orders"
)

// A fulfilled order's confirmation reaches the buyer through the SMTP
// server of the test command (Mailpit), once, in the buyer's language,
// with the order's tickets and the link to them.
func TestOrderConfirmationMailed(t *testing.T) {
	smtpAddr, mailpit := testservers.SMTPAddr(t), testservers.MailpitURL(t)
	s := startShopWith(t, 0, io.Discard, func(c *core.Config) {
		c.Identity.SMTP = smtp.Config{Addr: smtpAddr, TLS: smtp.TLSNone}
		c.Identity.Auth.BaseURL = "https://tickets.example"
	})
	ctx := context.Background()
	email := fmt.Sprintf("grete-%d@example.com", time.Now().UnixNano())
	const password = "a long and winding road to the gate"
	if _, err := s.core.Identity.Seed(ctx, auth.SeedAccount{Email: email, Password: password, DisplayName: "Grete", Locale: "de-AT"}); err != nil {
		t.Fatal(err)
	}
	in, err := s.core.Identity.PasswordSignIn(ctx, auth.SignInRequest{Email: email, Password: password})
	if err != nil || in.Tokens == nil {
		t.Fatalf("sign-in: %+v, %v", in, err)
	}
	buyer := in.Tokens.UserID
	o := s.mustOrder(buyer, s.hold(buyer, 2))
	if _, err := s.pay(buyer, o.ID, "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	s.waitState(buyer, o.ID, orders.Fulfilled)

	type message struct {
		ID        string
		MessageID string
		Subject   string
	}
	var got []message
	eventually.True(t, 30*time.Second, "the confirmation in the SMTP server", func() bool {
		var list struct{ Messages []message }
		resp, err := http.Get(mailpit + "/api/v1/search?query=" + url.QueryEscape(`to:"`+email+`"`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&list) != nil {
			return false
		}
		got = list.Messages
		return len(got) > 0
	})
	var text struct{ Text, HTML string }
	resp, err := http.Get(mailpit + "/api/v1/message/" + url.PathEscape(got[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&text); err != nil {
		t.Fatal(err)
	}
	if got[0].Subject != "Ihre Tickets für Shop Night" || !strings.Contains(text.Text, "Hallo Grete") ||
		!strings.Contains(text.Text, o.ID) || strings.Count(text.Text, "Stehplatz, floor") != 2 ||
		!strings.Contains(text.Text, "https://tickets.example/tickets") {
		t.Fatalf("the confirmation: %q\n%s", got[0].Subject, text.Text)
	}
	// Only one: nothing more arrives while the events are consumed.
	if len(got) != 1 {
		t.Fatalf("%d confirmations: %+v", len(got), got)
	}
}
