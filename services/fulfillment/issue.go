package fulfillment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Sale is what an order's confirmation sold: the input of issuance.
type Sale struct {
	Order   string
	Account string
	Event   string
	Holds   []SoldHold
	// ValidFrom and ValidUntil bound when its tickets admit.
	ValidFrom, ValidUntil time.Time
}

// SoldHold is one sold hold of a sale: its seats, or a quantity of a
// general-admission zone.
type SoldHold struct {
	ID       string
	Seats    []string
	Zone     string
	Quantity int
}

// Tickets returns the tickets of the sale, unsigned: one per seat, and
// one per unit of a general-admission hold, each with the id its slot
// names (TicketID), so that every issue of a sale names the same tickets.
func (s Sale) Tickets() []Ticket {
	var out []Ticket
	for _, h := range s.Holds {
		base := Ticket{EventID: s.Event, HoldID: h.ID, OrderID: s.Order, Holder: s.Account,
			ValidFrom: s.ValidFrom.UTC().Truncate(time.Second), ValidUntil: s.ValidUntil.UTC().Truncate(time.Second)}
		if len(h.Seats) > 0 {
			for _, seat := range h.Seats {
				t := base
				t.Seat = seat
				t.ID, t.Device = TicketID(t), firstDevice(t)
				out = append(out, t)
			}
			continue
		}
		for i := 1; i <= h.Quantity; i++ {
			t := base
			t.Zone, t.Index = h.Zone, i
			t.ID = TicketID(t)
			t.Device = firstDevice(t)
			out = append(out, t)
		}
	}
	return out
}

// TicketID is the id of the first ticket of t's slot: "t_" and 32 hex
// digits of a hash of its event and slot.
func TicketID(t Ticket) string {
	sum := sha256.Sum256([]byte("ticket\x00" + t.EventID + "\x00" + t.Slot()))
	return "t_" + hex.EncodeToString(sum[:16])
}

// firstDevice is the device binding of a ticket's first issue, named by
// its id so that every issue of a sale signs the same token.
func firstDevice(t Ticket) string {
	sum := sha256.Sum256([]byte("device\x00" + t.ID))
	return hex.EncodeToString(sum[:8])
}

// Signer signs tickets' tokens: the bytes a holder shows at the gate.
type Signer interface {
	// Sign returns t's token and the id of the key that signed it: key
	// t.KeyID when set (errs.Gone when that key is no longer kept), else
	// the active key. The same ticket and key give the same token.
	Sign(t Ticket) (kid string, token []byte, err error)
}

// TokenHash is the hex SHA-256 of a token, what a Ticket keeps of it.
func TokenHash(token []byte) string {
	sum := sha256.Sum256(token)
	return hex.EncodeToString(sum[:])
}

// Issuer issues a sale's tickets.
type Issuer struct {
	Store  Store
	Signer Signer
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Issue issues every ticket of the sale exactly once, whatever the
// retries and the concurrent issuers: each ticket's slot decides
// (Store.Issue), and a slot that already has this sale's ticket (issued
// before, maybe signed by a key since retired) counts as issued. It
// returns the sale's tickets as stored, in the sale's order. A slot that
// holds another order's ticket is errs.Conflict: the inventory sold the
// seat twice, which must not happen; nothing else of the sale is undone.
func (is *Issuer) Issue(ctx context.Context, s Sale) ([]Ticket, error) {
	const op = "fulfillment.issue_sale"
	want := s.Tickets()
	if len(want) == 0 {
		return nil, errs.E(op, errs.Invalid, "the sale has no tickets")
	}
	if len(want) > MaxPerOrder {
		return nil, errs.Errorf(op, errs.Invalid, "a sale has at most %d tickets", MaxPerOrder)
	}
	now := time.Now
	if is.Now != nil {
		now = is.Now
	}
	out := make([]Ticket, 0, len(want))
	for _, t := range want {
		kid, token, err := is.Signer.Sign(t)
		if err != nil {
			return nil, errs.E(op, err)
		}
		t.KeyID, t.TokenHash, t.IssuedAt = kid, TokenHash(token), now()
		got, err := is.Store.Issue(ctx, t)
		if errs.Is(errs.Conflict, err) && got.ID == t.ID && got.OrderID == s.Order && got.Holder == s.Account {
			err = nil // issued before
		}
		if err != nil {
			return nil, errs.E(op, err)
		}
		out = append(out, got)
	}
	return out, nil
}

// View is a ticket as its holder sees it: where it admits to, and what
// its page draws the barcode from: the static token (Barcode, text) and
// the secret of its rotating code (Secret, base32, RFC 6238 with the
// barcode package's step and digits), so that a screenshot goes stale.
type View struct {
	ID         string    `json:"id"`
	Order      string    `json:"order_id"`
	Event      string    `json:"event_id"`
	Seat       string    `json:"seat,omitempty"`
	Zone       string    `json:"zone,omitempty"`
	Index      int       `json:"index,omitempty"`
	IssuedAt   time.Time `json:"issued_at"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
	Barcode    string    `json:"barcode,omitempty"`
	Secret     string    `json:"secret,omitempty"`
}

// Matches reports whether token is t's issued token: it hashes to
// TokenHash.
func (t Ticket) Matches(token []byte) bool { return TokenHash(token) == t.TokenHash }
