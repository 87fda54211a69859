// Package kafkarunner feeds a reporting.Store from the Kafka topic of
// inventory events, exactly once: it consumes with bridge/kafka's owned-offset
// consumer, whose offsets are the store's cursors (Store.Offsets), and
// applies each batch with Store.Apply, which stores the aggregates and the
// offsets in one atomic write.
package kafkarunner

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
)

// Config configures a Runner.
type Config struct {
	// Consumer: Group defaults to "ticketing-reporting", Topics to
	// ["ticketing.inventory"] (the bridge's default topic map); Brokers are
	// required.
	Consumer kafka.ConsumerConfig
	// RetryBackoff is the first wait after a failed batch; it doubles up
	// to MaxRetryBackoff while batches keep failing. Default 100ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff: default 10s.
	MaxRetryBackoff time.Duration
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Consumer.Group == "" {
		c.Consumer.Group = "ticketing-reporting"
	}
	if len(c.Consumer.Topics) == 0 {
		c.Consumer.Topics = []string{"ticketing.inventory"}
	}
	c.Consumer.Defaults()
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if err := c.Consumer.Validate(); err != nil {
		return err
	}
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		return errs.Errorf("reporting.kafkarunner", errs.Invalid, "retry backoff %v must be positive and at most the max %v", c.RetryBackoff, c.MaxRetryBackoff)
	}
	return nil
}

// Runner consumes inventory events into a store.
type Runner struct {
	cfg   Config
	store reporting.Store
	cons  kafka.Consumer
	log   *slog.Logger
	ok    atomic.Bool // a batch succeeded since the last failure
}

// New joins the consumer group; Run starts consuming.
func New(store reporting.Store, c Config) (*Runner, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: c, store: store, log: c.Logger.With("component", "reporting.kafkarunner")}
	cons, err := kafka.NewOwnedConsumer(c.Consumer, r.load)
	if err != nil {
		return nil, err
	}
	r.cons = cons
	return r, nil
}

func (r *Runner) load(ctx context.Context, tps []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
	parts := make([]reporting.Partition, len(tps))
	for i, tp := range tps {
		parts[i] = reporting.Partition{Topic: tp.Topic, Partition: tp.Partition}
	}
	got, err := r.store.Offsets(ctx, parts)
	if err != nil {
		return nil, err
	}
	out := make(map[kafka.TopicPartition]int64, len(got))
	for p, n := range got {
		out[kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = n
	}
	return out, nil
}

// Handle applies one batch: the kafka.Handler of the runner.
func (r *Runner) Handle(ctx context.Context, recs []*kafka.Record) error {
	batch := make([]reporting.Record, len(recs))
	for i, kr := range recs {
		batch[i] = reporting.Record{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Value: kr.Value}
	}
	a, err := r.store.Apply(ctx, batch)
	if err != nil {
		return err
	}
	for _, p := range a.Invalid {
		r.log.Warn("skipped an undecodable record", "topic", p.Partition.Topic, "partition", p.Partition.Partition, "offset", p.Offset, "err", p.Err)
	}
	if a.Duplicates > 0 || a.Skipped > 0 {
		r.log.Info("records not applied again", "duplicate_event_ids", a.Duplicates, "below_stored_offset", a.Skipped)
	}
	r.ok.Store(true)
	return nil
}

// Run consumes until ctx is done, then returns nil. A failed batch (the
// store unreachable, a concurrent writer) is retried from the stored
// offsets after a backoff; Run returns an error only when the consumer
// was closed.
func (r *Runner) Run(ctx context.Context) error {
	backoff := r.cfg.RetryBackoff
	for {
		err := r.cons.Consume(ctx, r.Handle)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, kafka.ErrClosed) {
			return err
		}
		if r.ok.Swap(false) {
			backoff = r.cfg.RetryBackoff
		}
		r.log.Warn("a batch failed; retrying from the stored offsets", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, r.cfg.MaxRetryBackoff)
	}
}

// Close leaves the group (stop Run first), waiting at most until ctx is
// done.
func (r *Runner) Close(ctx context.Context) error { return r.cons.Close(ctx) }
