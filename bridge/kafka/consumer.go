package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler processes a batch of records. Records of one partition come in
// offset order; a batch may hold several partitions. The batch is committed
// only when the handler returns nil.
type Handler func(ctx context.Context, recs []*Record) error

// Consumer reads the records of a consumer group, at least once.
type Consumer interface {
	// Consume polls records and gives them to h, one batch at a time, and
	// commits each batch's offsets after h returned nil for it. It returns
	//
	//   - ctx's error when ctx is done;
	//   - h's error (wrapped) when h fails: that batch is not committed and
	//     the next Consume call starts again with its records;
	//   - an error wrapping ErrClosed when the consumer was closed;
	//   - a commit error: the batch was processed but its offsets may not be
	//     stored, so a restarted member may process it again.
	//
	// A commit runs to its end (up to CommitTimeout) even when ctx is
	// cancelled after h succeeded. h gets ctx and should return promptly
	// when it is cancelled. While h runs, the group cannot rebalance away
	// this member's partitions: h must finish well within RebalanceTimeout.
	//
	// Only one Consume call may run at a time; a second one fails.
	Consume(ctx context.Context, h Handler) error
	// Close leaves the group, so that its partitions move to the other
	// members at once, waiting at most until ctx is done. Stop Consume
	// (cancel its context) first: Close waits for a running handler.
	// Calling Close more than once is harmless.
	Close(ctx context.Context) error
}

type consumer struct {
	cl      *kgo.Client
	cfg     ConsumerConfig
	running atomic.Bool
	once    sync.Once
}

// NewConsumer joins the consumer group c.Group; it starts fetching in the
// background and hands records out through Consume.
func NewConsumer(c ConsumerConfig) (Consumer, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		return nil, wrap("new consumer", err)
	}
	return &consumer{cl: cl, cfg: c}, nil
}

func (c *consumer) Consume(ctx context.Context, h Handler) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("kafka: consume: another Consume call is running")
	}
	defer c.running.Store(false)
	for {
		err := c.pollOnce(ctx, h)
		if err != nil {
			return err
		}
	}
}

// pollOnce polls one batch, hands it to h and commits it. Every poll must be
// followed by AllowRebalance (BlockRebalanceOnPoll), which is why this is a
// function of its own.
func (c *consumer) pollOnce(ctx context.Context, h Handler) error {
	fs := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
	defer c.cl.AllowRebalance()
	if fs.IsClientClosed() {
		return wrap("consume", ErrClosed)
	}
	var krs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { krs = append(krs, r) })
	if err := ctx.Err(); err != nil {
		c.rewind(krs)
		return err
	}
	fs.EachError(func(topic string, partition int32, err error) {
		// Fetch errors are reports: the client keeps retrying.
		if l := c.cfg.Client.Logger; l != nil && !errors.Is(err, context.Canceled) {
			l.Warn("kafka: fetch error", "topic", topic, "partition", partition, "err", err)
		}
	})
	if len(krs) == 0 {
		return nil
	}
	recs := make([]*Record, len(krs))
	for i, kr := range krs {
		recs[i] = fromKgo(kr)
	}
	if err := h(ctx, recs); err != nil {
		c.rewind(krs)
		return fmt.Errorf("kafka: consume: handler: %w", err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.CommitTimeout)
	defer cancel()
	if err := c.cl.CommitRecords(cctx, krs...); err != nil {
		return wrap("commit", err)
	}
	return nil
}

// rewind moves the fetch position of each partition in krs back to its
// first record there, so that the next poll returns them again.
func (c *consumer) rewind(krs []*kgo.Record) {
	if len(krs) == 0 {
		return
	}
	to := map[string]map[int32]kgo.EpochOffset{}
	for _, r := range krs {
		ps := to[r.Topic]
		if ps == nil {
			ps = map[int32]kgo.EpochOffset{}
			to[r.Topic] = ps
		}
		if at, ok := ps[r.Partition]; !ok || r.Offset < at.Offset {
			ps[r.Partition] = kgo.EpochOffset{Epoch: -1, Offset: r.Offset}
		}
	}
	c.cl.SetOffsets(to)
}

func (c *consumer) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		err = c.cl.LeaveGroupContext(ctx)
		c.cl.Close()
	})
	return wrap("close", err)
}
