package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	analyticspg "github.com/ticketing/ticketing/services/analytics/postgres"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/filelog"
	auditpg "github.com/ticketing/ticketing/services/audit/postgres"
	"github.com/ticketing/ticketing/services/reporting"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
	reportingkv "github.com/ticketing/ticketing/services/reporting/natskv"
	reportingpg "github.com/ticketing/ticketing/services/reporting/postgres"
	"github.com/ticketing/ticketing/services/reporting/s3sink"
)

// The Kafka side of the system: the bridge that mirrors EVENTS into Kafka,
// and the consumers behind it (reporting, analytics, audit), each a Kafka
// consumer group with its own store and, for reporting and analytics, a NATS
// micro service the edge asks for reports.

// The bridge's default topics (bridge/kafka.TopicMap's defaults).
const (
	defaultInventoryTopic = "ticketing.inventory"
	defaultEventsTopic    = "ticketing.events"
)

// consumerNames are the consumers `ticketing consume` can run.
var consumerNames = []string{"reporting", "analytics", "audit"}

// consumersConfig says which consumers run and where they keep their state.
type consumersConfig struct {
	Brokers  []string
	Services []string
	// PostgresURL: the stores of every consumer. Empty: the embedded stores,
	// reporting in JetStream KV, analytics and audit in files under Dir.
	PostgresURL string
	Dir         string
	// Export receives the daily finance CSVs: a directory or a bucket;
	// nil: none.
	Export reporting.Sink
	// ExportToday also exports the current day every few minutes
	// (development).
	ExportToday bool
	Replicas    int
	// InventoryTopic and EventsTopic are where the bridge writes inventory
	// and other domain events. Defaults: the bridge's defaults.
	InventoryTopic, EventsTopic string
	// Instance, when set, makes the consumers static group members
	// ("<instance>-<service>"): a restarted process takes its partitions
	// back at once instead of after the session timeout. Unique per process.
	Instance string
}

func (c *consumersConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("consumers: Kafka brokers are required")
	}
	for _, s := range c.Services {
		if !slices.Contains(consumerNames, s) {
			return fmt.Errorf("consumers: unknown service %q (have %s)", s, strings.Join(consumerNames, ", "))
		}
	}
	if c.PostgresURL == "" && c.Dir == "" && (slices.Contains(c.Services, "analytics") || slices.Contains(c.Services, "audit")) {
		return errors.New("consumers: without PostgreSQL the analytics and audit stores need a directory")
	}
	return nil
}

// runner is a Kafka consumer that runs until its context ends.
type runner interface {
	Run(ctx context.Context) error
	Close(ctx context.Context) error
}

// consumers are running consumers, their micro services and their pool.
type consumers struct {
	log      *slog.Logger
	runners  []runner
	services []micro.Service
	pool     *pgxpool.Pool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startConsumers starts the configured consumers; their micro services
// register on nc.
func startConsumers(ctx context.Context, nc *nats.Conn, c consumersConfig, log *slog.Logger) (_ *consumers, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cs := &consumers{log: log}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cs.Shutdown(sctx)
		}
	}()
	if c.PostgresURL != "" {
		if cs.pool, err = postgres.Open(ctx, postgres.Config{URL: c.PostgresURL}); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cs.cancel = cancel
	for _, name := range c.Services {
		l := log.With("service", name)
		inv, evs := cmp.Or(c.InventoryTopic, defaultInventoryTopic), cmp.Or(c.EventsTopic, defaultEventsTopic)
		consumer := kafka.ConsumerConfig{Client: kafka.ClientConfig{Brokers: c.Brokers, ClientID: "ticketing-" + name},
			Group: "ticketing-" + name, Topics: []string{evs, inv}}
		rc := kafka.RunnerConfig{Consumer: consumer, Logger: l}
		if name == "reporting" {
			consumer.Topics = []string{inv}
		}
		if c.Instance != "" {
			consumer.InstanceID = c.Instance + "-" + name
		}
		rc.Consumer = consumer
		var r runner
		switch name {
		case "reporting":
			var store reporting.Store
			if cs.pool != nil {
				if _, err := reportingpg.Migrate(ctx, cs.pool, l); err != nil {
					return nil, err
				}
				store = reportingpg.New(cs.pool)
			} else if store, err = reportingkv.Open(ctx, js, reportingkv.Config{Replicas: c.Replicas}); err != nil {
				return nil, err
			}
			if r, err = kafka.NewRunner(rc, reporting.Feed{Store: store, Log: l}); err != nil {
				return nil, err
			}
			svc := &reporting.Service{Store: store}
			ms, err := reportingapi.Serve(nc, svc)
			if err != nil {
				return nil, err
			}
			cs.services = append(cs.services, ms)
			if c.Export != nil {
				sched := &reporting.ExportSchedule{Service: svc, Sink: c.Export, Today: c.ExportToday, Log: l}
				if c.ExportToday {
					sched.Delay = time.Minute
				}
				cs.wg.Go(func() { sched.Run(rctx) })
			}
		case "analytics":
			var store analytics.Store
			if cs.pool != nil {
				if _, err := analyticspg.Migrate(ctx, cs.pool, l); err != nil {
					return nil, err
				}
				store = analyticspg.New(cs.pool)
			} else if store, err = filestore.Open(filestore.Config{Path: filepath.Join(c.Dir, "analytics", "funnels.json")}); err != nil {
				return nil, err
			}
			if r, err = kafka.NewRunner(rc, analytics.Feed{Store: store, Log: l}); err != nil {
				return nil, err
			}
			ms, err := analyticsapi.Serve(nc, store)
			if err != nil {
				return nil, err
			}
			cs.services = append(cs.services, ms)
		case "audit":
			store, err := auditStore(ctx, cs.pool, c.Dir, l)
			if err != nil {
				return nil, err
			}
			if r, err = kafka.NewRunner(rc, audit.Feed{Store: store, Log: l}); err != nil {
				return nil, err
			}
		}
		cs.runners = append(cs.runners, r)
		cs.wg.Go(func() {
			if err := r.Run(rctx); err != nil {
				l.Error("consumer stopped", "err", err)
			}
		})
	}
	return cs, nil
}

