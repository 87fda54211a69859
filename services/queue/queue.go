package queue

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// State is where a ticket stands in its queue.
type State uint8

// The states of a ticket.
const (
	// PreQueue: joined before the on-sale time; the place is decided by the
	// draw at the start and is not known until then.
	PreQueue State = iota + 1
	// Queued: waiting with a known place.
	Queued
	// Admitted: let through to shop; stays admitted even if the event later
	// sells out (the admission token decides how long it is good for).
	Admitted
	// SoldOut: was waiting when the event sold out. If seats return and the
	// queue resumes, the ticket is PreQueue or Queued again with its place.
	SoldOut
)

var stateNames = [...]string{PreQueue: "pre_queue", Queued: "queued", Admitted: "admitted", SoldOut: "sold_out"}

// String is the state's wire name: pre_queue, queued, admitted, sold_out.
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "unknown"
}

// MarshalText encodes the state as its wire name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Status is what a waiting user is told.
type Status struct {
	Ticket TicketID `json:"ticket"`
	State  State    `json:"state"`
	// Position is 1 for the next one to be admitted. It is 0 when not known
	// (PreQueue before the draw) or not waiting (Admitted).
	Position int `json:"position"`
	// Ahead is Position-1: the people ahead in this queue; meaningful only
	// when Position > 0.
	Ahead int `json:"ahead"`
	// Waiting is how many are waiting in this queue (pre-queue included).
	Waiting int `json:"waiting"`
	// Version is the queue's version when the status was taken (see
	// Queue.Version).
	Version uint64 `json:"version"`
}

