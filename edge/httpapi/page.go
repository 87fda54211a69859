package httpapi

import (
	"bytes"
	"embed"
	"html"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/ratelimit"
)

// The pages: plain HTML and JavaScript in web/, embedded, no build step.
// They call the same public API as any client.
//
// The waiting-room page (/queue/{id}) and the seat-selection hand-off
// page (/events/{id}/select) use the queue endpoints, the event,
// availability and holds (queue.js); the select page hands the holds it
// made to the checkout page (/checkout/{id}?hold=…), which quotes them,
// places the order, frames the payment service's card page and pays
// with its token; the order page (/orders/{id}) follows an order until it
// is final (checkout.js). The tickets page (/tickets) shows the holder's
// tickets, each barcode drawn on the device with its rotating code
// (tickets.js, and web/vendor/qrcode.js, a kept QR code library). The accounts pages (/signup,
// /signin, /verify, /forgot, /reset: auth.js; /account: account-page.js)
// use the accounts routes with a cookie session. account.js is what every
// page shares: the API calls with the session cookies and the CSRF
// header, the refresh of an expired access token, error messages, the
// sign-in link that returns to the page, and the WebAuthn calls.
//
//go:embed web/*.html web/*.js web/page.css web/vendor/*.js
var web embed.FS

// Header fields of a join refused for want of proof of work: the challenge
// to solve and its difficulty in leading zero bits. The page solves it and
// joins again with the solution in HeaderQueuePoW.
const (
	HeaderQueuePoW           = "Queue-PoW"
	HeaderQueuePoWChallenge  = "Queue-PoW-Challenge"
	HeaderQueuePoWDifficulty = "Queue-PoW-Difficulty"
)

// pageSecurity is the Content-Security-Policy of the pages: only this
// origin's scripts, styles and connections (the WebSocket included), no
// inline code, no framing.
const pageSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// accountPageSecurity is pageSecurity with data: images: the account page
// shows the authenticator app's QR code as the data: URL that
// POST /v1/account/totp answers.
const accountPageSecurity = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func mustRead(name string) []byte {
	b, err := web.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

var (
	queueHTML    = mustRead("web/queue.html")
	selectHTML   = mustRead("web/select.html")
	checkoutHTML = mustRead("web/checkout.html")
	orderHTML    = mustRead("web/order.html")
	ticketsHTML  = mustRead("web/tickets.html")
	pageCSS      = mustRead("web/page.css")
)

// paymentURLMark is the place in checkout.html of the payment service's
// base URL (Config.PaymentURL), whose card page the page frames and whose
// origin alone it takes card tokens from.
const paymentURLMark = "{{payment-url}}"

// checkoutPage is the checkout page for the payment service at
// paymentURL ("": none, the page offers no card entry) and its
// Content-Security-Policy: pageSecurity, and the payment service's
// origin may be framed.
func checkoutPage(paymentURL string) ([]byte, string) {
	csp := pageSecurity
	if o, err := originOf(paymentURL); paymentURL == "" || err != nil {
		paymentURL = ""
	} else {
		csp += "; frame-src " + o
	}
	return bytes.ReplaceAll(checkoutHTML, []byte(paymentURLMark), []byte(html.EscapeString(strings.TrimRight(paymentURL, "/")))), csp
}

// accountPages are the accounts pages by path, each an HTML file of web/.
var accountPages = map[string]string{
	"/signup":  "web/signup.html",
	"/signin":  "web/signin.html",
	"/verify":  "web/verify.html",
	"/forgot":  "web/forgot.html",
	"/reset":   "web/reset.html",
	"/account": "web/account.html",
}

// pageScripts are the pages' scripts, served at /web/<name>.
var pageScripts = []string{"account.js", "queue.js", "auth.js", "account-page.js", "checkout.js", "tickets.js", "vendor/qrcode.js"}

// pages registers the pages and their assets.
func (a *API) pages(app *fiber.App) {
	app.Get("/queue/:id", a.eventPage(queueHTML, pageSecurity))
	app.Get("/events/:id/select", a.eventPage(selectHTML, pageSecurity))
	app.Get("/checkout/:id", a.eventPage(checkoutPage(a.cfg.PaymentURL)))
	// The order is read by the page (GET /v1/orders/{id}), for the
	// signed-in buyer only: the page itself is the same for any id.
	app.Get("/orders/:id", page(orderHTML, pageSecurity))
	// The caller's tickets are read by the page (GET /v1/me/tickets).
	app.Get("/tickets", page(ticketsHTML, pageSecurity))
	for path, file := range accountPages {
		csp := pageSecurity
		if path == "/account" {
			csp = accountPageSecurity
		}
		app.Get(path, page(mustRead(file), csp))
	}
	for _, name := range pageScripts {
		app.Get("/web/"+name, asset("text/javascript; charset=utf-8", mustRead("web/"+name)))
	}
	app.Get("/web/page.css", asset("text/css; charset=utf-8", pageCSS))
}

// eventPage serves an HTML page for a known event (404 otherwise).
func (a *API) eventPage(html []byte, csp string) fiber.Handler {
	send := page(html, csp)
	return func(c *fiber.Ctx) error {
		if _, _, err := a.event(c); err != nil {
			return err
		}
		return send(c)
	}
}

// page serves an HTML page with its security headers.
func page(html []byte, csp string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		c.Set(fiber.HeaderContentSecurityPolicy, csp)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderReferrerPolicy, "same-origin")
		// The page is the same for everyone; what changes comes from the
		// API. Revalidate so that a deploy is picked up.
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(html)
	}
}

func asset(contentType string, body []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, contentType)
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		return c.Send(body)
	}
}

// setJoinGuardHeaders writes the response header fields for an error of
// joinguard.Guard.Check: the RateLimit fields (and Retry-After) for a join
// refused by a limit, the challenge to solve for one refused for want of
// proof of work. The error itself goes to the error handler as usual.
func setJoinGuardHeaders(c *fiber.Ctx, err error) {
	if d, l, ok := joinguard.LimitOf(err); ok {
		setRateLimitHeaders(c, d)
		c.Set(ratelimit.HeaderPolicy, ratelimit.PolicyHeader(l))
	}
	if ch, d, ok := joinguard.ChallengeOf(err); ok {
		c.Set(HeaderQueuePoWChallenge, ch)
		c.Set(HeaderQueuePoWDifficulty, strconv.Itoa(d))
	}
}
