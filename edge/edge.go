// Package edge is the regional edge runtime: the public HTTP API, edge caches
// and (later) the waiting room and rate limits. An edge decides nothing about
// inventory; it runs an embedded leaf nats-server joined to the core and
// sends holds over it to the partition owners, catalog administration to the
// catalog service and organizers' report queries to the reporting and
// analytics services. Start wires one edge; Shutdown stops it in order.
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

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/edge/ratelimit"
	memorylimit "github.com/ticketing/ticketing/edge/ratelimit/memory"
	redislimit "github.com/ticketing/ticketing/edge/ratelimit/redis"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/leafnodes"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	"github.com/ticketing/ticketing/services/catalog/natskv"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
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
	// StartTimeout bounds waiting for the core (leaf connection and
	// catalog). Default 60s.
	StartTimeout time.Duration
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
	c.API.Defaults()
}

// Validate checks the config.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("edge: http address %q: %w", c.HTTPAddr, err)
	}
	if t := c.API.AdminToken; t != "" && len(t) < 16 {
		return errors.New("edge: the admin token must be at least 16 characters")
	}
	return c.Leaf.Validate()
}

// Edge is a running edge.
type Edge struct {
	Leaf      *server.Server
	NC        *nats.Conn
	Catalog   *catalog.Cache
	Inventory *natsapi.Client
	App       *fiber.App
	Registry  *prometheus.Registry
	ln        net.Listener
	redis     *goredis.Client
	cancel    context.CancelFunc
	served    chan error
	log       *slog.Logger
}

// Start starts the leaf server, waits for the core and the catalog, and
// serves HTTP. The API's metrics are registered with reg and served with
// everything else in it at /metrics.
func Start(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry) (*Edge, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Edge{log: log.With("component", "edge", "edge", cfg.Leaf.Name), served: make(chan error, 1)}
	fail := func(err error) (*Edge, error) {
		e.Shutdown(context.Background())
		return nil, err
	}
	var err error
	if e.Leaf, err = leafnodes.StartEdge(cfg.Leaf, log); err != nil {
		return nil, err
	}
	if e.NC, err = nats.Connect("", nats.InProcessServer(e.Leaf), nats.Name(cfg.Leaf.Name), nats.MaxReconnects(-1)); err != nil {
		return fail(err)
	}
	sctx, scancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer scancel()
	if err := leafnodes.WaitConnected(sctx, e.Leaf); err != nil {
		return fail(err)
	}
	js, err := jetstream.NewWithDomain(e.NC, node.Domain)
	if err != nil {
		return fail(err)
	}
	kv, err := waitBucket(sctx, js, streams.CatalogBucket)
	if err != nil {
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.Catalog = catalog.NewCache()
	if err := natskv.Follow(runCtx, kv, e.Catalog, log); err != nil {
		return fail(err)
	}
	select {
	case <-e.Catalog.Ready():
	case <-sctx.Done():
		return fail(fmt.Errorf("edge: catalog not loaded: %w", sctx.Err()))
	}
	e.Inventory = &natsapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout}
	limiter, err := e.limiter(cfg.RateLimit)
	if err != nil {
		return fail(err)
	}
	e.Registry = reg
	if cfg.API.AdminToken == "" {
		e.log.Warn("no admin token configured: the report endpoints refuse every request")
	}
	e.App = httpapi.New(cfg.API, httpapi.Deps{
		Catalog: e.Catalog, Inventory: e.Inventory, Admin: &catalogapi.Client{NC: e.NC},
		Reports: &reportingapi.Client{NC: e.NC}, Funnels: &analyticsapi.Client{NC: e.NC, Timeout: cfg.API.RequestTimeout},
		Limiter: limiter, Ready: e.ready, Log: e.log, Registry: e.Registry,
	})
	if e.ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return fail(err)
	}
	go func() { e.served <- e.App.Listener(e.ln) }()
	e.log.Info("edge started", "http", e.URL())
	return e, nil
}

// limiter builds the rate limiter the config asks for.
func (e *Edge) limiter(c RateLimitConfig) (ratelimit.Limiter, error) {
	switch {
	case c.Disabled:
		return nil, nil
	case c.RedisAddr != "":
		e.redis = goredis.NewClient(&goredis.Options{Addr: c.RedisAddr, Password: c.RedisPassword,
			DialTimeout: 2 * time.Second, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond})
		e.log.Info("rate limits kept in Redis", "addr", c.RedisAddr)
		return redislimit.New(e.redis, redislimit.Config{})
	default:
		return memorylimit.New(memorylimit.Config{})
	}
}

// waitBucket opens a key-value bucket in the core, waiting for the core to
// have created it.
func waitBucket(ctx context.Context, js jetstream.JetStream, name string) (jetstream.KeyValue, error) {
	for {
		kv, err := js.KeyValue(ctx, name)
		if err == nil {
			return kv, nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("edge: bucket %s: %w (last error: %v)", name, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func (e *Edge) ready() error {
	if e.Leaf.NumLeafNodes() == 0 {
		return errors.New("no connection to the core")
	}
	return nil
}

// URL is the HTTP API's base URL.
func (e *Edge) URL() string { return "http://" + e.ln.Addr().String() }

// LeafClientURL is where NATS clients can reach the edge's leaf server, or
// "" when it does not listen for clients.
func (e *Edge) LeafClientURL() string {
	if e.Leaf.Addr() == nil {
		return ""
	}
	return e.Leaf.ClientURL()
}

// Shutdown stops in order: HTTP (in-flight requests finish), catalog
// following, the connection, the leaf server.
func (e *Edge) Shutdown(ctx context.Context) {
	if e.App != nil {
		if err := e.App.ShutdownWithContext(ctx); err != nil {
			e.log.Warn("http shutdown", "err", err)
		}
	}
	if e.cancel != nil {
		e.cancel()
	}
	natsembed.Drain(ctx, e.NC)
	if e.redis != nil {
		_ = e.redis.Close()
	}
	natsembed.Shutdown(ctx, e.Leaf)
}
