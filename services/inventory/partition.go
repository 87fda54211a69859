package inventory

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Reasons refine errs.Conflict for callers that act on them.
const (
	ReasonSeatsUnavailable = "seats_unavailable"
	ReasonSoldOut          = "sold_out"
	ReasonInsufficient     = "insufficient_capacity"
	ReasonHoldExpired      = "hold_expired"
	ReasonHoldReleased     = "hold_released"
	ReasonHoldSold         = "hold_confirmed"
	ReasonNotSold          = "hold_not_confirmed"
	ReasonSaleCancelled    = "sale_cancelled"
	ReasonOtherOrder       = "confirmed_for_other_order"
)

type seat struct {
	zone int32
	hold int32 // the record (index+1) of the hold that has it; 0: free
}

type zoneState struct {
	def        ZoneDef
	capacity   int
	held, sold int
}

type timed[T any] struct {
	v  T
	at int64
}

// queue is a FIFO of timestamped values, used to forget idempotency keys and
// ended holds in the order they were made.
type queue[T any] struct {
	items []timed[T]
	head  int
}

func (q *queue[T]) push(v T, at int64) { q.items = append(q.items, timed[T]{v, at}) }
func (q *queue[T]) len() int           { return len(q.items) - q.head }
func (q *queue[T]) front() timed[T]    { return q.items[q.head] }
func (q *queue[T]) pop() {
	var zero timed[T]
	q.items[q.head] = zero
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append([]timed[T](nil), q.items[q.head:]...)
		q.head = 0
	}
}
func (q *queue[T]) each(f func(T, int64)) {
	for _, it := range q.items[q.head:] {
		f(it.v, it.at)
	}
}

// Partition is the inventory state of one event partition. It is not safe for
// concurrent use: one goroutine (the owner's) drives it.
//
// Commands (Hold, Release, Confirm, CancelSale, Expire) decide against the
// state, record their decisions (applying them at once) and return the
// answer; TakeDecisions hands the recorded decisions to the caller, who must
// make them durable before it passes the answers on. Apply replays a logged
// decision on recovery. The partition keeps no decision: it keeps what it
// needs of each in records (records.go).
type Partition struct {
	key     string
	limits  Limits
	seatIdx map[string]int32
	seatIDs []string
	seats   []seat
	zoneIdx map[string]int
	zones   []zoneState

	recs  records           // holds (live, and ended ones until forgotten) and refusals
	ended queue[int32]      // ended holds, oldest first
	idem  map[IdemKey]int32 // idempotency key → its hold or refusal
	keys  queue[IdemKey]    // idempotency keys, oldest first
	exp   expiryHeap

	gen     uint64 // generation of the batch being recorded
	durable func() uint64
	pending []*Decision

	owner string // current owner, from the last owner.epoch
	lease uint64
}

// NewPartition builds the empty state of a partition from its layout. key is
// the partition's name ("<event>.<i>").
func NewPartition(key string, l Layout, lim Limits) (*Partition, error) {
	p := &Partition{
		key:     key,
		limits:  lim,
		seatIdx: make(map[string]int32, len(l.Seats)),
		seatIDs: make([]string, len(l.Seats)),
		seats:   make([]seat, len(l.Seats)),
		zoneIdx: map[string]int{},
		recs:    newRecords(),
		idem:    map[IdemKey]int32{},
	}
	p.exp.rs = &p.recs
	for _, z := range l.Zones {
		if _, dup := p.zoneIdx[z.ID]; dup {
			return nil, fmt.Errorf("inventory: zone %q twice in layout", z.ID)
		}
		p.zoneIdx[z.ID] = len(p.zones)
		zs := zoneState{def: z}
		if z.GA {
			zs.capacity = z.Capacity
		}
		p.zones = append(p.zones, zs)
	}
	for i, s := range l.Seats {
		zi, ok := p.zoneIdx[s.Zone]
		if !ok || p.zones[zi].def.GA {
			return nil, fmt.Errorf("inventory: seat %q in unknown or GA zone %q", s.ID, s.Zone)
		}
		if _, dup := p.seatIdx[s.ID]; dup {
			return nil, fmt.Errorf("inventory: seat %q twice in layout", s.ID)
		}
		p.seatIdx[s.ID] = int32(i)
		p.seatIDs[i] = s.ID
		p.seats[i] = seat{zone: int32(zi)}
		p.zones[zi].capacity++
	}
	return p, nil
}

