// Package mailtest is the contract suite of mail.Mailer: every
// implementation runs it (services/mail/dir against its directory,
// services/mail/smtp against Mailpit), so that they behave the same to the
// code above them.
package mailtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/mail"
)

// Received is a delivered message as the receiving side reads it back.
type Received struct {
	ID      string   // Message-ID without angle brackets
	From    string   // the address proper
	To      []string // the addresses proper, in header order
	Subject string
	Text    string // line ends as LF
	HTML    string // line ends as LF; "" when there is none
}

// Inbox returns every message delivered so far that has addr among its To
// addresses. Each subtest of Run sends to addresses of its own, so an
// inbox shared with other tests (one Mailpit for every package) is fine.
type Inbox func(t *testing.T, addr string) []Received

// Run runs the suite. newMailer returns the mailer under test and the
// Inbox that reads what it delivered; it is called once per subtest, and
// the mailer is used from several goroutines at once.
func Run(t *testing.T, newMailer func(t *testing.T) (mail.Mailer, Inbox)) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, mail.Mailer, Inbox)
	}{
		{"Delivers", testDelivers},
		{"SetsIDAndDate", testSetsIDAndDate},
		{"KeepsUTF8AndBody", testKeepsUTF8AndBody},
		{"MultipleRecipients", testMultipleRecipients},
		{"RefusesInvalid", testRefusesInvalid},
		{"CancelledContext", testCancelledContext},
		{"Concurrent", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, inbox := newMailer(t)
			tc.f(t, m, inbox)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// rcpt returns an address no other test uses.
func rcpt(t *testing.T) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "r" + hex.EncodeToString(b[:]) + "@example.test"
}

func message(to ...string) mail.Message {
	return mail.Message{
		From:    "Ticketing <tickets@example.test>",
		To:      to,
		Subject: "Your tickets",
		Text:    "Hello,\n\nyour tickets are attached.\n",
	}
}

// await waits until addr has n messages and returns them; it fails the test
// when more arrive.
func await(t *testing.T, inbox Inbox, addr string, n int) []Received {
	t.Helper()
	var got []Received
	eventually.Nil(t, 20*time.Second, func() error {
		got = inbox(t, addr)
		if len(got) < n {
			return fmt.Errorf("%s has %d message(s), want %d", addr, len(got), n)
		}
		return nil
	})
	if len(got) > n {
		t.Fatalf("%s has %d messages, want %d: %+v", addr, len(got), n, got)
	}
	return got
}

// body is how a body must arrive: line ends as LF, and no trailing line
// ends (transports may add one).
func body(s string) string {
	return strings.TrimRight(mail.NormalizeNewlines(s), "\n")
}

func testDelivers(t *testing.T, m mail.Mailer, inbox Inbox) {
	to := rcpt(t)
	msg := message(to)
	msg.ID = mail.NewID("example.test")
	if err := m.Send(ctx(t), msg); err != nil {
		t.Fatal(err)
	}
	got := await(t, inbox, to, 1)[0]
	if got.ID != msg.ID || got.From != "tickets@example.test" || !slices.Equal(got.To, []string{to}) ||
		got.Subject != msg.Subject || body(got.Text) != body(msg.Text) || got.HTML != "" {
		t.Fatalf("received %+v\nsent %+v", got, msg)
	}
}

func testSetsIDAndDate(t *testing.T, m mail.Mailer, inbox Inbox) {
	to := rcpt(t)
	if err := m.Send(ctx(t), message(to)); err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx(t), message(to)); err != nil {
		t.Fatal(err)
	}
	got := await(t, inbox, to, 2)
	for _, r := range got {
		if !strings.HasSuffix(r.ID, "@example.test") {
			t.Errorf("Message-ID %q, want one at the sender's domain", r.ID)
		}
	}
	if got[0].ID == got[1].ID {
		t.Errorf("two messages got the same Message-ID %q", got[0].ID)
	}
}

