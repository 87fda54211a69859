// Package reporting folds the domain events that the bridge mirrors into
// Kafka into the figures organizers and finance ask for, per event and
// hour: from inventory events (the inventory topic), the tickets held,
// released, expired, sold and cancelled per price zone and the tickets
// held and sold right now; from order events (the events topic), the
// money: the orders paid and refunded, what their payments captured, and
// their gross, fees, tax, discounts and refunds. Revenue comes only from
// orders, ticket counts only from the inventory.
//
// It is the domain only: decoding an event (Decode), the fold (Fold and
// Aggregates), the queries (Service: EventReport, the daily finance export)
// and the Store interface. Adapters live beside it: services/reporting/postgres
// in production, services/reporting/natskv for `ticketing dev`, both passing
// the contract suite services/reporting/reportingtest;
// Feed is how a Kafka consumer (bridge/kafka.NewRunner) feeds a store, and
// services/reporting/natsapi serves reports as a NATS micro service.
//
// # Money
//
// An order counts when it becomes paid (ticketing.order.paid, also when
// the payment came after the order had expired: a late payment), in the
// hour of that transition: one order paid, its captured amount and its
// quoted amounts (gross is the subtotal: tickets and add-ons before the
// discount; fees; tax, whether included in the prices or added to them;
// discount). It counts again when it becomes refunded
// (ticketing.order.refunded): one order refunded and the amount refunded.
// Net is captured minus refunded: the money kept. The state machine of
// services/orders makes each of the two transitions at most once per
// order.
//
// # Exactly once
//
// A Kafka record may be handed to the consumer more than once (a retry after
// an error whose outcome is unknown, a partition moving to another member).
// The store therefore keeps, per Kafka partition, a Cursor (the offset of
// the next record to apply and the ids of the last events applied) and
// changes it in the same atomic write as the aggregates: a record below the
// cursor's offset is skipped, and so is an event whose CloudEvents id is
// among the recent ones (a duplicate the bridge wrote twice: the same
// domain event, with its id, on the same partition, since the bridge keys
// records by the event's aggregate, an order's events by the order). Fold
// implements that rule once for every adapter, for both topics.
package reporting

import (
	"cmp"
	"context"
	"log/slog"
	"time"
)

// Limits of decoded events; a record beyond them is skipped as invalid.
const (
	MaxIDLen         = 128       // event, zone, organizer, hold ids
	MaxZones         = 1000      // zones in one event's data
	MaxTickets       = 1_000_000 // tickets of one zone in one event
	MaxAmountCents   = 1e13      // any amount of one order
	RecentIDs        = 256       // event ids a Cursor remembers per partition
	UnzonedZone      = "-"       // zone of tickets whose event names none
	UnknownOrganizer = "unknown"
)

// Partition names one Kafka partition.
type Partition struct {
	Topic     string
	Partition int32
}

// Record is one Kafka record as the store sees it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	// Value is the CloudEvents structured JSON body.
	Value []byte
}

// Cursor is what a store keeps per Kafka partition, changed atomically
// with the aggregates.
type Cursor struct {
	// Next is the offset of the first record not applied yet.
	Next int64 `json:"next"`
	// Recent are the CloudEvents ids of the last RecentIDs events applied
	// on the partition, oldest first.
	Recent []string `json:"recent,omitempty"`
}

// Counters are the ticket movements of one event, zone and hour.
type Counters struct {
	Held      int64 `json:"held"`      // tickets of holds placed
	Released  int64 `json:"released"`  // tickets of holds released by the holder
	Expired   int64 `json:"expired"`   // tickets of holds that expired
	Sold      int64 `json:"sold"`      // tickets sold (a hold became a sale)
	Cancelled int64 `json:"cancelled"` // tickets of cancelled sales (refunds)
}

// Add adds o to c.
func (c *Counters) Add(o Counters) {
	c.Held += o.Held
	c.Released += o.Released
	c.Expired += o.Expired
	c.Sold += o.Sold
	c.Cancelled += o.Cancelled
}

// Revenue is the money of one event's orders in one hour, in minor units
// of the orders' currency (see the package doc, Money).
type Revenue struct {
	OrdersPaid     int64 `json:"orders_paid"`     // orders that became paid
	OrdersRefunded int64 `json:"orders_refunded"` // orders that became refunded
	// CapturedCents is what the paid orders' payments captured: gross +
	// fees − discount, + tax where it is added to the prices.
	CapturedCents int64 `json:"captured_cents"`
	// GrossCents is what the paid orders charged for tickets and add-ons
	// before the discount (their subtotal; a tax included in the prices is
	// inside it).
	GrossCents int64 `json:"gross_cents"`
	FeesCents  int64 `json:"fees_cents"` // the paid orders' fees
	// TaxCents is the paid orders' tax, included in the prices or added.
	TaxCents      int64 `json:"tax_cents"`
	DiscountCents int64 `json:"discount_cents"` // what vouchers took off the paid orders
	RefundedCents int64 `json:"refunded_cents"` // what the refunded orders gave back
}

// Add adds o to r.
func (r *Revenue) Add(o Revenue) {
	r.OrdersPaid += o.OrdersPaid
	r.OrdersRefunded += o.OrdersRefunded
	r.CapturedCents += o.CapturedCents
	r.GrossCents += o.GrossCents
	r.FeesCents += o.FeesCents
	r.TaxCents += o.TaxCents
	r.DiscountCents += o.DiscountCents
	r.RefundedCents += o.RefundedCents
}