// Config configures one event's queue. Zero fields take the defaults of
// Defaults.
type Config struct {
	// EventID names the event. Required.
	EventID string
	// OnSale is the on-sale time: joins before it are in the pre-queue.
	// Required.
	OnSale time.Time
	// TicketKey is the secret key of TicketFor, at least 32 bytes. The core
	// gives every edge the same key per event. Default: a fresh random key
	// (right for a single edge, as in ticketing dev).
	TicketKey []byte
	// Commitment is the published seed commitment (64 hex digits). When
	// set, ApplyDraw refuses a seed that does not match it. Default: none.
	Commitment string
	// MaxTickets bounds the tickets the queue holds (waiting and admitted),
	// and so its memory; a join beyond it is refused with errs.Unavailable.
	// Default 2,000,000.
	MaxTickets int
	// Capacity is how many tickets to allocate room for up front, to avoid
	// the cost of growing a large queue during the first rush. Default 0.
	Capacity int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.TicketKey == nil {
		c.TicketKey = NewTicketKey()
	}
	if c.MaxTickets == 0 {
		c.MaxTickets = 2_000_000
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "queue.config"
	switch {
	case c.EventID == "":
		return errs.E(op, errs.Invalid, "event id is required")
	case c.OnSale.IsZero():
		return errs.E(op, errs.Invalid, "on-sale time is required")
	case len(c.TicketKey) < TicketKeySize:
		return errs.Errorf(op, errs.Invalid, "ticket key must be at least %d bytes, got %d", TicketKeySize, len(c.TicketKey))
	case c.MaxTickets < 1 || c.MaxTickets > maxTickets:
		return errs.Errorf(op, errs.Invalid, "max tickets %d is outside 1..%d", c.MaxTickets, maxTickets)
	case c.Capacity < 0 || c.Capacity > c.MaxTickets:
		return errs.Errorf(op, errs.Invalid, "capacity %d is outside 0..max tickets", c.Capacity)
	}
	if c.Commitment != "" {
		if b, err := hex.DecodeString(c.Commitment); err != nil || len(b) != sha256.Size {
			return errs.E(op, errs.Invalid, "commitment is not 64 hex digits")
		}
	}
	return nil
}

// maxTickets keeps indexes within uint32.
const maxTickets = 1<<32 - 1

// Queue is one event's waiting line at one edge. All methods are safe for
// concurrent use.
//
// Layout: ids holds every ticket in queue order; index maps a ticket to its
// place in ids. ids[:head] are admitted, ids[head:] wait. Before the draw,
// ids[:preLen] is the pre-queue in arrival order (its order means nothing
// until ApplyDraw sorts it); tickets that join after the pre-queue closed
// are appended behind it, first come first served.
type Queue struct {
	cfg     Config
	tickets sync.Pool // of *ticketHasher: TicketFor without allocating

	mu        sync.RWMutex
	ids       []TicketID
	index     map[TicketID]uint32
	preLen    int  // the pre-queue is ids[:preLen]
	preClosed bool // no more pre-queue joins
	drawn     bool // ids[:preLen] is in draw order
	drawSeed  [sha256.Size]byte
	head      int // ids[:head] are admitted
	soldOut   bool
	version   uint64
}

// New returns an empty queue.
func New(cfg Config) (*Queue, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Queue{
		cfg:   cfg,
		ids:   make([]TicketID, 0, cfg.Capacity),
		index: make(map[TicketID]uint32, cfg.Capacity),
	}, nil
}

// EventID is the event the queue is for.
func (q *Queue) EventID() string { return q.cfg.EventID }

// Join puts the session in the queue, or, if it is there already, returns
// its current status unchanged: rejoining keeps the place. A join before
// the on-sale time (now) goes to the pre-queue unless the pre-queue has
// been closed; any other join goes to the back of the line. Errors:
// errs.Invalid for a bad session id, errs.Unavailable (reason
// "queue_full") beyond MaxTickets.
func (q *Queue) Join(session string, now time.Time) (Status, error) {
	const op = "queue.join"
	if err := checkSession(op, session); err != nil {
		return Status{}, err
	}
	st, _, err := q.JoinTicket(q.TicketFor(session), now)
	return st, err
}

// JoinTicket is Join for a ticket already derived from its session
// (TicketFor): the edge's journal replays joins with it. created is true
// when the ticket is new in the queue. Errors: errs.Unavailable (reason
// "queue_full") beyond MaxTickets.
func (q *Queue) JoinTicket(t TicketID, now time.Time) (st Status, created bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, ok := q.index[t]; ok {
		return q.statusLocked(int(i)), false, nil
	}
	if len(q.ids) >= q.cfg.MaxTickets {
		return Status{}, false, errs.E("queue.join", errs.Unavailable, "the queue is full").WithReason("queue_full")
	}
	if !q.preClosed && !now.Before(q.cfg.OnSale) {
		q.closeLocked()
	}
	q.index[t] = uint32(len(q.ids))
	q.ids = append(q.ids, t)
	if !q.preClosed {
		q.preLen++ // nothing has joined behind the pre-queue yet
	}
	return q.statusLocked(len(q.ids) - 1), true, nil
}

// Status is the status of a ticket; errs.NotFound if it never joined.
func (q *Queue) Status(t TicketID) (Status, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	i, ok := q.index[t]
	if !ok {
		return Status{}, errs.E("queue.status", errs.NotFound, "no such ticket in this queue")
	}
	return q.statusLocked(int(i)), nil
}

// SessionStatus is the status of the session's ticket; errs.NotFound if the
// session never joined.
func (q *Queue) SessionStatus(session string) (Status, error) {
	if err := checkSession("queue.status", session); err != nil {
		return Status{}, err
	}
	return q.Status(q.TicketFor(session))
}

// TicketFor is the ticket id the session has or would have in this queue:
// TicketFor(Config.TicketKey, session).
func (q *Queue) TicketFor(session string) TicketID {
	h, _ := q.tickets.Get().(*ticketHasher)
	if h == nil {
		h = newTicketHasher(q.cfg.TicketKey)
	}
	t := h.ticket(session)
	q.tickets.Put(h)
	return t
}

func (q *Queue) statusLocked(i int) Status {
	s := Status{Ticket: q.ids[i], Waiting: len(q.ids) - q.head, Version: q.version}
	switch {
	case i < q.head:
		s.State = Admitted
		return s
	case i < q.preLen && !q.drawn:
		s.State = PreQueue
	default:
		s.State = Queued
		s.Ahead = i - q.head
		s.Position = s.Ahead + 1
	}
	if q.soldOut {
		s.State = SoldOut
	}
	return s
}

// ClosePreQueue ends the pre-queue (later joins go behind it, first come
// first served) and returns a copy of its tickets for the core, which draws
// over the union of every edge's pre-queue. Calling it again returns the
// same tickets. The edge calls it at the on-sale time; Join and Admit also
// close the pre-queue by themselves once they see that time.
func (q *Queue) ClosePreQueue() []TicketID {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closeLocked()
	return append([]TicketID(nil), q.ids[:q.preLen]...)
}

func (q *Queue) closeLocked() {
	if q.preClosed {
		return
	}
	q.preClosed = true
	if q.preLen == 0 {
		q.drawn = true // nothing to draw
	}
	q.version++
}

// ApplyDraw orders the pre-queue by Draw(seed, pre-queue), closing it first
// if it is still open. Because Draw sorts by a per-ticket key, this edge's
// order is exactly the global draw's order restricted to its own tickets,
// so the edge needs only the seed, not the global list. When the config has
// a Commitment the seed must match it (errs.Invalid otherwise). Applying the
// same seed again is a no-op; a different seed after a draw is
// errs.Conflict.
func (q *Queue) ApplyDraw(seed []byte) error {
	const op = "queue.draw"
	if len(seed) != SeedSize {
		return errs.Errorf(op, errs.Invalid, "seed must be %d bytes, got %d", SeedSize, len(seed))
	}
	if q.cfg.Commitment != "" {
		if err := VerifyCommitment(q.cfg.Commitment, seed); err != nil {
			return errs.E(op, err)
		}
	}
	h := sha256.Sum256(seed)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.drawn && q.preLen > 0 {
		if h == q.drawSeed {
			return nil
		}
		return errs.E(op, errs.Conflict, "the pre-queue was drawn with another seed").WithReason("already_drawn")
	}
	q.closeLocked()
	order := Draw(seed, q.ids[:q.preLen])
	copy(q.ids, order)
	for i, t := range order {
		q.index[t] = uint32(i)
	}
	q.drawn = true
	q.drawSeed = h
	q.version++
	return nil
}

// Admit lets the next n waiting tickets through and returns them in queue
// order (fewer if fewer wait). Errors: errs.Invalid for n < 0;
// errs.Unavailable with reason "not_started" before the on-sale time (now)
// or "draw_pending" while the pre-queue awaits its draw; errs.Conflict with
// reason "sold_out" while the event is sold out.
func (q *Queue) Admit(n int, now time.Time) ([]TicketID, error) {
	const op = "queue.admit"
	if n < 0 {
		return nil, errs.Errorf(op, errs.Invalid, "cannot admit %d", n)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.preClosed {
		if now.Before(q.cfg.OnSale) {
			return nil, errs.E(op, errs.Unavailable, "the sale has not started").WithReason("not_started")
		}
		q.closeLocked()
	}
	if !q.drawn {
		return nil, errs.E(op, errs.Unavailable, "the pre-queue has not been drawn yet").WithReason("draw_pending")
	}
	if q.soldOut {
		return nil, errs.E(op, errs.Conflict, "the event is sold out").WithReason("sold_out")
	}
	n = min(n, len(q.ids)-q.head)
	if n == 0 {
		return nil, nil
	}
	out := append([]TicketID(nil), q.ids[q.head:q.head+n]...)
	q.head += n
	q.version++
	return out, nil
}

// MarkSoldOut tells everyone waiting at once: from now on every waiting
// ticket's state is SoldOut and Admit refuses. Admitted tickets stay
// admitted. Idempotent.
func (q *Queue) MarkSoldOut() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.soldOut {
		q.soldOut = true
		q.version++
	}
}

// Resume undoes MarkSoldOut when seats return (released or expired holds):
// every waiting ticket is back in its place. Idempotent.
func (q *Queue) Resume() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.soldOut {
		q.soldOut = false
		q.version++
	}
}

