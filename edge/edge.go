// Package edge is the regional edge runtime: the public HTTP API, the
// catalog cache browsing is served from, the waiting rooms and admission,
// and per-client rate limits. An edge decides nothing about inventory; it
// runs an embedded leaf nats-server joined to the core and sends holds over
// it to the partition owners, catalog administration to the catalog service,
// organizers' report queries to the reporting and analytics services, and
// accounts and sign-in to the identity service, whose access tokens it
// checks itself with the public keys it fetches from the core.
// Start wires one edge under the process's supervisor, which stops it in
// order.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/queue"
	"github.com/ticketing/ticketing/edge/ratelimit"
	memorylimit "github.com/ticketing/ticketing/edge/ratelimit/memory"
	redislimit "github.com/ticketing/ticketing/edge/ratelimit/redis"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/admission"
	admissionapi "github.com/ticketing/ticketing/services/admission/natsapi"
	redisspent "github.com/ticketing/ticketing/services/admission/redis"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	"github.com/ticketing/ticketing/services/catalog/natskv"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/identity/auth"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
	maildir "github.com/ticketing/ticketing/services/mail/dir"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	queueapi "github.com/ticketing/ticketing/services/queue/natsapi"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
)

// Config configures an edge process.
type Config struct {
	// HTTPAddr is where the public API listens. Default 127.0.0.1:8080.
	HTTPAddr string
	Leaf     leafnodes.EdgeConfig
	API      httpapi.Config
	// RateLimit chooses where per-client limits are kept.
	RateLimit RateLimitConfig
	// Queue configures the waiting rooms (Queue.Edge defaults to the leaf
	// server's name; QueueOn is the catalog's).
	Queue queue.Config
	// JoinGuard tunes the join limits and proof of work (off with
	// RateLimit.Disabled).
	JoinGuard joinguard.Config
	// KeysRefresh is how often the admission public keys are fetched from
	// the core. Default 15s.
	KeysRefresh time.Duration
	// NoQueueEvents turns off the waiting room's domain events
	// (ticketing.queue.joined and .admitted), which the edge otherwise
	// writes into the core's EVENTS stream on events.queue.<event> (the
	// edge user may publish "events.queue.>" and nothing else there,
	// conf/nats/core.conf).
	NoQueueEvents bool
	// StartTimeout bounds waiting for the core (leaf connection and
	// catalog). Default 60s.
	StartTimeout time.Duration
	// Settings: the live settings and feature flags (settings.go).
	Settings SettingsConfig
	// HTTPTLS, when set, serves the API over HTTPS with this certificate
	// and key (no client certificates). Zero: plain HTTP.
	HTTPTLS tlsconf.Files
	// AccessTokens: issuer, audience and lifetimes of the access tokens
	// the edge checks. An empty issuer or audience is the identity
	// service's, asked at start.
	AccessTokens token.Config
	// DevMailDir, when set, is the development mail sink the core writes
	// to (the same process: ticketing dev), served at /dev/mail.
	DevMailDir string
}