// auditStore opens the audit log: in PostgreSQL with a pool, else in files
// under dir/audit.
func auditStore(ctx context.Context, pool *pgxpool.Pool, dir string, log *slog.Logger) (audit.Store, error) {
	if pool != nil {
		if _, err := auditpg.Migrate(ctx, pool, log); err != nil {
			return nil, err
		}
		return auditpg.New(pool), nil
	}
	return filelog.Open(filelog.Config{Dir: filepath.Join(dir, "audit"), Logger: log})
}

// Shutdown stops the micro services, then the consumers (each finishes its
// batch and leaves its group), then closes the pool, within ctx.
func (cs *consumers) Shutdown(ctx context.Context) {
	for _, s := range cs.services {
		_ = s.Stop()
	}
	if cs.cancel != nil {
		cs.cancel()
	}
	done := make(chan struct{})
	go func() { cs.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		cs.log.Warn("consumers did not stop in time")
	}
	for _, r := range cs.runners {
		if err := r.Close(ctx); err != nil {
			cs.log.Warn("consumer close", "err", err)
		}
	}
	if cs.pool != nil {
		cs.pool.Close()
	}
}

// runningBridge is a bridge run in the background.
type runningBridge struct {
	b      *mirror.Mirror
	cancel context.CancelFunc
	done   chan struct{}
}

func startBridge(nc *nats.Conn, cfg mirror.Config, log *slog.Logger, reg prometheus.Registerer) (*runningBridge, error) {
	b, err := mirror.New(cfg, nc, log, mirror.NewMetrics(reg))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBridge{b: b, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rb.done)
		if err := b.Run(ctx); err != nil {
			log.Error("bridge stopped", "err", err)
		}
	}()
	return rb, nil
}

// Shutdown stops the bridge: a transaction under way is committed or
// aborted, and the lease released, within ctx.
func (rb *runningBridge) Shutdown(ctx context.Context) {
	rb.cancel()
	select {
	case <-rb.done:
	case <-ctx.Done():
	}
}

// coreConnFlags are the flags of a process that connects to the core as a
// NATS client.
type coreConnFlags struct{ url, user, password *string }

func addCoreConnFlags(fs *flag.FlagSet) coreConnFlags {
	return coreConnFlags{
		url:      fs.String("nats", "nats://127.0.0.1:4222", "core NATS URLs (comma-separated)"),
		user:     fs.String("nats-user", "core", "core NATS user"),
		password: fs.String("nats-core-password", "core-dev-password", "core NATS password (the core's --nats-core-password)"),
	}
}

func (f coreConnFlags) connect(name string) (*nats.Conn, error) {
	return nats.Connect(*f.url, nats.Name(name), nats.UserInfo(*f.user, *f.password), nats.MaxReconnects(-1))
}

// runBridge runs the bridge as a process of its own. Several may run: one
// mirrors, the others stand by.
func runBridge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	conn := addCoreConnFlags(fs)
	var brokers list
	fs.Var(&brokers, "brokers", "Kafka seed brokers (host:port,…); required")
	name := fs.String("name", "", "instance name (default: host name and pid)")
	replicas := fs.Int("replicas", 1, "replicas of the bridge's lease bucket: 1, or 3 in a core cluster")
	partitions := fs.Int("partitions", 12, "partitions of each topic the bridge creates")
	routes := list{"ticketing.inventory.=" + defaultInventoryTopic}
	fs.Var(&routes, "routes", "event type prefix=topic, comma-separated: the longest matching prefix routes an event")
	defaultTopic := fs.String("default-topic", defaultEventsTopic, "topic of the events no route matches")
	opsAddr := fs.String("ops", "127.0.0.1:9190", "address of /metrics, /healthz and /readyz")
	lf := addLogFlags(fs, "json")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	if len(brokers) == 0 {
		return errors.New("--brokers is required")
	}
	topics := kafka.TopicMap{Routes: map[string]string{}, Default: *defaultTopic, Partitions: int32(*partitions)}
	for _, r := range routes {
		prefix, topic, ok := strings.Cut(r, "=")
		if !ok {
			return fmt.Errorf("--routes: %q is not prefix=topic", r)
		}
		topics.Routes[prefix] = topic
	}
	nc, err := conn.connect("bridge")
	if err != nil {
		return err
	}
	defer nc.Close()
	reg := newRegistry()
	rb, err := startBridge(nc, mirror.Config{Name: *name, Replicas: *replicas,
		Kafka: kafka.ProducerConfig{Client: kafka.ClientConfig{Brokers: brokers, Logger: log}, Topics: topics}}, log, reg)
	if err != nil {
		return err
	}
	return serveUntilDone(ctx, log, "bridge running", *opsAddr, reg, connected(nc), rb.Shutdown)
}