func testKeepsUTF8AndBody(t *testing.T, m mail.Mailer, inbox Inbox) {
	to := rcpt(t)
	long := strings.Repeat("0123456789 abcdefghij ", 60) // one line of 1320 bytes
	msg := message("Åsa Lövgren <" + to + ">")
	msg.From = "Zoë’s Tickets <tickets@example.test>"
	msg.Subject = "Grüße — 🎫 日本語のチケット =?utf-8?q?literal?= " + strings.Repeat("é", 40)
	msg.Text = "Grüße,\r\n.\n..\nFrom here on\ntrailing spaces   \n\ttabbed\n" + long + "\n" + strings.Repeat("ü", 600) + "\n=3D and = stay\n"
	msg.HTML = "<p>Grüße <b>🎫</b></p>\n<p>" + long + "</p>\n"
	if err := m.Send(ctx(t), msg); err != nil {
		t.Fatal(err)
	}
	got := await(t, inbox, to, 1)[0]
	if got.Subject != msg.Subject {
		t.Errorf("subject %q, want %q", got.Subject, msg.Subject)
	}
	if body(got.Text) != body(msg.Text) {
		t.Errorf("text\n%q\nwant\n%q", got.Text, msg.Text)
	}
	if body(got.HTML) != body(msg.HTML) {
		t.Errorf("html\n%q\nwant\n%q", got.HTML, msg.HTML)
	}
	if !slices.Equal(got.To, []string{to}) || got.From != "tickets@example.test" {
		t.Errorf("from %q to %q", got.From, got.To)
	}
}

func testMultipleRecipients(t *testing.T, m mail.Mailer, inbox Inbox) {
	a, b, c := rcpt(t), rcpt(t), rcpt(t)
	msg := message(a, "Bé <"+b+">", `"C, the third" <`+c+">")
	if err := m.Send(ctx(t), msg); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{a, b, c} {
		got := await(t, inbox, addr, 1)[0]
		if !slices.Equal(got.To, []string{a, b, c}) {
			t.Errorf("%s received To %q, want %q", addr, got.To, []string{a, b, c})
		}
	}
}

func testRefusesInvalid(t *testing.T, m mail.Mailer, inbox Inbox) {
	to := rcpt(t)
	for _, tc := range []struct {
		name string
		f    func(*mail.Message)
		kind errs.Kind
	}{
		{"header injection in subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: " + rcpt(t) }, errs.Invalid},
		{"header injection in from", func(m *mail.Message) { m.From = "tickets@example.test\r\nBcc: " + rcpt(t) }, errs.Invalid},
		{"header injection in to", func(m *mail.Message) { m.To = append(m.To, rcpt(t)+"\nBcc: "+rcpt(t)) }, errs.Invalid},
		{"header injection in id", func(m *mail.Message) { m.ID = "a@example.test>\r\nBcc: <" + rcpt(t) }, errs.Invalid},
		{"bad sender", func(m *mail.Message) { m.From = "not an address" }, errs.Invalid},
		{"bad recipient", func(m *mail.Message) { m.To = append(m.To, "nobody") }, errs.Invalid},
		{"no text", func(m *mail.Message) { m.Text = "" }, errs.Invalid},
		{"too many recipients", func(m *mail.Message) {
			for len(m.To) <= mail.MaxRecipients {
				m.To = append(m.To, rcpt(t))
			}
		}, errs.TooLarge},
		{"body too large", func(m *mail.Message) { m.Text = strings.Repeat("x", mail.MaxBodyLen+1) }, errs.TooLarge},
	} {
		msg := message(to)
		tc.f(&msg)
		err := m.Send(ctx(t), msg)
		if !errs.Is(tc.kind, err) {
			t.Errorf("%s: Send = %v (kind %v), want kind %v", tc.name, err, errs.KindOf(err), tc.kind)
		}
	}
	onlyMarker(t, m, inbox, to)
}

// onlyMarker sends a marker message to to and checks it is all that
// arrived there: whatever a refused or cancelled send might have
// delivered would be there before it.
func onlyMarker(t *testing.T, m mail.Mailer, inbox Inbox, to string) {
	t.Helper()
	marker := message(to)
	marker.Subject = "marker"
	if err := m.Send(ctx(t), marker); err != nil {
		t.Fatal(err)
	}
	if got := await(t, inbox, to, 1); got[0].Subject != "marker" {
		t.Fatalf("received %+v, want only the marker", got)
	}
}

func testCancelledContext(t *testing.T, m mail.Mailer, inbox Inbox) {
	to := rcpt(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Send(c, message(to)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
	c, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := m.Send(c, message(to)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send with an expired context = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	onlyMarker(t, m, inbox, to)
}

func testConcurrent(t *testing.T, m mail.Mailer, inbox Inbox) {
	const n = 8
	to := rcpt(t)
	c := ctx(t)
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			msg := message(to)
			msg.Subject = fmt.Sprintf("message %d", i)
			errc <- m.Send(c, msg)
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	var subjects []string
	for _, r := range await(t, inbox, to, n) {
		subjects = append(subjects, r.Subject)
	}
	slices.Sort(subjects)
	for i, s := range subjects {
		if want := fmt.Sprintf("message %d", i); s != want {
			t.Fatalf("subjects %q, want message 0 to %d", subjects, n-1)
		}
	}
}
