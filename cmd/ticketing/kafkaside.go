package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/bridge"
	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/dirlock"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/filelog"
	auditpg "github.com/ticketing/ticketing/services/audit/postgres"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/s3sink"
)

// The commands of the Kafka side: `ticketing bridge` (the mirror of EVENTS
// into Kafka), `ticketing consume` (the consumers behind it) and `ticketing
// audit verify`; and the Kafka side of `ticketing dev`. Package bridge is
// their runtime; this file is their flags.

// kafkaSideFlags are the flags `ticketing bridge` and `ticketing consume`
// share.
type kafkaSideFlags struct {
	conn          cli.CoreConnFlags
	maxReconnects *int
	brokers       cli.List
	ops           *string
	sup           cli.SupervisorFlags
	log           cli.LogFlags
}

func addKafkaSideFlags(fs *flag.FlagSet, ops string) *kafkaSideFlags {
	sec := cli.AddSecurityFlags(fs, devpki.Core, "core", "data/secrets", false)
	f := &kafkaSideFlags{conn: cli.AddCoreConnFlags(fs, sec), sup: cli.AddSupervisorFlags(fs), log: cli.AddLogFlags(fs, "json")}
	f.maxReconnects = fs.Int("nats-max-reconnects", -1, "reconnect attempts (2s apart) after the core connection is lost, before the process gives up and exits non-zero; -1: forever")
	fs.Var(&f.brokers, "brokers", "Kafka seed brokers (host:port,…); required")
	f.ops = fs.String("ops", ops, "address of /metrics, /healthz and /readyz")
	return f
}

// dial connects to the core as the flags say.
func (f *kafkaSideFlags) dial(name string, opts ...nats.Option) (*nats.Conn, error) {
	return f.conn.Connect(name, append([]nats.Option{nats.MaxReconnects(*f.maxReconnects)}, opts...)...)
}

// parse parses args and makes the process logger.
func (f *kafkaSideFlags) parse(fs *flag.FlagSet, args []string) (*slog.Logger, error) {
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if len(f.brokers) == 0 {
		return nil, errors.New("--brokers is required")
	}
	log, err := f.log.Logger()
	if err != nil {
		return nil, err
	}
	if _, err := f.conn.Security().Load(log, ""); err != nil {
		return nil, err
	}
	return log, nil
}

// run runs cfg's parts under one supervisor, with the ops listener last,
// until ctx ends or a component fails.
func (f *kafkaSideFlags) run(ctx context.Context, log *slog.Logger, msg string, cfg bridge.Config) error {
	cfg.Kafka.Brokers = f.brokers
	sup, err := f.sup.Supervisor(log)
	if err != nil {
		return err
	}
	reg := cli.NewRegistry()
	if _, err := bridge.Start(ctx, cfg, sup, f.dial, log, reg); err != nil {
		return errors.Join(err, sup.Shutdown())
	}
	ops, err := cli.ServeOps(sup, *f.ops, f.conn.Security().Loaded().OpsTLS(), reg)
	if err != nil {
		return errors.Join(fmt.Errorf("ops listener: %w", err), sup.Shutdown())
	}
	log.Info(msg, "ops", ops)
	return sup.Wait(ctx)
}

