package eml_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/mail/eml"
)

var when = time.Date(2026, 12, 7, 13, 0, 0, 0, time.FixedZone("CET", 3600))

func prepared(t testing.TB, m mail.Message) mail.Message {
	t.Helper()
	p, err := m.Prepare(when)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func equal(a, b mail.Message) bool {
	return a.ID == b.ID && a.Date.Equal(b.Date) && a.From == b.From && slices.Equal(a.To, b.To) &&
		a.Subject == b.Subject && a.Text == b.Text && a.HTML == b.HTML
}

func roundTripMessages() map[string]mail.Message {
	long := strings.Repeat("0123456789 abcdefghij ", 100)
	return map[string]mail.Message{
		"ascii": {From: "tickets@example.com", To: []string{"ada@example.com"}, Subject: "Your tickets", Text: "Hello Ada,\n\nyour tickets.\n"},
		"utf-8": {
			From:    "Zoë Ticketing <z@example.com>",
			To:      []string{"Ådä Lövelace <ada@example.com>", "bob@example.com", `"Robert \"Bob\" \\ O'Brien" <rob@example.com>`},
			Subject: "Grüße — 🎫 日本語のチケット, with a long tail to fold: " + strings.Repeat("é", 40),
			Text:    "Grüße,\n.\n..\nFrom here\ntrailing spaces   \n\ttab\n" + long + "\n" + strings.Repeat("ü", 500),
			HTML:    "<p>Grüße <b>🎫</b></p>\n" + long,
		},
		"encoded-word lookalikes": {
			From: `"=?utf-8?q?x?=" <a@example.com>`, To: []string{"b@example.com"},
			Subject: "=?utf-8?q?not_encoded?= " + strings.Repeat("=?x?= ", 30), Text: "=?utf-8?q?body?=\n=3D =\n",
		},
		"crlf and lone cr": {From: "a@example.com", To: []string{"b@example.com"}, Subject: "  padded  ", Text: "a\r\nb\rc\r\n", HTML: "<p>\r\n</p>"},
		"max": {
			From: "a@example.com", To: repeat("x@example.com", mail.MaxRecipients),
			Subject: strings.Repeat("ü", mail.MaxSubjectLen/2), Text: strings.Repeat("ü=\n", mail.MaxBodyLen/4),
		},
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for name, m := range roundTripMessages() {
		t.Run(name, func(t *testing.T) {
			p := prepared(t, m)
			raw, err := eml.Bytes(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) > eml.MaxSize {
				t.Fatalf("%d bytes, more than eml.MaxSize", len(raw))
			}
			for i, line := range bytes.Split(raw, []byte("\r\n")) {
				if len(line) > 998 {
					t.Errorf("line %d is %d bytes long (RFC 5322 allows 998)", i, len(line))
				}
				if bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
					t.Errorf("line %d has a bare CR or LF", i)
				}
			}
			got, err := eml.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !equal(got, p) {
				t.Fatalf("parsed back\n%+v\nwant\n%+v", got, p)
			}
		})
	}
}

func TestBuildRefusesUnprepared(t *testing.T) {
	m := mail.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x"}
	if _, err := eml.Bytes(m); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Bytes of an unprepared message: %v, want errs.Invalid", err)
	}
	p := prepared(t, m)
	p.Subject = "a\r\nBcc: c@example.com"
	if _, err := eml.Bytes(p); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Bytes of an invalid message: %v, want errs.Invalid", err)
	}
}

const header = "From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\nMessage-ID: <1@example.com>\r\nDate: Mon, 07 Dec 2026 13:00:00 +0000\r\n"

func TestParseVariants(t *testing.T) {
	for _, tc := range []struct{ name, raw, text, html string }{
		{"no content type, lf", strings.ReplaceAll(header, "\r\n", "\n") + "\nhello\nworld\n", "hello\nworld\n", ""},
		{"base64", header + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZQ==\r\n", "Grüße", ""},
		{"8bit", header + "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße", "Grüße", ""},
		{"nested", header + "Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nt\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>h</p>\r\n--i--\r\n--o\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--o--\r\n", "t", "<p>h</p>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := eml.Parse([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != tc.text || m.HTML != tc.html {
				t.Fatalf("text %q html %q, want %q %q", m.Text, m.HTML, tc.text, tc.html)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		kind errs.Kind
	}{
		{"empty", "", errs.Invalid},
		{"no from", strings.Replace(header, "From: a@example.com\r\n", "", 1) + "\r\nx", errs.Invalid},
		{"two from headers", "From: c@example.com\r\n" + header + "\r\nx", errs.Invalid},
		{"two from addresses", strings.Replace(header, "a@example.com", "a@example.com, c@example.com", 1) + "\r\nx", errs.Invalid},
		{"no to", strings.Replace(header, "To: b@example.com\r\n", "", 1) + "\r\nx", errs.Invalid},
		{"no message-id", strings.Replace(header, "Message-ID: <1@example.com>\r\n", "", 1) + "\r\nx", errs.Invalid},
		{"no date", strings.Replace(header, "Date: Mon, 07 Dec 2026 13:00:00 +0000\r\n", "", 1) + "\r\nx", errs.Invalid},
		{"no text", header + "\r\n", errs.Invalid},
		{"html only", header + "Content-Type: text/html\r\n\r\n<p>x</p>", errs.Invalid},
		{"latin-1 body", header + "Content-Type: text/plain; charset=iso-8859-1\r\n\r\nGr\xfc\xdfe", errs.Invalid},
		{"invalid utf-8 body", header + "\r\nGr\xfc\xdfe", errs.Invalid},
		{"unknown encoding", header + "Content-Transfer-Encoding: x-uuencode\r\n\r\nx", errs.Invalid},
		{"bad base64", header + "Content-Transfer-Encoding: base64\r\n\r\n!!!!", errs.Invalid},
		{"multipart without boundary", header + "Content-Type: multipart/alternative\r\n\r\nx", errs.Invalid},
		{"too deep", header + "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d--\r\n--c--\r\n--b--\r\n--a--\r\n", errs.Invalid},
		{"subject with encoded newline", strings.Replace(header, "Subject: s", "Subject: =?utf-8?q?a=0D=0ABcc:_x@example.com?=", 1) + "\r\nx", errs.Invalid},
		{"unknown charset in subject", strings.Replace(header, "Subject: s", "Subject: =?koi8-r?q?a?=", 1) + "\r\nx", errs.Invalid},
		{"too large", header + "\r\n" + strings.Repeat("x", eml.MaxSize), errs.TooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eml.Parse([]byte(tc.raw))
			if !errs.Is(tc.kind, err) {
				t.Fatalf("Parse = %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
			}
		})
	}
}

// FuzzParse: Parse never panics, refuses with errs.Invalid or
// errs.TooLarge, and what it accepts is a valid message that Write and
// Parse reproduce exactly. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := eml.Parse(raw)
		if err != nil {
			if k := errs.KindOf(err); k != errs.Invalid && k != errs.TooLarge {
				t.Fatalf("Parse refused with kind %v: %v", k, err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("Parse returned an invalid message: %v\n%+v", err, m)
		}
		p, err := m.Prepare(when)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(p, m) {
			t.Fatalf("Prepare changed what Parse returned:\n%+v\n%+v", m, p)
		}
		out, err := eml.Bytes(m)
		if err != nil {
			t.Fatalf("Write of a parsed message: %v", err)
		}
		again, err := eml.Parse(out)
		if err != nil {
			t.Fatalf("Parse of Write's output: %v\n%s", err, out)
		}
		if !equal(again, m) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v\n%s", m, again, out)
		}
	})
}
