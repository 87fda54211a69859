package httpapi

import (
	"embed"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/ratelimit"
)

// The waiting-room page and the seat-selection hand-off page: plain HTML
// and JavaScript in web/, embedded, no build step. The pages call the same
// public API as any client (challenge, join, the queue WebSocket, event,
// availability, holds).
//
//go:embed web/queue.html web/select.html web/queue.js web/page.css
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

func mustRead(name string) []byte {
	b, err := web.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

var (
	queueHTML  = mustRead("web/queue.html")
	selectHTML = mustRead("web/select.html")
	queueJS    = mustRead("web/queue.js")
	pageCSS    = mustRead("web/page.css")
)

// pages registers the pages and their assets.
func (a *API) pages(app *fiber.App) {
	app.Get("/queue/:id", a.page(queueHTML))
	app.Get("/events/:id/select", a.page(selectHTML))
	app.Get("/web/queue.js", asset("text/javascript; charset=utf-8", queueJS))
	app.Get("/web/page.css", asset("text/css; charset=utf-8", pageCSS))
}

// page serves an HTML page for a known event (404 otherwise).
func (a *API) page(html []byte) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if _, _, err := a.event(c); err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		c.Set(fiber.HeaderContentSecurityPolicy, pageSecurity)
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
