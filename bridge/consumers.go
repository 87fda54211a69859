package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/supervisor"
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
)

// ConsumerNames are the consumers a process can run, in the order it
// starts them.
var ConsumerNames = []string{"reporting", "analytics", "audit"}

// startConsumers starts the configured consumers, on a NATS connection of
// their own for their micro services (and reporting's embedded store).
func (b *Bridge) startConsumers(ctx context.Context) error {
	nc, err := b.connect("consumers")
	if err != nil {
		return err
	}
	for _, name := range ConsumerNames {
		if !slices.Contains(b.cfg.Consumers.Run, name) {
			continue
		}
		var err error
		switch name {
		case "reporting":
			err = b.startReporting(ctx, nc)
		case "analytics":
			err = b.startAnalytics(ctx, nc)
		case "audit":
			err = b.startAudit(ctx)
		}
		if err != nil {
			return fmt.Errorf("bridge: consumer %s: %w", name, err)
		}
	}
	return nil
}

// runner joins consumer name's group with an owned consumer of f's store
// as the component "<name>-consumer": it consumes until the shutdown,
// which then leaves the group. Every consumer reads both topics:
// reporting its ticket counts from the inventory topic and its money from
// the order events on the events topic.
func runner[P kafka.Partition, R any](b *Bridge, name string, f kafka.Feed[P, R]) error {
	cs := b.cfg.Consumers
	topics := []string{cs.EventsTopic, cs.InventoryTopic}
	c := kafka.ConsumerConfig{Client: b.client("ticketing-" + name), Group: "ticketing-" + name, Topics: topics}
	if cs.Instance != "" {
		c.InstanceID = cs.Instance + "-" + name
	}
	r, err := kafka.NewRunner(kafka.RunnerConfig{Consumer: c, Logger: b.log.With("consumer", name)}, f)
	if err != nil {
		return err
	}
	_, err = b.sup.Start(supervisor.Component{Name: name + "-consumer", Run: r.Run, Stop: r.Close})
	return err
}

// service makes a NATS micro service a component.
func (b *Bridge) service(name string, serve func() (stopper, error)) error {
	s, err := serve()
	if err != nil {
		return err
	}
	_, err = b.sup.Add(name, func(context.Context) error { return s.Stop() })
	return err
}

type stopper interface{ Stop() error }

// openStore opens a consumer's store: on PostgreSQL, migrated, when the
// process has a pool, else the embedded one.
func openStore[S any](ctx context.Context, b *Bridge, log *slog.Logger, migrate func(context.Context, *pgxpool.Pool, *slog.Logger) (migrations.Result, error),
	onPool func(*pgxpool.Pool) S, embedded func() (S, error)) (S, error) {
	if b.pool == nil {
		return embedded()
	}
	if _, err := migrate(ctx, b.pool, log); err != nil {
		var none S
		return none, err
	}
	return onPool(b.pool), nil
}

func (b *Bridge) startReporting(ctx context.Context, nc *nats.Conn) error {
	log := b.log.With("consumer", "reporting")
	store, err := openStore(ctx, b, log, reportingpg.Migrate, func(p *pgxpool.Pool) reporting.Store { return reportingpg.New(p) },
		func() (reporting.Store, error) {
			js, err := jetstream.New(nc)
			if err != nil {
				return nil, err
			}
			return reportingkv.Open(ctx, js, reportingkv.Config{Replicas: b.cfg.Consumers.Replicas})
		})
	if err != nil {
		return err
	}
	if err := runner[reporting.Partition, reporting.Record](b, "reporting", reporting.Feed{Store: store, Log: log}); err != nil {
		return err
	}
	svc := &reporting.Service{Store: store}
	if err := b.service("reporting-api", func() (stopper, error) { return reportingapi.Serve(nc, svc) }); err != nil {
		return err
	}
	if cs := b.cfg.Consumers; cs.Export != nil {
		sched := &reporting.ExportSchedule{Service: svc, Sink: cs.Export, Today: cs.ExportToday, Log: log}
		if cs.ExportToday {
			sched.Delay = time.Minute
		}
		_, err := b.sup.Start(supervisor.Component{Name: "reporting-export", Run: func(ctx context.Context) error {
			sched.Run(ctx)
			return nil
		}})
		return err
	}
	return nil
}

func (b *Bridge) startAnalytics(ctx context.Context, nc *nats.Conn) error {
	log := b.log.With("consumer", "analytics")
	store, err := openStore(ctx, b, log, analyticspg.Migrate, func(p *pgxpool.Pool) analytics.Store { return analyticspg.New(p) },
		func() (analytics.Store, error) {
			return filestore.Open(filestore.Config{Path: filepath.Join(b.consumerDir("analytics"), "funnels.json")})
		})
	if err != nil {
		return err
	}
	if err := runner[analytics.Position, analytics.Input](b, "analytics", analytics.Feed{Store: store, Log: log}); err != nil {
		return err
	}
	return b.service("analytics-api", func() (stopper, error) { return analyticsapi.Serve(nc, store) })
}

func (b *Bridge) startAudit(ctx context.Context) error {
	log := b.log.With("consumer", "audit")
	store, err := openStore(ctx, b, log, auditpg.Migrate, func(p *pgxpool.Pool) audit.Store { return auditpg.New(p) },
		func() (audit.Store, error) {
			fl, err := filelog.Open(filelog.Config{Dir: b.consumerDir("audit"), Logger: log})
			if err != nil {
				return nil, err
			}
			_, err = b.sup.Add("audit-log", func(context.Context) error { return fl.Close() })
			return fl, err
		})
	if err != nil {
		return err
	}
	return runner[audit.Chain, audit.Record](b, "audit", audit.Feed{Store: store, Log: log})
}
