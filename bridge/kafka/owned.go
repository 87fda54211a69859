package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicPartition names one partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// OffsetLoader returns, for each of tps, the offset of the next record the
// application has not applied: one past the last record whose effects it
// stored. A partition missing from the answer has none stored: reading
// starts where ConsumerConfig.StartAt says. It is called with a context
// that ends when the group starts taking the partitions away again.
type OffsetLoader func(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error)

// NextOffsets returns, per partition of recs, the offset after its last
// record: what a handler of an owned consumer stores with its effects.
func NextOffsets(recs []*Record) map[TopicPartition]int64 {
	next := map[TopicPartition]int64{}
	for _, r := range recs {
		tp := TopicPartition{r.Topic, r.Partition}
		if n, ok := next[tp]; !ok || r.Offset+1 > n {
			next[tp] = r.Offset + 1
		}
	}
	return next
}

type ownedConsumer struct {
	cl      *kgo.Client
	cfg     ConsumerConfig
	load    OffsetLoader
	running atomic.Bool
	once    sync.Once
}

// NewOwnedConsumer returns a consumer of the group c.Group whose offsets
// belong to the application: it stores them together with the effects of
// the records, in the same transaction, and that is what makes the effects
// exactly once. Kafka's committed offsets play no part in where reading
// starts.
//
// When the group assigns partitions to this member, load is asked for the
// stored offsets and fetching starts there, before any record of those
// partitions is handed out. The handler given to Consume must, in one
// atomic write to the application's store:
//
//   - read each partition's stored offset and skip the records below it
//     (they were applied already: by this member before an error whose
//     outcome it could not know, or by another member that owned the
//     partition before);
//   - apply the other records' effects;
//   - store, per partition, the offset after its last record
//     (NextOffsets).
//
// The skip makes the handler a compare-and-set on the stored offset, so
// that even a member that was expelled from the group while its handler
// ran (a stall longer than the session timeout) cannot apply a record a
// second time: whichever of the two writes comes second skips it.
//
// When the handler fails, Consume returns its error and the fetch position
// of the batch's partitions goes back to their stored offsets (load is
// asked again; if that fails, to the batch's first records, which the
// handler skips where they were stored): the next Consume call resumes
// exactly. After the handler succeeded, the batch's offsets are also
// committed to Kafka, only so that lag monitoring (kafka-consumer-groups,
// kadm) sees the group's progress; a failed commit is not an error.
//
// Consume and Close behave as documented on Consumer; a rebalance cannot
// take partitions away while the handler runs.
func NewOwnedConsumer(c ConsumerConfig, load OffsetLoader) (Consumer, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if load == nil {
		return nil, wrap("new owned consumer", errors.New("an offset loader is required"))
	}
	o := &ownedConsumer{cfg: c, load: load}
	reset := kgo.NewOffset().AtStart()
	if c.StartAt == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts := append(c.opts(), kgo.AdjustFetchOffsetsFn(func(ctx context.Context, fetched map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
		// Called once per assignment, after the group's committed offsets
		// were fetched and before fetching records: replace them all.
		var tps []TopicPartition
		for t, ps := range fetched {
			for p := range ps {
				tps = append(tps, TopicPartition{t, p})
			}
		}
		sortTPs(tps)
		stored, err := load(ctx, tps)
		if err != nil {
			// The session fails and the client joins the group again,
			// which asks again.
			o.warn("kafka: loading stored offsets failed; rejoining the group", "err", err)
			return nil, fmt.Errorf("kafka: load stored offsets: %w", err)
		}
		out := make(map[string]map[int32]kgo.Offset, len(fetched))
		for _, tp := range tps {
			at := reset
			if n, ok := stored[tp]; ok {
				at = kgo.NewOffset().At(n).WithEpoch(-1)
			}
			if out[tp.Topic] == nil {
				out[tp.Topic] = map[int32]kgo.Offset{}
			}
			out[tp.Topic][tp.Partition] = at
		}
		return out, nil
	}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, wrap("new owned consumer", err)
	}
	o.cl = cl
	return o, nil
}

func sortTPs(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

func (o *ownedConsumer) warn(msg string, args ...any) {
	if l := o.cfg.Client.Logger; l != nil {
		l.Warn(msg, args...)
	}
}

func (o *ownedConsumer) Consume(ctx context.Context, h Handler) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("kafka: consume: another Consume call is running")
	}
	defer o.running.Store(false)
	for {
		if err := o.pollOnce(ctx, h); err != nil {
			return err
		}
	}
}

