// Package httpapi is the edge's public HTTP API (REST under /v1, described
// by the OpenAPI 3.1 document it serves at /v1/openapi.json). It validates
// and routes; it decides nothing about inventory: holds go to the partition
// owners through the Inventory interface (NATS over the edge's leaf node).
// Organizers' reports (/v1/reports/...) come from the reporting and
// analytics services through the Reports and Funnels interfaces, for
// callers with the admin role or the staff role of the event's organizer.
// Accounts, sessions and partner clients are
// the identity service's (the Identity interface); the gateway (gateway.go)
// decides who calls and what each route allows.
package httpapi

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity/client"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/inventory"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return openAPI }

// Inventory is what the API needs of the inventory owners.
type Inventory interface {
	Hold(ctx context.Context, partition string, r inventory.HoldRequest) (inventory.Hold, error)
	Get(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error)
	Release(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error)
	Availability(ctx context.Context, partition string) (inventory.Availability, error)
}

// CatalogAdmin is what the API needs to administer the catalog.
type CatalogAdmin interface {
	CreateVenue(ctx context.Context, token string, v catalog.Venue) error
	CreateEvent(ctx context.Context, token string, e catalog.Event) error
}

// Config tunes the API.
type Config struct {
	// AvailabilityTTL is how long a partition's availability is served from
	// the edge's cache. Default 500ms.
	AvailabilityTTL time.Duration
	// RequestTimeout bounds a call to the core. Default 5s.
	RequestTimeout time.Duration
	// BodyLimit bounds request bodies. Default 4 MiB (admin venues).
	BodyLimit int
	// HoldLimit bounds hold requests per client address (when Deps.Limiter
	// is set). Default 10 a second, bursts of 20.
	HoldLimit ratelimit.Limit
	// CheckoutLimit bounds quotes and orders per caller (when
	// Deps.Limiter is set): every quote is stored. Default 5 a second,
	// bursts of 20.
	CheckoutLimit ratelimit.Limit
	// AdminToken is the bootstrap admin token: it may only give accounts
	// roles (PUT /v1/admin/accounts/{id}/roles), to make the first admin.
	// Empty: no bootstrap.
	AdminToken string
	// AuthTimeout bounds a call to the identity service (a sign-up or
	// sign-in hashes a password there). Default 20s.
	AuthTimeout time.Duration
	// AuthLimit bounds the accounts routes (sign-up, sign-in, reset,
	// refresh) per client address; AuthAccountLimit sign-ins per e-mail
	// address. Defaults 10 a minute with bursts of 20, and 5 a minute
	// with bursts of 10.
	AuthLimit, AuthAccountLimit ratelimit.Limit
	// Gateway configures authentication and channels.
	Gateway GatewayConfig
	// Issuer is the access tokens' issuer, the authorization server's
	// identifier in its metadata (/.well-known/oauth-authorization-server);
	// empty: no metadata.
	Issuer string
	// PublicURL is the site's public base URL (scheme://host[:port]):
	// where a 3-D Secure challenge returns the buyer. Empty: the
	// request's own origin.
	PublicURL string
	// PaymentURL is the payment service's public base URL, whose card
	// page the checkout page frames; empty: no card entry on the pages.
	PaymentURL string
	// PayTimeout bounds a payment's call to the core (it waits for the
	// gateway). Default 40s.
	PayTimeout time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.AvailabilityTTL == 0 {
		c.AvailabilityTTL = 500 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.BodyLimit == 0 {
		c.BodyLimit = 4 << 20
	}
	if c.HoldLimit == (ratelimit.Limit{}) {
		c.HoldLimit = ratelimit.PerSecond(10, 20)
	}
	if c.CheckoutLimit == (ratelimit.Limit{}) {
		c.CheckoutLimit = ratelimit.PerSecond(5, 20)
	}
	if c.AuthTimeout == 0 {
		c.AuthTimeout = 20 * time.Second
	}
	if c.AuthLimit == (ratelimit.Limit{}) {
		c.AuthLimit = ratelimit.PerMinute(10, 20)
	}
	if c.AuthAccountLimit == (ratelimit.Limit{}) {
		c.AuthAccountLimit = ratelimit.PerMinute(5, 10)
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = 40 * time.Second
	}
}

// Validate checks the config: PublicURL and PaymentURL, when set, are
// http or https URLs with a host and nothing after the path.
func (c *Config) Validate() error {
	for _, u := range []struct{ name, url string }{{"public URL", c.PublicURL}, {"payment URL", c.PaymentURL}} {
		if u.url == "" {
			continue
		}
		if _, err := originOf(u.url); err != nil {
			return fmt.Errorf("edge: the %s: %w", u.name, err)
		}
	}
	return nil
}

// originOf is the origin (scheme://host[:port]) of an http or https URL
// without user, query or fragment.
func originOf(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q is not an http(s)://host[:port][/path] URL", raw)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// Deps are the API's collaborators.
type Deps struct {
	Catalog   *catalog.Cache
	Inventory Inventory
	Admin     CatalogAdmin
	// Reports answers event reports, Funnels on-sale funnels; nil: their
	// endpoints answer 503.
	Reports Reports
	Funnels Funnels
	// Gate checks admission tokens on holds for events whose waiting room
	// is on; nil: such holds are refused (503).
	Gate Gate
	// Limiter keeps the per-caller and per-address limits; nil: no limit.
	Limiter ratelimit.Limiter
	// Identity is the identity service (accounts, sign-in, sessions);
	// nil: the accounts routes answer 503.
	Identity Identity
	// Tokens verifies access tokens with TokenKeys (refreshed once when a
	// token names an unknown key); nil: every caller is anonymous.
	Tokens    *token.Verifier
	TokenKeys *keyring.Remote
	// MailBox, when set, is served at /dev/mail (ticketing dev only).
	MailBox MailBox
	// Orders is the orders service; nil: the orders routes answer 503.
	Orders Orders
	// Tickets is the tickets service; nil: the tickets routes answer 503.
	Tickets Tickets
	// Queue is the edge's waiting rooms; nil: no event has one (the queue
	// endpoints answer 404, the key set 503).
	Queue WaitingRoom
	// JoinGuard applies the join limits and proof of work; nil: none.
	JoinGuard JoinGuard
	// HoldLimit, when set, is the hold limit now (live settings); nil:
	// Config.HoldLimit.
	HoldLimit func() ratelimit.Limit
	// HoldGate, when set, may refuse a hold of an event before anything
	// else is asked of it (a sales kill switch).
	HoldGate func(c *fiber.Ctx, e catalog.Event) error
	// Middleware, when set, runs before every route but /metrics (drain
	// mode).
	Middleware fiber.Handler
	// Ready reports how the edge's components are doing (nil: ready).
	Ready    func() supervisor.Report
	Log      *slog.Logger
	Registry *prometheus.Registry // /metrics serves it; nil: no metrics
}

// API is the edge's HTTP API.
type API struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	avail availabilityCache
	// adminDigest is the SHA-256 of Config.AdminToken; nil when none is set.
	adminDigest *[32]byte
	// routes answers which methods a path has (405 and Allow).
	routes *routeTable
	// verified are the access tokens verified already (tokencache.go).
	verified verifiedTokens

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	limited  *prometheus.CounterVec
	// admissions counts admission-token checks on holds by outcome ("ok"
	// or the refusal's reason).
	admissions *prometheus.CounterVec
}

// New builds the Fiber app.
func New(cfg Config, deps Deps) *fiber.App {
	cfg.Defaults()
	a := &API{cfg: cfg, deps: deps, log: deps.Log}
	a.avail.ttl = cfg.AvailabilityTTL
	if cfg.AdminToken != "" {
		d := tokenDigest(cfg.AdminToken)
		a.adminDigest = &d
	}
	app := fiber.New(fiber.Config{
		AppName:               "ticketing-edge",
		ErrorHandler:          a.errorHandler,
		BodyLimit:             cfg.BodyLimit,
		DisableStartupMessage: true,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
	})
	// Waiting-room WebSockets outlive their upgrade handler: the room
	// takes the raw socket and fasthttp must not close it (package queue's
	// package doc says why).
	app.Server().KeepHijackedConns = true
	app.Use(a.trace)
	if deps.Registry != nil {
		a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_http_requests_total", Help: "HTTP requests by route, method and status."},
			[]string{"route", "method", "status"})
		a.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ticketing_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"route"})
		a.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_http_rate_limited_total", Help: "Requests refused by a rate limit, and limiter failures (let through)."},
			[]string{"limit", "outcome"})
		a.admissions = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_admission_checks_total", Help: "Admission-token checks on holds, by outcome (ok or the refusal's reason)."},
			[]string{"outcome"})
		deps.Registry.MustRegister(a.requests, a.latency, a.limited, a.admissions)
		app.Use(a.observe)
		metrics := fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{}))
		app.Get("/metrics", func(c *fiber.Ctx) error { metrics(c.Context()); return nil })
	}
	if deps.Middleware != nil {
		app.Use(deps.Middleware)
	}
	app.Use(a.authenticate)
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", a.readyz)
	var (
		buyer     = a.allow(need{caller: true, scope: "holds:write"})
		buyerRead = a.allow(need{caller: true, scope: "holds:read"})
		user      = a.allow(need{user: true})
		admin     = a.allow(need{admin: true})
		staff     = a.allow(need{staff: true})
		// Orders: an account's or a partner client's, by scope.
		orderWrite = a.allow(need{caller: true, scope: "orders:write"})
		orderRead  = a.allow(need{caller: true, scope: "orders:read"})
		// open is the check of the routes any caller may call: the
		// caller's channel's route list (GatewayConfig.Channels) only.
		open = a.allow(need{})
	)
	v1 := app.Group("/v1")
	v1.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, "application/json")
		return c.Send(openAPI)
	})
	v1.Get("/events", open, a.listEvents)
	v1.Get("/events/:id", open, a.getEvent)
	v1.Get("/events/:id/availability", open, a.availability)
	v1.Post("/events/:id/holds", buyer, a.createHold)
	v1.Get("/holds/:id", buyerRead, a.getHold)
	v1.Delete("/holds/:id", buyer, a.releaseHold)
	v1.Post("/quotes", orderWrite, a.createQuote)
	v1.Post("/orders", orderWrite, a.createOrder)
	v1.Get("/orders/:id", orderRead, a.getOrder)
	v1.Get("/orders/:id/tickets", orderRead, a.orderTickets)
	v1.Post("/orders/:id/pay", orderWrite, a.payOrder)
	v1.Post("/orders/:id/cancel", orderWrite, a.cancelOrder)
	v1.Get("/orders/:id/return", open, a.paymentReturn)
	v1.Get("/me/orders", orderRead, a.myOrders)
	v1.Get("/me/tickets", orderRead, a.myTickets)
	v1.Post("/admin/orders/:id/refund", user, a.refundOrder)
	v1.Get("/admin/events/:id/prices", staff, a.getPrices)
	v1.Get("/admin/events/:id/gate", staff, a.eventGate)
	v1.Post("/admin/events/:id/scans", staff, a.scanTicket)
	v1.Put("/admin/events/:id/prices", staff, a.putPrices)
	v1.Put("/admin/vouchers/:code", admin, a.putVoucher)
	v1.Post("/admin/venues", admin, a.createVenue)
	v1.Post("/admin/events", admin, a.createEvent)
	v1.Put("/admin/accounts/:id/roles", open, a.setRoles)
	v1.Get("/reports/events/:id", staff, a.eventReport)
	v1.Get("/reports/events/:id/funnel", staff, a.eventFunnel)
	v1.Get("/events/:id/queue", open, a.queueSocket)
	v1.Post("/events/:id/queue/join", open, a.queueJoin)
	v1.Get("/events/:id/queue/status", open, a.queueStatus)
	v1.Get("/events/:id/queue/challenge", open, a.queueChallenge)
	v1.Get("/events/:id/queue/draw", open, a.queueDraw)
	v1.Post("/auth/signup", open, a.signUp)
	v1.Post("/auth/verify", open, a.verifyEmail)
	v1.Post("/auth/verify/resend", open, a.mailing(idapi.OpResend))
	v1.Post("/auth/signin", open, a.signIn)
	v1.Post("/auth/signin/second-factor", open, a.secondFactor)
	v1.Post("/auth/token", open, a.token)
	v1.Post("/auth/introspect", open, a.introspect)
	v1.Post("/admin/clients", admin, a.createClient)
	v1.Put("/admin/clients/:id/disabled", admin, a.disableClient)
	v1.Post("/auth/refresh", open, a.refreshCookie)
	v1.Post("/auth/signout", user, a.signOut)
	v1.Post("/auth/password/forgot", open, a.mailing(idapi.OpForgot))
	v1.Post("/auth/password/reset", open, a.resetPassword)
	v1.Get("/auth/jwks.json", open, a.accessKeys)
	v1.Get("/account", user, a.profile)
	v1.Get("/account/sessions", user, a.sessions)
	v1.Delete("/account/sessions/:id", user, a.revokeSession)
	v1.Post("/account/password", user, a.changePassword)
	v1.Post("/account/totp", user, a.totpBegin)
	v1.Post("/account/totp/confirm", user, a.totpConfirm)
	v1.Post("/account/totp/disable", user, a.totpDisable)
	v1.Post("/account/recovery-codes", user, a.recoveryCodes)
	v1.Post("/account/passkeys/begin", user, a.passkeyBegin(idapi.OpPasskeyRegisterBegin))
	v1.Post("/account/passkeys", user, a.passkeyRegister)
	v1.Post("/account/passkeys/:id/remove", user, a.passkeyRemove)
	v1.Post("/auth/passkey/begin", open, a.passkeyBegin(idapi.OpPasskeySignInBegin))
	v1.Post("/auth/passkey/finish", open, a.passkeySignIn(idapi.OpPasskeySignInFinish))
	v1.Post("/auth/signin/passkey/begin", open, a.passkeyBegin(idapi.OpPasskeyMFABegin))
	v1.Post("/auth/signin/passkey/finish", open, a.passkeySignIn(idapi.OpPasskeyMFAFinish))
	app.Get("/.well-known/jwks.json", open, a.jwks)
	app.Get(client.WellKnownPath, open, a.metadata)
	if deps.MailBox != nil {
		app.Get("/dev/mail", open, a.devMailList)
		app.Get("/dev/mail/:id", open, a.devMailRead)
	}
	a.pages(app)
	a.routes = newRouteTable(app)
	wrapUnknownMethods(app, a.routes)
	return app
}

