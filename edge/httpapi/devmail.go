package httpapi

import (
	"html/template"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail/dir"
)

// MailBox is the development mail sink (services/mail/dir): `ticketing
// dev` serves it at /dev/mail so that a developer can read the mails the
// system sent (verification and reset links). Never set in production.
type MailBox interface {
	List() ([]dir.Entry, error)
	Read(id string) (dir.Entry, []byte, error)
}

var mailPage = template.Must(template.New("mail").Funcs(template.FuncMap{
	"join": func(l []string) string { return strings.Join(l, ", ") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Development mail</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
td,th{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}</style></head>
<body><h1>Development mail</h1>
<p>Mail the system sent, newest first, as written to the sink directory. Production sends through SMTP instead.</p>
<table><thead><tr><th>Date</th><th>To</th><th>Subject</th></tr></thead><tbody>
{{range .}}<tr><td>{{.Message.Date.Format "2006-01-02 15:04:05"}}</td><td>{{join .Message.To}}</td>
<td><a href="/dev/mail/{{.ID}}">{{.Message.Subject}}</a></td></tr>
{{else}}<tr><td colspan="3">No mail yet.</td></tr>{{end}}
</tbody></table></body></html>
`))

func (a *API) devMailList(c *fiber.Ctx) error {
	list, err := a.deps.MailBox.List()
	if err != nil {
		return errs.E("edge.dev_mail", err)
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	var b strings.Builder
	if err := mailPage.Execute(&b, list); err != nil {
		return errs.E("edge.dev_mail", errs.Other, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.SendString(b.String())
}

func (a *API) devMailRead(c *fiber.Ctx) error {
	e, raw, err := a.deps.MailBox.Read(c.Params("id"))
	if err != nil {
		return errs.E("edge.dev_mail", err)
	}
	if c.Query("format") == "json" {
		return c.JSON(fiber.Map{"id": e.ID, "to": e.Message.To, "subject": e.Message.Subject, "text": e.Message.Text})
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.Send(raw)
}
