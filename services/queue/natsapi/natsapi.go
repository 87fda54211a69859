// Package natsapi is the NATS protocol of the waiting room between edges
// and the core: the subjects, the JSON bodies, how errors travel (NATS micro
// service error headers carrying errs kinds, see internal/microerr), the
// core's micro service ("queue": queue.config, queue.prequeue, queue.draw)
// and the Client edges use.
//
//	queue.config          edge → core request: ticket key, commitment, seed once revealed
//	queue.report.<event>  edge → core publish: an edge's queue lengths, every second
//	queue.edge.<event>    core → edges publish: the controller's decision, every tick
//	queue.prequeue        edge → core request: an edge's pre-queue tickets, in chunks
//	queue.draw            edge → core request: the public draw record, a page at a time
//
// Event ids are catalog ids ([a-z0-9-]), safe as subject tokens.
package natsapi

import (
	"encoding/hex"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

// Subjects and the service name.
const (
	ServiceName  = "queue"
	SubjConfig   = "queue.config"
	SubjPreQueue = "queue.prequeue"
	SubjDraw     = "queue.draw"
	// ReportPrefix + event id is where edges publish their reports.
	ReportPrefix = "queue.report."
	// DecisionPrefix + event id is where the core publishes decisions.
	DecisionPrefix = "queue.edge."
)

// MaxPreQueueChunk is the most tickets one queue.prequeue request carries.
const MaxPreQueueChunk = 10_000

// MaxDrawLimit is the most tickets one queue.draw answer carries (about
// 350 kB of JSON, within NATS's default 1 MB payload); it is also the
// default page size.
const MaxDrawLimit = 10_000

// ReportSubject is where edges publish their reports for an event.
func ReportSubject(eventID string) string { return ReportPrefix + eventID }

// DecisionSubject is where the core publishes an event's decisions.
func DecisionSubject(eventID string) string { return DecisionPrefix + eventID }

// Hex is bytes carried as lowercase hex digits in JSON (a draw seed).
type Hex []byte

// MarshalText encodes the bytes as lowercase hex.
func (h Hex) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(b, h)
	return b, nil
}

// UnmarshalText decodes hex digits (either case).
func (h *Hex) UnmarshalText(b []byte) error {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return errs.E("queue.hex", errs.Invalid, "not hex digits")
	}
	*h = out
	return nil
}

// EventRequest names an event (queue.config).
type EventRequest struct {
	EventID string `json:"event_id"`
}