func (a *API) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := a.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	route := c.Route().Path
	if route == "" || route == "/" {
		route = "unmatched"
	}
	// c.Method() points into fasthttp's reused request buffer: the registry
	// keeps label values, so they must be copies.
	a.requests.WithLabelValues(route, strings.Clone(c.Method()), strconv.Itoa(c.Response().StatusCode())).Inc()
	a.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	return nil
}

// limit applies a rate limit to the client's address. A limiter that
// cannot answer lets the request through: the inventory is protected by its
// owners, and an on-sale must not stop because a cache did.
func (a *API) limit(c *fiber.Ctx, name string, l ratelimit.Limit) error {
	return a.limitKey(c, name, c.IP(), l)
}

// setRateLimitHeaders sets the RateLimit header fields of a decision (and
// Retry-After when it was denied) on the response.
func setRateLimitHeaders(c *fiber.Ctx, d ratelimit.Decision) {
	d.EachHeader(func(k, v string) { c.Set(k, v) })
}

func (a *API) count(limit, outcome string) {
	if a.limited != nil {
		a.limited.WithLabelValues(limit, outcome).Inc()
	}
}

func (a *API) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.cfg.RequestTimeout)
}

// readyz serves the supervisor's report: each component's state, 200 when
// every one is ready, else 503.
func (a *API) readyz(c *fiber.Ctx) error {
	r := supervisor.Report{Status: "ready", Components: []supervisor.ComponentReport{}}
	if a.deps.Ready != nil {
		r = a.deps.Ready()
	}
	if !r.Ready() {
		c.Status(fiber.StatusServiceUnavailable)
		c.Set(fiber.HeaderRetryAfter, "1")
	}
	return c.JSON(r)
}

