// Package mirror is the bridge proper: it mirrors the durable domain-event
// stream of the core (the JetStream stream EVENTS) into Kafka, for the
// analytics, reporting, audit and finance consumers, with no gap and no
// duplicate by event id. Package bridge runs it in a process, beside the
// consumers; "the bridge" below is one running Mirror.
//
// # How a record gets to Kafka exactly once
//
// The bridge reads EVENTS in stream order from a durable pull consumer and
// writes the events to Kafka in transactions of a transactional producer
// (acks from all in-sync replicas). Each transaction carries a batch of
// events and, as its last record, a checkpoint: the stream sequence of the
// batch's last event, written to the one-partition checkpoint topic. The
// events and their checkpoint become visible to read_committed consumers
// together, or not at all. Only after the commit does the bridge acknowledge
// the batch on JetStream (AckAll on its last message), so the consumer's ack
// floor trails Kafka and shows the bridge's lag in `nats consumer info`.
//
// The truth about where the bridge stands is the last committed checkpoint
// in Kafka, not the JetStream ack floor: a crash between a commit and its
// acknowledgement would otherwise mirror the batch twice. So each time a
// bridge becomes active (at start, after taking over from another instance,
// and after any Kafka or JetStream error it cannot ride out) it recovers:
//
//  1. It starts a new producer with the configured transactional id. The
//     broker then bumps the id's epoch, which fences every earlier producer
//     with that id (a crashed, paused or partitioned bridge can never commit
//     again), and completes or aborts the transaction such a producer left
//     open.
//  2. It commits a transaction holding only a probe record on the
//     checkpoint partition, and reads that partition, read_committed, from a
//     little before the probe up to the probe. Every transaction before the
//     probe is settled by then, and the probe is known to arrive, so the last
//     checkpoint seen before it is exactly the last committed one. (Reading
//     "to the end" without the probe cannot be exact: a partition of a
//     transactional topic ends in commit markers that no consumer sees.)
//  3. It recreates its durable consumer at the sequence after that
//     checkpoint and carries on.
//
// Messages of a batch whose transaction failed are never acknowledged and
// are read again after the recovery; JetStream redeliveries of messages
// already handled are dropped by sequence. Within a topic partition, records
// keep the stream's order: the record key is the aggregate (the event id for
// inventory), partitions are chosen by key, and transactions are sequential.
// Tests kill the bridge with SIGKILL mid-stream and restart the Kafka broker
// mid-stream, then count every event id in Kafka (crash_test.go, mirror_test.go).
//
// # Availability
//
// Any number of bridge processes may run: they compete for a lease (a
// JetStream key-value key with a TTL, package internal/lease); the holder
// mirrors, the others wait. A holder that stops renewing (dead, paused,
// partitioned) loses the lease after the TTL, and the next holder's producer
// fences it out of Kafka before it writes anything.
//
// # Backpressure
//
// When Kafka is slow or down, transactions wait or fail, the bridge stops
// reading (its read buffer is bounded), and EVENTS keeps the events (limits
// retention, 7 days by default). Lag in events and in seconds is exported
// at /metrics.
package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/internal/pause"
)

const opConfig = "bridge.config"

