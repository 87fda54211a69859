package owner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ticketing/ticketing/core/streams"
	"io"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/services/inventory"
)

// snapshotFile is what the snapshot store holds for a partition.
type snapshotFile struct {
	// Seq is the last log sequence the snapshot covers, and Epoch and Gen
	// the last record's.
	Seq   uint64 `json:"seq"`
	Epoch uint64 `json:"epoch"`
	Gen   uint64 `json:"gen"`
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
	previous    string // the node that wrote the last owner epoch before this one ("" when none)
	snapSeq     uint64
	shadowEpoch uint64
	shadowGen   uint64
	replayed    int
	shadow      *inventory.Partition
	backlog     []committed // records whose events may not be on EVENTS yet
	relayFrom   position    // the last event known to be on EVENTS
}

// recover fences the partition, then rebuilds it from the latest snapshot
// and the log after it. The fence comes first: once this owner's epoch
// record is on the fence subject no earlier owner can write, so the log read
// afterwards is complete.
func (o *Owner) recover(ctx context.Context) (*recovered, error) {
	if err := o.writeFence(ctx); err != nil {
		return nil, err
	}
	rec := &recovered{}
	part, snap, err := o.loadSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	rec.snapSeq = snap.Seq
	cp, err := o.relayCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if snap.Relayed > 0 && (position{seq: snap.Relayed, idx: 1 << 30}).after(cp) {
		cp = position{seq: snap.Relayed, idx: 1 << 30}
	}
	rec.relayFrom = cp

	last, err := o.lastLogSeq(ctx)
	if err != nil {
		return nil, err
	}
	gaps := gapFilter{epoch: snap.Epoch, gen: snap.Gen}
	from := min(snap.Seq, cp.seq) + 1
	err = o.readLog(ctx, from, last, func(seq uint64, r *record) error {
		if seq <= snap.Seq {
			// Covered by the snapshot; read only for the relay.
			if !o.skipped[seq] && (position{seq: seq, idx: len(r.D)}).after(cp) {
				rec.backlog = append(rec.backlog, committed{seq: seq, gen: r.Gen, ds: r.D})
			}
			return nil
		}
		if !gaps.accept(r) {
			o.skipped[seq] = true
			o.log.Warn("skipping a log record written after a failed write; it was never acknowledged",
				"seq", seq, "record_epoch", r.Epoch, "record_gen", r.Gen)
			return nil
		}
		for _, d := range r.D {
			if err := part.Apply(d); err != nil {
				o.deps.Metrics.StateMismatches.WithLabelValues(checkRecoveryReplay).Inc()
				return fmt.Errorf("log record %d: %w", seq, err)
			}
		}
		rec.replayed++
		if (position{seq: seq, idx: len(r.D)}).after(cp) {
			rec.backlog = append(rec.backlog, committed{seq: seq, gen: r.Gen, ds: r.D})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.lastSeq = last
	rec.previous, _ = part.Owner()

	// The epoch's first record: it proves the fence holds before anyone is
	// served.
	part.SetBatch(0, nil)
	part.RecordEpoch(time.Now(), o.cfg.Node, o.lease.Epoch())
	wctx, cancel := context.WithTimeout(ctx, o.cfg.WriteTimeout)
	defer cancel()
	if _, err := o.write(wctx, 1, part.TakeDecisions()); err != nil {
		return nil, err
	}
	o.logGen = 1
	rec.shadow, err = inventory.Restore(o.layout, o.cfg.Limits, part.Snapshot())
	if err != nil {
		return nil, err
	}
	rec.shadowEpoch, rec.shadowGen = o.lease.Epoch(), 1
	o.part = part
	o.gen = 2
	o.open = &batch{gen: 2}
	o.durable.Store(1)
	part.SetBatch(2, o.durable.Load)
	return rec, nil
}

// writeFence writes this owner's epoch record on the fence subject,
// expecting the last one it finds there: of two owners fencing at once, one
// fails.
func (o *Owner) writeFence(ctx context.Context) error {
	var prev uint64
	m, err := o.deps.Streams.Inventory.GetLastMsgForSubject(ctx, o.fenceSubj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("fence: %w", err)
	default:
		prev = m.Sequence
	}
	body, _ := json.Marshal(struct {
		Owner string    `json:"owner"`
		Epoch uint64    `json:"epoch"`
		At    time.Time `json:"at"`
	}{o.cfg.Node, o.lease.Epoch(), time.Now().UTC()})
	wctx, cancel := context.WithTimeout(ctx, o.cfg.WriteTimeout)
	defer cancel()
	ack, err := o.deps.JS.Publish(wctx, o.fenceSubj, body,
		jetstream.WithExpectStream(streams.Inventory), jetstream.WithExpectLastSequencePerSubject(prev))
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	o.fenceSeq = ack.Sequence
	return nil
}

// gapFilter accepts the records of each epoch while their generations run
// 1, 2, 3, …; after a gap it refuses the rest of that epoch.
type gapFilter struct {
	epoch, gen uint64
	broken     bool
}

func (g *gapFilter) accept(r *record) bool {
	if r.Epoch != g.epoch {
		if r.Epoch < g.epoch {
			return false
		}
		g.epoch, g.gen, g.broken = r.Epoch, 0, false
	}
	if g.broken || r.Gen != g.gen+1 {
		g.broken = true
		return false
	}
	g.gen = r.Gen
	return true
}

func (o *Owner) loadSnapshot(ctx context.Context) (*inventory.Partition, snapshotFile, error) {
	obj, err := o.snaps.Get(ctx, o.key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		p, err := inventory.NewPartition(o.key, o.layout, o.cfg.Limits)
		return p, snapshotFile{}, err
	}
	if err != nil {
		return nil, snapshotFile{}, fmt.Errorf("snapshot: %w", err)
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil {
		return nil, snapshotFile{}, fmt.Errorf("snapshot: %w", err)
	}
	b, err := io.ReadAll(obj)
	if err != nil {
		return nil, snapshotFile{}, fmt.Errorf("snapshot: %w", err)
	}
	f, err := decodeSnapshot(info.Metadata, b)
	if err != nil {
		return nil, snapshotFile{}, fmt.Errorf("snapshot of %s is unreadable: %w", o.key, err)
	}
	p, err := inventory.Restore(o.layout, o.cfg.Limits, f.Snapshot)
	if err != nil {
		return nil, snapshotFile{}, err
	}
	return p, f, nil
}

// decodeSnapshot reads a stored snapshot: the binary body with its log
// position in the metadata, or the JSON file of earlier versions.
func decodeSnapshot(meta map[string]string, b []byte) (snapshotFile, error) {
	var f snapshotFile
	if meta[metaFormat] != formatBinary {
		if err := json.Unmarshal(b, &f); err != nil || f.Snapshot == nil {
			return f, fmt.Errorf("neither binary nor JSON: %v", err)
		}
		return f, nil
	}
	for _, m := range []struct {
		key string
		dst *uint64
	}{{metaSeq, &f.Seq}, {metaEpoch, &f.Epoch}, {metaGen, &f.Gen}, {metaRelayed, &f.Relayed}} {
		v, err := strconv.ParseUint(meta[m.key], 10, 64)
		if err != nil {
			return f, fmt.Errorf("metadata %s: %w", m.key, err)
		}
		*m.dst = v
	}
	f.Snapshot = new(inventory.Snapshot)
	return f, f.Snapshot.UnmarshalBinary(b)
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
