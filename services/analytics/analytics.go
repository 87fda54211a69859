// Package analytics computes the on-sale funnel of each event from the
// domain events the bridge mirrors into Kafka: waiting-room joins and
// admissions, holds placed, tickets sold and refunded, conversions, the
// time to sell out and the peak rate of holds. It is the domain only: the
// event decoder (Decode), the pure fold (State.Apply), the batch fold with
// exactly-once offsets that every store uses (Fold), and the Store
// interface. Adapters: services/analytics/postgres (production) and
// services/analytics/filestore (`ticketing dev`), both passing
// services/analytics/analyticstest; Feed is how a Kafka consumer
// (bridge/kafka.NewRunner) feeds a store; services/analytics/natsapi
// answers "funnel of event X" as the NATS micro service "analytics".
//
// Exactly once: a store keeps, with the funnels and in the same atomic
// write, the next Kafka offset of every partition it consumed; a batch's
// records below that offset are skipped (Fold), so a redelivered record
// is never counted twice.
package analytics

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
)

// Event types the funnel counts. The queue types are written by the
// waiting room (issue 4) to "ticketing.events" with data
// {"event_id","session","at"}.
const (
	TypeQueueJoined    = "ticketing.queue.joined"
	TypeQueueAdmitted  = "ticketing.queue.admitted"
	TypeHoldPlaced     = "ticketing.inventory.hold.placed"
	TypeHoldReleased   = "ticketing.inventory.hold.released"
	TypeHoldExpired    = "ticketing.inventory.hold.expired"
	TypeSeatsSold      = "ticketing.inventory.seats.sold"
	TypeSaleCancelled  = "ticketing.inventory.sale.cancelled"
	MaxEventIDLen      = 128
	MaxTicketsPerEvent = 100_000 // tickets of one hold or sale
	MaxZones           = 1000
)

// Counted reports whether events of type typ change a funnel.
func Counted(typ string) bool {
	switch typ {
	case TypeQueueJoined, TypeQueueAdmitted, TypeHoldPlaced, TypeHoldReleased, TypeHoldExpired, TypeSeatsSold, TypeSaleCancelled:
		return true
	}
	return false
}

// EventData is the data of the events the funnel counts (inventory and
// queue events share one struct; each uses some fields).
type EventData struct {
	EventID       string         `json:"event_id"`
	Partition     string         `json:"partition,omitempty"`
	HoldID        string         `json:"hold_id,omitempty"`
	Seats         []string       `json:"seats,omitempty"`
	Zone          string         `json:"zone,omitempty"`
	Quantity      int64          `json:"quantity,omitempty"`
	Holder        string         `json:"holder,omitempty"`
	ExpiresAt     *time.Time     `json:"expires_at,omitempty"`
	OrderID       string         `json:"order_id,omitempty"`
	At            time.Time      `json:"at"`
	Zones         map[string]int `json:"zones,omitempty"`
	AmountCents   int64          `json:"amount_cents,omitempty"`
	Currency      string         `json:"currency,omitempty"`
	OrganizerID   string         `json:"organizer_id,omitempty"`
	EventCapacity int64          `json:"event_capacity,omitempty"`
	OnSaleAt      *time.Time     `json:"on_sale_at,omitempty"`
	Session       string         `json:"session,omitempty"`
}

// Event is a decoded domain event the funnel counts.
type Event struct {
	ID   string // CloudEvents id
	Type string
	Data EventData
}

// Tickets is the number of tickets an inventory event concerns: the sum
// of Zones when given, else its seats plus its general-admission
// quantity.
func (d *EventData) Tickets() int64 {
	if len(d.Zones) > 0 {
		var n int64
		for _, v := range d.Zones {
			n += int64(v)
		}
		return n
	}
	return int64(len(d.Seats)) + d.Quantity
}

// ErrNotCounted: the body is a valid CloudEvent of a type the funnel does
// not count.
var ErrNotCounted = errors.New("analytics: event type not counted")