// Key is the partition's name.
func (p *Partition) Key() string { return p.key }

// Owner is the owner named by the last owner.epoch decision, and its lease.
func (p *Partition) Owner() (string, uint64) { return p.owner, p.lease }

// SetBatch tells the partition which batch generation it is recording and how
// to learn which generation is durable; an idempotency key recorded in a
// generation that is not yet durable is "in flight".
func (p *Partition) SetBatch(gen uint64, durable func() uint64) {
	p.gen, p.durable = gen, durable
}

// TakeDecisions returns the decisions recorded since the last call.
func (p *Partition) TakeDecisions() []*Decision {
	d := p.pending
	p.pending = nil
	return d
}

// HasPending reports whether decisions are waiting to be taken.
func (p *Partition) HasPending() bool { return len(p.pending) > 0 }

func (p *Partition) record(d *Decision) {
	if err := p.Apply(d); err != nil {
		// A decision made here is always applicable; anything else is a bug
		// that must not be logged.
		panic(err)
	}
	p.pending = append(p.pending, d)
}

// Hold places a hold on seats (all or nothing) or a quantity of a GA zone.
// newID makes the hold's id suffix. A refusal for lack of inventory is
// recorded (it is what the key replays); a malformed request is not.
func (p *Partition) Hold(now time.Time, r HoldRequest, newID func() string) (Hold, error) {
	const op = "inventory.hold"
	if r.IdempotencyKey == "" || len(r.IdempotencyKey) > p.limits.MaxIdempotentKey+256 {
		return Hold{}, errs.E(op, errs.Invalid, "an idempotency key is required")
	}
	key := HashIdempotencyKey(r.IdempotencyKey)
	if i, ok := p.idem[key]; ok {
		e := p.recs.at(i)
		if p.recs.field(e, fFP) != r.Fingerprint {
			return Hold{}, errs.E(op, errs.Mismatch, "this idempotency key was used with a different request")
		}
		if p.durable != nil && e.gen > p.durable() {
			return Hold{}, errs.E(op, errs.InFlight, "a request with this idempotency key is still being processed")
		}
		return p.replay(e)
	}
	if err := p.validateHold(&r); err != nil {
		return Hold{}, err
	}
	p.expireDue(now)

	var reject *Decision
	if len(r.Seats) > 0 {
		var taken []string
		for _, id := range r.Seats {
			if p.seats[p.seatIdx[id]].hold != 0 {
				taken = append(taken, id)
			}
		}
		if len(taken) > 0 {
			reject = &Decision{Type: HoldRejected, Reason: ReasonSeatsUnavailable,
				Msg: "seats not available: " + strings.Join(taken, ", ")}
		}
	} else {
		z := &p.zones[p.zoneIdx[r.Zone]]
		left := z.capacity - z.held - z.sold
		switch {
		case left <= 0:
			reject = &Decision{Type: HoldRejected, Reason: ReasonSoldOut, Msg: "zone " + r.Zone + " is sold out"}
		case left < r.Quantity:
			reject = &Decision{Type: HoldRejected, Reason: ReasonInsufficient,
				Msg: fmt.Sprintf("only %d left in zone %s", left, r.Zone)}
		}
	}
	at := now.UnixNano()
	if reject != nil {
		reject.At, reject.Key, reject.FP = at, key, r.Fingerprint
		p.record(reject)
		return Hold{}, refusal(reject.Msg, reject.Reason)
	}
	ttl := time.Duration(r.TTLSeconds) * time.Second
	if ttl == 0 {
		ttl = p.limits.DefaultTTL
	}
	d := &Decision{
		Type: HoldPlaced, At: at, Hold: p.key + "." + newID(),
		Seats: r.Seats, Zone: r.Zone, Qty: r.Quantity, Holder: r.Holder,
		Expires: now.Add(ttl).UnixNano(), Key: key, FP: r.Fingerprint,
	}
	if len(r.Seats) > 0 {
		d.Qty = len(r.Seats)
	}
	p.record(d)
	return Hold{
		HoldID: d.Hold, Seats: nonNil(d.Seats), Zone: d.Zone, Quantity: d.Qty, Holder: d.Holder,
		Status: Held, ExpiresAt: time.Unix(0, d.Expires).UTC(),
	}, nil
}

