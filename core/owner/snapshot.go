package owner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/inventory"
)

// snapshotter keeps a shadow of the partition by applying committed batches,
// and writes it as a snapshot when enough has been logged since the last one
// (at least SnapshotEvery decisions, and at least as many as the last
// snapshot held, so that writing snapshots costs a constant share of the
// work and recovery replays at most about one snapshot's worth of log), or
// when the partition has been idle for SnapshotIdle. It purges the log up to
// what neither the latest snapshot nor the relay needs any more.
//
// The shadow is the partition as its log says it is, so the snapshotter
// also checks the live state against it and reports it (zones): on every
// tick it asks for the live zone counts with the next batch (wantCheck) and,
// once it has applied that batch, compares them with its own; it sets the
// zone gauges from the shadow on every tick. Both are O(zones).
func (o *Owner) snapshotter(shadow *inventory.Partition, seq, gen uint64) {
	var (
		since        int
		lastSize     int
		snapSeq      uint64 // log sequence the stored snapshot covers
		purged       uint64
		lastDecision = time.Now()
		broken       bool
		relayed      relayedSamples
		lastPurge    time.Time
	)
	t := time.NewTicker(max(min(o.cfg.SnapshotIdle/4, o.cfg.EventsFlushLag/4), 50*time.Millisecond))
	defer t.Stop()
	shadowLag := o.deps.Metrics.ShadowLag.WithLabelValues(o.key)
	defer o.deps.Metrics.ShadowLag.DeleteLabelValues(o.key)
	zones := newZoneGauges(o.deps.Metrics, o.key, shadow)
	defer zones.delete()
	var counts []inventory.ZoneCount // the shadow's, reused
	write := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := o.writeSnapshot(ctx, shadow, snapshotFile{Seq: seq, Epoch: o.lease.Epoch(), Gen: gen,
			Relayed: relayed.safe(o.cfg.EventsFlushLag)})
		if err != nil {
			o.log.Warn("snapshot failed; will retry", "err", err)
			return
		}
		since, lastSize, snapSeq = 0, n, seq
	}
	purge := func() {
		upTo := min(snapSeq, relayed.safe(o.cfg.EventsFlushLag))
		if upTo <= purged+1 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := o.deps.Streams.Inventory.Purge(ctx,
			jetstream.WithPurgeSubject(o.logSubj), jetstream.WithPurgeSequence(upTo))
		if err != nil {
			o.log.Warn("log purge failed", "up_to", upTo, "err", err)
			return
		}
		purged = upTo - 1
	}
	for {
		select {
		case c, ok := <-o.shadowCh:
			if !ok {
				if since > 0 && !broken {
					write()
				}
				return
			}
			if broken {
				continue
			}
			for _, d := range c.ds {
				if err := shadow.Apply(d); err != nil {
					o.deps.Metrics.StateMismatches.WithLabelValues(checkShadowReplay).Inc()
					o.log.Error("snapshot shadow diverged; snapshots stop until the next owner", "err", err)
					broken = true
					break
				}
			}
			if c.counts != nil && !broken {
				counts = o.checkCounts(c, shadow, counts)
			}
			seq, gen = c.seq, c.gen
			since += len(c.ds)
			lastDecision = time.Now()
		case <-t.C:
			relayed.add(time.Now(), o.relayedSeq.Load())
			shadowLag.Set(float64(len(o.shadowCh)))
			if !broken {
				counts = shadow.ZoneCounts(counts[:0])
				zones.set(counts)
				o.wantCheck.Store(true)
			}
			if time.Since(lastPurge) >= o.cfg.PurgeEvery {
				purge()
				lastPurge = time.Now()
			}
		}
		if broken || since == 0 {
			continue
		}
		if since >= max(o.cfg.SnapshotEvery, lastSize) || time.Since(lastDecision) >= o.cfg.SnapshotIdle {
			write()
		}
	}
}

// checkCounts compares the live zone counts a committed batch carries with
// the shadow's, which has applied the batch, counting the check and any
// mismatch. buf is reused for the shadow's counts and returned.
func (o *Owner) checkCounts(c committed, shadow *inventory.Partition, buf []inventory.ZoneCount) []inventory.ZoneCount {
	buf = shadow.ZoneCounts(buf[:0])
	o.deps.Metrics.StateChecks.Inc()
	if live, logged, differ := diffCounts(c.counts, buf); differ {
		o.deps.Metrics.StateMismatches.WithLabelValues(checkCounts).Inc()
		o.log.Error("the live state differs from its log: zone counts of a batch against the shadow's",
			"log_seq", c.seq, "zone", live.ID, "live_held", live.Held, "live_sold", live.Sold,
			"logged_held", logged.Held, "logged_sold", logged.Sold,
			"live_capacity", live.Capacity, "logged_capacity", logged.Capacity)
	}
	return buf
}

// diffCounts compares the live zone counts of a batch with the shadow's
// after it: it returns the first zone that differs, as each has it.
func diffCounts(live, logged []inventory.ZoneCount) (inventory.ZoneCount, inventory.ZoneCount, bool) {
	if len(live) != len(logged) {
		var l, g inventory.ZoneCount
		if len(live) > 0 {
			l = live[0]
		}
		if len(logged) > 0 {
			g = logged[0]
		}
		return l, g, true
	}
	for i := range live {
		if live[i] != logged[i] {
			return live[i], logged[i], true
		}
	}
	return inventory.ZoneCount{}, inventory.ZoneCount{}, false
}

