package barcode

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"

	"github.com/ticketing/ticketing/internal/errs"
)

// RevocationList is the tickets whose barcodes scanners refuse
// (ReasonRevoked): every barcode of a revoked ticket (Revoke), or every
// barcode of a re-issued ticket but the current issue's (Supersede: the
// lost phone's barcode is refused, the new phone's accepted). Sequence
// numbers the versions of the list: a scanner keeps the one with the
// highest. Its JSON form is what scanners download.
//
// Build a list, then hand it to verifiers: it is not to be changed while
// a Verifier reads it.
type RevocationList struct {
	Sequence uint64
	tickets  map[string]revocation
}

// revocation is one ticket's entry: all its barcodes, or all but the one
// bound to current.
type revocation struct {
	all     bool
	current DeviceBinding
}

// NewRevocationList returns an empty list of that sequence number.
func NewRevocationList(sequence uint64) *RevocationList {
	return &RevocationList{Sequence: sequence, tickets: map[string]revocation{}}
}

// Revoke refuses every barcode of the ticket, replacing any earlier entry
// for it.
func (l *RevocationList) Revoke(ticketID string) {
	l.set(ticketID, revocation{all: true})
}

// Supersede refuses every barcode of the ticket except the one bound to
// current (the re-issue's), replacing any earlier entry for it.
func (l *RevocationList) Supersede(ticketID string, current DeviceBinding) {
	l.set(ticketID, revocation{current: current})
}

func (l *RevocationList) set(ticketID string, r revocation) {
	if l.tickets == nil {
		l.tickets = map[string]revocation{}
	}
	l.tickets[ticketID] = r
}

// Revoked reports whether the barcode of ticketID bound to device is
// refused.
func (l *RevocationList) Revoked(ticketID string, device DeviceBinding) bool {
	r, ok := l.tickets[ticketID]
	return ok && (r.all || r.current != device)
}

// revoked is Revoked for a ticket id in a payload; the map lookup does
// not allocate.
func (l *RevocationList) revoked(ticketID []byte, device DeviceBinding) bool {
	r, ok := l.tickets[string(ticketID)]
	return ok && (r.all || r.current != device)
}

// Len is the number of tickets on the list.
func (l *RevocationList) Len() int { return len(l.tickets) }

// wireRevocations is the JSON form: entries sorted by ticket id, current
// (base64url of the device binding) absent when every barcode is refused.
type wireRevocations struct {
	Sequence uint64      `json:"sequence"`
	Tickets  []wireEntry `json:"tickets"`
}

type wireEntry struct {
	Ticket  string `json:"ticket"`
	Current string `json:"current,omitempty"`
}

// MarshalJSON writes {"sequence":N,"tickets":[{"ticket":…},{"ticket":…,
// "current":…}]}, tickets sorted by id.
func (l *RevocationList) MarshalJSON() ([]byte, error) {
	w := wireRevocations{Sequence: l.Sequence, Tickets: make([]wireEntry, 0, len(l.tickets))}
	for id, r := range l.tickets {
		e := wireEntry{Ticket: id}
		if !r.all {
			e.Current = b64.EncodeToString(r.current[:])
		}
		w.Tickets = append(w.Tickets, e)
	}
	slices.SortFunc(w.Tickets, func(a, b wireEntry) int { return cmp.Compare(a.Ticket, b.Ticket) })
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON wrote, strictly: unknown members,
// a bad ticket id, a current that is not 8 bytes of base64url, or a
// ticket listed twice is errs.Invalid with ReasonMalformed, and l is left
// unchanged.
func (l *RevocationList) UnmarshalJSON(b []byte) error {
	const op = "barcode.revocations"
	bad := func(msg string) error { return refusal(op, errs.Invalid, ReasonMalformed, msg) }
	var w wireRevocations
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil || dec.More() {
		return bad("revocation list is not of this form")
	}
	tickets := make(map[string]revocation, len(w.Tickets))
	for _, e := range w.Tickets {
		if !validID(e.Ticket) {
			return bad("revocation list holds a bad ticket id")
		}
		if _, dup := tickets[e.Ticket]; dup {
			return bad("revocation list holds a ticket twice")
		}
		r := revocation{all: e.Current == ""}
		if !r.all {
			d, err := b64.DecodeString(e.Current)
			if err != nil || len(d) != DeviceBindingLen {
				return bad("revocation list holds a device binding that is not 8 bytes of base64url")
			}
			copy(r.current[:], d)
		}
		tickets[e.Ticket] = r
	}
	l.Sequence, l.tickets = w.Sequence, tickets
	return nil
}