func (p *Partition) validateHold(r *HoldRequest) error {
	const op = "inventory.hold"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if len(r.Holder) > p.limits.MaxHolderLen {
		return bad("holder is longer than %d characters", p.limits.MaxHolderLen)
	}
	if r.TTLSeconds != 0 {
		// Compare in seconds: multiplying first could overflow and wrap into
		// range.
		minS, maxS := int64(p.limits.MinTTL/time.Second), int64(p.limits.MaxTTL/time.Second)
		if s := int64(r.TTLSeconds); s < minS || s > maxS {
			return bad("ttl_seconds must be between %d and %d", minS, maxS)
		}
	}
	switch {
	case len(r.Seats) > 0 && (r.Zone != "" || r.Quantity != 0):
		return bad("ask for seats or for a zone and quantity, not both")
	case len(r.Seats) > 0:
		if len(r.Seats) > p.limits.MaxSeatsPerHold {
			return bad("at most %d seats per hold", p.limits.MaxSeatsPerHold)
		}
		seen := make(map[string]bool, len(r.Seats))
		for _, s := range r.Seats {
			if _, ok := p.seatIdx[s]; !ok {
				return errs.Errorf(op, errs.Invalid, "unknown seat %q", s).WithReason("unknown_seat")
			}
			if seen[s] {
				return bad("seat %q is listed twice", s)
			}
			seen[s] = true
		}
	case r.Zone != "":
		zi, ok := p.zoneIdx[r.Zone]
		if !ok || !p.zones[zi].def.GA {
			return errs.Errorf(op, errs.Invalid, "unknown general-admission zone %q", r.Zone).WithReason("unknown_zone")
		}
		if r.Quantity < 1 || r.Quantity > p.limits.MaxQuantity {
			return bad("quantity must be between 1 and %d", p.limits.MaxQuantity)
		}
	default:
		return bad("ask for seats, or for a zone and a quantity")
	}
	return nil
}

func refusal(msg, reason string) error {
	return errs.E("inventory.hold", errs.Conflict, msg).WithReason(reason)
}

