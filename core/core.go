// Package core is the core-region runtime: the embedded clustered
// nats-server, the JetStream resources, partition ownership by lease, the
// inventory partition owners and the domain services that run beside them
// (catalog, waiting room and admission, settings, identity: identity.go,
// prices, orders and their saga: checkout.go).
// Start wires one core process under the process's supervisor, which
// stops it in order.
package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/owner"
	"github.com/ticketing/ticketing/core/partitions"
	"github.com/ticketing/ticketing/core/queue"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	"github.com/ticketing/ticketing/services/catalog/natskv"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/token"
	invapi "github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment/process"
)

// Config configures a core process.
type Config struct {
	Node    node.Config
	Streams streams.Config
	Owner   owner.Config
	// Queue is the waiting room's core side: controller, tokens, keys.
	Queue queue.Config
	// Identity is the identity service: accounts, sign-in, sessions.
	Identity IdentityConfig
	// Checkout is prices, orders and their saga (checkout.go).
	Checkout CheckoutConfig
	// AdminToken authorizes catalog administration from inside the core's
	// network, and, at the identity service, giving accounts roles (the
	// bootstrap of the first admin). Required.
	AdminToken string
	// Demo, when set, is loaded into the catalog at start (what exists is
	// left alone).
	Demo *catalog.Dataset
	// DemoPrices are the demo events' price lists and vouchers, written at
	// start when an event has no price list yet (vouchers: when absent).
	DemoPrices *DemoPrices
	// DemoAccounts are created at start when their addresses have no
	// account (verified, with their passwords and roles).
	DemoAccounts []auth.SeedAccount
	// StartTimeout bounds the start, cluster formation included. Default 60s.
	StartTimeout time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	c.Node.Defaults()
	if c.Owner.Node == "" {
		c.Owner.Node = c.Node.Name
	}
	if len(c.Node.Routes) > 0 && c.Streams.Replicas == 0 {
		c.Streams.Replicas = 3
	}
	c.Streams.Defaults()
	c.Owner.LeaseTTL = c.Streams.LeaseTTL
	c.Owner.Defaults()
	c.Queue.Defaults()
	c.Identity.Defaults(c.Node.DataDir)
	c.Checkout.Defaults()
	if c.StartTimeout == 0 {
		c.StartTimeout = 60 * time.Second
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if len(c.AdminToken) < 16 {
		return errors.New("core: the admin token must be at least 16 characters")
	}
	if c.Streams.Replicas > 1 && c.Owner.MaxInflight > 1 {
		// A clustered stream refuses a second in-flight message whose
		// expected-sequence check names the same subject (the partition's
		// fence).
		return errors.New("core: owners of a clustered log write one batch at a time (owner max inflight 1)")
	}
	return errors.Join(c.Node.Validate(), c.Streams.Validate(), c.Owner.Validate(), c.Queue.Validate(), c.Identity.Validate(), c.Checkout.Validate())
}

// Core is a running core process.
type Core struct {
	Node    *node.Node
	NC      *nats.Conn
	JS      jetstream.JetStream
	Streams *streams.Set
	Catalog *catalog.Cache
	Metrics *owner.Metrics
	// Identity is the identity service's flows (for tests and demo data).
	Identity *auth.Service
	// Checkout makes quotes and orders; its Saga carries them on.
	Checkout *orders.Checkout
	// Payment is the payment service when it runs in this process.
	Payment *process.Payment

	verifier atomic.Pointer[token.Verifier] // of access tokens, once identity started
	issuer   *token.Issuer
	// identityPool is the accounts' database, nil when they are in
	// JetStream.
	identityPool *pgxpool.Pool
	// mailer and accounts are the identity service's, for the
	// notifications (tickets.go).
	mailer   mail.Mailer
	accounts identity.Store
	cfg      Config
	log      *slog.Logger
	room     *queue.Room
	// settings: the config and flags services, the settings follower
	// (settings.go).
	settings *coreSettings
}

// Start starts a core process and adds its components to sup in start
// order: the server, its connections (requests and answers, the relay's
// events, log writes, snapshots), the catalog service, the catalog's
// follower, the owners, the waiting room. The supervisor stops them in the
// reverse order; when Start fails, what it started is left to sup, so the
// caller's sup.Shutdown stops it.
func Start(ctx context.Context, cfg Config, sup *supervisor.Supervisor, log *slog.Logger, reg prometheus.Registerer) (*Core, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	c := &Core{cfg: cfg, log: log.With("component", "core", "node", cfg.Node.Name)}
	var err error
	if c.Node, err = node.Start(sctx, cfg.Node, log); err != nil {
		return nil, err
	}
	if reg != nil {
		reg.MustRegister(c.Node.Collector()) // JetStream storage and the data directory's disk
	}
	if err := natsembed.Supervise(sup, "nats-server", c.Node.Server, c.jetStreamReady); err != nil {
		return nil, err
	}
	conn := func(suffix string) (*nats.Conn, error) {
		name := "core-" + cfg.Node.Name + suffix
		connect := c.Node.Connect
		if suffix == "-log" {
			// Over a socket, also when it is TLS: node.ConnectSocket says why.
			connect = c.Node.ConnectSocket
		}
		return natsembed.SuperviseConn(sup, "nats-conn"+suffix, func(o ...nats.Option) (*nats.Conn, error) {
			return connect(name, o...)
		})
	}
	var relayNC, logNC, snapNC *nats.Conn
	if c.NC, err = conn(""); err != nil {
		return nil, err
	}
	if relayNC, err = conn("-relay"); err != nil {
		return nil, err
	}
	if logNC, err = conn("-log"); err != nil {
		return nil, err
	}
	if snapNC, err = conn("-snapshots"); err != nil {
		return nil, err
	}
	if c.JS, err = jetstream.New(c.NC); err != nil {
		return nil, err
	}
	if c.Streams, err = ensureStreams(sctx, c.JS, cfg.Streams, c.log); err != nil {
		return nil, err
	}
	secret, err := sharedSecret(sctx, c.NC, c.Streams.Secrets, "hold-token-key")
	if err != nil {
		return nil, err
	}
	store := &natskv.Store{KV: c.Streams.Catalog, NC: c.NC}
	svc := &catalog.Service{Store: store}
	catSvc, err := catalogapi.Serve(c.NC, svc, cfg.AdminToken, c.adminAccessToken)
	if err != nil {
		return nil, err
	}
	if _, err := sup.Add("catalog-service", func(context.Context) error { return catSvc.Stop() }); err != nil {
		return nil, err
	}
	if cfg.Demo != nil {
		n, err := svc.Load(sctx, *cfg.Demo)
		if err != nil {
			return nil, fmt.Errorf("core: demo data: %w", err)
		}
		if n > 0 {
			c.log.Info("demo data loaded", "created", n)
		}
	}
	c.Metrics = owner.NewMetrics(reg)
	c.Catalog = catalog.NewCache()
	manager := partitions.New(cfg.Owner, owner.Deps{
		NC: c.NC, RelayNC: relayNC, LogNC: logNC, SnapshotNC: snapNC, JS: c.JS, Streams: c.Streams, Secret: secret, Log: log, Metrics: c.Metrics,
	})
	// The owners claim the partitions of every event the catalog's
	// follower puts into the cache, so they start first and stop after it.
	if _, err := sup.Start(supervisor.Component{Name: "owners", Run: func(ctx context.Context) error {
		manager.Start(ctx, c.Catalog)
		<-ctx.Done()
		manager.Wait()
		return nil
	}}); err != nil {
		return nil, err
	}
	if _, err := sup.Start(supervisor.Component{Name: "catalog-follower", Run: func(ctx context.Context) error {
		return natskv.Follow(ctx, c.Streams.Catalog, c.Catalog, log)
	}}); err != nil {
		return nil, err
	}
	select {
	case <-c.Catalog.Ready():
	case <-sup.Failed():
		return nil, errors.New("core: a component failed while the catalog loaded")
	case <-sctx.Done():
		return nil, fmt.Errorf("core: catalog not loaded: %w", sctx.Err())
	}
	if err := c.startSettings(sctx, sup, reg); err != nil {
		return nil, err
	}
	if err := c.startIdentity(sctx, sup); err != nil {
		return nil, err
	}
	if err := c.startCheckout(sctx, sup); err != nil {
		return nil, err
	}
	c.room, err = queue.Start(sctx, cfg.Queue, queue.Deps{
		NC: c.NC, Streams: c.Streams, Catalog: c.Catalog,
		Inventory: &invapi.Client{NC: c.NC, Timeout: 2 * time.Second, AttemptTimeout: time.Second},
		Node:      cfg.Node.Name, LeaseTTL: cfg.Streams.LeaseTTL, Log: log,
		TargetShoppers: c.settings.targetShoppers,
	})
	if err != nil {
		return nil, fmt.Errorf("core: waiting room: %w", err)
	}
	if _, err := sup.Add("waiting-room", func(ctx context.Context) error { c.room.Stop(ctx); return nil }); err != nil {
		return nil, err
	}
	c.log.Info("core started", "client", c.Node.ClientURL(), "leaf", c.Node.LeafURL(), "replicas", cfg.Streams.Replicas)
	return c, nil
}

// jetStreamReady is the server's readiness: JetStream on and, in a
// cluster, current with its meta leader.
func (c *Core) jetStreamReady() error {
	s := c.Node.Server
	if !s.JetStreamEnabled() || (c.Node.Clustered() && !s.JetStreamIsCurrent()) {
		return errors.New("jetstream not ready")
	}
	return nil
}

// ensureStreams creates the streams, retrying while a cluster is still
// gathering enough peers for R3.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg streams.Config, log *slog.Logger) (*streams.Set, error) {
	for attempt := 1; ; attempt++ {
		// A request sent while a cluster elects its meta leader may go
		// unanswered: bound each attempt.
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		set, err := streams.Ensure(actx, js, cfg)
		cancel()
		if err == nil {
			if set.EventsAsync {
				log.Warn("EVENTS was made flushing events asynchronously: a crash of this node may lose events it acknowledged; " +
					"recreate the stream, once the bridge has mirrored it, to have each event stored before it is acknowledged")
			}
			return set, nil
		}
		if attempt%4 == 0 {
			log.Warn("streams not ready yet; retrying", "attempt", attempt, "err", err)
		}
		if !pause.For(ctx, 250*time.Millisecond) {
			return nil, fmt.Errorf("core: streams: %w (last error: %v)", ctx.Err(), err)
		}
	}
}

// sharedSecret returns the 32-byte secret stored under key (the key hold
// tokens are signed with, passkey ceremonies' state is sealed with),
// creating it the first time any core node starts; every node shares it.
func sharedSecret(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) ([]byte, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	_, err := kv.Create(ctx, key, secret)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("core: %s: %w", key, err)
	}
	// Another node created it: read it from the leader, since the replica
	// a plain Get reaches may not have it yet. Nodes that start together
	// race for the key: the create that won may not be applied yet even at
	// the leader, so read until it is.
	for {
		v, err := kvget.Get(ctx, nc, kv, key)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) || !pause.For(ctx, 50*time.Millisecond) {
			return nil, fmt.Errorf("core: %s: %w", key, err)
		}
	}
}

// Room is the waiting room's core side.
func (c *Core) Room() *queue.Room { return c.room }
