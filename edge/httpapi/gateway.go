package httpapi

import (
	"crypto/subtle"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/token"
)

// The gateway: who is calling, decided once per request before any
// handler runs (authenticate, registered with app.Use), and what the
// caller may do on each route (allow, the first handler of every route
// that needs more than an anonymous caller). Handlers read the caller with
// callerOf and never look at credentials themselves.
//
// Credentials are an access token (RFC 9068, services/identity/token) in
// "Authorization: Bearer", or, for the pages, in the HttpOnly cookie
// CookieAccess. A request authenticated by cookie that changes something
// (any method but GET, HEAD, OPTIONS) must carry the CSRF cookie's value in
// the X-CSRF-Token header (double submit; the cookies are SameSite=Strict
// as well). A token that fails verification is 401 whatever the route:
// a client that sent one expects to be signed in.

// Cookies of the pages' sessions.
const (
	CookieAccess  = "tk_at"   // the access token (HttpOnly)
	CookieRefresh = "tk_rt"   // the refresh token (HttpOnly, path /v1/auth)
	CookieCSRF    = "tk_csrf" // readable by the pages' scripts
	// CookieSession is the session's id (not a credential, readable): the
	// account page marks "this browser" with it, and a password change
	// keeps that session.
	CookieSession = "tk_sid"
	HeaderCSRF    = "X-CSRF-Token"
)

// Channels of callers.
const (
	ChannelWeb     = "web"
	ChannelApp     = "app"
	ChannelPartner = "partner"
)

// Caller is who a request comes from.
type Caller struct {
	// Subject is the account id, or the partner client id of a client
	// credentials token; empty for an anonymous caller.
	Subject  string
	ClientID string
	Scope    string
	Channel  string
	// Token is the access token as presented, forwarded to the identity
	// service for a user's own requests.
	Token string
	// Cookie: authenticated by cookie (CSRF checked on writes).
	Cookie bool
	claims token.Claims
}

// Anonymous reports whether nobody signed in.
func (c *Caller) Anonymous() bool { return c.Subject == "" }

// User reports whether the caller is a signed-in account (not a partner
// client).
func (c *Caller) User() bool {
	return identity.ValidID(c.Subject) && strings.HasPrefix(c.Subject, "u_")
}

// HasScope reports whether the caller's token grants s.
func (c *Caller) HasScope(s string) bool { return c.claims.HasScope(s) }

// Key is what per-caller limits count: the subject, or the address of an
// anonymous caller.
func (c *Caller) key(ip string) string {
	if c.Subject != "" {
		return "sub:" + c.Subject
	}
	return "ip:" + ip
}

// ChannelConfig is one channel's rules.
type ChannelConfig struct {
	// Limit is each caller's request rate on the channel, over every
	// route (per account or client; per address when anonymous). Zero: no
	// channel limit.
	Limit ratelimit.Limit
	// Routes, when not empty, are the only routes the channel may call,
	// as "METHOD /path" with Fiber's parameter syntax
	// ("POST /v1/events/:id/holds"); another route of the API is 403 (the
	// pages, /healthz, /readyz and /metrics excepted).
	Routes []string
}

// GatewayConfig configures authentication and channels.
type GatewayConfig struct {
	// Channels by name (ChannelWeb, ChannelApp, ChannelPartner). Missing
	// ones have no limit and every route.
	Channels map[string]ChannelConfig
	// AppClients are the OAuth client ids of the first-party apps (channel
	// app); "web" and every other user session is channel web, partner
	// client credentials channel partner.
	AppClients []string
	// SecureCookies marks the session cookies Secure (HTTPS only). Default
	// on when the edge serves HTTPS; plain-HTTP development on loopback
	// needs it off.
	SecureCookies bool
}

// channelsFile is the JSON form of the channels' part of GatewayConfig
// (conf/app/channels.json).
type channelsFile struct {
	AppClients []string `json:"app_clients"`
	Channels   map[string]struct {
		Rate   int      `json:"rate"`
		Period string   `json:"period"`
		Burst  int      `json:"burst"`
		Routes []string `json:"routes"`
	} `json:"channels"`
}