// replay answers an idempotency key with its first answer.
func (p *Partition) replay(r *rec) (Hold, error) {
	if r.kind == recRefusal {
		return Hold{}, refusal(p.recs.field(r, fMsg), p.recs.field(r, fReason))
	}
	h := p.view(r)
	h.Status, h.OrderID = Held, ""
	return h, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// seatIDsOf names a hold's seats (nil for GA).
func (p *Partition) seatIDsOf(r *rec) []string {
	n := r.seatCount()
	if n == 0 {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = p.seatIDs[p.recs.seat(r, i)]
	}
	return s
}

func (p *Partition) zoneOf(r *rec) string {
	if r.zone < 0 {
		return ""
	}
	return p.zones[r.zone].def.ID
}

func (p *Partition) view(r *rec) Hold {
	return Hold{
		HoldID: p.recs.field(r, fID), Seats: nonNil(p.seatIDsOf(r)), Zone: p.zoneOf(r), Quantity: int(r.qty),
		Holder: p.recs.field(r, fHolder), Status: r.status, ExpiresAt: time.Unix(0, r.expires).UTC(), OrderID: p.recs.order(r),
	}
}

// recorded makes d the decision a record stands for: the hold.placed of a
// hold, the hold.rejected of a refusal. A hold's seat ids are appended to
// seats[:0], which it returns for reuse.
func (p *Partition) recorded(r *rec, d *Decision, seats []string) []string {
	if r.kind == recRefusal {
		*d = Decision{Type: HoldRejected, At: r.at, Key: r.key, FP: p.recs.field(r, fFP),
			Reason: p.recs.field(r, fReason), Msg: p.recs.field(r, fMsg)}
		return seats
	}
	seats = seats[:0]
	for j := range r.seatCount() {
		seats = append(seats, p.seatIDs[p.recs.seat(r, j)])
	}
	*d = Decision{Type: HoldPlaced, At: r.at, Hold: p.recs.field(r, fID), Zone: p.zoneOf(r), Qty: int(r.qty),
		Holder: p.recs.field(r, fHolder), Expires: r.expires, Key: r.key, FP: p.recs.field(r, fFP)}
	if len(seats) > 0 {
		d.Seats = seats
	}
	return seats
}

// decisionOf is the decision a record stands for, in its own memory.
func (p *Partition) decisionOf(r *rec) *Decision {
	d := new(Decision)
	p.recorded(r, d, nil)
	return d
}

func (p *Partition) find(op, id string) (*rec, error) {
	i, ok := p.recs.byID(id)
	if !ok {
		return nil, errs.Errorf(op, errs.NotFound, "no hold %q", id)
	}
	return p.recs.at(i), nil
}

// Release frees a live hold's inventory. Releasing a hold that already ended
// answers its state again.
func (p *Partition) Release(now time.Time, id string) (Hold, error) {
	const op = "inventory.release"
	p.expireDue(now)
	h, err := p.find(op, id)
	if err != nil {
		return Hold{}, err
	}
	switch h.status {
	case Held:
		p.record(p.about(h, &Decision{Type: HoldReleased, At: now.UnixNano()}))
	case Sold:
		return Hold{}, errs.E(op, errs.Conflict, "the hold is confirmed; cancel the sale instead").WithReason(ReasonHoldSold)
	case Cancelled:
		return Hold{}, errs.E(op, errs.Conflict, "the hold was sold and the sale cancelled").WithReason(ReasonSaleCancelled)
	}
	return p.view(h), nil
}

// Confirm turns a live hold into a sale. Confirming it again (for the same
// order) answers the sale again.
func (p *Partition) Confirm(now time.Time, r ConfirmRequest) (Hold, error) {
	const op = "inventory.confirm"
	if len(r.OrderID) > p.limits.MaxOrderIDLen {
		return Hold{}, errs.Errorf(op, errs.Invalid, "order_id is longer than %d characters", p.limits.MaxOrderIDLen)
	}
	p.expireDue(now)
	h, err := p.find(op, r.HoldID)
	if err != nil {
		return Hold{}, err
	}
	switch h.status {
	case Held:
		p.record(p.about(h, &Decision{Type: SeatsSold, At: now.UnixNano(), Order: r.OrderID}))
	case Sold:
		if order := p.recs.order(h); r.OrderID != "" && order != "" && r.OrderID != order {
			return Hold{}, errs.E(op, errs.Conflict, "the hold was confirmed for another order").WithReason(ReasonOtherOrder)
		}
	case Expired, Released:
		if !r.Reclaim {
			if h.status == Expired {
				return Hold{}, errs.E(op, errs.Conflict, "the hold has expired").WithReason(ReasonHoldExpired)
			}
			return Hold{}, errs.E(op, errs.Conflict, "the hold was released").WithReason(ReasonHoldReleased)
		}
		if !p.free(h) {
			return Hold{}, errs.E(op, errs.Conflict, "the hold ended and its seats are taken").WithReason(ReasonSeatsUnavailable)
		}
		p.record(p.about(h, &Decision{Type: SeatsSold, At: now.UnixNano(), Order: r.OrderID}))
	case Cancelled:
		return Hold{}, errs.E(op, errs.Conflict, "the sale was cancelled").WithReason(ReasonSaleCancelled)
	}
	return p.view(h), nil
}

// free reports whether an ended hold's seats (its GA quantity) are free.
func (p *Partition) free(h *rec) bool {
	if h.zone >= 0 {
		z := &p.zones[h.zone]
		return z.capacity-z.held-z.sold >= int(h.qty)
	}
	for j := range h.seatCount() {
		if p.seats[p.recs.seat(h, j)].hold != 0 {
			return false
		}
	}
	return true
}

// CancelSale frees a sold hold's inventory (a refund). Cancelling it again
// answers the cancelled sale again.
func (p *Partition) CancelSale(now time.Time, r ConfirmRequest) (Hold, error) {
	const op = "inventory.cancel"
	p.expireDue(now)
	h, err := p.find(op, r.HoldID)
	if err != nil {
		return Hold{}, err
	}
	switch h.status {
	case Sold:
		order := p.recs.order(h)
		if r.OrderID != "" && order != "" && r.OrderID != order {
			return Hold{}, errs.E(op, errs.Conflict, "the hold was confirmed for another order").WithReason(ReasonOtherOrder)
		}
		p.record(p.about(h, &Decision{Type: SaleCancelled, At: now.UnixNano(), Order: order}))
	case Cancelled:
	default:
		return Hold{}, errs.Errorf(op, errs.Conflict, "the hold is %s, not sold", h.status).WithReason(ReasonNotSold)
	}
	return p.view(h), nil
}

// Get returns a hold, live or recently ended.
func (p *Partition) Get(id string) (Hold, error) {
	h, err := p.find("inventory.get", id)
	if err != nil {
		return Hold{}, err
	}
	return p.view(h), nil
}

// Expire records the expiry of every hold whose time has come and reports how
// many expired.
func (p *Partition) Expire(now time.Time) int { return p.expireDue(now) }

func (p *Partition) expireDue(now time.Time) int {
	n := 0
	t := now.UnixNano()
	for p.exp.len() > 0 && p.recs.at(p.exp.top()).expires <= t {
		p.record(p.about(p.recs.at(p.exp.top()), &Decision{Type: HoldExpired, At: t}))
		n++
	}
	return n
}

// about fills in what a decision on an existing hold concerns, so that every
// decision (and its domain event) is complete on its own.
func (p *Partition) about(h *rec, d *Decision) *Decision {
	d.Hold, d.Seats, d.Zone, d.Qty, d.Holder = p.recs.field(h, fID), p.seatIDsOf(h), p.zoneOf(h), int(h.qty), p.recs.field(h, fHolder)
	return d
}

// NextExpiry is when the earliest live hold expires.
func (p *Partition) NextExpiry() (time.Time, bool) {
	if p.exp.len() == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, p.recs.at(p.exp.top()).expires), true
}

