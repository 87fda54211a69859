// Package kafkarunner feeds an audit.Store from the Kafka topics the bridge
// writes, exactly once: an owned consumer (bridge/kafka.NewOwnedConsumer)
// starts each partition where its chain's head says (Store.Heads), and each
// batch goes to Store.Append, which skips what a chain already holds.
package kafkarunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/audit"
)

// Config configures a Runner.
type Config struct {
	// Consumer: Group defaults to "ticketing-audit", Topics to
	// "ticketing.events" and "ticketing.inventory" (bridge/kafka's default
	// TopicMap). StartAt "earliest" (the default) is the only sensible
	// value: the log should hold every event.
	Consumer kafka.ConsumerConfig
	// RetryDelay is the pause after a failed batch before it is read
	// again. Default 1s.
	RetryDelay time.Duration
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-audit"
	}
	if len(c.Consumer.Topics) == 0 {
		c.Consumer.Topics = []string{"ticketing.events", "ticketing.inventory"}
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Consumer.Defaults()
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.RetryDelay < 0 {
		return errs.Errorf("audit.runner.config", errs.Invalid, "retry delay %v is negative", c.RetryDelay)
	}
	return c.Consumer.Validate()
}

// Runner consumes the event topics into the audit log.
type Runner struct {
	store audit.Store
	cfg   Config
	cons  kafka.Consumer
}

// New joins the consumer group; Run consumes.
func New(store audit.Store, c Config) (*Runner, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{store: store, cfg: c}
	cons, err := kafka.NewOwnedConsumer(c.Consumer, Loader(store))
	if err != nil {
		return nil, err
	}
	r.cons = cons
	return r, nil
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

// Run consumes until ctx is done (then it returns nil) or the consumer is
// closed. A failed batch is logged and read again after RetryDelay.
func (r *Runner) Run(ctx context.Context) error {
	h := Handler(r.store, r.cfg.Logger)
	for {
		err := r.cons.Consume(ctx, h)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, kafka.ErrClosed):
			return fmt.Errorf("audit: runner: %w", err)
		}
		r.cfg.Logger.Warn("audit: batch failed; reading it again", "err", err, "retry_in", r.cfg.RetryDelay)
		t := time.NewTimer(r.cfg.RetryDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Close leaves the group (waiting at most until ctx is done). Stop Run
// first.
func (r *Runner) Close(ctx context.Context) error { return r.cons.Close(ctx) }
