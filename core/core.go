// Package core is the core-region runtime: the embedded clustered
// nats-server, the JetStream resources, partition ownership by lease, the
// inventory partition owners and the domain services that run beside them.
// Start wires one core process; Shutdown stops it in order.
package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/owner"
	"github.com/ticketing/ticketing/core/partitions"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/core/waitroom"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/catalog"
	catalogapi "github.com/ticketing/ticketing/services/catalog/natsapi"
	"github.com/ticketing/ticketing/services/catalog/natskv"
	invapi "github.com/ticketing/ticketing/services/inventory/natsapi"
)

// Config configures a core process.
type Config struct {
	Node    node.Config
	Streams streams.Config
	Owner   owner.Config
	// Queue is the waiting room's core side: controller, tokens, keys.
	Queue waitroom.Config
	// AdminToken authorizes catalog administration. Required.
	AdminToken string
	// Demo, when set, is loaded into the catalog at start (what exists is
	// left alone).
	Demo *catalog.Dataset
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
	return errors.Join(c.Node.Validate(), c.Streams.Validate(), c.Owner.Validate(), c.Queue.Validate())
}

// Core is a running core process.
type Core struct {
	Node    *node.Node
	NC      *nats.Conn
	relayNC *nats.Conn
	logNC   *nats.Conn
	snapNC  *nats.Conn
	JS      jetstream.JetStream
	Streams *streams.Set
	Catalog *catalog.Cache
	Metrics *owner.Metrics

	cfg     Config
	log     *slog.Logger
	cancel  context.CancelFunc
	manager *partitions.Manager
	catSvc  micro.Service
	room    *waitroom.Room
	// settings: the config and flags services, the settings watcher
	// (settings.go).
	settings *coreSettings
}

// Start starts a core process: server, streams, catalog service, owners.
func Start(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Core, error) {
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
	fail := func(err error) (*Core, error) {
		c.Shutdown(context.Background())
		return nil, err
	}
	if c.NC, err = c.Node.Connect("core-" + cfg.Node.Name); err != nil {
		return fail(err)
	}
	if c.relayNC, err = c.Node.Connect("core-" + cfg.Node.Name + "-relay"); err != nil {
		return fail(err)
	}
	if c.logNC, err = c.Node.Connect("core-" + cfg.Node.Name + "-log"); err != nil {
		return fail(err)
	}
	if c.snapNC, err = c.Node.Connect("core-" + cfg.Node.Name + "-snapshots"); err != nil {
		return fail(err)
	}
	if c.JS, err = jetstream.New(c.NC); err != nil {
		return fail(err)
	}
	if c.Streams, err = ensureStreams(sctx, c.JS, cfg.Streams, c.log); err != nil {
		return fail(err)
	}
	secret, err := holdTokenSecret(sctx, c.NC, c.Streams.Secrets)
	if err != nil {
		return fail(err)
	}
	store := &natskv.Store{KV: c.Streams.Catalog, NC: c.NC}
	svc := &catalog.Service{Store: store}
	if c.catSvc, err = catalogapi.Serve(c.NC, svc, cfg.AdminToken); err != nil {
		return fail(err)
	}
	if cfg.Demo != nil {
		n, err := svc.Load(sctx, *cfg.Demo)
		if err != nil {
			return fail(fmt.Errorf("core: demo data: %w", err))
		}
		if n > 0 {
			c.log.Info("demo data loaded", "created", n)
		}
	}
	c.Metrics = owner.NewMetrics(reg)
	runCtx, runCancel := context.WithCancel(context.Background())
	c.cancel = runCancel
	c.Catalog = catalog.NewCache()
	c.manager = partitions.New(cfg.Owner, owner.Deps{
		NC: c.NC, RelayNC: c.relayNC, LogNC: c.logNC, SnapshotNC: c.snapNC, JS: c.JS, Streams: c.Streams, Secret: secret, Log: log, Metrics: c.Metrics,
	})
	c.manager.Start(runCtx, c.Catalog)
	if err := natskv.Follow(runCtx, c.Streams.Catalog, c.Catalog, log); err != nil {
		return fail(err)
	}
	select {
	case <-c.Catalog.Ready():
	case <-sctx.Done():
		return fail(fmt.Errorf("core: catalog not loaded: %w", sctx.Err()))
	}
	if err := c.startSettings(sctx, runCtx, reg); err != nil {
		return fail(err)
	}
	c.room, err = waitroom.Start(sctx, cfg.Queue, waitroom.Deps{
		NC: c.NC, Streams: c.Streams, Catalog: c.Catalog,
		Inventory: &invapi.Client{NC: c.NC, Timeout: 2 * time.Second, AttemptTimeout: time.Second},
		Node:      cfg.Node.Name, LeaseTTL: cfg.Streams.LeaseTTL, Log: log,
		TargetShoppers: c.settings.targetShoppers,
	})
	if err != nil {
		return fail(fmt.Errorf("core: waiting room: %w", err))
	}
	c.log.Info("core started", "client", c.Node.ClientURL(), "leaf", c.Node.LeafURL(), "replicas", cfg.Streams.Replicas)
	return c, nil
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

// holdTokenSecret returns the key hold tokens are signed with, creating it
// the first time any core node starts; every node shares it.
func holdTokenSecret(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue) ([]byte, error) {
	const key = "hold-token-key"
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	_, err := kv.Create(ctx, key, secret)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return nil, fmt.Errorf("core: hold-token key: %w", err)
	}
	// Another node created it: read it from the leader, since the replica
	// a plain Get reaches may not have it yet.
	v, err := kvget.Get(ctx, nc, kv, key)
	if err != nil {
		return nil, fmt.Errorf("core: hold-token key: %w", err)
	}
	return v, nil
}

// Room is the waiting room's core side.
func (c *Core) Room() *waitroom.Room { return c.room }

// Shutdown stops in order: the waiting room (its controller reads the
// owners and releases its lease; its services stop answering), owners (they commit what they decided and release
// their leases), the catalog service, the connection, the server.
func (c *Core) Shutdown(ctx context.Context) {
	if c.room != nil {
		c.room.Stop(ctx)
	}
	if c.cancel != nil {
		c.cancel()
		done := make(chan struct{})
		go func() { c.manager.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			c.log.Warn("shutdown deadline passed with owners still stopping")
		}
	}
	if c.catSvc != nil {
		_ = c.catSvc.Stop()
	}
	c.settings.stop()
	for _, nc := range []*nats.Conn{c.NC, c.relayNC, c.logNC, c.snapNC} {
		natsembed.Drain(ctx, nc)
	}
	if c.Node != nil {
		c.Node.Shutdown(ctx)
	}
}
