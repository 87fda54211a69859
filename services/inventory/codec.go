package inventory

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The snapshot's binary form: about ten times smaller and faster than JSON,
// so that writing snapshots of a partition holding hundreds of thousands of
// holds does not stall an on-sale. Layout (all integers varints, strings and
// lists length-prefixed):
//
//	"TKSNAP" version key owner lease
//	holds:  n × (decision status order endedAt)
//	ended:  n × (hold at)
//	keys:   n × (key[16] at hold hasDecision [decision])
var snapMagic = []byte("TKSNAP")

const codecVersion = 1

var decisionTypes = []DecisionType{HoldPlaced, HoldReleased, HoldExpired, SeatsSold, SaleCancelled, HoldRejected, OwnerEpoch}

// MarshalBinary encodes the snapshot.
func (s *Snapshot) MarshalBinary() ([]byte, error) {
	e := encoder{b: make([]byte, 0, 64+len(s.Holds)*128+len(s.Keys)*40)}
	e.header(s.Key, s.Owner, s.Lease)
	e.uint(uint64(len(s.Holds)))
	for _, h := range s.Holds {
		if err := e.hold(h.Placed, h.Status, h.Order, h.EndedAt); err != nil {
			return nil, err
		}
	}
	e.uint(uint64(len(s.Ended)))
	for _, x := range s.Ended {
		e.ended(x.Hold, x.At)
	}
	e.uint(uint64(len(s.Keys)))
	for _, k := range s.Keys {
		if err := e.key(k); err != nil {
			return nil, err
		}
	}
	return e.b, nil
}

// paceEvery is how many entries a paced encoding handles
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

// MarshalSnapshotPaced encodes the partition's snapshot straight from its
// records: the bytes of p.Snapshot().MarshalBinary() without building the
// snapshot (a decision and a seat list per hold for the collector). It
// calls pace (when not nil) every paceEvery entries, and returns the
// snapshot's size in entries.
func (p *Partition) MarshalSnapshotPaced(pace func()) ([]byte, int, error) {
	step := (&pacer{pace: pace}).step
	holds, keys := 0, 0
	p.recs.each(func(_ int32, r *rec) {
		if r.kind == recHold && r.byID {
			holds++
		}
	})
	e := encoder{b: make([]byte, 0, 64+holds*128)}
	ek := encoder{b: make([]byte, 0, p.keys.len()*40)} // the keys, counted as they are written
	e.header(p.key, p.owner, p.lease)
	e.uint(uint64(holds))
	var (
		d     Decision
		seats []string
		err   error
	)
	// fill makes d the decision a record stands for, reusing d and seats.
	fill := func(r *rec) *Decision {
		seats = p.recorded(r, &d, seats)
		return &d
	}
	p.recs.each(func(_ int32, r *rec) {
		if err == nil && r.kind == recHold && r.byID {
			step()
			err = e.hold(fill(r), r.status, p.recs.order(r), r.endedAt)
		}
	})
	e.uint(uint64(p.ended.len()))
	p.ended.each(func(i int32, at int64) { e.ended(p.recs.field(p.recs.at(i), fID), at) })
	p.keys.each(func(k IdemKey, at int64) {
		i, ok := p.idem[k]
		if !ok || err != nil || p.recs.at(i).at != at {
			return // forgotten, or superseded
		}
		step()
		sk := SnapKey{Key: k, At: at}
		if r := p.recs.at(i); r.kind == recHold && r.byID {
			sk.Hold = p.recs.field(r, fID)
		} else {
			sk.D = fill(r)
		}
		err = ek.key(sk)
		keys++
	})
	if err != nil {
		return nil, 0, err
	}
	e.uint(uint64(keys))
	e.b = append(e.b, ek.b...)
	return e.b, holds + p.ended.len() + keys, nil
}

