package inventory

import "fmt"

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

// Snapshot captures the partition's state. The owner's snapshotter encodes
// the partition directly (MarshalSnapshotPaced); this form is for recovery
// and tests.
func (p *Partition) Snapshot() *Snapshot {
	s := &Snapshot{Version: SnapshotVersion, Key: p.key, Owner: p.owner, Lease: p.lease,
		Holds: make([]SnapHold, 0, len(p.recs.ids))}
	p.recs.each(func(_ int32, r *rec) {
		if r.kind == recHold && r.byID {
			s.Holds = append(s.Holds, SnapHold{Placed: p.decisionOf(r), Status: r.status, Order: p.recs.order(r), EndedAt: r.endedAt})
		}
	})
	p.ended.each(func(i int32, at int64) { s.Ended = append(s.Ended, SnapEnded{p.recs.field(p.recs.at(i), fID), at}) })
	p.keys.each(func(k IdemKey, at int64) {
		i, ok := p.idem[k]
		if !ok || p.recs.at(i).at != at {
			return // forgotten, or superseded
		}
		sk := SnapKey{Key: k, At: at}
		if r := p.recs.at(i); r.kind == recHold && r.byID {
			sk.Hold = p.recs.field(r, fID)
		} else {
			sk.D = p.decisionOf(r)
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
		i, err := p.newHold(d)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if !p.recs.index(i) {
			return nil, fmt.Errorf("inventory: snapshot hold %s twice", d.Hold)
		}
		h := p.recs.at(i)
		h.status, h.endedAt = sh.Status, sh.EndedAt
		p.recs.setOrder(i, sh.Order)
		if h.status == Held || h.status == Sold {
			for j := range h.seatCount() {
				if p.seats[p.recs.seat(h, j)].hold != 0 {
					return nil, fmt.Errorf("inventory: snapshot hold %s: seat %q taken twice", d.Hold, p.seatIDs[p.recs.seat(h, j)])
				}
			}
			p.take(i, h)
		}
		switch h.status {
		case Held:
			p.adjust(h, +1, 0)
			p.exp.push(i)
		case Sold:
			p.adjust(h, 0, +1)
		}
	}
	for _, z := range p.zones {
		if z.held+z.sold > z.capacity || z.held < 0 || z.sold < 0 {
			return nil, fmt.Errorf("inventory: snapshot over capacity in zone %s", z.def.ID)
		}
	}
	for _, e := range s.Ended {
		if i, ok := p.recs.byID(e.Hold); ok {
			p.ended.push(i, e.At)
		} // else: it would forget a hold that is gone already
	}
	for _, k := range s.Keys {
		var i int32
		switch {
		case k.D == nil:
			var ok bool
			if i, ok = p.recs.byID(k.Hold); !ok {
				return nil, fmt.Errorf("inventory: snapshot key for missing hold %s", k.Hold)
			}
		case k.D.Type == HoldPlaced:
			if i, err = p.newHold(k.D); err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
		case k.D.Type == HoldRejected:
			i = p.newRefusal(k.D)
		default:
			return nil, fmt.Errorf("inventory: snapshot key with a %s decision", k.D.Type)
		}
		p.remember(k.Key, i, k.At)
	}
	return p, nil
}