// NetCents is captured minus refunded: the money kept.
func (r Revenue) NetCents() int64 { return r.CapturedCents - r.RefundedCents }

// Level is the tickets of an event and zone held and sold now.
type Level struct {
	Held int64 `json:"held"`
	Sold int64 `json:"sold"`
}

// EventInfo are the facts of an event as its latest domain event told them
// (capacity and on-sale time only inventory events tell).
type EventInfo struct {
	EventID     string    `json:"event_id"`
	OrganizerID string    `json:"organizer_id,omitempty"`
	Currency    string    `json:"currency,omitempty"`
	Capacity    int       `json:"capacity,omitempty"`
	OnSaleAt    time.Time `json:"on_sale_at,omitzero"`
	// LastAt is the time of the latest inventory event that set these
	// facts; zero while only order events told them. Order events are
	// keyed by order, so an event's inventory and order events reach the
	// store over different partitions, in no set order: the facts of the
	// inventory events, which say more, win over the orders' whatever
	// their times (see MergeInfo).
	LastAt time.Time `json:"last_at"`
}

// HourRow is one event, zone and hour of the aggregates.
type HourRow struct {
	EventID string    `json:"event_id"`
	Zone    string    `json:"zone"`
	Hour    time.Time `json:"hour"`
	Counters
}

// RevenueRow is one event and hour of the money.
type RevenueRow struct {
	EventID string    `json:"event_id"`
	Hour    time.Time `json:"hour"`
	Revenue
}

// LevelRow is one event and zone's current level.
type LevelRow struct {
	EventID string `json:"event_id"`
	Zone    string `json:"zone"`
	Level
}

// EventView is what a store keeps about one event.
type EventView struct {
	Info    EventInfo
	Hours   []HourRow    // sorted by zone and hour
	Revenue []RevenueRow // sorted by hour
	Levels  []LevelRow   // sorted by zone
}

// HoursView is the hourly rows of a time range with their events' facts.
type HoursView struct {
	Hours   []HourRow    // sorted by event, zone and hour
	Revenue []RevenueRow // sorted by event and hour
	Events  map[string]EventInfo
}

// Applied reports what Store.Apply did with a batch.
type Applied struct {
	Applied    int // inventory and order events folded into the aggregates
	Skipped    int // records below their partition's stored offset
	Duplicates int // events whose id was applied already
	Ignored    int // records of other event types
	Invalid    []Problem
}

// Problem is a record that could not be decoded: it is skipped (its
// offset is stored like any other's), so that it cannot stop the consumer.
type Problem struct {
	Partition Partition
	Offset    int64
	Err       error
}

// Store keeps the aggregates and the cursors. Implementations are safe for
// concurrent use, also from several processes on one backing store.
type Store interface {
	// Offsets returns the stored Cursor.Next of each of parts that has one.
	Offsets(ctx context.Context, parts []Partition) (map[Partition]int64, error)
	// Apply folds recs (see Fold) into the aggregates and stores the new
	// cursors in the same atomic write, per partition at least: after any
	// error, each partition's stored offset and the effects of its records
	// agree, so that applying again from the stored offset is exact. Of two
	// concurrent Applies of the same records, each record takes effect
	// once. A conflicting concurrent write may fail the call with
	// errs.Conflict, an unreachable backend with errs.Unavailable: apply
	// again after reloading the offsets. On an error, Applied counts what
	// took effect before it (partitions already written, in a store that
	// writes partition by partition).
	Apply(ctx context.Context, recs []Record) (Applied, error)
	// Event returns what is stored about an event, rows sorted as
	// EventView says; errs.NotFound if no record of it was applied.
	Event(ctx context.Context, eventID string) (EventView, error)
	// Hours returns the hourly and revenue rows with from <= Hour < to,
	// with the facts of their events.
	Hours(ctx context.Context, from, to time.Time) (HoursView, error)
}

// Feed is how a consumer of the inventory and events topics
// (bridge/kafka.NewRunner) feeds a Store: a record is a Record, the offsets are the cursors, and
// each batch is one Apply, whose outcome it logs to Log (default
// slog.Default()).
type Feed struct {
	Store Store
	Log   *slog.Logger
}

// Record is the record at offset of p.
func (Feed) Record(p Partition, offset int64, value []byte) Record {
	return Record{Topic: p.Topic, Partition: p.Partition, Offset: offset, Value: value}
}

// Offsets are the store's cursors.
func (f Feed) Offsets(ctx context.Context, ps []Partition) (map[Partition]int64, error) {
	return f.Store.Offsets(ctx, ps)
}

// Apply applies a batch; undecodable records are skipped (their offsets
// stored) and logged.
func (f Feed) Apply(ctx context.Context, recs []Record) error {
	a, err := f.Store.Apply(ctx, recs)
	if err != nil {
		return err
	}
	log := cmp.Or(f.Log, slog.Default())
	for _, p := range a.Invalid {
		log.Warn("reporting: skipped an undecodable record", "topic", p.Partition.Topic, "partition", p.Partition.Partition, "offset", p.Offset, "err", p.Err)
	}
	if a.Duplicates > 0 || a.Skipped > 0 {
		log.Info("reporting: records not applied again", "duplicate_event_ids", a.Duplicates, "below_stored_offset", a.Skipped)
	}
	return nil
}
