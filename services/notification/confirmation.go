package notification

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/pricing"
)

// Languages are the languages messages are written in; the first is the
// default, for recipients whose locale matches none.
var Languages = []language.Tag{language.English, language.German}

// messages is the catalog: English is the key itself.
var messages = func() catalog.Catalog {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	de := map[string]string{
		"Hello %s,": "Hallo %s,",
		"Your order %s for %s is confirmed. Your tickets:": "Ihre Bestellung %s für %s ist bestätigt. Ihre Tickets:",
		"Total paid: %s": "Bezahlt: %s",
		"Show your tickets at the gate from this page; their codes change every 15 seconds:": "Zeigen Sie Ihre Tickets am Einlass auf dieser Seite; ihre Codes ändern sich alle 15 Sekunden:",
		"Your tickets for %s":        "Ihre Tickets für %s",
		"Seat %s":                    "Platz %s",
		"General admission, %s (%d)": "Stehplatz, %s (%d)",
	}
	for k, v := range de {
		_ = b.SetString(language.German, k, v) // only fails on malformed keys
	}
	return b
}()

var matcher = language.NewMatcher(Languages)

// Language is the language of Languages closest to a BCP 47 locale; ""
// and anything unmatched is the default.
func Language(locale string) language.Tag {
	if locale == "" {
		return Languages[0]
	}
	t, err := language.Parse(locale)
	if err != nil {
		return Languages[0]
	}
	_, i, conf := matcher.Match(t)
	if conf == language.No {
		return Languages[0]
	}
	return Languages[i]
}

//go:embed templates/*.tmpl
var templateFiles embed.FS

var (
	textConfirmation = texttemplate.Must(texttemplate.New("confirmation.txt.tmpl").
				Funcs(texttemplate.FuncMap{"t": func(string, ...any) string { return "" }}).
				ParseFS(templateFiles, "templates/confirmation.txt.tmpl"))
	htmlConfirmation = htmltemplate.Must(htmltemplate.New("confirmation.html.tmpl").
				Funcs(htmltemplate.FuncMap{"t": func(string, ...any) string { return "" }}).
				ParseFS(templateFiles, "templates/confirmation.html.tmpl"))
)

// Place is where a ticket admits to: a seat, or a unit of a
// general-admission zone.
type Place struct {
	Seat  string
	Zone  string
	Index int
}

// Confirmation is an order confirmation: what the buyer bought.
type Confirmation struct {
	Name      string // the recipient's name; their address when they gave none
	Order     string
	EventName string
	Places    []Place
	Total     pricing.Money
	// TicketsURL is the page of the buyer's tickets.
	TicketsURL string
}

// Render writes c in lang: the subject, the text and the HTML body.
func (c Confirmation) Render(lang language.Tag) (subject, text, html string, err error) {
	const op = "notification.render"
	p := message.NewPrinter(lang, message.Catalog(messages))
	tr := func(key string, args ...any) string { return p.Sprintf(key, args...) }
	places := make([]string, len(c.Places))
	for i, pl := range c.Places {
		if pl.Seat != "" {
			places[i] = tr("Seat %s", pl.Seat)
		} else {
			places[i] = tr("General admission, %s (%d)", pl.Zone, pl.Index)
		}
	}
	data := map[string]any{"Name": c.Name, "Order": c.Order, "EventName": c.EventName, "Tickets": places,
		"Total": c.Total.String(), "TicketsURL": c.TicketsURL, "Lang": lang.String()}
	var tb, hb bytes.Buffer
	tt, err := textConfirmation.Clone()
	if err == nil {
		err = tt.Funcs(texttemplate.FuncMap{"t": tr}).Execute(&tb, data)
	}
	if err != nil {
		return "", "", "", errs.E(op, errs.Other, err)
	}
	ht, err := htmlConfirmation.Clone()
	if err == nil {
		err = ht.Funcs(htmltemplate.FuncMap{"t": tr}).Execute(&hb, data)
	}
	if err != nil {
		return "", "", "", errs.E(op, errs.Other, err)
	}
	return tr("Your tickets for %s", c.EventName), strings.TrimSpace(tb.String()) + "\n", hb.String(), nil
}

// Recipient is who a message goes to.
type Recipient struct {
	Email  string
	Name   string
	Locale string // BCP 47, "" for the default
}

// Notifier sends the platform's messages, each delivery once.
type Notifier struct {
	Ledger Ledger
	Mailer mail.Mailer
	// From is the sender ("Ticketing <no-reply@…>"); Domain the right
	// side of the messages' ids.
	From   string
	Domain string
}

// Confirm mails c to r as the delivery of the domain event eventID,
// unless that delivery finished before.
func (n *Notifier) Confirm(ctx context.Context, eventID string, r Recipient, c Confirmation) error {
	key := Key(eventID, "email", r.Email)
	done, err := n.Ledger.Begin(ctx, key)
	if err != nil || done {
		return err
	}
	if c.Name == "" {
		c.Name = cmp.Or(r.Name, r.Email)
	}
	subject, text, html, err := c.Render(Language(r.Locale))
	if err != nil {
		return err
	}
	// The key is the message's id: a copy sent again after a crash is
	// the same message.
	m := mail.Message{ID: key + "@" + n.Domain, From: n.From, To: []string{r.Email}, Subject: subject, Text: text, HTML: html}
	if err := n.Mailer.Send(ctx, m); err != nil {
		return err
	}
	return n.Ledger.Finish(ctx, key)
}
