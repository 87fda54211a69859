package fulfillment

import (
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// ReasonCheckedIn refines errs.Conflict from Store.CheckIn: the ticket
// was admitted before, by the check-in returned with it.
const ReasonCheckedIn = "already_checked_in"

// CheckIn is a ticket's admission at a gate.
type CheckIn struct {
	TicketID string `json:"ticket_id"`
	EventID  string `json:"event_id"`
	// Gate names the scanner (or gate) that admitted it.
	Gate string `json:"gate"`
	// Nonce names the scan: the same scan sent again (an offline
	// scanner's upload retried) has the same nonce.
	Nonce string `json:"nonce"`
	// At is when the ticket was scanned (an offline scanner's own time),
	// kept to the millisecond.
	At time.Time `json:"at"`
}

// NormalizeCheckIn returns c ready to store, or an errs.Invalid error.
func NormalizeCheckIn(c CheckIn) (CheckIn, error) {
	const op = "fulfillment.check_in"
	bad := func(msg string) (CheckIn, error) { return CheckIn{}, errs.E(op, errs.Invalid, msg) }
	switch {
	case !ValidRef(c.TicketID):
		return bad("ticket id must be 1-128 letters, digits, '_' or '-'")
	case !ValidEvent(c.EventID):
		return bad("event id is not a valid id")
	case !ValidRef(c.Gate) || len(c.Gate) > 64:
		return bad("gate must be 1-64 letters, digits, '_' or '-'")
	case !ValidRef(c.Nonce):
		return bad("nonce must be 1-128 letters, digits, '_' or '-'")
	case c.At.IsZero():
		return bad("a check-in has its scan time")
	}
	c.At = c.At.UTC().Truncate(time.Millisecond)
	return c, nil
}

// CheckedIn is the conflict CheckIn returns with the first check-in.
func CheckedIn(op string, first CheckIn) error {
	return errs.Errorf(op, errs.Conflict, "ticket %s was admitted at %s by gate %s",
		first.TicketID, first.At.Format(time.RFC3339), first.Gate).WithReason(ReasonCheckedIn)
}

// Revocation is a ticket taken back (its order refunded, the ticket
// transferred or issued again): its barcode is refused from then on.
type Revocation struct {
	TicketID string    `json:"ticket_id"`
	EventID  string    `json:"event_id"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// MaxRevocations bounds the revocations Store.Revocations returns.
const MaxRevocations = 100_000

// NormalizeRevocation returns r ready to store, or an errs.Invalid error.
func NormalizeRevocation(r Revocation) (Revocation, error) {
	const op = "fulfillment.revoke"
	bad := func(msg string) (Revocation, error) { return Revocation{}, errs.E(op, errs.Invalid, msg) }
	switch {
	case !ValidRef(r.TicketID):
		return bad("ticket id must be 1-128 letters, digits, '_' or '-'")
	case !ValidEvent(r.EventID):
		return bad("event id is not a valid id")
	case !ValidRef(r.Reason) || len(r.Reason) > 64:
		return bad("reason must be 1-64 letters, digits, '_' or '-'")
	case r.At.IsZero():
		return bad("a revocation has its time")
	}
	r.At = r.At.UTC().Truncate(time.Millisecond)
	return r, nil
}