// RateLimitConfig chooses the rate limiter: Redis when RedisAddr is set (so
// that every edge of a region shares the counts), else in-process.
type RateLimitConfig struct {
	Disabled      bool   // no limits at all (benchmarks)
	RedisAddr     string // "host:port"
	RedisPassword string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.Leaf.Name == "" {
		c.Leaf.Name = "edge-1"
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
	if c.Queue.Edge == "" {
		c.Queue.Edge = c.Leaf.Name
	}
	if c.KeysRefresh == 0 {
		c.KeysRefresh = 15 * time.Second
	}
	c.API.Defaults()
	c.Queue.Defaults()
	if !c.HTTPTLS.IsZero() {
		c.API.Gateway.SecureCookies = true
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("edge: http address %q: %w", c.HTTPAddr, err)
	}
	if t := c.API.AdminToken; t != "" && len(t) < 16 {
		return errors.New("edge: the admin token must be at least 16 characters")
	}
	if c.KeysRefresh < time.Second {
		return errors.New("edge: keys refresh must be at least 1s")
	}
	return errors.Join(c.Leaf.Validate(), c.Queue.Validate(), c.API.Validate())
}

// Edge is a running edge.
type Edge struct {
	Leaf      *server.Server
	NC        *nats.Conn
	Catalog   *catalog.Cache
	Inventory *natsapi.Client
	App       *fiber.App
	Registry  *prometheus.Registry
	// Rooms are the waiting rooms of the queue-on events.
	Rooms  *queue.Manager
	ln     net.Listener
	redis  *goredis.Client
	events *queue.JetStreamEvents
	log    *slog.Logger

	// Settings are the live settings and feature flags (settings.go).
	Settings *Settings
}

// Start starts the edge and adds its components to sup in start order: the
// leaf server, the Redis client, the connection, the catalog's follower,
// the admission keys' refresh, the waiting rooms' events and the waiting
// rooms, and last the HTTP listener, which the supervisor's reverse order
// stops first. When Start fails, what it started is left to sup. The API's
// metrics are registered with reg and served with everything else in it at
// /metrics; /readyz serves sup's report.
func Start(ctx context.Context, cfg Config, sup *supervisor.Supervisor, log *slog.Logger, reg *prometheus.Registry) (*Edge, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Edge{log: log.With("component", "edge", "edge", cfg.Leaf.Name)}
	var err error
	if e.Leaf, err = leafnodes.StartEdge(cfg.Leaf, log); err != nil {
		return nil, err
	}
	if err := natsembed.Supervise(sup, "nats-leaf", e.Leaf, e.connected); err != nil {
		return nil, err
	}
	limiter, err := e.limiter(sup, cfg.RateLimit)
	if err != nil {
		return nil, err
	}
	e.NC, err = natsembed.SuperviseConn(sup, "nats-conn", func(o ...nats.Option) (*nats.Conn, error) {
		return natsembed.Connect(e.Leaf, append([]nats.Option{nats.Name(cfg.Leaf.Name), nats.MaxReconnects(-1)}, o...)...)
	})
	if err != nil {
		return nil, err
	}
	sctx, scancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer scancel()
	if err := leafnodes.WaitConnected(sctx, e.Leaf); err != nil {
		return nil, err
	}
	js, err := jetstream.NewWithDomain(e.NC, jsnames.Domain)
	if err != nil {
		return nil, err
	}
	kv, err := waitBucket(sctx, js, jsnames.CatalogBucket)
	if err != nil {
		return nil, err
	}
	e.Catalog = catalog.NewCache()
	if _, err := sup.Start(supervisor.Component{Name: "catalog-follower", Run: func(ctx context.Context) error {
		return natskv.Follow(ctx, kv, e.Catalog, log)
	}}); err != nil {
		return nil, err
	}
	select {
	case <-e.Catalog.Ready():
	case <-sup.Failed():
		return nil, errors.New("edge: a component failed while the catalog loaded")
	case <-sctx.Done():
		return nil, fmt.Errorf("edge: catalog not loaded: %w", sctx.Err())
	}
	e.Inventory = &natsapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout}
	e.Registry = reg
	if e.Settings, err = e.followSettings(js, &cfg, sup, cfg.API.HoldLimit, reg); err != nil {
		return nil, err
	}
	// Access tokens are checked here with the identity service's public
	// keys, refreshed like the admission keys.
	ids := &idapi.Client{NC: e.NC, Timeout: cfg.API.AuthTimeout}
	if err := e.tokenConfig(sctx, ids, &cfg.AccessTokens); err != nil {
		return nil, err
	}
	cfg.API.Issuer = cfg.AccessTokens.Issuer
	tokenKeys := keyring.NewRemote("access token", ids, e.log)
	if _, err := sup.Start(supervisor.Component{Name: "access-token-keys", Run: func(ctx context.Context) error {
		tokenKeys.Follow(ctx, cfg.KeysRefresh)
		return nil
	}}); err != nil {
		return nil, err
	}
	verifier, err := token.NewVerifier(tokenKeys, cfg.AccessTokens)
	if err != nil {
		return nil, err
	}
	gate, guard, err := e.waitingRooms(&cfg, sup, limiter, reg)
	if err != nil {
		return nil, err
	}
	deps := httpapi.Deps{
		Catalog: e.Catalog, Inventory: e.Inventory, Admin: &catalogapi.Client{NC: e.NC},
		Reports: &reportingapi.Client{NC: e.NC}, Funnels: &analyticsapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout},
		Limiter: limiter, Ready: sup.Report, Log: e.log, Registry: e.Registry,
		Queue: e.Rooms, Gate: gate,
		Identity: ids, Tokens: verifier, TokenKeys: tokenKeys,
		Orders:    &ordersapi.Client{NC: e.NC, Timeout: cfg.API.PayTimeout + 5*time.Second},
		Tickets:   &ticketsapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout},
		HoldLimit: e.Settings.HoldLimit, HoldGate: e.Settings.SalesOpen, Middleware: e.Settings.Drain,
	}
	if guard != nil {
		deps.JoinGuard = guard
	}
	if cfg.DevMailDir != "" {
		box, err := maildir.New(cfg.DevMailDir)
		if err != nil {
			return nil, err
		}
		deps.MailBox = box
	}
	e.App = httpapi.New(cfg.API, deps)
	if e.ln, err = listen(cfg.HTTPAddr, cfg.HTTPTLS); err != nil {
		return nil, err
	}
	if _, err := sup.Start(httpComponent(e.App, e.ln)); err != nil {
		return nil, err
	}
	e.log.Info("edge started", "http", e.URL())
	return e, nil
}

