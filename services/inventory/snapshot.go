package inventory

import (
	"container/heap"
	"fmt"
)

// SnapshotVersion is the version of the snapshot format written by Snapshot.
const SnapshotVersion = 1

// Snapshot is a partition's state in a form that can be stored: its holds
// (live, and ended ones not yet forgotten) and its idempotency records, each
// list in the order the partition forgets them. Seat statuses and zone
// counts are derived from the holds, so they are not stored.
type Snapshot struct {
	Version int         `json:"v"`
	Key     string      `json:"key"`
	Owner   string      `json:"owner,omitempty"`
	Lease   uint64      `json:"lease,omitempty"`
	Holds   []SnapHold  `json:"holds"`
	Ended   []SnapEnded `json:"ended"`
	Keys    []SnapKey   `json:"keys"`
}

// SnapHold is one hold of a snapshot.
type SnapHold struct {
	Placed  *Decision `json:"placed"`
	Status  Status    `json:"status"`
	Order   string    `json:"order,omitempty"`
	EndedAt int64     `json:"ended_at,omitempty"`
}

// SnapEnded is one entry of the queue of ended holds.
type SnapEnded struct {
	Hold string `json:"hold"`
	At   int64  `json:"at"`
}

// SnapKey is one idempotency record: the hold it placed (by id, when that
// hold is in the snapshot) or its decision.
type SnapKey struct {
	Key  IdemKey   `json:"key"`
	At   int64     `json:"at"`
	Hold string    `json:"hold,omitempty"`
	D    *Decision `json:"d,omitempty"`
}

// Snapshot captures the partition's state. The result shares immutable
// decisions with the partition but nothing mutable.
func (p *Partition) Snapshot() *Snapshot { return p.SnapshotPaced(nil) }

// paceEvery is how many entries a paced snapshot or encoding handles
// between two calls of its pace function.
const paceEvery = 1024

// pacer calls pace (when not nil) every paceEvery steps.
type pacer struct {
	pace func()
	n    int
}

func (p *pacer) step() {
	if p.n++; p.pace != nil && p.n%paceEvery == 0 {
		p.pace()
	}
}

// SnapshotPaced is Snapshot calling pace (when not nil) every paceEvery
// entries, so that a background snapshotter can give way to the hot path.
func (p *Partition) SnapshotPaced(pace func()) *Snapshot {
	step := (&pacer{pace: pace}).step
	s := &Snapshot{Version: SnapshotVersion, Key: p.key, Owner: p.owner, Lease: p.lease,
		Holds: make([]SnapHold, 0, len(p.holds))}
	for _, h := range p.holds {
		s.Holds = append(s.Holds, SnapHold{Placed: h.placed, Status: h.status, Order: h.order, EndedAt: h.endedAt})
		step()
	}
	p.ended.each(func(id string, at int64) { s.Ended = append(s.Ended, SnapEnded{id, at}) })
	p.keys.each(func(k IdemKey, at int64) {
		step()
		e, ok := p.idem[k]
		if !ok || e.d.At != at {
			return // forgotten, or superseded
		}
		sk := SnapKey{Key: k, At: at}
		if e.d.Type == HoldPlaced {
			if h, ok := p.holds[e.d.Hold]; ok && h.placed == e.d {
				sk.Hold = e.d.Hold
			} else {
				sk.D = e.d
			}
		} else {
			sk.D = e.d
		}
		s.Keys = append(s.Keys, sk)
	})
	return s
}

// Restore rebuilds a partition from its layout and a snapshot.
func Restore(l Layout, lim Limits, s *Snapshot) (*Partition, error) {
	if s.Version != SnapshotVersion {
		return nil, fmt.Errorf("inventory: snapshot version %d, want %d", s.Version, SnapshotVersion)
	}
	p, err := NewPartition(s.Key, l, lim)
	if err != nil {
		return nil, err
	}
	p.owner, p.lease = s.Owner, s.Lease
	for _, sh := range s.Holds {
		d := sh.Placed
		if d == nil || d.Type != HoldPlaced {
			return nil, fmt.Errorf("inventory: snapshot hold without placement")
		}
		h := &hold{placed: d, status: sh.Status, order: sh.Order, endedAt: sh.EndedAt, zone: -1, heapIdx: -1}
		live := h.status == Held || h.status == Sold
		if len(d.Seats) > 0 {
			h.seats = make([]int32, len(d.Seats))
			for i, id := range d.Seats {
				si, ok := p.seatIdx[id]
				if !ok || (live && p.seats[si].hold != nil) {
					return nil, fmt.Errorf("inventory: snapshot hold %s: seat %q unknown or taken twice", d.Hold, id)
				}
				h.seats[i] = si
				if live {
					p.seats[si].hold = h
				}
			}
		} else {
			zi, ok := p.zoneIdx[d.Zone]
			if !ok {
				return nil, fmt.Errorf("inventory: snapshot hold %s: unknown zone %q", d.Hold, d.Zone)
			}
			h.zone = zi
		}
		switch h.status {
		case Held:
			p.adjust(h, +1, 0)
			heap.Push(&p.exp, h)
		case Sold:
			p.adjust(h, 0, +1)
		}
		p.holds[d.Hold] = h
	}
	for _, z := range p.zones {
		if z.held+z.sold > z.capacity || z.held < 0 || z.sold < 0 {
			return nil, fmt.Errorf("inventory: snapshot over capacity in zone %s", z.def.ID)
		}
	}
	for _, e := range s.Ended {
		p.ended.push(e.Hold, e.At)
	}
	for _, k := range s.Keys {
		d := k.D
		if d == nil {
			h, ok := p.holds[k.Hold]
			if !ok {
				return nil, fmt.Errorf("inventory: snapshot key for missing hold %s", k.Hold)
			}
			d = h.placed
		}
		p.idem[k.Key] = idemEntry{d: d}
		p.keys.push(k.Key, k.At)
	}
	return p, nil
}
