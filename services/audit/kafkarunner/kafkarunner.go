// Package kafkarunner feeds an audit.Store from the Kafka topics the bridge
// writes, exactly once: an owned consumer (bridge/kafka.NewOwnedConsumer)
// starts each partition where its chain's head says (Store.Heads), and each
// batch goes to Store.Append, which skips what a chain already holds.
package kafkarunner

import (
	"context"
	"log/slog"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/services/audit"
)

// Config configures the runner: Consumer.Group defaults to
// "ticketing-audit", Consumer.Topics to "ticketing.events" and
// "ticketing.inventory" (bridge/kafka's default TopicMap). StartAt
// "earliest" (the default) is the only sensible value: the log should hold
// every event.
type Config = kafka.RunnerConfig

// New joins the consumer group; Run consumes.
func New(store audit.Store, c Config) (*kafka.Runner, error) {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-audit"
	}
	if len(c.Consumer.Topics) == 0 {
		c.Consumer.Topics = []string{"ticketing.events", "ticketing.inventory"}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return kafka.NewRunner(c, Loader(store), Handler(store, c.Logger))
}

// Loader returns the offset loader of an owned consumer of store: each
// chain's head offset plus one.
func Loader(store audit.Store) kafka.OffsetLoader {
	return func(ctx context.Context, tps []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
		chains := make([]audit.Chain, len(tps))
		for i, tp := range tps {
			chains[i] = audit.Chain{Topic: tp.Topic, Partition: tp.Partition}
		}
		heads, err := store.Heads(ctx, chains)
		if err != nil {
			return nil, err
		}
		out := make(map[kafka.TopicPartition]int64, len(heads))
		for c, h := range heads {
			if n, ok := h.NextOffset(); ok {
				out[kafka.TopicPartition{Topic: c.Topic, Partition: c.Partition}] = n
			}
		}
		return out, nil
	}
}

// Handler returns the batch handler: one Append per batch.
func Handler(store audit.Store, log *slog.Logger) kafka.Handler {
	return func(ctx context.Context, recs []*kafka.Record) error {
		batch := make([]audit.Record, len(recs))
		for i, r := range recs {
			batch[i] = audit.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Body: r.Value}
		}
		res, err := store.Append(ctx, batch)
		if err != nil {
			return err
		}
		if res.Duplicates > 0 {
			log.Warn("audit: records with an event id already in the log were not appended", "count", res.Duplicates)
		}
		log.Debug("audit: batch appended", "appended", res.Appended, "redelivered", res.Redelivered, "duplicates", res.Duplicates)
		return nil
	}
}