// connected is the readiness of a process that needs its core connection.
func connected(nc *nats.Conn) func() error {
	return func() error {
		if !nc.IsConnected() {
			return errors.New("not connected to the core")
		}
		return nil
	}
}

// runConsume runs Kafka consumers (reporting, analytics, audit) as a process
// of their own; several processes share each consumer group's partitions.
func runConsume(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	conn := addCoreConnFlags(fs)
	var brokers, services list
	fs.Var(&brokers, "brokers", "Kafka seed brokers (host:port,…); required")
	services = consumerNames
	fs.Var(&services, "services", "consumers to run: "+strings.Join(consumerNames, ","))
	pgURL := fs.String("pg-url", "", "PostgreSQL URL for the consumers' stores (default: embedded stores under --data)")
	data := fs.String("data", "data/consume", "directory of the embedded stores")
	exportDir := fs.String("export-dir", "", "directory for the daily finance CSV exports")
	exportS3 := fs.String("export-s3", "", "S3-compatible bucket for the daily finance CSV exports, s3://bucket/prefix (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	s3Endpoint := fs.String("s3-endpoint", "s3.amazonaws.com", "host:port of the S3-compatible service")
	s3Insecure := fs.Bool("s3-insecure", false, "plain HTTP to the S3 service")
	invTopic := fs.String("inventory-topic", defaultInventoryTopic, "topic of the inventory events (the bridge's --routes)")
	evTopic := fs.String("events-topic", defaultEventsTopic, "topic of the other domain events (the bridge's --default-topic)")
	instance := fs.String("instance", "", "a name unique to this process and kept across its restarts (a pod name): makes its consumers static group members, which take their partitions back at once after a restart")
	opsAddr := fs.String("ops", "127.0.0.1:9191", "address of /metrics, /healthz and /readyz")
	lf := addLogFlags(fs, "json")
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger()
	if err != nil {
		return err
	}
	var export reporting.Sink
	switch {
	case *exportDir != "" && *exportS3 != "":
		return errors.New("give --export-dir or --export-s3, not both")
	case *exportDir != "":
		export = reporting.DirSink{Dir: *exportDir}
	case *exportS3 != "":
		c := s3sink.Config{Endpoint: *s3Endpoint, Insecure: *s3Insecure}
		if err := c.ParseURL(*exportS3); err != nil {
			return err
		}
		if export, err = s3sink.New(c); err != nil {
			return err
		}
	}
	nc, err := conn.connect("consume")
	if err != nil {
		return err
	}
	defer nc.Close()
	cs, err := startConsumers(ctx, nc, consumersConfig{Brokers: brokers, Services: services, PostgresURL: *pgURL, Dir: *data, Export: export, Instance: *instance,
		InventoryTopic: *invTopic, EventsTopic: *evTopic}, log)
	if err != nil {
		return err
	}
	return serveUntilDone(ctx, log.With("services", strings.Join(services, ",")), "consumers running", *opsAddr, newRegistry(), connected(nc), cs.Shutdown)
}

// runAudit is `ticketing audit verify`: it walks every chain of the audit
// log and reports the first changed, missing or reordered entry of each.
func runAudit(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: ticketing audit verify [--pg-url URL | --data DIR]")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	pgURL := fs.String("pg-url", "", "PostgreSQL URL of the audit log")
	data := fs.String("data", "data/dev", "directory of the embedded audit log (its audit/ folder), when no --pg-url")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var reader audit.Reader
	if *pgURL != "" {
		pool, err := postgres.Open(ctx, postgres.Config{URL: *pgURL})
		if err != nil {
			return err
		}
		defer pool.Close()
		reader = auditpg.New(pool)
	} else {
		dir := filepath.Join(*data, "audit")
		if _, err := os.Stat(dir); err != nil {
			return fmt.Errorf("no audit log in %s: %w", *data, err)
		}
		reader = filelog.Reader(dir)
	}
	rep, err := audit.Verify(ctx, reader)
	if err != nil {
		return err
	}
	fmt.Print(rep.String())
	if !rep.OK() {
		return errors.New("the audit log does not verify")
	}
	return nil
}
