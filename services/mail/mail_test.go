package mail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
)

func valid() mail.Message {
	return mail.Message{
		From:    "Tickets <tickets@example.com>",
		To:      []string{"ada@example.com"},
		Subject: "Your tickets",
		Text:    "Hello",
	}
}

func TestValidateAccepts(t *testing.T) {
	for name, f := range map[string]func(*mail.Message){
		"plain":              func(*mail.Message) {},
		"utf-8 name":         func(m *mail.Message) { m.From = "Zoë Ticketing <z@example.com>" },
		"quoted name":        func(m *mail.Message) { m.To = []string{`"Robert \"Bob\" O'Brien" <bob@example.com>`} },
		"bare address":       func(m *mail.Message) { m.From = "z@example.com" },
		"no dot in domain":   func(m *mail.Message) { m.To = []string{"root@localhost"} },
		"empty subject":      func(m *mail.Message) { m.Subject = "" },
		"utf-8 subject":      func(m *mail.Message) { m.Subject = "Grüße 🎫" },
		"html":               func(m *mail.Message) { m.HTML = "<p>Hello</p>" },
		"id":                 func(m *mail.Message) { m.ID = "abc.def@example.com" },
		"max recipients":     func(m *mail.Message) { m.To = repeat("a@example.com", mail.MaxRecipients) },
		"max subject":        func(m *mail.Message) { m.Subject = strings.Repeat("s", mail.MaxSubjectLen) },
		"max body":           func(m *mail.Message) { m.Text = strings.Repeat("t", mail.MaxBodyLen-10); m.HTML = "0123456789" },
		"crlf in body":       func(m *mail.Message) { m.Text = "a\r\nb\rc\n" },
		"max display name":   func(m *mail.Message) { m.From = strings.Repeat("é", mail.MaxDisplayNameLen) + " <a@example.com>" },
		"plus in local part": func(m *mail.Message) { m.To = []string{"ada+tickets@example.com"} },
	} {
		t.Run(name, func(t *testing.T) {
			m := valid()
			f(&m)
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		f      func(*mail.Message)
		kind   errs.Kind
		reason string
	}{
		{"no from", func(m *mail.Message) { m.From = "" }, errs.Invalid, mail.ReasonBadAddress},
		{"two froms", func(m *mail.Message) { m.From = "a@example.com, b@example.com" }, errs.Invalid, mail.ReasonBadAddress},
		{"crlf in from", func(m *mail.Message) { m.From = "a@example.com\r\nBcc: x@example.com" }, errs.Invalid, mail.ReasonHeaderControl},
		{"lf in name", func(m *mail.Message) { m.From = "\"A\nB\" <a@example.com>" }, errs.Invalid, mail.ReasonHeaderControl},
		{"no recipients", func(m *mail.Message) { m.To = nil }, errs.Invalid, ""},
		{"too many recipients", func(m *mail.Message) { m.To = repeat("a@example.com", mail.MaxRecipients+1) }, errs.TooLarge, ""},
		{"crlf in to", func(m *mail.Message) { m.To = []string{"a@example.com\r\nBcc: x@example.com"} }, errs.Invalid, mail.ReasonHeaderControl},
		{"list in to", func(m *mail.Message) { m.To = []string{"a@example.com, x@example.com"} }, errs.Invalid, mail.ReasonBadAddress},
		{"quoted local part", func(m *mail.Message) { m.To = []string{`"a b"@example.com`} }, errs.Invalid, mail.ReasonBadAddress},
		{"non-ascii address", func(m *mail.Message) { m.To = []string{"adä@example.com"} }, errs.Invalid, mail.ReasonBadAddress},
		{"domain literal", func(m *mail.Message) { m.To = []string{"a@[127.0.0.1]"} }, errs.Invalid, mail.ReasonBadAddress},
		{"long address", func(m *mail.Message) { m.To = []string{strings.Repeat("a", 250) + "@example.com"} }, errs.Invalid, mail.ReasonBadAddress},
		{"long display name", func(m *mail.Message) { m.From = strings.Repeat("é", mail.MaxDisplayNameLen+1) + " <a@example.com>" }, errs.Invalid, mail.ReasonBadAddress},
		{"invalid utf-8 address", func(m *mail.Message) { m.From = "\xff <a@example.com>" }, errs.Invalid, mail.ReasonBadAddress},
		{"crlf in subject", func(m *mail.Message) { m.Subject = "Hi\r\nBcc: x@example.com" }, errs.Invalid, mail.ReasonHeaderControl},
		{"lf in subject", func(m *mail.Message) { m.Subject = "Hi\nthere" }, errs.Invalid, mail.ReasonHeaderControl},
		{"nul in subject", func(m *mail.Message) { m.Subject = "Hi\x00" }, errs.Invalid, mail.ReasonHeaderControl},
		{"line separator in subject", func(m *mail.Message) { m.Subject = "Hi\u2028there" }, errs.Invalid, mail.ReasonHeaderControl},
		{"invalid utf-8 subject", func(m *mail.Message) { m.Subject = "\xff" }, errs.Invalid, ""},
		{"long subject", func(m *mail.Message) { m.Subject = strings.Repeat("s", mail.MaxSubjectLen+1) }, errs.Invalid, ""},
		{"no text", func(m *mail.Message) { m.Text = " \n" }, errs.Invalid, ""},
		{"body too large", func(m *mail.Message) { m.Text = strings.Repeat("t", mail.MaxBodyLen-9); m.HTML = "0123456789" }, errs.TooLarge, ""},
		{"invalid utf-8 text", func(m *mail.Message) { m.Text = "a\xffb" }, errs.Invalid, ""},
		{"nul in html", func(m *mail.Message) { m.HTML = "<p>\x00</p>" }, errs.Invalid, ""},
		{"id with brackets", func(m *mail.Message) { m.ID = "<a@example.com>" }, errs.Invalid, ""},
		{"id with crlf", func(m *mail.Message) { m.ID = "a@example.com\r\nBcc: x@example.com" }, errs.Invalid, mail.ReasonHeaderControl},
		{"id without at", func(m *mail.Message) { m.ID = "abc" }, errs.Invalid, ""},
		{"long id", func(m *mail.Message) { m.ID = strings.Repeat("a", mail.MaxIDLen) + "@x" }, errs.Invalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.f(&m)
			err := m.Validate()
			if !errs.Is(tc.kind, err) {
				t.Fatalf("Validate() = %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
			}
			if tc.reason != "" && errs.ReasonOf(err) != tc.reason {
				t.Fatalf("Validate() = %v with reason %q, want %q", err, errs.ReasonOf(err), tc.reason)
			}
			if _, err := m.Prepare(time.Now()); err == nil {
				t.Fatal("Prepare accepted what Validate refuses")
			}
		})
	}
}

func TestPrepare(t *testing.T) {
	now := time.Date(2026, 12, 7, 13, 0, 0, 123456789, time.UTC)
	m := valid()
	m.Subject = "  Your tickets  "
	m.Text = "a\r\nb\rc"
	to := m.To
	p, err := m.Prepare(now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.ID, "@example.com") || len(p.ID) != 26+len("@example.com") {
		t.Errorf("ID = %q, want 26 hex digits @example.com", p.ID)
	}
	if !p.Date.Equal(now.Truncate(time.Second)) {
		t.Errorf("Date = %v, want %v", p.Date, now.Truncate(time.Second))
	}
	if p.Subject != "Your tickets" || p.Text != "a\nb\nc" {
		t.Errorf("Subject %q, Text %q: want trimmed, LF line ends", p.Subject, p.Text)
	}
	p.To[0] = "changed@example.com"
	if to[0] != "ada@example.com" {
		t.Error("Prepare's copy shares To with the original")
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	m.ID, m.Date = "mine@example.com", now.Add(-time.Hour)
	p, err = m.Prepare(now)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "mine@example.com" || !p.Date.Equal(now.Add(-time.Hour).Truncate(time.Second)) {
		t.Errorf("Prepare replaced a set ID or Date: %q %v", p.ID, p.Date)
	}
	if a, b := mail.NewID("x.org"), mail.NewID("x.org"); a == b {
		t.Errorf("NewID repeated %q", a)
	}
}

func TestAddresses(t *testing.T) {
	m := valid()
	m.To = []string{"Ada <ada@example.com>", "bob@example.com"}
	if got := m.Sender(); got != "tickets@example.com" {
		t.Errorf("Sender() = %q", got)
	}
	if got := strings.Join(m.Recipients(), ","); got != "ada@example.com,bob@example.com" {
		t.Errorf("Recipients() = %q", got)
	}
	for _, s := range []string{"a@example.com", `"Robert \"Bob\" \\ O'Brien" <bob@example.com>`, "Zoë <z@example.com>", `"" <e@example.com>`} {
		a, err := mail.ParseAddress(s)
		if err != nil {
			t.Fatalf("ParseAddress(%q): %v", s, err)
		}
		b, err := mail.ParseAddress(mail.FormatAddress(a))
		if err != nil || *a != *b {
			t.Errorf("FormatAddress(%q) = %q, parsed back %+v (%v)", s, mail.FormatAddress(a), b, err)
		}
	}
}