// ParseChannels reads the channels' configuration (conf/app/channels.json:
// the app clients, and per channel a request rate per caller and the
// routes it may call) into c, refusing unknown fields, channels and routes
// that are not "METHOD /path".
func ParseChannels(b []byte, c *GatewayConfig) error {
	const op = "edge.channels"
	var f channelsFile
	if err := decodeStrict(op, b, &f); err != nil {
		return err
	}
	c.AppClients = f.AppClients
	c.Channels = map[string]ChannelConfig{}
	for name, ch := range f.Channels {
		if name != ChannelWeb && name != ChannelApp && name != ChannelPartner {
			return errs.Errorf(op, errs.Invalid, "unknown channel %q (web, app, partner)", name)
		}
		cc := ChannelConfig{Routes: ch.Routes}
		if ch.Rate != 0 || ch.Burst != 0 || ch.Period != "" {
			p, err := time.ParseDuration(ch.Period)
			if err != nil || p <= 0 || ch.Rate <= 0 || ch.Burst < 0 {
				return errs.Errorf(op, errs.Invalid, "channel %s: rate, period and burst must be positive (period a Go duration)", name)
			}
			cc.Limit = ratelimit.Limit{Rate: ch.Rate, Period: p, Burst: ch.Burst}
		}
		for _, r := range ch.Routes {
			m, path, ok := strings.Cut(r, " ")
			if !ok || m == "" || !strings.HasPrefix(path, "/") || strings.ToUpper(m) != m {
				return errs.Errorf(op, errs.Invalid, "channel %s: route %q is not \"METHOD /path\"", name, r)
			}
		}
		c.Channels[name] = cc
	}
	return nil
}

// callerKey is the Locals key of the caller.
const callerKey = "caller"

var anonymous = &Caller{Channel: ChannelWeb}

// callerOf returns the request's caller (anonymous before authenticate).
func callerOf(c *fiber.Ctx) *Caller {
	if v, ok := c.Locals(callerKey).(*Caller); ok {
		return v
	}
	return anonymous
}

// authenticate decides the caller and stores it for the handlers. Without
// a verifier (Deps.Tokens nil) every caller is anonymous. Its refusals
// (401, 403) are for requests a route takes: another request goes on,
// anonymous, to its 404 or 405.
func (a *API) authenticate(c *fiber.Ctx) error {
	err := a.authenticated(c)
	if err == nil {
		return c.Next()
	}
	if a.routes != nil && !a.routes.has(c.Method(), c.Path()) {
		c.Response().Header.Del(fiber.HeaderWWWAuthenticate)
		c.Response().Header.Del(fiber.HeaderSetCookie)
		c.Locals(callerKey, nil)
		return c.Next()
	}
	return err
}

// authenticated is authenticate's decision: the caller stored, or the
// refusal.
func (a *API) authenticated(c *fiber.Ctx) error {
	const op = "edge.auth"
	at, fromCookie := "", false
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		if scheme, _, _ := strings.Cut(strings.TrimLeft(h, " "), " "); !strings.EqualFold(scheme, "bearer") {
			// Another scheme (HTTP Basic: a partner client authenticating
			// to the token and introspection endpoints) is for the routes
			// that take it; here the caller is anonymous.
			return nil
		}
		tok, err := bearer(op, h)
		if err != nil {
			// A Bearer header without a token, or with blanks in it.
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer error="invalid_request"`)
			return err
		}
		if strings.Count(tok, ".") != 2 {
			// Not a JWT: the admin bootstrap token, checked by the routes
			// that take it.
			return nil
		}
		at = tok
	} else if v := c.Cookies(CookieAccess); v != "" {
		at, fromCookie = v, true
	}
	if at == "" || a.deps.Tokens == nil {
		return nil
	}
	now := time.Now()
	claims, cached := a.verified.get(at, now)
	var err error
	if !cached {
		claims, err = a.deps.Tokens.Verify(at, now)
		if errs.ReasonOf(err) == token.ReasonUnknownKey && a.deps.TokenKeys != nil && a.deps.TokenKeys.RefreshForUnknown(c.UserContext(), now) {
			claims, err = a.deps.Tokens.Verify(at, now)
		}
		if err == nil {
			a.verified.put(at, claims)
		}
	}
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer error="invalid_token"`)
		if fromCookie {
			clearSessionCookies(c, a.cfg.Gateway.SecureCookies)
		}
		return errs.E(op, errs.Unauthorized, "the access token is not valid: sign in again", err).WithReason(errs.ReasonOf(err))
	}
	caller := &Caller{Subject: claims.Subject, ClientID: claims.ClientID, Scope: claims.Scope, Token: at, Cookie: fromCookie, claims: claims}
	caller.Channel = a.channelOf(claims)
	if fromCookie && !safeMethod(c.Method()) {
		want := c.Cookies(CookieCSRF)
		got := c.Get(HeaderCSRF)
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return errs.E(op, errs.Forbidden, "a request signed in by cookie needs the X-CSRF-Token header").WithReason("csrf")
		}
	}
	c.Locals(callerKey, caller)
	if ch, ok := a.cfg.Gateway.Channels[caller.Channel]; ok && ch.Limit != (ratelimit.Limit{}) {
		if err := a.limitKey(c, "channel_"+caller.Channel, caller.key(c.IP()), ch.Limit); err != nil {
			return err
		}
	}
	return nil
}

