package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pause"
)

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Consumer is the owned consumer's group, topics and brokers.
	Consumer ConsumerConfig
	// RetryBackoff is the first pause after a failed batch; it doubles,
	// up to MaxRetryBackoff, while batches keep failing. Defaults 100ms
	// and 10s.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
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
// each partition at the offset the store keeps (load), and the handler
// applies each batch together with its offsets in one atomic write of the
// store. The reporting, analytics and audit consumers are Runners.
type Runner struct {
	cfg  RunnerConfig
	cons Consumer
	h    Handler
	ok   atomic.Bool // a batch succeeded since the last failure
}

// NewRunner joins the consumer group; Run consumes.
func NewRunner(c RunnerConfig, load OffsetLoader, h Handler) (*Runner, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r := &Runner{cfg: c}
	r.h = func(ctx context.Context, recs []*Record) error {
		if err := h(ctx, recs); err != nil {
			return err
		}
		r.ok.Store(true)
		return nil
	}
	cons, err := NewOwnedConsumer(c.Consumer, load)
	if err != nil {
		return nil, err
	}
	r.cons = cons
	return r, nil
}

// Run consumes until ctx is done, then returns nil. A failed batch (the
// store unreachable, a concurrent writer) is read again from the stored
// offsets after a backoff; Run returns an error only when the consumer was
// closed.
func (r *Runner) Run(ctx context.Context) error {
	backoff := r.cfg.RetryBackoff
	for {
		err := r.cons.Consume(ctx, r.h)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
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
