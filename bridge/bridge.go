// Package bridge is the runtime of the Kafka side, as package core is the
// core's and package edge the edge's: Start wires the parts a process runs
// (`ticketing bridge`, `ticketing consume`, the Kafka side of `ticketing
// dev`) as components of its supervisor (internal/supervisor):
//
//   - the embedded Kafka-protocol broker of `ticketing dev`
//     (bridge/kafka.StartEmbedded), when the process runs one;
//   - the mirror of the domain-event stream EVENTS into Kafka
//     (bridge/mirror), with the NATS connection it reads over;
//   - the consumers behind it (reporting, analytics, audit): each an owned
//     consumer group (bridge/kafka.NewRunner) feeding its store, on
//     PostgreSQL or the embedded stores, with, for reporting and analytics,
//     the NATS micro service the edge asks for reports, and reporting's
//     daily finance export.
//
// Every part is a component: a consumer or the mirror that stops on its own,
// a store closed for good, a NATS connection closed for good fails the
// process, which then shuts down in order (consumers, then the mirror,
// then the connections, the pool and the broker) and exits non-zero.
package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/reporting"
)

const opConfig = "bridge.config"

// Config configures the Kafka side of a process. Zero fields take the
// defaults documented on each.
type Config struct {
	// Kafka is the client every part uses: the seed brokers (required,
	// unless Embedded is set) and franz-go's logger. Each part names its
	// own client ("ticketing-bridge", "ticketing-reporting", …).
	Kafka kafka.ClientConfig
	// Embedded, when set, runs the embedded broker in the process and the
	// parts use it; Kafka.Brokers must then be empty. Its Logger defaults
	// to the process's.
	Embedded *kafka.EmbeddedConfig
	// Mirror, when set, runs the mirror of EVENTS into Kafka. Its
	// Kafka.Client defaults to Kafka (with the client id
	// "ticketing-bridge").
	Mirror *mirror.Config
	// Consumers are the consumers to run and their stores.
	Consumers ConsumersConfig
}