// UnmarshalBinary decodes a snapshot encoded by MarshalBinary. It refuses,
// without panicking, anything malformed.
func (s *Snapshot) UnmarshalBinary(b []byte) error {
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != string(snapMagic) {
		return errors.New("inventory: not a binary snapshot")
	}
	d := decoder{b: b[len(snapMagic):]}
	if v := d.uint(); v != codecVersion {
		if d.err != nil {
			return d.err
		}
		return fmt.Errorf("inventory: snapshot codec version %d, want %d", v, codecVersion)
	}
	*s = Snapshot{Version: SnapshotVersion, Key: d.str(), Owner: d.str(), Lease: d.uint()}
	n := d.count(4)
	s.Holds = make([]SnapHold, 0, n)
	for range n {
		h := SnapHold{Placed: d.decision()}
		h.Status = Status(d.uint())
		h.Order = d.str()
		h.EndedAt = d.int()
		s.Holds = append(s.Holds, h)
	}
	n = d.count(2)
	s.Ended = make([]SnapEnded, 0, n)
	for range n {
		s.Ended = append(s.Ended, SnapEnded{Hold: d.str(), At: d.int()})
	}
	n = d.count(19)
	s.Keys = make([]SnapKey, 0, n)
	for range n {
		var k SnapKey
		copy(k.Key[:], d.bytes(16))
		k.At = d.int()
		k.Hold = d.str()
		if d.uint() == 1 {
			k.D = d.decision()
		}
		s.Keys = append(s.Keys, k)
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("inventory: trailing bytes after the snapshot")
	}
	return d.err
}

type encoder struct{ b []byte }

func (e *encoder) header(key, owner string, lease uint64) {
	e.b = append(e.b, snapMagic...)
	e.uint(codecVersion)
	e.str(key)
	e.str(owner)
	e.uint(lease)
}

func (e *encoder) hold(placed *Decision, st Status, order string, endedAt int64) error {
	if err := e.decision(placed); err != nil {
		return err
	}
	e.uint(uint64(st))
	e.str(order)
	e.int(endedAt)
	return nil
}

func (e *encoder) ended(hold string, at int64) {
	e.str(hold)
	e.int(at)
}

func (e *encoder) key(k SnapKey) error {
	e.b = append(e.b, k.Key[:]...)
	e.int(k.At)
	e.str(k.Hold)
	if k.D == nil {
		e.uint(0)
		return nil
	}
	e.uint(1)
	return e.decision(k.D)
}

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) decision(d *Decision) error {
	if d == nil {
		return errors.New("inventory: snapshot entry without a decision")
	}
	t := -1
	for i, x := range decisionTypes {
		if x == d.Type {
			t = i
		}
	}
	if t < 0 {
		return fmt.Errorf("inventory: decision type %q cannot be encoded", d.Type)
	}
	e.uint(uint64(t))
	e.int(d.At)
	e.str(d.Hold)
	e.uint(uint64(len(d.Seats)))
	for _, s := range d.Seats {
		e.str(s)
	}
	e.str(d.Zone)
	e.int(int64(d.Qty))
	e.str(d.Holder)
	e.int(d.Expires)
	if d.Key == (IdemKey{}) {
		e.uint(0)
	} else {
		e.uint(1)
		e.b = append(e.b, d.Key[:]...)
	}
	e.str(d.FP)
	e.str(d.Reason)
	e.str(d.Msg)
	e.str(d.Order)
	e.str(d.Owner)
	e.uint(d.Lease)
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("inventory: malformed snapshot (%s)", what)
	}
	d.b = nil
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n > len(d.b) {
		d.fail("truncated")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail("string length")
		return ""
	}
	return string(d.bytes(int(n)))
}

// count reads a list length, refusing one that the remaining bytes cannot
// hold (at least min bytes an element), so a corrupt length cannot make
// the decoder allocate without bound.
func (d *decoder) count(min int) int {
	n := d.uint()
	if n > uint64(len(d.b)/min) {
		d.fail("list length")
		return 0
	}
	return int(n)
}

func (d *decoder) decision() *Decision {
	t := d.uint()
	if t >= uint64(len(decisionTypes)) {
		d.fail("decision type")
		return &Decision{}
	}
	x := &Decision{Type: decisionTypes[t], At: d.int(), Hold: d.str()}
	if n := d.count(1); n > 0 {
		x.Seats = make([]string, n)
		for i := range x.Seats {
			x.Seats[i] = d.str()
		}
	}
	x.Zone = d.str()
	x.Qty = int(d.int())
	x.Holder = d.str()
	x.Expires = d.int()
	if d.uint() == 1 {
		copy(x.Key[:], d.bytes(16))
	}
	x.FP = d.str()
	x.Reason = d.str()
	x.Msg = d.str()
	x.Order = d.str()
	x.Owner = d.str()
	x.Lease = d.uint()
	return x
}