// Version changes whenever the status of tickets already in the queue may
// have changed (pre-queue closed or drawn, admissions, sold out, resumed),
// but not on a join, which only adds to the back. A broadcaster that pushes
// updates can skip a round when the version has not moved.
func (q *Queue) Version() uint64 {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.version
}

// Stats is a summary of the queue.
type Stats struct {
	Tickets   int    `json:"tickets"`   // ever joined
	Waiting   int    `json:"waiting"`   // not admitted yet, pre-queue included
	Admitted  int    `json:"admitted"`  // let through
	PreQueue  int    `json:"pre_queue"` // size of the pre-queue (drawn or not)
	PreClosed bool   `json:"pre_closed"`
	Drawn     bool   `json:"drawn"`
	SoldOut   bool   `json:"sold_out"`
	Version   uint64 `json:"version"`
}

// Stats is a summary of the queue, for metrics and the core's controller
// (Waiting is this edge's queue length).
func (q *Queue) Stats() Stats {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return Stats{
		Tickets:   len(q.ids),
		Waiting:   len(q.ids) - q.head,
		Admitted:  q.head,
		PreQueue:  q.preLen,
		PreClosed: q.preClosed,
		Drawn:     q.drawn,
		SoldOut:   q.soldOut,
		Version:   q.version,
	}
}