// runBridge runs the mirror as a process of its own. Several may run: one
// mirrors, the others stand by.
func runBridge(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	kf := addKafkaSideFlags(fs, "127.0.0.1:9190")
	name := fs.String("name", "", "instance name (default: host name and pid)")
	var def kafka.TopicMap
	def.Defaults()
	var mdef mirror.Config
	mdef.Defaults()
	replicas := fs.Int("replicas", mdef.Replicas, "replicas of the bridge's lease bucket: 1, or 3 in a core cluster")
	partitions := fs.Int("partitions", int(def.Partitions), "partitions of each topic the bridge creates")
	var routes cli.List
	for prefix, topic := range def.Routes {
		routes = append(routes, prefix+"="+topic)
	}
	fs.Var(&routes, "routes", "event type prefix=topic, comma-separated: the longest matching prefix routes an event")
	defaultTopic := fs.String("default-topic", def.Default, "topic of the events no route matches")
	log, err := kf.parse(fs, args)
	if err != nil {
		return err
	}
	topics := kafka.TopicMap{Routes: map[string]string{}, Default: *defaultTopic, Partitions: int32(*partitions)}
	for _, r := range routes {
		prefix, topic, ok := strings.Cut(r, "=")
		if !ok {
			return fmt.Errorf("--routes: %q is not prefix=topic", r)
		}
		topics.Routes[prefix] = topic
	}
	return kf.run(ctx, log, "bridge running", bridge.Config{
		Kafka:  kafka.ClientConfig{Logger: log},
		Mirror: &mirror.Config{Name: *name, Replicas: *replicas, Kafka: kafka.ProducerConfig{Topics: topics}},
	})
}

// runConsume runs Kafka consumers (reporting, analytics, audit) as a process
// of their own; several processes share each consumer group's partitions.
func runConsume(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	kf := addKafkaSideFlags(fs, "127.0.0.1:9191")
	services := cli.List(bridge.ConsumerNames)
	fs.Var(&services, "services", "consumers to run: "+strings.Join(bridge.ConsumerNames, ","))
	pgURL := fs.String("pg-url", "", "PostgreSQL URL for the consumers' stores (default: embedded stores under --data)")
	data := fs.String("data", "data/consume", "directory of the embedded stores")
	exportDir := fs.String("export-dir", "", "directory for the daily finance CSV exports")
	exportS3 := fs.String("export-s3", "", "S3-compatible bucket for the daily finance CSV exports, s3://bucket/prefix (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	s3Endpoint := fs.String("s3-endpoint", "s3.amazonaws.com", "host:port of the S3-compatible service")
	s3Insecure := fs.Bool("s3-insecure", false, "plain HTTP to the S3 service")
	invTopic := fs.String("inventory-topic", kafka.DefaultInventoryTopic, "topic of the inventory events (the bridge's --routes)")
	evTopic := fs.String("events-topic", kafka.DefaultEventsTopic, "topic of the other domain events (the bridge's --default-topic)")
	instance := fs.String("instance", "", "a name unique to this process and kept across its restarts (a pod name): makes its consumers static group members, which take their partitions back at once after a restart")
	log, err := kf.parse(fs, args)
	if err != nil {
		return err
	}
	if *pgURL == "" { // the embedded stores are this process's alone
		lock, err := dirlock.Acquire(*data)
		if err != nil {
			return err
		}
		defer lock.Release()
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
	return kf.run(ctx, log.With("services", strings.Join(services, ",")), "consumers running", bridge.Config{
		Consumers: bridge.ConsumersConfig{Run: services, PostgresURL: *pgURL, Dir: *data, Export: export, Instance: *instance,
			InventoryTopic: *invTopic, EventsTopic: *evTopic},
	})
}

// startDevBI starts the Kafka side of `ticketing dev` as components of
// sup: an embedded broker (data under data/kafka, on 127.0.0.1:kafkaPort),
// the mirror, and every consumer on embedded stores under data, exporting
// to data/exports.
func startDevBI(ctx context.Context, sup *supervisor.Supervisor, c *core.Core, data string, kafkaPort int, log *slog.Logger, reg prometheus.Registerer) (*bridge.Bridge, error) {
	return bridge.Start(ctx, bridge.Config{
		Embedded: &kafka.EmbeddedConfig{DataDir: filepath.Join(data, "kafka"), Port: kafkaPort},
		Mirror:   &mirror.Config{Name: "dev"},
		Consumers: bridge.ConsumersConfig{Run: bridge.ConsumerNames, Dir: data, Export: reporting.DirSink{Dir: filepath.Join(data, "exports")},
			ExportToday: true, Instance: "dev"},
	}, sup, c.Node.Connect, log, reg)
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
	if err := cli.Parse(fs, args[1:]); err != nil {
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