// Decode decodes a record body. It returns ErrNotCounted (kind NotFound)
// for an event of another type, and errs.Invalid for a body that is not a
// valid CloudEvent or whose data is not valid for its type. Data.At
// defaults to the CloudEvents time.
func Decode(body []byte) (Event, error) {
	const op = "analytics.decode"
	if len(body) > 1<<20 {
		return Event{}, errs.E(op, errs.TooLarge, "body over 1 MiB")
	}
	ce, err := cloudevents.Unmarshal(body)
	if err != nil {
		return Event{}, errs.E(op, errs.Invalid, err)
	}
	if !Counted(ce.Type) {
		return Event{}, errs.E(op, errs.NotFound, ErrNotCounted)
	}
	ev := Event{ID: ce.ID, Type: ce.Type}
	if err := json.Unmarshal(ce.Data, &ev.Data); err != nil {
		return Event{}, errs.E(op, errs.Invalid, "data: "+err.Error())
	}
	d := &ev.Data
	if d.At.IsZero() {
		d.At = ce.Time
	}
	d.At = d.At.UTC()
	switch {
	case d.EventID == "" || len(d.EventID) > MaxEventIDLen:
		return Event{}, errs.Errorf(op, errs.Invalid, "data: event_id must have 1 to %d bytes", MaxEventIDLen)
	case d.Quantity < 0 || d.Quantity > MaxTicketsPerEvent || len(d.Seats) > MaxTicketsPerEvent:
		return Event{}, errs.Errorf(op, errs.Invalid, "data: quantity and seats must be within 0…%d", MaxTicketsPerEvent)
	case len(d.Zones) > MaxZones:
		return Event{}, errs.Errorf(op, errs.Invalid, "data: more than %d zones", MaxZones)
	case d.EventCapacity < 0 || d.EventCapacity > 100_000_000:
		return Event{}, errs.E(op, errs.Invalid, "data: event_capacity out of range")
	}
	var zones int64
	for _, v := range d.Zones {
		if v < 0 || v > MaxTicketsPerEvent {
			return Event{}, errs.Errorf(op, errs.Invalid, "data: zone tickets must be within 0…%d", MaxTicketsPerEvent)
		}
		zones += int64(v)
	}
	if zones > MaxTicketsPerEvent {
		return Event{}, errs.Errorf(op, errs.Invalid, "data: more than %d tickets in zones", MaxTicketsPerEvent)
	}
	if d.OnSaleAt != nil {
		t := d.OnSaleAt.UTC()
		d.OnSaleAt = &t
	}
	return ev, nil
}

// Position is a Kafka topic partition.
type Position struct {
	Topic     string
	Partition int32
}

// Input is one consumed record: where it was, and its event when it is
// one the funnel counts (nil otherwise: the record only moves the offset).
type Input struct {
	Pos    Position
	Offset int64
	Event  *Event
}

// Store keeps the funnels and the consumed offsets, together.
// Implementations are safe for concurrent use.
type Store interface {
	// Offsets returns the next offset to read of each position named that
	// has one stored.
	Offsets(ctx context.Context, ps []Position) (map[Position]int64, error)
	// Apply folds inputs (each position's in offset order) into the
	// funnels with Fold and stores the funnels and the positions' next
	// offsets in one atomic write. Inputs below a position's stored next
	// offset are skipped. It returns how many inputs were applied.
	Apply(ctx context.Context, inputs []Input) (int, error)
	// Funnel returns an event's funnel, or errs.NotFound when no event of
	// it was counted.
	Funnel(ctx context.Context, eventID string) (Funnel, error)
}

// EventIDs lists the distinct event ids of inputs, for a store to load
// their states before Fold.
func EventIDs(inputs []Input) []string {
	seen := map[string]bool{}
	var out []string
	for _, in := range inputs {
		if in.Event != nil && !seen[in.Event.Data.EventID] {
			seen[in.Event.Data.EventID] = true
			out = append(out, in.Event.Data.EventID)
		}
	}
	return out
}

// Fold applies inputs to states (keyed by event id; a missing one is
// created), skipping inputs below next[pos]. It returns the states it
// changed, the positions' new next offsets (only those that moved), and how
// many inputs it applied. states must hold copies the caller may discard
// if its write fails.
func Fold(next map[Position]int64, states map[string]*State, inputs []Input) (changed map[string]*State, moved map[Position]int64, applied int) {
	changed = map[string]*State{}
	moved = map[Position]int64{}
	cur := make(map[Position]int64, len(next))
	for p, n := range next {
		cur[p] = n
	}
	for _, in := range inputs {
		if n, ok := cur[in.Pos]; ok && in.Offset < n {
			continue
		}
		cur[in.Pos] = in.Offset + 1
		moved[in.Pos] = in.Offset + 1
		applied++
		if in.Event == nil {
			continue
		}
		id := in.Event.Data.EventID
		s := states[id]
		if s == nil {
			s = &State{EventID: id}
			states[id] = s
		}
		s.Apply(in.Event)
		changed[id] = s
	}
	return changed, moved, applied
}

// Feed is how a consumer of the topics the bridge writes
// (bridge/kafka.NewRunner) feeds a Store: a record is an Input, with its
// event decoded when it is one the funnel counts, and each batch is one
// Apply. Undecodable records are logged to Log (default slog.Default()).
type Feed struct {
	Store Store
	Log   *slog.Logger
}

// Record decodes the record at offset of p. A record that is not a funnel
// event (another type; an undecodable body, which is logged) only moves
// the offset.
func (f Feed) Record(p Position, offset int64, value []byte) Input {
	in := Input{Pos: p, Offset: offset}
	e, err := Decode(value)
	switch {
	case err == nil:
		in.Event = &e
	case !errs.Is(errs.NotFound, err):
		cmp.Or(f.Log, slog.Default()).Warn("analytics: record skipped: not a valid funnel event",
			"topic", p.Topic, "partition", p.Partition, "offset", offset, "err", err)
	}
	return in
}

// Offsets are the store's next offsets.
func (f Feed) Offsets(ctx context.Context, ps []Position) (map[Position]int64, error) {
	return f.Store.Offsets(ctx, ps)
}

// Apply applies a batch.
func (f Feed) Apply(ctx context.Context, in []Input) error {
	n, err := f.Store.Apply(ctx, in)
	if err == nil {
		cmp.Or(f.Log, slog.Default()).Debug("analytics: batch applied", "records", len(in), "applied", n)
	}
	return err
}