func (a *API) channelOf(claims token.Claims) string {
	if claims.Subject == claims.ClientID && !strings.HasPrefix(claims.Subject, "u_") {
		return ChannelPartner
	}
	for _, id := range a.cfg.Gateway.AppClients {
		if id == claims.ClientID {
			return ChannelApp
		}
	}
	return ChannelWeb
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// need is what a route asks of its caller.
type need struct {
	// user: a signed-in account; caller: an account or a partner client.
	user, caller bool
	// scope the token must grant ("" none).
	scope string
	// admin: the admin role.
	admin bool
	// staff: the admin role, or the staff role of the organizer of the
	// event the path names (":id").
	staff bool
}

// allow returns the handler that checks a route's need: 401 for an
// anonymous caller where one is required, 403 for a caller without the
// scope or role, or whose channel may not call the route.
func (a *API) allow(n need) fiber.Handler {
	return func(c *fiber.Ctx) error {
		const op = "edge.allow"
		who := callerOf(c)
		if (n.user || n.caller || n.scope != "" || n.admin || n.staff) && who.Anonymous() {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer`)
			return errs.E(op, errs.Unauthorized, "sign in first: this needs an access token")
		}
		if n.user && !who.User() {
			return errs.E(op, errs.Forbidden, "only a signed-in account may do this")
		}
		if n.admin && !who.HasScope(identity.RoleAdmin) {
			return errs.E(op, errs.Forbidden, "this needs the admin role")
		}
		if n.staff && !who.HasScope(identity.RoleAdmin) && !a.staffOf(who, c.Params("id")) {
			return errs.E(op, errs.Forbidden, "this needs the admin role or the staff role of the event's organizer")
		}
		if n.scope != "" && !who.HasScope(n.scope) {
			return errs.Errorf(op, errs.Forbidden, "the access token lacks the scope %q", n.scope)
		}
		if ch, ok := a.cfg.Gateway.Channels[who.Channel]; ok && len(ch.Routes) > 0 {
			route := c.Method() + " " + c.Route().Path
			allowed := false
			for _, r := range ch.Routes {
				// HEAD is GET without the body.
				if r == route || c.Method() == fiber.MethodHead && r == fiber.MethodGet+" "+c.Route().Path {
					allowed = true
					break
				}
			}
			if !allowed {
				return errs.Errorf(op, errs.Forbidden, "the %s channel may not call %s", who.Channel, route)
			}
		}
		return c.Next()
	}
}

// staffOf reports whether the caller is staff of the organizer of event.
func (a *API) staffOf(who *Caller, event string) bool {
	if a.deps.Catalog == nil {
		return false
	}
	e, _, ok := a.deps.Catalog.Event(event)
	return ok && e.OrganizerID != "" && who.HasScope(identity.RoleStaffPrefix+e.OrganizerID)
}
