// Package kafkarunner feeds an analytics.Store from the Kafka topics the
// bridge writes, exactly once: an owned consumer
// (bridge/kafka.NewOwnedConsumer) starts each partition at the offset the
// store keeps with the funnels, and each batch is one Store.Apply, which
// skips the records below it.
package kafkarunner

import (
	"context"
	"log/slog"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
)

// Config configures the runner: Consumer.Group defaults to
// "ticketing-analytics", Consumer.Topics to "ticketing.events" and
// "ticketing.inventory" (bridge/kafka's default TopicMap).
type Config = kafka.RunnerConfig

// New joins the consumer group; Run consumes.
func New(store analytics.Store, c Config) (*kafka.Runner, error) {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-analytics"
	}
	if len(c.Consumer.Topics) == 0 {
		c.Consumer.Topics = []string{"ticketing.events", "ticketing.inventory"}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return kafka.NewRunner(c, Loader(store), Handler(store, c.Logger))
}

// Loader returns the offset loader of an owned consumer of store.
func Loader(store analytics.Store) kafka.OffsetLoader {
	return func(ctx context.Context, tps []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
		ps := make([]analytics.Position, len(tps))
		for i, tp := range tps {
			ps[i] = analytics.Position{Topic: tp.Topic, Partition: tp.Partition}
		}
		got, err := store.Offsets(ctx, ps)
		if err != nil {
			return nil, err
		}
		out := make(map[kafka.TopicPartition]int64, len(got))
		for p, n := range got {
			out[kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = n
		}
		return out, nil
	}
}

// Inputs decodes a batch; records that are not funnel events (other
// types, undecodable bodies, which are logged) only move their offset.
func Inputs(recs []*kafka.Record, log *slog.Logger) []analytics.Input {
	in := make([]analytics.Input, len(recs))
	for i, r := range recs {
		in[i] = analytics.Input{Pos: analytics.Position{Topic: r.Topic, Partition: r.Partition}, Offset: r.Offset}
		e, err := analytics.Decode(r.Value)
		switch {
		case err == nil:
			in[i].Event = &e
		case errs.Is(errs.NotFound, err):
		default:
			log.Warn("analytics: record skipped: not a valid funnel event", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
		}
	}
	return in
}

// Handler returns the batch handler: one Apply per batch.
func Handler(store analytics.Store, log *slog.Logger) kafka.Handler {
	return func(ctx context.Context, recs []*kafka.Record) error {
		n, err := store.Apply(ctx, Inputs(recs, log))
		if err != nil {
			return err
		}
		log.Debug("analytics: batch applied", "records", len(recs), "applied", n)
		return nil
	}
}