// Config configures a mirror. Zero fields take the defaults documented on
// each.
type Config struct {
	// Name of this instance, the lease holder. Default host name and pid.
	Name string
	// Stream to mirror. Default EVENTS.
	Stream string
	// Consumer is the durable consumer's name. Default "bridge".
	Consumer string
	// Kafka is the producer; Kafka.TransactionalID defaults to
	// "ticketing-bridge" and must be the same on every instance that
	// mirrors the stream (that is what fences a deposed instance), and
	// Kafka.Topics routes event types to topics.
	Kafka kafka.ProducerConfig
	// CheckpointTopic holds the checkpoints. Default
	// "ticketing.bridge.checkpoint". One partition.
	CheckpointTopic string
	// UnroutableTopic receives events whose type no route and no default
	// topic matches, so that none is dropped. Default
	// "ticketing.events.unroutable".
	UnroutableTopic string
	// MaxBatch is the most events in one Kafka transaction. Default 16384.
	MaxBatch int
	// MaxBatchBytes is the most event bytes in one transaction. Default
	// 16 MiB.
	MaxBatchBytes int
	// Linger is how long a batch waits for more events when the stream is
	// quiet. Default 5ms.
	Linger time.Duration
	// LeaseBucket and LeaseTTL: the key-value bucket of bridge leases (its
	// TTL is the lease's life). Defaults "bridge-leases" and 5s.
	LeaseBucket string
	LeaseTTL    time.Duration
	// Replicas of the lease bucket: 1 alone, 3 in a cluster. Default 1.
	Replicas int
	// MaxBackoff caps the pause between recovery attempts. Default 5s.
	MaxBackoff time.Duration
	// StopTimeout bounds a graceful stop. Default 10s.
	StopTimeout time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.Stream == "" {
		c.Stream = jsnames.Events
	}
	if c.Consumer == "" {
		c.Consumer = "bridge"
	}
	if c.Kafka.TransactionalID == "" {
		c.Kafka.TransactionalID = "ticketing-bridge"
	}
	if c.Kafka.Client.ClientID == "" {
		c.Kafka.Client.ClientID = "ticketing-bridge"
	}
	c.Kafka.Defaults()
	if c.CheckpointTopic == "" {
		c.CheckpointTopic = "ticketing.bridge.checkpoint"
	}
	if c.UnroutableTopic == "" {
		c.UnroutableTopic = "ticketing.events.unroutable"
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 16384
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.LeaseBucket == "" {
		c.LeaseBucket = "bridge-leases"
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 5 * time.Second
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	for _, t := range []string{c.CheckpointTopic, c.UnroutableTopic} {
		if err := kafka.ValidateTopicName(t); err != nil {
			return err
		}
	}
	switch {
	case c.MaxBatch < 1 || c.MaxBatch > 1<<20:
		return errs.Errorf(opConfig, errs.Invalid, "max batch %d is outside 1…1048576", c.MaxBatch)
	case c.MaxBatchBytes < 1<<10:
		return errs.Errorf(opConfig, errs.Invalid, "max batch bytes %d is below 1 KiB", c.MaxBatchBytes)
	case c.Linger < 0 || c.Linger > time.Second:
		return errs.Errorf(opConfig, errs.Invalid, "linger %v is outside 0…1s", c.Linger)
	case c.LeaseTTL < time.Second:
		return errs.Errorf(opConfig, errs.Invalid, "lease TTL %v is below 1s", c.LeaseTTL)
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return errs.Errorf(opConfig, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.MaxBackoff < 10*time.Millisecond:
		return errs.Errorf(opConfig, errs.Invalid, "max backoff %v is below 10ms", c.MaxBackoff)
	case c.StopTimeout <= 0:
		return errs.Errorf(opConfig, errs.Invalid, "stop timeout %v must be positive", c.StopTimeout)
	case c.Stream == "" || c.Consumer == "":
		return errs.E(opConfig, errs.Invalid, "stream and consumer names are required")
	}
	return nil
}

// Stats is a snapshot of a mirror's progress.
type Stats struct {
	Active     bool   // holds the lease and mirrors
	Checkpoint uint64 // stream sequence of the last event committed to Kafka
	Mirrored   uint64 // events committed to Kafka by this instance
	Recoveries uint64 // times this instance (re)started mirroring
}

// Mirror mirrors a JetStream stream into Kafka. Create it with New and run
// it with Run.
type Mirror struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *Metrics

	active     atomic.Bool
	checkpoint atomic.Uint64
	mirrored   atomic.Uint64
	recoveries atomic.Uint64
	created    time.Time // the stream's creation time; mirror's goroutine only
}

// New returns a mirror that reads the stream over nc. metrics may be nil.
func New(cfg Config, nc *nats.Conn, log *slog.Logger, metrics *Metrics) (*Mirror, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Mirror{cfg: cfg, nc: nc, js: js, log: log.With("component", "bridge", "bridge", cfg.Name), metrics: metrics}, nil
}

// Stats returns the mirror's progress.
func (mr *Mirror) Stats() Stats {
	return Stats{Active: mr.active.Load(), Checkpoint: mr.checkpoint.Load(), Mirrored: mr.mirrored.Load(), Recoveries: mr.recoveries.Load()}
}

// Run mirrors until ctx is done: it waits for the lease, mirrors while it
// holds it, and after an error recovers with a growing pause. It returns
// nil when ctx is done, or an error if the bridge cannot start at all.
func (mr *Mirror) Run(ctx context.Context) error {
	kv, err := mr.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: mr.cfg.LeaseBucket, Description: "bridge leases: one active bridge per stream",
		History: 1, TTL: mr.cfg.LeaseTTL, Storage: jetstream.FileStorage, Replicas: mr.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("bridge: lease bucket: %w", err)
	}
	go mr.watchLag(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		l, err := lease.Acquire(ctx, kv, mr.cfg.Stream, mr.cfg.Name, mr.cfg.LeaseTTL)
		if err != nil {
			if !errors.Is(err, lease.ErrHeld) && ctx.Err() == nil {
				mr.log.Warn("lease: cannot acquire", "err", err)
			}
			// Standing by: poll for the lease at a third of its life.
			pause.For(ctx, mr.cfg.LeaseTTL/3)
			continue
		}
		mr.log.Info("lease acquired: mirroring", "epoch", l.Epoch())
		err = mr.hold(ctx, l)
		if ctx.Err() != nil {
			return nil
		}
		mr.log.Warn("mirroring stopped; recovering", "err", err, "pause", backoff)
		pause.For(ctx, backoff)
		backoff = min(2*backoff, mr.cfg.MaxBackoff)
	}
	return nil
}

// hold mirrors while the lease is held, renewing it; it returns when ctx is
// done, the lease is lost, or mirroring fails.
func (mr *Mirror) hold(ctx context.Context, l *lease.Lease) error {
	actx, cancel := context.WithCancelCause(ctx)
	var until atomic.Int64 // the lease's validity, for the mirror's checks
	until.Store(l.ValidUntil().UnixNano())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(mr.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-actx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(actx, mr.cfg.LeaseTTL/3)
			err := l.Renew(rctx)
			rcancel()
			until.Store(l.ValidUntil().UnixNano())
			switch {
			case errors.Is(err, lease.ErrLost):
				cancel(err)
				return
			case err != nil && time.Until(l.ValidUntil()) < mr.cfg.LeaseTTL/3:
				// Step down before the lease can expire under us.
				cancel(fmt.Errorf("lease not renewed: %w", err))
				return
			}
		}
	}()
	err := mr.mirror(actx, func() error {
		if time.Now().UnixNano() >= until.Load() {
			return errors.New("bridge: the lease may have expired")
		}
		return nil
	})
	if cause := context.Cause(actx); err == nil || (cause != nil && !errors.Is(cause, context.Canceled)) {
		err = cause
	}
	cancel(nil)
	wg.Wait()
	mr.active.Store(false)
	mr.metrics.Active.Set(0)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer rcancel()
	if rerr := l.Release(rctx); rerr != nil && !errors.Is(err, lease.ErrLost) {
		mr.log.Debug("lease release", "err", rerr)
	}
	return err
}
