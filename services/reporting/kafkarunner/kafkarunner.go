// Package kafkarunner feeds a reporting.Store from the Kafka topic of
// inventory events, exactly once: it consumes with bridge/kafka's owned-offset
// consumer, whose offsets are the store's cursors (Store.Offsets), and
// applies each batch with Store.Apply, which stores the aggregates and the
// offsets in one atomic write.
package kafkarunner

import (
	"context"
	"log/slog"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/services/reporting"
)

// Config configures the runner: Consumer.Group defaults to
// "ticketing-reporting", Consumer.Topics to "ticketing.inventory" (the
// bridge's default topic map).
type Config = kafka.RunnerConfig

// New joins the consumer group; Run consumes.
func New(store reporting.Store, c Config) (*kafka.Runner, error) {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-reporting"
	}
	if len(c.Consumer.Topics) == 0 {
		c.Consumer.Topics = []string{"ticketing.inventory"}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return kafka.NewRunner(c, Loader(store), Handler(store, c.Logger.With("component", "reporting.kafkarunner")))
}

// Loader returns the offset loader of an owned consumer of store: the
// store's cursors.
func Loader(store reporting.Store) kafka.OffsetLoader {
	return func(ctx context.Context, tps []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
		parts := make([]reporting.Partition, len(tps))
		for i, tp := range tps {
			parts[i] = reporting.Partition{Topic: tp.Topic, Partition: tp.Partition}
		}
		got, err := store.Offsets(ctx, parts)
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

// Handler returns the batch handler: one Apply per batch.
func Handler(store reporting.Store, log *slog.Logger) kafka.Handler {
	return func(ctx context.Context, recs []*kafka.Record) error {
		batch := make([]reporting.Record, len(recs))
		for i, kr := range recs {
			batch[i] = reporting.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Value: kr.Value}
		}
		a, err := store.Apply(ctx, batch)
		if err != nil {
			return err
		}
		for _, p := range a.Invalid {
			log.Warn("skipped an undecodable record", "topic", p.Partition.Topic, "partition", p.Partition.Partition, "offset", p.Offset, "err", p.Err)
		}
		if a.Duplicates > 0 || a.Skipped > 0 {
			log.Info("records not applied again", "duplicate_event_ids", a.Duplicates, "below_stored_offset", a.Skipped)
		}
		return nil
	}
}
