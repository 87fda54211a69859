package queue

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"

	"github.com/ticketing/ticketing/internal/errs"
)

// TicketIDSize is the size of a ticket id in bytes.
const TicketIDSize = 16

// TicketKeySize is the size of a ticket key in bytes.
const TicketKeySize = 32

// MaxSessionLen bounds the length of a session id accepted by Join.
const MaxSessionLen = 256

// TicketID names one user's place in an event's queue. It is 16 bytes that
// look random to anyone without the event's ticket key (see TicketFor); its
// text form is 32 lowercase hex digits. It is a plain array, so it is
// comparable, usable as a map key and costs no pointer per waiting user.
type TicketID [TicketIDSize]byte

// String is the ticket id as 32 lowercase hex digits.
func (t TicketID) String() string { return hex.EncodeToString(t[:]) }

// MarshalText encodes the ticket id as in String.
func (t TicketID) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(TicketIDSize))
	hex.Encode(b, t[:])
	return b, nil
}

// UnmarshalText parses the form of String (either hex case).
func (t *TicketID) UnmarshalText(b []byte) error {
	id, err := ParseTicketID(string(b))
	if err != nil {
		return err
	}
	*t = id
	return nil
}

// ParseTicketID parses the form of String (either hex case).
func ParseTicketID(s string) (TicketID, error) {
	var t TicketID
	if len(s) != hex.EncodedLen(TicketIDSize) {
		return t, errs.Errorf("queue.ticket", errs.Invalid, "a ticket id is %d hex digits, got %d characters", hex.EncodedLen(TicketIDSize), len(s))
	}
	if _, err := hex.Decode(t[:], []byte(s)); err != nil {
		return TicketID{}, errs.E("queue.ticket", errs.Invalid, "ticket id is not hex")
	}
	return t, nil
}

// NewTicketKey returns a fresh random key for TicketFor.
func NewTicketKey() []byte {
	k := make([]byte, TicketKeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand, Go 1.24+)
	return k
}

// ticketDomain separates ticket derivation from any other use of the key.
const ticketDomain = "ticketing/queue/ticket/v1\x00"

// TicketFor derives the ticket id of a session:
//
//	TicketID = first 16 bytes of HMAC-SHA256(key, "ticketing/queue/ticket/v1\x00" || session)
//
// With a secret random key the id is unguessable (a pseudo-random function
// of the session), bound to the session (only that session maps to it) and
// stable: the same session always gets the same id, so rejoining keeps the
// place without the queue storing the session at all. The core gives every
// edge the same per-event key, so a session that reaches two edges has one
// ticket and is counted once in the union the draw runs over.
func TicketFor(key []byte, session string) TicketID {
	return newTicketHasher(key).ticket(session)
}

// ticketHasher computes TicketFor for one key, reusing its HMAC state and
// buffers (a Queue pools them).
type ticketHasher struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

func newTicketHasher(key []byte) *ticketHasher {
	return &ticketHasher{mac: hmac.New(sha256.New, key)}
}

func (h *ticketHasher) ticket(session string) TicketID {
	h.mac.Reset()
	h.mac.Write([]byte(ticketDomain))
	io.WriteString(h.mac, session)
	var t TicketID
	copy(t[:], h.mac.Sum(h.sum[:0]))
	return t
}

func checkSession(op, session string) error {
	if session == "" {
		return errs.E(op, errs.Invalid, "session id is empty")
	}
	if len(session) > MaxSessionLen {
		return errs.Errorf(op, errs.Invalid, "session id is longer than %d bytes", MaxSessionLen)
	}
	return nil
}