// RecordEpoch records that owner took the partition under the given lease.
func (p *Partition) RecordEpoch(now time.Time, owner string, lease uint64) {
	p.record(&Decision{Type: OwnerEpoch, At: now.UnixNano(), Owner: owner, Lease: lease})
}

// Availability reports every seat's status and every zone's counts.
func (p *Partition) Availability() Availability {
	a := Availability{Partition: p.key, Seats: make(map[string]Status, len(p.seats))}
	for i, s := range p.seats {
		st := Free
		if s.hold != 0 {
			st = p.recs.at(s.hold - 1).status
		}
		a.Seats[p.seatIDs[i]] = st
	}
	a.Zones = p.ZoneCounts(nil)
	return a
}

// ZoneCounts appends every zone's capacity, held and sold counts to dst, in
// layout order, and returns it: O(zones), without allocating when dst has
// room. The owner reads it for its metrics and its state checks.
func (p *Partition) ZoneCounts(dst []ZoneCount) []ZoneCount {
	for _, z := range p.zones {
		dst = append(dst, ZoneCount{ID: z.def.ID, GA: z.def.GA, Capacity: z.capacity, Held: z.held, Sold: z.sold})
	}
	return dst
}

// AvailabilityWithin is Availability with each zone's Expiring: the held
// seats (GA: quantity) whose hold expires at or before now+within (holds
// already due and not yet expired included: they are about to return).
// It walks only the top of the expiry heap, the holds due by then and
// their children: O(holds due), not O(holds).
func (p *Partition) AvailabilityWithin(now time.Time, within time.Duration) Availability {
	a := p.Availability()
	if within <= 0 {
		return a
	}
	until := now.Add(within).UnixNano()
	stack := []int{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= p.exp.len() {
			continue
		}
		h := p.recs.at(p.exp.h[i])
		if h.expires > until {
			continue // and so is every hold below it in the heap
		}
		if h.zone >= 0 {
			a.Zones[h.zone].Expiring += int(h.qty)
		} else {
			for j := range h.seatCount() {
				a.Zones[p.seats[p.recs.seat(h, j)].zone].Expiring++
			}
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return a
}

// newHold makes the record of a placed hold, checking that its seats or
// zone exist (not that they are free). The record is in no index yet.
func (p *Partition) newHold(d *Decision) (int32, error) {
	if d.Qty < 1 || (len(d.Seats) > 0 && d.Qty != len(d.Seats)) {
		return -1, fmt.Errorf("inventory: %s %s: quantity %d for %d seats", d.Type, d.Hold, d.Qty, len(d.Seats))
	}
	zone := int32(-1)
	var seats []int32
	if len(d.Seats) > 0 {
		seats = make([]int32, len(d.Seats))
		for i, id := range d.Seats {
			si, ok := p.seatIdx[id]
			if !ok || slices.Contains(seats[:i], si) {
				return -1, fmt.Errorf("inventory: %s %s: seat %q unknown or listed twice", d.Type, d.Hold, id)
			}
			seats[i] = si
		}
	} else {
		zi, ok := p.zoneIdx[d.Zone]
		if !ok || !p.zones[zi].def.GA {
			return -1, fmt.Errorf("inventory: %s %s: unknown zone %q", d.Type, d.Hold, d.Zone)
		}
		zone = int32(zi)
	}
	i := p.recs.alloc()
	r := p.recs.at(i)
	*r = rec{kind: recHold, status: Held, at: d.At, expires: d.Expires, key: d.Key,
		qty: int32(d.Qty), zone: zone, heapIdx: -1}
	p.recs.setText(i, [nFields]string{fID: d.Hold, fHolder: d.Holder, fFP: d.FP}, seats)
	return i, nil
}

func (p *Partition) newRefusal(d *Decision) int32 {
	i := p.recs.alloc()
	r := p.recs.at(i)
	*r = rec{kind: recRefusal, at: d.At, key: d.Key, zone: -1, heapIdx: -1}
	p.recs.setText(i, [nFields]string{fReason: d.Reason, fMsg: d.Msg, fFP: d.FP}, nil)
	return i
}

// Apply changes the state by one logged decision. It fails, changing
// nothing, if the decision does not fit the state: a log that does not
// replay is corrupt.
func (p *Partition) Apply(d *Decision) error {
	switch d.Type {
	case HoldPlaced:
		if len(d.Seats) > 0 {
			for _, id := range d.Seats {
				if si, ok := p.seatIdx[id]; ok && p.seats[si].hold != 0 {
					return fmt.Errorf("inventory: apply %s %s: seat %q taken", d.Type, d.Hold, id)
				}
			}
		} else if zi, ok := p.zoneIdx[d.Zone]; ok && p.zones[zi].capacity-p.zones[zi].held-p.zones[zi].sold < d.Qty {
			return fmt.Errorf("inventory: apply %s %s: zone %q short", d.Type, d.Hold, d.Zone)
		}
		i, err := p.newHold(d)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		if !p.recs.index(i) {
			p.recs.release(i)
			return fmt.Errorf("inventory: apply %s: hold %s exists", d.Type, d.Hold)
		}
		h := p.recs.at(i)
		h.gen = p.gen
		p.take(i, h)
		p.adjust(h, +1, 0)
		p.exp.push(i)
		p.remember(d.Key, i, d.At)
	case HoldRejected:
		i := p.newRefusal(d)
		p.recs.at(i).gen = p.gen
		p.remember(d.Key, i, d.At)
	case HoldReleased, HoldExpired:
		i, ok := p.recs.byID(d.Hold)
		if !ok || p.recs.at(i).status != Held {
			return fmt.Errorf("inventory: apply %s: hold %s is not held", d.Type, d.Hold)
		}
		h := p.recs.at(i)
		p.adjust(h, -1, 0)
		p.freeSeats(h)
		p.exp.remove(int(h.heapIdx))
		h.status = Released
		if d.Type == HoldExpired {
			h.status = Expired
		}
		p.end(i, h, d.At)
	case SeatsSold:
		i, ok := p.recs.byID(d.Hold)
		if !ok {
			return fmt.Errorf("inventory: apply %s: no hold %s", d.Type, d.Hold)
		}
		h := p.recs.at(i)
		switch h.status {
		case Held:
			p.adjust(h, -1, +1)
			p.exp.remove(int(h.heapIdx))
		case Expired, Released:
			// Reclaimed (ConfirmRequest.Reclaim): its seats were free.
			if !p.free(h) {
				return fmt.Errorf("inventory: apply %s: hold %s ended and its seats are taken", d.Type, d.Hold)
			}
			p.take(i, h)
			p.adjust(h, 0, +1)
		default:
			return fmt.Errorf("inventory: apply %s: hold %s is %s", d.Type, d.Hold, h.status)
		}
		h.status = Sold
		p.recs.setOrder(i, d.Order)
	case SaleCancelled:
		i, ok := p.recs.byID(d.Hold)
		if !ok || p.recs.at(i).status != Sold {
			return fmt.Errorf("inventory: apply %s: hold %s is not sold", d.Type, d.Hold)
		}
		h := p.recs.at(i)
		p.adjust(h, 0, -1)
		p.freeSeats(h)
		h.status = Cancelled
		p.end(i, h, d.At)
	case OwnerEpoch:
		p.owner, p.lease = d.Owner, d.Lease
	default:
		return fmt.Errorf("inventory: apply: unknown decision type %q", d.Type)
	}
	p.forget(d.At)
	return nil
}

// take gives a hold's seats to it.
func (p *Partition) take(i int32, h *rec) {
	for j := range h.seatCount() {
		p.seats[p.recs.seat(h, j)].hold = i + 1
	}
}

// adjust moves a hold's quantity between held and sold.
func (p *Partition) adjust(h *rec, held, sold int) {
	if h.zone >= 0 {
		z := &p.zones[h.zone]
		z.held += held * int(h.qty)
		z.sold += sold * int(h.qty)
		return
	}
	for j := range h.seatCount() {
		z := &p.zones[p.seats[p.recs.seat(h, j)].zone]
		z.held += held
		z.sold += sold
	}
}

func (p *Partition) freeSeats(h *rec) {
	for j := range h.seatCount() {
		p.seats[p.recs.seat(h, j)].hold = 0
	}
}

func (p *Partition) end(i int32, h *rec, at int64) {
	h.endedAt = at
	p.ended.push(i, at)
}

// remember makes a record the answer of an idempotency key.
func (p *Partition) remember(k IdemKey, i int32, at int64) {
	if old, ok := p.idem[k]; ok {
		p.unkey(old)
	}
	p.idem[k] = i
	p.recs.at(i).byKey = true
	p.keys.push(k, at)
}

// unkey notes that a record's idempotency key no longer reaches it, and
// frees the record when nothing does.
func (p *Partition) unkey(i int32) {
	r := p.recs.at(i)
	r.byKey = false
	if !r.byID {
		p.recs.release(i)
	}
}

// forget drops idempotency keys and ended holds older than the retention.
// It runs on decision time, so that replay forgets exactly what the original
// run forgot.
func (p *Partition) forget(now int64) {
	cut := now - int64(p.limits.IdempotencyTTL)
	for p.keys.len() > 0 && p.keys.front().at < cut {
		k := p.keys.front().v
		if i, ok := p.idem[k]; ok && p.recs.at(i).at < cut {
			delete(p.idem, k)
			p.unkey(i)
		}
		p.keys.pop()
	}
	for p.ended.len() > 0 && p.ended.front().at < cut {
		i := p.ended.front().v
		// Each hold ends once, and its record stays in the id index until
		// this entry drops it.
		if h := p.recs.at(i); h.byID && h.status != Held && h.status != Sold && h.endedAt < cut {
			p.recs.unindex(i)
			if !h.byKey {
				p.recs.release(i)
			}
		}
		p.ended.pop()
	}
}
