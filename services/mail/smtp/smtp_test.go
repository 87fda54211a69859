package smtp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/mail/mailtest"
	"github.com/ticketing/ticketing/services/mail/smtp"
)

// mailpit reads what Mailpit received through its REST API and deletes,
// when the test ends, every message it has seen.
type mailpit struct {
	base string
	mu   sync.Mutex
	seen []string
}

type mpAddress struct{ Name, Address string }

func newMailpit(t *testing.T) *mailpit {
	mp := &mailpit{base: testservers.MailpitURL(t)}
	t.Cleanup(func() { mp.deleteSeen(t) })
	return mp
}

func (mp *mailpit) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, mp.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mailpit %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit %s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("mailpit %s %s: %v: %s", method, path, err, b)
		}
	}
}

// inbox lists the messages with addr in To (/api/v1/search) and reads
// each (/api/v1/message/{ID}), oldest first.
func (mp *mailpit) inbox(t *testing.T, addr string) []mailtest.Received {
	t.Helper()
	var list struct {
		Messages []struct {
			ID string
			To []mpAddress
		}
	}
	mp.do(t, http.MethodGet, "/api/v1/search?limit=500&query="+url.QueryEscape(`to:"`+addr+`"`), nil, &list)
	var out []mailtest.Received
	for _, s := range slices.Backward(list.Messages) { // newest first
		var m struct {
			MessageID  string
			From       mpAddress
			To         []mpAddress
			Subject    string
			Text, HTML string
		}
		mp.do(t, http.MethodGet, "/api/v1/message/"+url.PathEscape(s.ID), nil, &m)
		mp.mu.Lock()
		if !slices.Contains(mp.seen, s.ID) {
			mp.seen = append(mp.seen, s.ID)
		}
		mp.mu.Unlock()
		r := mailtest.Received{
			ID: m.MessageID, From: m.From.Address, Subject: m.Subject,
			Text: mail.NormalizeNewlines(m.Text), HTML: mail.NormalizeNewlines(m.HTML),
		}
		for _, a := range m.To {
			r.To = append(r.To, a.Address)
		}
		if slices.Contains(r.To, addr) { // the search matches substrings
			out = append(out, r)
		}
	}
	return out
}

func (mp *mailpit) deleteSeen(t *testing.T) {
	mp.mu.Lock()
	ids := mp.seen
	mp.seen = nil
	mp.mu.Unlock()
	if len(ids) > 0 {
		mp.do(t, http.MethodDelete, "/api/v1/messages", map[string][]string{"IDs": ids}, nil)
	}
}

func config(t *testing.T) smtp.Config {
	return smtp.Config{
		Addr: testservers.SMTPAddr(t),
		TLS:  smtp.TLSNone, // Mailpit has no certificate
		// Mailpit takes any login: this runs the AUTH path.
		Username: "ticketing", Password: "secret", AllowInsecureAuth: true,
		Timeout: 10 * time.Second,
	}
}

func TestContract(t *testing.T) {
	mailtest.Run(t, func(t *testing.T) (mail.Mailer, mailtest.Inbox) {
		mp := newMailpit(t)
		m, err := smtp.New(config(t))
		if err != nil {
			t.Fatal(err)
		}
		return m, mp.inbox
	})
}

func message(to string) mail.Message {
	return mail.Message{From: "tickets@example.test", To: []string{to}, Subject: "s", Text: "x"}
}

func rcpt() string {
	return fmt.Sprintf("r%d@example.test", time.Now().UnixNano())
}

func TestWithoutAuth(t *testing.T) {
	mp := newMailpit(t)
	cfg := config(t)
	cfg.Username, cfg.Password, cfg.AllowInsecureAuth = "", "", false
	m, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	to := rcpt()
	if err := m.Send(context.Background(), message(to)); err != nil {
		t.Fatal(err)
	}
	eventuallyOne(t, mp, to)
}

func eventuallyOne(t *testing.T, mp *mailpit, to string) {
	t.Helper()
	eventually.Nil(t, 20*time.Second, func() error {
		if got := mp.inbox(t, to); len(got) != 1 {
			return fmt.Errorf("%d messages to %s, want 1", len(got), to)
		}
		return nil
	})
}

// Mailpit offers no STARTTLS: under TLSMandatory nothing is sent, with a
// permanent error; under TLSOpportunistic the message goes in plain.
func TestTLSPolicy(t *testing.T) {
	mp := newMailpit(t)
	cfg := config(t)
	cfg.TLS, cfg.Username, cfg.Password, cfg.AllowInsecureAuth = smtp.TLSMandatory, "", "", false
	m, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	to := rcpt()
	err = m.Send(context.Background(), message(to))
	if err == nil || errs.KindOf(err) != errs.Other || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send under TLSMandatory to a server without STARTTLS = %v (kind %v), want a permanent error naming STARTTLS", err, errs.KindOf(err))
	}
	cfg.TLS = smtp.TLSOpportunistic
	if m, err = smtp.New(cfg); err != nil {
		t.Fatal(err)
	}
	marker := message(to)
	marker.Subject = "marker"
	if err := m.Send(context.Background(), marker); err != nil {
		t.Fatal(err)
	}
	eventuallyOne(t, mp, to)
	if got := mp.inbox(t, to); got[0].Subject != "marker" {
		t.Fatalf("received %+v, want only the marker", got)
	}
}

// These need no server.