// DrawRequest asks for a page of an event's draw record (queue.draw):
// the tickets [Offset, Offset+Limit) of the draw list. Both are optional
// (the spec's plain {"event_id"} asks for the first page). Limit 0 means
// MaxDrawLimit, and a larger one is cut to it; negative values are
// refused (errs.Invalid).
type DrawRequest struct {
	EventID string `json:"event_id"`
	Offset  int    `json:"offset,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// Normalize checks the paging and applies the default and the maximum.
func (r *DrawRequest) Normalize() error {
	if r.Offset < 0 || r.Limit < 0 {
		return errs.Errorf("queue.draw", errs.Invalid, "offset %d and limit %d must not be negative", r.Offset, r.Limit)
	}
	if r.Limit == 0 || r.Limit > MaxDrawLimit {
		r.Limit = MaxDrawLimit
	}
	return nil
}

// Config is an event's waiting-room setup, the answer to queue.config.
type Config struct {
	EventID string `json:"event_id"`
	// TicketKey is the secret per-event key of queue.TicketFor (base64 std
	// in JSON); every edge gets the same.
	TicketKey []byte `json:"ticket_key"`
	// Commitment is queue.Commitment(seed), published before the sale.
	Commitment string    `json:"commitment"`
	OnSaleAt   time.Time `json:"on_sale_at"`
	// Seed is the draw seed, present once revealed (at or after OnSaleAt).
	Seed    Hex  `json:"seed,omitempty"`
	SoldOut bool `json:"sold_out"`
}

// Report is an edge's state of one event's room, published on
// ReportSubject every ReportEvery.
type Report struct {
	Edge    string `json:"edge"`
	EventID string `json:"event_id"`
	// Waiting: queued and pre-queue tickets not admitted.
	Waiting  int `json:"waiting"`
	PreQueue int `json:"pre_queue"`
	Admitted int `json:"admitted"`
	// Joined: total joins this edge has seen.
	Joined int       `json:"joined"`
	At     time.Time `json:"at"`
}

// Decision is the core's decision for one event, published on
// DecisionSubject every tick and at once on seed reveal, sold-out and
// resume.
type Decision struct {
	EventID string `json:"event_id"`
	// Seq increases with every decision of the event, across controller
	// hand-overs; an edge ignores a decision whose Seq is not above the
	// last it applied.
	Seq uint64    `json:"seq"`
	At  time.Time `json:"at"`
	// Seed is the revealed draw seed (from the on-sale time on).
	Seed    Hex  `json:"seed,omitempty"`
	SoldOut bool `json:"sold_out"`
	// Reachable: how many at the front of the combined line can still
	// expect seats (queue.Decision.Reachable).
	Reachable int `json:"reachable"`
	// Waiting: total waiting over all edges.
	Waiting int `json:"waiting"`
	// Rate: admissions per second over the recent window.
	Rate float64 `json:"rate"`
	// Spare: how many more this decision could have admitted
	// (queue.Decision.Spare).
	Spare int `json:"spare,omitempty"`
	// Edges: every reporting edge's share of this decision.
	Edges []queue.EdgeAdmit `json:"edges"`
}

// For returns the share of the named edge (zero if it is not listed).
func (d *Decision) For(edge string) queue.EdgeAdmit {
	for _, e := range d.Edges {
		if e.Edge == edge {
			return e
		}
	}
	return queue.EdgeAdmit{Edge: edge}
}

// PreQueueChunk is a part of one edge's pre-queue (queue.prequeue). An
// edge sends its pre-queue in chunks of at most MaxPreQueueChunk tickets
// and marks the last (an empty pre-queue is one empty chunk with Last).
// Sending a chunk again is harmless.
type PreQueueChunk struct {
	EventID string           `json:"event_id"`
	Edge    string           `json:"edge"`
	Tickets []queue.TicketID `json:"tickets"`
	Last    bool             `json:"last"`
}

// DrawRecord is the public record of an event's draw, or one page of it
// (queue.draw). The draw list is the union of every edge's pre-queue in
// draw order, final once every edge sent its pre-queue or the collection
// window closed (Complete); it is then stored durably and every core node
// answers the same list. Every page carries the commitment, the seed and
// Complete; Tickets is the list's part [Offset, Offset+len(Tickets)) and
// Total its length. Client.Draw fetches every page into one record.
//
// Wire: {"event_id","commitment","on_sale_at","seed"?,"tickets"?,
// "complete","offset","total"}.
type DrawRecord struct {
	EventID    string    `json:"event_id"`
	Commitment string    `json:"commitment"`
	OnSaleAt   time.Time `json:"on_sale_at"`
	// Seed, once revealed.
	Seed Hex `json:"seed,omitempty"`
	// Tickets: this page of the draw list, once Complete.
	Tickets []queue.TicketID `json:"tickets,omitempty"`
	// Complete says the draw list is final.
	Complete bool `json:"complete"`
	// Offset is the place in the list (0-based) of Tickets[0].
	Offset int `json:"offset"`
	// Total is the draw list's length (0 while not Complete).
	Total int `json:"total"`
}

// Verify checks a whole record (every page, Client.Draw): the seed
// matches the commitment and the tickets are in draw order. It returns an
// errs.Invalid error when not.
func (r *DrawRecord) Verify() error {
	const op = "queue.draw_record"
	if len(r.Seed) == 0 {
		return errs.E(op, errs.Invalid, "the seed is not revealed yet")
	}
	if r.Offset != 0 || len(r.Tickets) != r.Total {
		return errs.Errorf(op, errs.Invalid, "tickets %d..%d of %d: a page, not the whole list", r.Offset, r.Offset+len(r.Tickets), r.Total)
	}
	if err := queue.VerifyCommitment(r.Commitment, r.Seed); err != nil {
		return err
	}
	want := queue.Draw(r.Seed, r.Tickets)
	for i := range want {
		if want[i] != r.Tickets[i] {
			return errs.Errorf(op, errs.Invalid, "ticket %d is out of draw order", i)
		}
	}
	return nil
}