// zoneGauges are a partition's capacity, held and sold gauges, one of each
// per zone in layout order.
type zoneGauges struct {
	m                    *Metrics
	event, key           string
	zones                []string
	capacity, held, sold []prometheus.Gauge
}

func newZoneGauges(m *Metrics, key string, p *inventory.Partition) *zoneGauges {
	event := key
	if i := strings.LastIndexByte(key, '.'); i > 0 {
		event = key[:i] // keys are "<event>.<index>" and event ids hold no dot
	}
	z := &zoneGauges{m: m, event: event, key: key}
	for _, c := range p.ZoneCounts(nil) {
		z.zones = append(z.zones, c.ID)
		z.capacity = append(z.capacity, m.Capacity.WithLabelValues(event, key, c.ID))
		z.held = append(z.held, m.Held.WithLabelValues(event, key, c.ID))
		z.sold = append(z.sold, m.Sold.WithLabelValues(event, key, c.ID))
	}
	z.set(p.ZoneCounts(nil))
	return z
}

// set sets the gauges from counts, in the same zone order.
func (z *zoneGauges) set(counts []inventory.ZoneCount) {
	for i, c := range counts[:min(len(counts), len(z.zones))] {
		z.capacity[i].Set(float64(c.Capacity))
		z.held[i].Set(float64(c.Held))
		z.sold[i].Set(float64(c.Sold))
	}
}

// delete removes the partition's series: another owner reports it now.
func (z *zoneGauges) delete() {
	for _, zone := range z.zones {
		z.m.Capacity.DeleteLabelValues(z.event, z.key, zone)
		z.m.Held.DeleteLabelValues(z.event, z.key, zone)
		z.m.Sold.DeleteLabelValues(z.event, z.key, zone)
	}
}

// relayedSamples remembers when the relay reached which log sequence, to
// tell which sequences were confirmed long enough ago to be flushed.
type relayedSamples struct {
	at  []time.Time
	seq []uint64
}

func (r *relayedSamples) add(t time.Time, seq uint64) {
	r.at = append(r.at, t)
	r.seq = append(r.seq, seq)
	if len(r.at) > 256 {
		r.at, r.seq = r.at[128:], r.seq[128:]
	}
}

// safe is the highest sequence sampled at least lag ago.
func (r *relayedSamples) safe(lag time.Duration) uint64 {
	cut := time.Now().Add(-lag)
	var s uint64
	for i, t := range r.at {
		if t.After(cut) {
			break
		}
		s = r.seq[i]
	}
	return s
}

// writeSnapshot stores the shadow's state as of the log position in f: the
// body is the binary snapshot, the position is in the object's metadata. It
// returns the snapshot's size in entries.
//
// It works at a duty cycle (snapshotWork, then snapshotRest): encoding a
// partition of a few hundred thousand holds takes a few hundred
// milliseconds of CPU, and in one burst it took a core from the hold path
// for all of them (a 30 ms p99 at half of peak load on two cores).
func (o *Owner) writeSnapshot(ctx context.Context, shadow *inventory.Partition, f snapshotFile) (int, error) {
	duty := pause.NewDuty(ctx, snapshotWork, snapshotRest)
	body, n, err := shadow.MarshalSnapshotPaced(duty.Step)
	if err != nil {
		return 0, err
	}
	_, err = o.snaps.Put(ctx, jetstream.ObjectMeta{
		Name: o.key,
		Metadata: map[string]string{
			metaFormat: formatBinary, metaSeq: fmt.Sprint(f.Seq), metaEpoch: fmt.Sprint(f.Epoch),
			metaGen: fmt.Sprint(f.Gen), metaRelayed: fmt.Sprint(f.Relayed),
		},
		// Each chunk is a synced write on the disk the log uses: in 1 MiB
		// chunks the log writes queued behind them (12-20 ms instead of
		// 2 during a snapshot at half of peak load); in 128 KiB chunks,
		// with the duty cycle's rests between them, they hardly notice.
		Opts: &jetstream.ObjectMetaOptions{ChunkSize: 128 << 10},
	}, &pacedReader{r: bytes.NewReader(body), duty: duty})
	if err != nil {
		return 0, fmt.Errorf("snapshot put: %w", err)
	}
	o.deps.Metrics.Snapshots.Inc()
	return n, nil
}

// The snapshotter's duty cycle: about 60% of one core at most.
const (
	snapshotWork = 3 * time.Millisecond
	snapshotRest = 2 * time.Millisecond
)

// pacedReader steps a duty cycle on every read: the object store reads a
// chunk at a time, and each chunk is a synced write on the log's disk.
type pacedReader struct {
	r    io.Reader
	duty *pause.Duty
}

func (p *pacedReader) Read(b []byte) (int, error) {
	p.duty.Step()
	return p.r.Read(b)
}

// Snapshot object metadata.
const (
	metaFormat   = "format"
	formatBinary = "inventory-binary-1"
	metaSeq      = "log_seq"
	metaEpoch    = "epoch"
	metaGen      = "gen"
	metaRelayed  = "relayed"
)
