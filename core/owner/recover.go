package owner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/services/inventory"
)

// snapshotFile is what the snapshot store holds for a partition.
type snapshotFile struct {
	// Seq is the last log sequence the snapshot covers.
	Seq uint64 `json:"seq"`
	// Relayed is a log sequence up to which every domain event was on the
	// EVENTS stream when the snapshot was written.
	Relayed  uint64              `json:"relayed"`
	Snapshot *inventory.Snapshot `json:"snapshot"`
}

// position is a place in the log: a record's sequence and a decision's index
// in it. The zero position is before the log.
type position struct {
	seq uint64
	idx int
}

func (p position) after(q position) bool {
	return p.seq > q.seq || (p.seq == q.seq && p.idx > q.idx)
}

type recovered struct {
	snapSeq   uint64
	replayed  int
	shadow    *inventory.Partition
	backlog   []committed // records whose events may not be on EVENTS yet
	relayFrom position    // the last event known to be on EVENTS
}

// recover rebuilds the partition from the latest snapshot and the log after
// it, then writes an epoch record fenced on the log's last sequence, so that
// no earlier owner can write after it.
func (o *Owner) recover(ctx context.Context) (*recovered, error) {
	rec := &recovered{}
	part, snapSeq, snapRelayed, err := o.loadSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	rec.snapSeq = snapSeq
	cp, err := o.relayCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if snapRelayed > 0 && (position{seq: snapRelayed, idx: 1 << 30}).after(cp) {
		cp = position{seq: snapRelayed, idx: 1 << 30}
	}
	rec.relayFrom = cp

	last, err := o.lastLogSeq(ctx)
	if err != nil {
		return nil, err
	}
	from := min(snapSeq, cp.seq) + 1
	err = o.readLog(ctx, from, last, func(seq uint64, r *record) error {
		if seq > snapSeq {
			for _, d := range r.D {
				if err := part.Apply(d); err != nil {
					return fmt.Errorf("log record %d: %w", seq, err)
				}
			}
			rec.replayed++
		}
		if (position{seq: seq, idx: len(r.D)}).after(cp) {
			rec.backlog = append(rec.backlog, committed{seq: seq, ds: r.D})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.lastSeq = last

	// The epoch record: from here on, a write by any earlier owner fails.
	part.RecordEpoch(time.Now(), o.cfg.Node, o.lease.Epoch())
	wctx, cancel := context.WithTimeout(ctx, o.cfg.WriteTimeout)
	defer cancel()
	if _, err := o.write(wctx, part.TakeDecisions()); err != nil {
		return nil, err
	}
	rec.shadow, err = inventory.Restore(o.layout, o.cfg.Limits, part.Snapshot())
	if err != nil {
		return nil, err
	}
	o.part = part
	o.gen = 1
	o.open = &batch{gen: 1}
	part.SetBatch(1, o.durable.Load)
	return rec, nil
}

func (o *Owner) loadSnapshot(ctx context.Context) (*inventory.Partition, uint64, uint64, error) {
	b, err := o.deps.Streams.Snapshots.GetBytes(ctx, o.key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		p, err := inventory.NewPartition(o.key, o.layout, o.cfg.Limits)
		return p, 0, 0, err
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("snapshot: %w", err)
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil || f.Snapshot == nil {
		return nil, 0, 0, fmt.Errorf("snapshot of %s is unreadable: %v", o.key, err)
	}
	p, err := inventory.Restore(o.layout, o.cfg.Limits, f.Snapshot)
	if err != nil {
		return nil, 0, 0, err
	}
	return p, f.Seq, f.Relayed, nil
}

// Headers the relay writes on every event, to find its place again.
const (
	headerLogSeq   = "Ticketing-Log-Seq"
	headerLogIndex = "Ticketing-Log-Index"
)

// relayCheckpoint is the position of the last event of this partition on the
// EVENTS stream.
func (o *Owner) relayCheckpoint(ctx context.Context) (position, error) {
	m, err := o.deps.Streams.Events.GetLastMsgForSubject(ctx, o.evSubj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return position{}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("relay checkpoint: %w", err)
	}
	seq, err1 := strconv.ParseUint(m.Header.Get(headerLogSeq), 10, 64)
	idx, err2 := strconv.Atoi(m.Header.Get(headerLogIndex))
	if err1 != nil || err2 != nil {
		return position{}, fmt.Errorf("relay checkpoint: event %d has no log position", m.Sequence)
	}
	return position{seq: seq, idx: idx}, nil
}

func (o *Owner) lastLogSeq(ctx context.Context) (uint64, error) {
	m, err := o.deps.Streams.Inventory.GetLastMsgForSubject(ctx, o.logSubj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("log: %w", err)
	}
	return m.Sequence, nil
}

// readLog calls f for every record of the partition's log with sequence in
// [from, last].
func (o *Owner) readLog(ctx context.Context, from, last uint64, f func(uint64, *record) error) error {
	if from > last || last == 0 {
		return nil
	}
	cons, err := o.deps.Streams.Inventory.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{o.logSubj},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from,
	})
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("log: %w", err)
			}
			seq := meta.Sequence.Stream
			var r record
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				return fmt.Errorf("log record %d is unreadable: %w", seq, err)
			}
			if err := f(seq, &r); err != nil {
				return err
			}
			if seq >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("log: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("log: no records after %d; expected up to %d", from, last)
		}
	}
}