// ConsumersConfig says which consumers run and where they keep their state.
type ConsumersConfig struct {
	// Run names the consumers: some of ConsumerNames. Default none.
	Run []string
	// PostgresURL holds the stores of every consumer. Empty: the embedded
	// stores, reporting's in JetStream KV, analytics' and audit's in files
	// under Dir.
	PostgresURL string
	Dir         string
	// Replicas of the embedded reporting store's bucket: 1 alone, 3 in a
	// core cluster. Default 1.
	Replicas int
	// Export receives reporting's daily finance CSVs; nil: none.
	Export reporting.Sink
	// ExportToday also exports the current day, every minute
	// (development).
	ExportToday bool
	// InventoryTopic and EventsTopic are where the mirror writes inventory
	// and other domain events (its --routes and --default-topic).
	// Defaults kafka.DefaultInventoryTopic and kafka.DefaultEventsTopic.
	InventoryTopic, EventsTopic string
	// Instance, when set, makes the consumers static group members
	// ("<instance>-<consumer>"): a restarted process takes its partitions
	// back at once instead of after the session timeout. Unique per
	// process.
	Instance string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	c.Kafka.Defaults()
	if c.Embedded != nil {
		c.Embedded.Defaults()
	}
	if c.Mirror != nil {
		if len(c.Mirror.Kafka.Client.Brokers) == 0 {
			id := c.Mirror.Kafka.Client.ClientID
			c.Mirror.Kafka.Client = c.Kafka
			c.Mirror.Kafka.Client.ClientID = id
		}
		c.Mirror.Defaults()
	}
	cs := &c.Consumers
	if cs.Replicas == 0 {
		cs.Replicas = 1
	}
	if cs.InventoryTopic == "" {
		cs.InventoryTopic = kafka.DefaultInventoryTopic
	}
	if cs.EventsTopic == "" {
		cs.EventsTopic = kafka.DefaultEventsTopic
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	switch {
	case c.Embedded != nil && len(c.Kafka.Brokers) > 0:
		return errs.E(opConfig, errs.Invalid, "give Kafka brokers or an embedded broker, not both")
	case c.Embedded != nil:
		if err := c.Embedded.Validate(); err != nil {
			return err
		}
	default:
		if err := c.Kafka.Validate(); err != nil {
			return err
		}
	}
	if c.Mirror != nil && c.Embedded == nil {
		if err := c.Mirror.Validate(); err != nil {
			return err
		}
	}
	cs := c.Consumers
	for _, name := range cs.Run {
		if !slices.Contains(ConsumerNames, name) {
			return errs.Errorf(opConfig, errs.Invalid, "unknown consumer %q (have %s)", name, strings.Join(ConsumerNames, ", "))
		}
	}
	if cs.PostgresURL == "" && cs.Dir == "" && (slices.Contains(cs.Run, "analytics") || slices.Contains(cs.Run, "audit")) {
		return errs.E(opConfig, errs.Invalid, "without PostgreSQL the analytics and audit stores need a directory")
	}
	for _, t := range []string{cs.InventoryTopic, cs.EventsTopic} {
		if err := kafka.ValidateTopicName(t); err != nil {
			return err
		}
	}
	return nil
}

// Dialer opens a NATS connection to the core as a client named name
// ("bridge", "consumers"), with opts added to its own.
type Dialer func(name string, opts ...nats.Option) (*nats.Conn, error)

// Bridge is the running Kafka side of a process.
type Bridge struct {
	cfg     Config
	sup     *supervisor.Supervisor
	dial    Dialer
	log     *slog.Logger
	reg     prometheus.Registerer
	brokers []string
	pool    *pgxpool.Pool
	mirror  *mirror.Mirror
}

// Start starts the parts cfg asks for, each a component of sup, in this
// order: the embedded broker ("kafka-broker"), the PostgreSQL pool
// ("postgres"), the mirror (its NATS connection "nats-bridge", then
// "mirror"), the consumers (their NATS connection "nats-consumers", then
// per consumer its store when it has one to close, "<name>-consumer", its
// micro service "<name>-api" and reporting's "reporting-export"). sup
// stops them in the reverse order. When Start fails, what it started is
// registered with sup already: shut sup down. reg, when not nil, receives
// the mirror's metrics.
func Start(ctx context.Context, cfg Config, sup *supervisor.Supervisor, dial Dialer, log *slog.Logger, reg prometheus.Registerer) (*Bridge, error) {
	if cfg.Embedded != nil { // Defaults fills in copies, not the caller's
		e := *cfg.Embedded
		cfg.Embedded = &e
	}
	if cfg.Mirror != nil {
		m := *cfg.Mirror
		cfg.Mirror = &m
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Bridge{cfg: cfg, sup: sup, dial: dial, log: log, reg: reg, brokers: cfg.Kafka.Brokers}
	if cfg.Embedded != nil {
		if err := b.startBroker(); err != nil {
			return nil, err
		}
	}
	if cfg.Consumers.PostgresURL != "" && len(cfg.Consumers.Run) > 0 {
		pool, err := postgres.Open(ctx, postgres.Config{URL: cfg.Consumers.PostgresURL})
		if err != nil {
			return nil, fmt.Errorf("bridge: consumers' stores: %w", err)
		}
		if _, err := sup.Add("postgres", func(context.Context) error { pool.Close(); return nil }); err != nil {
			return nil, err
		}
		b.pool = pool
	}
	if cfg.Mirror != nil {
		if err := b.startMirror(); err != nil {
			return nil, err
		}
	}
	if len(cfg.Consumers.Run) > 0 {
		if err := b.startConsumers(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Brokers are the seed brokers the parts use: the configured ones, or the
// embedded broker's.
func (b *Bridge) Brokers() []string { return b.brokers }

// Mirror is the running mirror; nil when the process runs none.
func (b *Bridge) Mirror() *mirror.Mirror { return b.mirror }

// startBroker starts the embedded broker.
func (b *Bridge) startBroker() error {
	c := *b.cfg.Embedded
	if c.Logger == nil {
		c.Logger = b.log
	}
	e, err := kafka.StartEmbedded(c)
	if err != nil {
		return fmt.Errorf("bridge: embedded kafka: %w", err)
	}
	if _, err := b.sup.Add("kafka-broker", e.Shutdown); err != nil {
		return err
	}
	b.brokers = e.Brokers()
	return nil
}

// client is the Kafka client config of a part named id.
func (b *Bridge) client(id string) kafka.ClientConfig {
	c := b.cfg.Kafka
	c.Brokers, c.ClientID = b.brokers, id
	return c
}

// startMirror starts the mirror on a connection of its own.
func (b *Bridge) startMirror() error {
	cfg := *b.cfg.Mirror
	if b.cfg.Embedded != nil {
		cfg.Kafka.Client.Brokers = b.brokers
	}
	nc, err := b.connect("bridge")
	if err != nil {
		return err
	}
	m, err := mirror.New(cfg, nc, b.log, mirror.NewMetrics(b.reg))
	if err != nil {
		return err
	}
	if _, err := b.sup.Start(supervisor.Component{Name: "mirror", Run: m.Run}); err != nil {
		return err
	}
	b.mirror = m
	return nil
}

// connect opens a NATS connection named name as the component
// "nats-<name>": ready while connected; closed for good (reconnects
// exhausted, the server refusing the client) it fails the process.
func (b *Bridge) connect(name string) (*nats.Conn, error) {
	nc, err := natsembed.SuperviseConn(b.sup, "nats-"+name, func(opts ...nats.Option) (*nats.Conn, error) { return b.dial(name, opts...) })
	if err != nil {
		return nil, fmt.Errorf("bridge: connect %s to the core: %w", name, err)
	}
	return nc, nil
}

// consumerDir is where an embedded store of a consumer keeps its files.
func (b *Bridge) consumerDir(name string) string { return filepath.Join(b.cfg.Consumers.Dir, name) }