func TestConfig(t *testing.T) {
	c := smtp.Config{Addr: "smtp.example.com:587"}.WithDefaults()
	if c.TLS != smtp.TLSMandatory || c.Timeout != smtp.DefaultTimeout || c.HELO != smtp.DefaultHELO || c.Auth != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := (smtp.Config{Addr: "h:25", Username: "u"}).WithDefaults(); c.Auth != smtp.AuthPlain {
		t.Fatalf("auth default with a username: %q", c.Auth)
	}
	for _, tc := range []struct {
		name string
		f    func(*smtp.Config)
	}{
		{"no addr", func(c *smtp.Config) { c.Addr = "" }},
		{"no port", func(c *smtp.Config) { c.Addr = "smtp.example.com" }},
		{"no host", func(c *smtp.Config) { c.Addr = ":25" }},
		{"bad port", func(c *smtp.Config) { c.Addr = "smtp.example.com:70000" }},
		{"bad policy", func(c *smtp.Config) { c.TLS = "sometimes" }},
		{"negative timeout", func(c *smtp.Config) { c.Timeout = -time.Second }},
		{"helo with space", func(c *smtp.Config) { c.HELO = "a b" }},
		{"password without username", func(c *smtp.Config) { c.Password = "p" }},
		{"bad mechanism", func(c *smtp.Config) { c.Username, c.Auth = "u", "xoauth" }},
		{"plain in clear", func(c *smtp.Config) { c.Username, c.Auth, c.TLS = "u", smtp.AuthPlain, smtp.TLSNone }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := smtp.Config{Addr: "smtp.example.com:587"}.WithDefaults()
			tc.f(&c)
			if err := c.Validate(); !errs.Is(errs.Invalid, err) {
				t.Fatalf("Validate = %v, want errs.Invalid", err)
			}
			if _, err := smtp.New(c); !errs.Is(errs.Invalid, err) {
				t.Fatalf("New = %v, want errs.Invalid", err)
			}
		})
	}
	for _, tc := range []smtp.Config{
		{Addr: "127.0.0.1:25", TLS: smtp.TLSNone, Username: "u", Password: "p", AllowInsecureAuth: true},
		{Addr: "[::1]:25", TLS: smtp.TLSOpportunistic, Username: "u", Auth: smtp.AuthLogin},
		{Addr: "relay:25", TLS: smtp.TLSNone, Username: "u", Auth: smtp.AuthCRAMMD5},
	} {
		if err := tc.WithDefaults().Validate(); err != nil {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	m, err := smtp.New(smtp.Config{Addr: addr, TLS: smtp.TLSNone, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(context.Background(), message("a@example.test")); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Send to a closed port = %v (kind %v), want errs.Unavailable", err, errs.KindOf(err))
	}
}

// TestContextEndsMidway: a server that accepts and never answers; Send
// returns when the context ends, long before the timeout.
func TestContextEndsMidway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	held := make(chan net.Conn, 1)
	conns.Go(func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c // say nothing
		}
	})
	m, err := smtp.New(smtp.Config{Addr: ln.Addr().String(), TLS: smtp.TLSNone, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Send(ctx, message("a@example.test"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("Send returned after %v, want about the context's 300ms", d)
	}
	conns.Wait()
	close(held)
	for c := range held {
		c.Close()
	}
}

// fakeServer answers SMTP commands with 250 (DATA with 354, QUIT with
// 221), except the command named by verb, which gets reply.
func fakeServer(t *testing.T, verb, reply string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 fake ESMTP\r\n")
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if inData {
						if line == ".\r\n" {
							inData = false
							fmt.Fprint(c, "250 queued\r\n")
						}
						continue
					}
					cmd := strings.ToUpper(strings.Fields(line + " x")[0])
					switch {
					case cmd == verb:
						fmt.Fprint(c, reply+"\r\n")
					case cmd == "EHLO":
						fmt.Fprint(c, "250-fake\r\n250 8BITMIME\r\n")
					case cmd == "DATA":
						inData = true
						fmt.Fprint(c, "354 go on\r\n")
					case cmd == "QUIT":
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						fmt.Fprint(c, "250 ok\r\n")
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

func TestServerRefusals(t *testing.T) {
	for _, tc := range []struct {
		verb, reply string
		kind        errs.Kind
		reason      string
	}{
		{"NONE", "", 0, ""}, // delivered
		{"RCPT", "550 5.1.1 no such user", errs.Invalid, smtp.ReasonRecipientRefused},
		{"RCPT", "452 4.2.2 mailbox full", errs.Unavailable, ""},
		{"MAIL", "421 4.3.2 shutting down", errs.Unavailable, ""},
		{"DATA", "554 5.7.1 rejected", errs.Other, ""},
	} {
		t.Run(tc.verb+" "+tc.reply, func(t *testing.T) {
			m, err := smtp.New(smtp.Config{Addr: fakeServer(t, tc.verb, tc.reply), TLS: smtp.TLSNone, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = m.Send(context.Background(), message("a@example.test"))
			if tc.reply == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			t.Logf("Send: %v", err)
			if err == nil || errs.KindOf(err) != tc.kind || errs.ReasonOf(err) != tc.reason {
				t.Fatalf("Send = %v (kind %v, reason %q), want kind %v reason %q", err, errs.KindOf(err), errs.ReasonOf(err), tc.kind, tc.reason)
			}
		})
	}
}
