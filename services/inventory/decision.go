package inventory

import "time"

// DecisionType names what a decision did. The hold and sale types are also
// the domain-event types published for the bridge (with the
// "ticketing.inventory." prefix); the others stay inside the log.
type DecisionType string

const (
	HoldPlaced    DecisionType = "hold.placed"
	HoldReleased  DecisionType = "hold.released"
	HoldExpired   DecisionType = "hold.expired"
	SeatsSold     DecisionType = "seats.sold"
	SaleCancelled DecisionType = "sale.cancelled"
	// HoldRejected records a refused hold so that its idempotency key replays
	// the refusal; it is not a domain event.
	HoldRejected DecisionType = "hold.rejected"
	// OwnerEpoch is written by a new owner when it takes a partition; it fences
	// every earlier owner's writes. Not a domain event.
	OwnerEpoch DecisionType = "owner.epoch"
)

// IsDomainEvent reports whether decisions of this type are published as
// domain events.
func (t DecisionType) IsDomainEvent() bool {
	switch t {
	case HoldPlaced, HoldReleased, HoldExpired, SeatsSold, SaleCancelled:
		return true
	}
	return false
}

// Decision is one entry of a partition's log. Decisions are immutable once
// made: the log, the snapshot and idempotent replays all share them.
type Decision struct {
	Type DecisionType `json:"t"`
	At   int64        `json:"at"` // unix nanoseconds
	Hold string       `json:"hold,omitempty"`

	// hold.placed
	Seats   []string `json:"seats,omitempty"`
	Zone    string   `json:"zone,omitempty"`
	Qty     int      `json:"qty,omitempty"`
	Holder  string   `json:"holder,omitempty"`
	Expires int64    `json:"exp,omitempty"` // unix nanoseconds

	// hold.placed and hold.rejected: the idempotency record
	Key IdemKey `json:"key,omitzero"` // zero: none
	FP  string  `json:"fp,omitempty"`

	// hold.rejected
	Reason string `json:"reason,omitempty"`
	Msg    string `json:"msg,omitempty"`

	// seats.sold, sale.cancelled
	Order string `json:"order,omitempty"`

	// owner.epoch
	Owner string `json:"owner,omitempty"`
	Lease uint64 `json:"lease,omitempty"`
}

// Time is the decision's timestamp.
func (d *Decision) Time() time.Time { return time.Unix(0, d.At).UTC() }