// availabilityCache serves a partition's availability for a short time, and
// lets one request at a time fetch it from the owner.
type availabilityCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*availEntry
}

type availEntry struct {
	at    time.Time
	ready chan struct{}
	a     inventory.Availability
	err   error
}

// forget drops a partition's cached availability, so that this edge's next
// read after its own hold or release sees it. Readers already waiting on a
// fetch keep its result; later readers start a new one.
func (c *availabilityCache) forget(partition string) {
	c.mu.Lock()
	delete(c.m, partition)
	c.mu.Unlock()
}

func (c *availabilityCache) get(ctx context.Context, partition string, fetch func(context.Context) (inventory.Availability, error)) (inventory.Availability, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*availEntry{}
	}
	e, ok := c.m[partition]
	if ok {
		select {
		case <-e.ready:
			if e.err == nil && time.Since(e.at) < c.ttl {
				c.mu.Unlock()
				return e.a, nil
			}
		default:
			c.mu.Unlock()
			select {
			case <-e.ready:
				return e.a, e.err
			case <-ctx.Done():
				return inventory.Availability{}, errs.E("edge.availability", errs.Unavailable, ctx.Err())
			}
		}
	}
	e = &availEntry{ready: make(chan struct{})}
	c.m[partition] = e
	c.mu.Unlock()
	e.a, e.err = fetch(ctx)
	e.at = time.Now()
	close(e.ready)
	return e.a, e.err
}
