package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pause"
)

// Feed is an application's store as an owned consumer feeds it, in the
// store's own terms: P names a partition of a topic, R is a record as the
// store takes it. The store keeps, per partition, the offset after the
// last record it applied, and changes it in the same atomic write as the
// records' effects; that is what makes the effects exactly once (see
// NewOwnedConsumer). A feed is all that a consumer of this kind supplies:
// NewRunner does the rest. Feeds live beside their stores and import
// nothing of Kafka (reporting.Feed, analytics.Feed, audit.Feed).
//
// The runner calls one method at a time. A method that fails with an
// error wrapping fs.ErrClosed says that the store is closed for good: the
// runner stops (see RunnerConfig.Fatal).
type Feed[P Partition, R any] interface {
	// Record is the record at offset of partition p, with its value, as
	// Apply takes it. A record the store cannot use (undecodable, of a
	// type it ignores) must still be returned: applying it moves its
	// partition's offset.
	Record(p P, offset int64, value []byte) R
	// Offsets returns, for each of ps that has one stored, the offset of
	// the first record not applied yet.
	Offsets(ctx context.Context, ps []P) (map[P]int64, error)
	// Apply applies recs (each partition's in offset order) in one atomic
	// write per partition at least: it skips the records below their
	// partition's stored offset, applies the others' effects and stores
	// each partition's offset after its last record, so that after any
	// error the stored offsets and the effects agree.
	Apply(ctx context.Context, recs []R) error
}

// Partition is what a feed's partition type is: a topic and a partition
// number, as TopicPartition, under the store's own name
// (reporting.Partition, analytics.Position, audit.Chain).
type Partition interface {
	~struct {
		Topic     string
		Partition int32
	}
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Consumer is the owned consumer's group, topics and brokers.
	Consumer ConsumerConfig
	// RetryBackoff is the first pause after a failed batch; it doubles,
	// up to MaxRetryBackoff, while batches keep failing. Defaults 100ms
	// and 10s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// Fatal says which errors of a batch no retry can mend: Run returns
	// them instead of reading the batch again. Default: errors wrapping
	// fs.ErrClosed (a store closed for good).
	Fatal func(error) bool
	// Logger: default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *RunnerConfig) Defaults() {
	c.Consumer.Defaults()
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = 10 * time.Second
	}
	if c.Fatal == nil {
		c.Fatal = func(err error) bool { return errors.Is(err, fs.ErrClosed) }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *RunnerConfig) Validate() error {
	if c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff {
		return errs.Errorf(opConfig, errs.Invalid, "retry backoff %v must be positive and at most the max %v", c.RetryBackoff, c.MaxRetryBackoff)
	}
	return c.Consumer.Validate()
}

// Runner feeds a store from Kafka exactly once: an owned consumer starts
// each partition at the offset the store keeps (Feed.Offsets), and each
// batch is one Feed.Apply, which stores the records' effects together with
// their offsets. The reporting, analytics and audit consumers are Runners.
type Runner struct {
	cfg  RunnerConfig
	cons Consumer
	h    Handler
	ok   atomic.Bool // a batch succeeded since the last failure
}

// NewRunner joins the consumer group with an owned consumer of f's store;
// Run consumes.
func NewRunner[P Partition, R any](c RunnerConfig, f Feed[P, R]) (*Runner, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: c}
	r.h = func(ctx context.Context, recs []*Record) error {
		batch := make([]R, len(recs))
		for i, kr := range recs {
			batch[i] = f.Record(P(TopicPartition{kr.Topic, kr.Partition}), kr.Offset, kr.Value)
		}
		if err := f.Apply(ctx, batch); err != nil {
			return err
		}
		r.ok.Store(true)
		return nil
	}
	cons, err := NewOwnedConsumer(c.Consumer, loader(f))
	if err != nil {
		return nil, err
	}
	r.cons = cons
	return r, nil
}

// loader is the offset loader of an owned consumer of f's store.
func loader[P Partition, R any](f Feed[P, R]) OffsetLoader {
	return func(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
		ps := make([]P, len(tps))
		for i, tp := range tps {
			ps[i] = P(tp)
		}
		stored, err := f.Offsets(ctx, ps)
		if err != nil {
			return nil, err
		}
		out := make(map[TopicPartition]int64, len(stored))
		for i, p := range ps {
			if n, ok := stored[p]; ok {
				out[tps[i]] = n
			}
		}
		return out, nil
	}
}

// Run consumes until ctx is done, then returns nil. A failed batch (the
// store unreachable, a concurrent writer) is read again from the stored
// offsets after a backoff; Run returns an error only when the consumer was
// closed or a batch failed with an error that Fatal says is for good.
func (r *Runner) Run(ctx context.Context) error {
	backoff := r.cfg.RetryBackoff
	for {
		err := r.cons.Consume(ctx, r.h)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) || r.cfg.Fatal(err) {
			return fmt.Errorf("kafka: runner of group %s: %w", r.cfg.Consumer.Group, err)
		}
		if r.ok.Swap(false) {
			backoff = r.cfg.RetryBackoff
		}
		r.cfg.Logger.Warn("a batch failed; reading it again from the stored offsets", "group", r.cfg.Consumer.Group, "err", err, "retry_in", backoff)
		if !pause.For(ctx, backoff) {
			return nil
		}
		backoff = min(2*backoff, r.cfg.MaxRetryBackoff)
	}
}

// Close leaves the group, waiting at most until ctx is done. Stop Run
// first.
func (r *Runner) Close(ctx context.Context) error { return r.cons.Close(ctx) }