// waitingRooms starts the waiting rooms, the admission keys' refresh, the
// verifier of the hold gate and the join guard.
func (e *Edge) waitingRooms(cfg *Config, sup *supervisor.Supervisor, limiter ratelimit.Limiter, reg prometheus.Registerer) (*queue.Gate, *joinguard.Guard, error) {
	adm := &admissionapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout}
	qc := cfg.Queue
	qc.RequestTimeout = cfg.API.RequestTimeout
	qc.QueueOn = func(id string) bool {
		ev, _, ok := e.Catalog.Event(id)
		return ok && ev.Queue
	}
	if !cfg.NoQueueEvents {
		var err error
		if e.events, err = queue.NewJetStreamEvents(e.NC, jsnames.Domain, cfg.Leaf.Name, 65536, e.log); err != nil {
			return nil, nil, err
		}
		if _, err := sup.Add("waiting-room-events", func(ctx context.Context) error { e.events.Close(ctx); return nil }); err != nil {
			return nil, nil, err
		}
		qc.Events = e.events
	}
	var err error
	e.Rooms, err = queue.New(qc, queue.NATSCore{Client: &queueapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout}}, adm, e.log, reg)
	if err != nil {
		return nil, nil, err
	}
	// Every socket is closed with 1001 "going away", reports stop.
	if _, err := sup.Add("waiting-rooms", e.Rooms.Shutdown); err != nil {
		return nil, nil, err
	}
	keys := queue.NewKeys(adm, e.log)
	if _, err := sup.Start(supervisor.Component{Name: "admission-keys", Run: func(ctx context.Context) error {
		keys.Follow(ctx, cfg.KeysRefresh)
		return nil
	}}); err != nil {
		return nil, nil, err
	}
	var spent admission.SpentStore
	if e.redis != nil {
		spent, err = redisspent.New(e.redis, redisspent.Config{})
	} else {
		spent, err = admission.NewMemorySpentStore(admission.MemorySpentConfig{})
	}
	if err != nil {
		return nil, nil, err
	}
	verifier, err := admission.NewVerifier(keys, spent, admission.Config{})
	if err != nil {
		return nil, nil, err
	}
	if cfg.RateLimit.Disabled {
		return &queue.Gate{Rooms: e.Rooms, Verifier: verifier, Keys: keys}, nil, nil
	}
	gc := cfg.JoinGuard
	if gc.Log == nil {
		gc.Log = e.log
	}
	guard, err := joinguard.New(gc, limiter)
	if err != nil {
		return nil, nil, err
	}
	return &queue.Gate{Rooms: e.Rooms, Verifier: verifier, Keys: keys}, guard, nil
}

// limiter builds the rate limiter the config asks for.
func (e *Edge) limiter(sup *supervisor.Supervisor, c RateLimitConfig) (ratelimit.Limiter, error) {
	switch {
	case c.Disabled:
		return nil, nil
	case c.RedisAddr != "":
		e.redis = goredis.NewClient(&goredis.Options{Addr: c.RedisAddr, Password: c.RedisPassword,
			DialTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
		if _, err := sup.Add("redis", func(context.Context) error { return e.redis.Close() }); err != nil {
			return nil, err
		}
		e.log.Info("rate limits kept in Redis", "addr", c.RedisAddr)
		return redislimit.New(e.redis, redislimit.Config{})
	default:
		return memorylimit.New(memorylimit.Config{})
	}
}

// tokenConfig fills the access tokens' issuer and audience that are not
// configured with the identity service's, waiting for it to answer.
func (e *Edge) tokenConfig(ctx context.Context, ids *idapi.Client, c *token.Config) error {
	if c.Issuer == "" || c.Audience == "" {
		for {
			var got idapi.Config
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := ids.Call(cctx, idapi.OpConfig, struct{}{}, &got)
			cancel()
			if err == nil {
				if c.Audience == "" {
					c.Audience = got.Audience
				}
				auth.TokenDefaults(c, got.Issuer)
				break
			}
			if !pause.For(ctx, 200*time.Millisecond) {
				return fmt.Errorf("edge: the identity service's token issuer: %w (last error: %v)", ctx.Err(), err)
			}
		}
	}
	auth.TokenDefaults(c, "")
	return c.Validate()
}

// waitBucket opens a key-value bucket in the core, waiting for the core to
// have created it.
func waitBucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	for {
		kv, err := js.KeyValue(ctx, name)
		if err == nil {
			return kv, nil
		}
		if !pause.For(ctx, 200*time.Millisecond) {
			return nil, fmt.Errorf("edge: bucket %s: %w (last error: %v)", name, ctx.Err(), err)
		}
	}
}

// connected is the leaf server's readiness: joined to the core.
func (e *Edge) connected() error {
	if e.Leaf.NumLeafNodes() == 0 {
		return errors.New("no connection to the core")
	}
	return nil
}

// URL is the HTTP API's base URL.
func (e *Edge) URL() string { return scheme(e.ln) + "://" + e.ln.Addr().String() }

// LeafClientURL is where NATS clients can reach the edge's leaf server, or
// "" when it does not listen for clients.
func (e *Edge) LeafClientURL() string {
	if e.Leaf.Addr() == nil {
		return ""
	}
	return e.Leaf.ClientURL()
}
