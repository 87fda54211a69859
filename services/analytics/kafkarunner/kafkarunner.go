// Package kafkarunner feeds an analytics.Store from the Kafka topics the
// bridge writes, exactly once: an owned consumer
// (bridge/kafka.NewOwnedConsumer) starts each partition at the offset the
// store keeps with the funnels, and each batch is one Store.Apply, which
// skips the records below it.
package kafkarunner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
)

// Config configures a Runner.
type Config struct {
	// Consumer: Group defaults to "ticketing-analytics", Topics to
	// "ticketing.events" and "ticketing.inventory".
	Consumer kafka.ConsumerConfig
	// RetryDelay is the pause after a failed batch. Default 1s.
	RetryDelay time.Duration
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-analytics"
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
		return errs.Errorf("analytics.runner.config", errs.Invalid, "retry delay %v is negative", c.RetryDelay)
	}
	return c.Consumer.Validate()
}

// Runner consumes the event topics into the funnels.
type Runner struct {
	store analytics.Store
	cfg   Config
	cons  kafka.Consumer
}

// New joins the consumer group; Run consumes.
func New(store analytics.Store, c Config) (*Runner, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cons, err := kafka.NewOwnedConsumer(c.Consumer, Loader(store))
	if err != nil {
		return nil, err
	}
	return &Runner{store: store, cfg: c, cons: cons}, nil
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
			return fmt.Errorf("analytics: runner: %w", err)
		}
		r.cfg.Logger.Warn("analytics: batch failed; reading it again", "err", err, "retry_in", r.cfg.RetryDelay)
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
