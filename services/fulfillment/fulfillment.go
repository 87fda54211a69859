// Package fulfillment issues the tickets of sold seats. It is the domain
// only: what a ticket is, the slot it occupies, and the Store interface
// whose Issue is the exactly-once boundary between a sale and its ticket:
// one ticket per event and seat (or general-admission slot), ever.
// Adapters: services/fulfillment/cql (ScyllaDB, lightweight transactions)
// in production, services/fulfillment/natskv (JetStream KV compare-and-set)
// for `ticketing dev`; both pass services/fulfillment/fulfillmenttest.
package fulfillment

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
)

// Limits.
const (
	MaxIDLen     = 128
	MaxGAIndex   = catalog.MaxGACapacity
	MaxPerOrder  = 1000 // tickets ByOrder returns at most
	MaxPerHolder = 1000 // tickets ByHolder returns at most
	TokenHashLen = 64   // hex SHA-256
)

// Reasons refining errs.Conflict from Store.Issue.
const (
	// ReasonSlotIssued: the slot already has a ticket, which Issue returns.
	ReasonSlotIssued = "ticket_already_issued"
	// ReasonIDTaken: another slot's ticket has this ticket id.
	ReasonIDTaken = "ticket_id_taken"
)

// Ticket is an issued ticket: the right to one seat, or one unit of a
// general-admission hold, at one event. TokenHash is the SHA-256 (hex) of
// the signed token the holder presents at the gate; the token itself is
// not stored: it is signed again, the same bytes, with key KeyID when
// shown (Ed25519 signatures are deterministic).
type Ticket struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	HoldID  string `json:"hold_id"`
	OrderID string `json:"order_id"`
	// Holder is the account the ticket belongs to.
	Holder string `json:"holder"`
	// Exactly one of Seat (reserved seating, a seat id such as
	// "a-12-7") or Zone with Index (general admission: unit Index of
	// 1…quantity of the hold HoldID in the zone) is set, so that a
	// retried issue names the same slots.
	Seat     string    `json:"seat,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	Index    int       `json:"index,omitempty"`
	IssuedAt time.Time `json:"issued_at"`
	// ValidFrom and ValidUntil bound when the ticket admits (whole
	// seconds); Device is the device binding of this issue of its
	// barcode (16 hex digits), which a re-issue for a lost phone changes.
	// With the key KeyID they make the token again.
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	Device     string    `json:"device"`
	KeyID      string    `json:"key_id"`
	TokenHash  string    `json:"token_hash"`
}

// Slot is the ticket's place within its event: "seat.<seat>" or
// "ga.<zone>.<hold>.<index>". An event has at most one ticket per slot.
func (t Ticket) Slot() string {
	if t.Seat != "" {
		return "seat." + t.Seat
	}
	return "ga." + t.Zone + "." + t.HoldID + "." + strconv.Itoa(t.Index)
}

// Same reports whether t and u are the same issue: same id, slot, order,
// hold, holder and token. A retried Issue of the same ticket is not a
// conflict.
func (t Ticket) Same(u Ticket) bool {
	return t.ID == u.ID && t.EventID == u.EventID && t.Slot() == u.Slot() &&
		t.OrderID == u.OrderID && t.HoldID == u.HoldID && t.Holder == u.Holder &&
		t.ValidFrom.Equal(u.ValidFrom) && t.ValidUntil.Equal(u.ValidUntil) && t.Device == u.Device &&
		t.KeyID == u.KeyID && t.TokenHash == u.TokenHash
}

// Store keeps issued tickets. Implementations are safe for concurrent use,
// also from several processes on the same backing store. Cancelling the
// context abandons the call; an Issue abandoned midway may or may not have
// taken effect: issue the same ticket again to find out.
type Store interface {
	// Issue stores t if its slot (event and seat, or event, zone and
	// index) has no ticket yet: the first issue of a slot wins, whatever
	// the concurrency. It returns the stored ticket, with ID and IssuedAt
	// filled in when they were empty.
	//
	// If the slot already has a ticket, Issue returns that ticket and
	// errs.Conflict (reason ReasonSlotIssued) — unless it is the same
	// issue (Ticket.Same: a retry), which returns the stored ticket and
	// no error. A ticket id that another slot's ticket has is errs.Conflict
	// with reason ReasonIDTaken. An invalid ticket is errs.Invalid and
	// writes nothing.
	Issue(ctx context.Context, t Ticket) (Ticket, error)
	// ByID returns a ticket, or errs.NotFound.
	ByID(ctx context.Context, id string) (Ticket, error)
	// ByOrder returns the tickets of an order sorted by id; none is an
	// empty list, not an error.
	ByOrder(ctx context.Context, orderID string) ([]Ticket, error)
	// ByHolder returns the tickets issued to an account sorted by id, at
	// most MaxPerHolder; none is an empty list, not an error.
	ByHolder(ctx context.Context, holder string) ([]Ticket, error)
	// CheckIn records a ticket's admission if it has none yet: of any
	// number of check-ins of a ticket, from any gates at once, the first
	// stored wins, and is returned. A later one returns the first and
	// errs.Conflict (reason ReasonCheckedIn), unless it has the first's
	// nonce (the same scan again), which returns the first and no error.
	// An invalid check-in is errs.Invalid and writes nothing. CheckIn
	// does not look at the ticket: its caller verified it.
	CheckIn(ctx context.Context, c CheckIn) (CheckIn, error)
	// Revoke records a ticket's revocation unless it has one: the first
	// is kept and returned, a repeat changes nothing. An invalid
	// revocation is errs.Invalid and writes nothing.
	Revoke(ctx context.Context, r Revocation) (Revocation, error)
	// Revoked returns a ticket's revocation, or errs.NotFound when it has
	// none.
	Revoked(ctx context.Context, event, ticket string) (Revocation, error)
	// Revocations lists an event's revocations sorted by ticket id, at
	// most MaxRevocations; none is an empty list.
	Revocations(ctx context.Context, event string) ([]Revocation, error)
}

var (
	refPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	hashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	kidPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	devPattern  = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// ValidRef reports whether s may be a ticket, order, hold or seat id:
// letters, digits, '_' and '-', starting with a letter or digit, at most
// MaxIDLen bytes. They appear in storage keys, so nothing else is allowed.
func ValidRef(s string) bool { return refPattern.MatchString(s) }

// ValidEvent reports whether s may be an event id (catalog.ValidID).
func ValidEvent(s string) bool { return catalog.ValidID(s) }

// validHold reports whether s may be a hold id: the inventory's are
// "<event>.<partition>.<nonce>", each part a ValidRef.
func validHold(s string) bool {
	if len(s) > MaxIDLen {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if !ValidRef(part) {
			return false
		}
	}
	return true
}

// NewID returns a random ticket id ("t_" and 32 hex digits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "t_" + hex.EncodeToString(b[:])
}

// Normalize returns t ready to store, or an errs.Invalid error. An empty ID
// gets NewID and a zero IssuedAt gets now; IssuedAt is moved to UTC and
// truncated to milliseconds, the precision every store keeps.
func Normalize(t Ticket, now time.Time) (Ticket, error) {
	const op = "fulfillment.ticket"
	bad := func(msg string) (Ticket, error) { return Ticket{}, errs.E(op, errs.Invalid, msg) }
	if t.ID == "" {
		t.ID = NewID()
	}
	if !ValidRef(t.ID) {
		return bad("ticket id must be 1-128 letters, digits, '_' or '-'")
	}
	if !ValidEvent(t.EventID) {
		return bad("event id is not a valid id")
	}
	if !ValidRef(t.OrderID) {
		return bad("order id must be 1-128 letters, digits, '_' or '-'")
	}
	if !validHold(t.HoldID) {
		return bad("hold id must be 1-128 bytes of dot-separated letters, digits, '_' or '-'")
	}
	if !ValidRef(t.Holder) {
		return bad("holder must be an account id: 1-128 letters, digits, '_' or '-'")
	}
	if !devPattern.MatchString(t.Device) {
		return bad("device must be 16 lower-case hex digits")
	}
	if t.ValidFrom.IsZero() || !t.ValidUntil.After(t.ValidFrom) {
		return bad("a ticket is valid from a time until a later one")
	}
	if !kidPattern.MatchString(t.KeyID) {
		return bad("key id must be 1-128 letters, digits, '_' or '-'")
	}
	switch {
	case t.Seat != "" && (t.Zone != "" || t.Index != 0):
		return bad("a ticket has a seat or a general-admission zone and index, not both")
	case t.Seat != "":
		if !ValidRef(t.Seat) {
			return bad("seat id must be 1-128 letters, digits, '_' or '-'")
		}
	default:
		if !catalog.ValidID(t.Zone) {
			return bad("a ticket needs a seat, or a valid general-admission zone")
		}
		if t.Index < 1 || t.Index > MaxGAIndex {
			return bad("general-admission index must be 1-" + strconv.Itoa(MaxGAIndex))
		}
	}
	if !hashPattern.MatchString(t.TokenHash) {
		return bad("token hash must be a lower-case hex SHA-256")
	}
	if t.IssuedAt.IsZero() {
		t.IssuedAt = now
	}
	t.IssuedAt = t.IssuedAt.UTC().Truncate(time.Millisecond)
	t.ValidFrom, t.ValidUntil = t.ValidFrom.UTC().Truncate(time.Second), t.ValidUntil.UTC().Truncate(time.Second)
	return t, nil
}

// SlotTaken is the conflict Issue returns with the slot's ticket.
func SlotTaken(op string, existing Ticket) error {
	return errs.Errorf(op, errs.Conflict, "the slot already has ticket %s", existing.ID).WithReason(ReasonSlotIssued)
}

// IDTaken is the conflict Issue returns for a ticket id in use.
func IDTaken(op string) error {
	return errs.E(op, errs.Conflict, "the ticket id is taken").WithReason(ReasonIDTaken)
}