// pollOnce polls one batch and hands it to h. Every poll is followed by
// AllowRebalance (BlockRebalanceOnPoll): the assignment cannot change
// between the poll and the rewind or commit that follows the handler.
func (o *ownedConsumer) pollOnce(ctx context.Context, h Handler) error {
	fs := o.cl.PollRecords(ctx, o.cfg.MaxPollRecords)
	defer o.cl.AllowRebalance()
	if fs.IsClientClosed() {
		return wrap("consume", ErrClosed)
	}
	var krs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { krs = append(krs, r) })
	if err := ctx.Err(); err != nil {
		o.rewindToFirst(krs)
		return err
	}
	fs.EachError(func(topic string, partition int32, err error) {
		if !errors.Is(err, context.Canceled) {
			o.warn("kafka: fetch error", "topic", topic, "partition", partition, "err", err)
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
		o.rewindToStored(ctx, krs)
		return fmt.Errorf("kafka: consume: handler: %w", err)
	}
	// For lag monitoring only: the stored offsets are the truth.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.CommitTimeout)
	defer cancel()
	if err := o.cl.CommitRecords(cctx, krs...); err != nil {
		o.warn("kafka: committing offsets for lag monitoring failed", "err", err)
	}
	return nil
}

// rewindToStored moves the fetch position of the batch's partitions back
// to the offsets the application stored, or to their first record in the
// batch when none is stored or the store cannot be read.
func (o *ownedConsumer) rewindToStored(ctx context.Context, krs []*kgo.Record) {
	first := firstOffsets(krs)
	tps := make([]TopicPartition, 0, len(first))
	for tp := range first {
		tps = append(tps, tp)
	}
	sortTPs(tps)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.cfg.CommitTimeout)
	defer cancel()
	stored, err := o.load(lctx, tps)
	if err != nil {
		o.warn("kafka: loading stored offsets after a handler error failed; rewinding to the batch", "err", err)
		stored = nil
	}
	to := map[string]map[int32]kgo.EpochOffset{}
	for tp, at := range first {
		if n, ok := stored[tp]; ok {
			at = n
		}
		if to[tp.Topic] == nil {
			to[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		to[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	o.cl.SetOffsets(to)
}

// rewindToFirst moves the fetch position of each partition in krs back to
// its first record there: nothing of the batch was handed out.
func (o *ownedConsumer) rewindToFirst(krs []*kgo.Record) {
	if len(krs) == 0 {
		return
	}
	to := map[string]map[int32]kgo.EpochOffset{}
	for tp, at := range firstOffsets(krs) {
		if to[tp.Topic] == nil {
			to[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		to[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: at}
	}
	o.cl.SetOffsets(to)
}

func firstOffsets(krs []*kgo.Record) map[TopicPartition]int64 {
	first := map[TopicPartition]int64{}
	for _, r := range krs {
		tp := TopicPartition{r.Topic, r.Partition}
		if at, ok := first[tp]; !ok || r.Offset < at {
			first[tp] = r.Offset
		}
	}
	return first
}

func (o *ownedConsumer) Close(ctx context.Context) error {
	var err error
	o.once.Do(func() {
		err = o.cl.LeaveGroupContext(ctx)
		o.cl.Close()
	})
	return wrap("close", err)
}
