package httpapi

import (
	"context"
	"regexp"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
)

// Tickets is the tickets service, as the edge uses it.
type Tickets interface {
	OrderTickets(ctx context.Context, r ticketsapi.OrderRequest) (ticketsapi.Tickets, error)
	Mine(ctx context.Context, r ticketsapi.AccountRequest) (ticketsapi.Tickets, error)
	Gate(ctx context.Context, r ticketsapi.GateRequest) (ticketsapi.Gate, error)
	Scan(ctx context.Context, r ticketsapi.ScanRequest) (ticketsapi.Scan, error)
}

// Limits of a scan's body.
const (
	maxBarcodeLen = barcode.MaxTextLen
	maxGateLen    = 64
	maxNonceLen   = 128
	maxScanBody   = 2 << 10
)

// scanBody is the body of POST /v1/admin/events/{id}/scans.
type scanBody struct {
	Barcode string `json:"barcode"`
	Gate    string `json:"gate"`
	Nonce   string `json:"nonce"`
	// ScannedAt is an offline scanner's own time of the scan; absent
	// for an online scan (now).
	ScannedAt *time.Time `json:"scanned_at,omitempty"`
}

var scanRef = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func decodeScan(raw []byte) (scanBody, error) {
	const op = "edge.scan"
	if len(raw) > maxScanBody {
		return scanBody{}, errs.E(op, errs.TooLarge, "the body is too large")
	}
	var b scanBody
	if err := decodeStrict(op, raw, &b); err != nil {
		return b, err
	}
	switch {
	case b.Barcode == "" || len(b.Barcode) > maxBarcodeLen:
		return b, errs.Errorf(op, errs.Invalid, "barcode: the scanned text, 1-%d characters", maxBarcodeLen)
	case len(b.Gate) > maxGateLen || !scanRef.MatchString(b.Gate):
		return b, errs.Errorf(op, errs.Invalid, "gate: 1-%d letters, digits, '_' or '-'", maxGateLen)
	case len(b.Nonce) > maxNonceLen || !scanRef.MatchString(b.Nonce):
		return b, errs.Errorf(op, errs.Invalid, "nonce: 1-%d letters, digits, '_' or '-', one per scan", maxNonceLen)
	case b.ScannedAt != nil && (b.ScannedAt.IsZero() || b.ScannedAt.Year() < 2000):
		return b, errs.E(op, errs.Invalid, "scanned_at: the scan's time")
	}
	return b, nil
}

// onTickets answers what f makes of the tickets service, called in a
// context of the edge's timeout; without the service it is 503.
func (a *API) onTickets(c *fiber.Ctx, op string, f func(context.Context, Tickets) (any, error)) error {
	if a.deps.Tickets == nil {
		return errs.E(op, errs.Unavailable, "tickets are not served by this edge")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	v, err := f(ctx, a.deps.Tickets)
	if err != nil {
		return err
	}
	return c.JSON(v)
}

// orderTickets answers the tickets of the caller's order: none until the
// order is fulfilled; another account's order is not found.
func (a *API) orderTickets(c *fiber.Ctx) error {
	const op = "edge.order_tickets"
	return a.onTickets(c, op, func(ctx context.Context, svc Tickets) (any, error) {
		id, err := orderID(c, op)
		if err != nil {
			return nil, err
		}
		return svc.OrderTickets(ctx, ticketsapi.OrderRequest{Account: callerOf(c).Subject, Order: id})
	})
}

// myTickets answers the caller's tickets, of every order and event.
func (a *API) myTickets(c *fiber.Ctx) error {
	return a.onTickets(c, "edge.my_tickets", func(ctx context.Context, svc Tickets) (any, error) {
		return svc.Mine(ctx, ticketsapi.AccountRequest{Account: callerOf(c).Subject})
	})
}

// eventGate answers what an event's gate scanners download ahead to
// verify its barcodes offline: the public keys and the rotating codes'
// secret (the event's organizer's staff or an admin).
func (a *API) eventGate(c *fiber.Ctx) error {
	return a.onTickets(c, "edge.event_gate", func(ctx context.Context, svc Tickets) (any, error) {
		e, _, err := a.event(c)
		if err != nil {
			return nil, err
		}
		r := ticketsapi.GateRequest{Event: e.ID}
		r.Admin, r.Staff = rolesOf(callerOf(c))
		c.Set(fiber.HeaderCacheControl, "no-store")
		return svc.Gate(ctx, r)
	})
}

// scanTicket checks a scanned barcode in at one of the event's gates (its
// organizer's staff or an admin): the verdict is the answer, admitted or
// why not (a ticket admitted before: when and at which gate). The same
// scan sent again, by its nonce, gets the same verdict.
func (a *API) scanTicket(c *fiber.Ctx) error {
	const op = "edge.scan"
	return a.onTickets(c, op, func(ctx context.Context, svc Tickets) (any, error) {
		e, _, err := a.event(c)
		if err != nil {
			return nil, err
		}
		raw, err := requestBody(c, op)
		if err != nil {
			return nil, err
		}
		b, err := decodeScan(raw)
		if err != nil {
			return nil, err
		}
		r := ticketsapi.ScanRequest{Event: e.ID, Barcode: b.Barcode, Gate: b.Gate, Nonce: b.Nonce}
		if b.ScannedAt != nil {
			r.At = *b.ScannedAt
		}
		r.Admin, r.Staff = rolesOf(callerOf(c))
		return svc.Scan(ctx, r)
	})
}
