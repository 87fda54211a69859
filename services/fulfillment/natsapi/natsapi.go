// Package natsapi is the tickets service's request/reply API on NATS (a
// micro service named "tickets", subjects tickets.<op>) and its client,
// the edge's. The edge has authenticated the caller: requests carry the
// account, and the service answers another account's order or ticket as
// not found.
package natsapi

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/fulfillment"
)

// The operations, each on subject Prefix+op.
const (
	Prefix  = "tickets."
	OpOrder = "order" // an order's tickets
	OpMine  = "mine"  // an account's tickets
	// OpGate: what a gate scanner of an event downloads ahead to verify
	// its barcodes offline; for the event's organizer's staff or an
	// admin (the edge says who).
	OpGate = "gate"
	// OpScan: a ticket scanned at an event's gate, checked and checked
	// in online; for its staff or an admin.
	OpScan = "scan"
)

// ScanRequest is a barcode scanned at a gate of an event: the caller is
// an admin, or staff of the organizers listed.
type ScanRequest struct {
	Event   string `json:"event"`
	Barcode string `json:"barcode"`
	Gate    string `json:"gate"`
	Nonce   string `json:"nonce"`
	// At is when it was scanned: now for an online scan, earlier for an
	// offline scanner's upload.
	At    time.Time `json:"at"`
	Admin bool      `json:"admin,omitempty"`
	Staff []string  `json:"staff,omitempty"`
}

// Scan is the verdict on a scan: admitted, or why not. A ticket admitted
// before carries that first check-in.
type Scan struct {
	Admitted bool   `json:"admitted"`
	Reason   string `json:"reason,omitempty"`
	Message  string `json:"message,omitempty"`
	// Ticket is the ticket the barcode names, when it is one of ours.
	Ticket *fulfillment.View `json:"ticket,omitempty"`
	// CheckIn is the ticket's check-in: this scan's when admitted, the
	// first one's when already_checked_in.
	CheckIn *fulfillment.CheckIn `json:"check_in,omitempty"`
}

// GateRequest asks an event's gate material: the caller is an admin, or
// staff of the organizers listed.
type GateRequest struct {
	Event string   `json:"event"`
	Admin bool     `json:"admin,omitempty"`
	Staff []string `json:"staff,omitempty"`
}

// Gate is what a scanner of an event verifies its barcodes with: the
// public keys (a JWK set), the rotation secret of its codes (base64) and
// its revocation list.
// The secret lets its holder make any ticket's codes of the event: it is
// for the event's gates only.
type Gate struct {
	Event          string          `json:"event"`
	Keys           json.RawMessage `json:"keys"`
	RotationSecret []byte          `json:"rotation_secret"`
	// Revoked is the event's revocation list (barcode.RevocationList's
	// JSON): tickets refunded, transferred or issued again.
	Revoked json.RawMessage `json:"revoked"`
}

// OrderRequest names an order of an account.
type OrderRequest struct {
	Account string `json:"account"`
	Order   string `json:"order"`
}

// AccountRequest names an account.
type AccountRequest struct {
	Account string `json:"account"`
}

// Tickets is a list of tickets, by place.
type Tickets struct {
	Tickets []fulfillment.View `json:"tickets"`
}

// Server is what the service runs on.
type Server struct {
	Store fulfillment.Store
	// Show returns a ticket's view for its holder.
	Show func(fulfillment.Ticket) (fulfillment.View, error)
	// Owner returns the account that owns an order (errs.NotFound when
	// there is no such order).
	Owner func(ctx context.Context, order string) (string, error)
	// Organizer returns the organizer of an event (errs.NotFound when
	// there is no such event).
	Organizer func(event string) (string, error)
	// Gate returns an event's gate material.
	Gate func(ctx context.Context, event string) (Gate, error)
	// Scan judges a scan (the caller may scan at the event).
	Scan func(ctx context.Context, r ScanRequest) (Scan, error)
	// Timeout bounds a request's work. Default 10s.
	Timeout time.Duration
}

const maxRequest = 4 << 10

// Serve registers the tickets service on nc.
func Serve(nc *nats.Conn, srv Server) (micro.Service, error) {
	if srv.Timeout == 0 {
		srv.Timeout = 10 * time.Second
	}
	s, err := micro.AddService(nc, micro.Config{Name: "tickets", Version: "1.0.0",
		Description: "issued tickets, for their holders", QueueGroup: "tickets"})
	if err != nil {
		return nil, err
	}
	// views are the holder's views of list, by place.
	views := func(list []fulfillment.Ticket, holder string) (Tickets, error) {
		out := Tickets{Tickets: make([]fulfillment.View, 0, len(list))}
		for _, t := range list {
			if t.Holder != holder {
				continue // transferred away
			}
			v, err := srv.Show(t)
			if err != nil {
				return Tickets{}, err
			}
			out.Tickets = append(out.Tickets, v)
		}
		slices.SortFunc(out.Tickets, func(a, b fulfillment.View) int {
			return cmp.Or(cmp.Compare(a.Event, b.Event), cmp.Compare(a.Seat, b.Seat), cmp.Compare(a.Zone, b.Zone),
				cmp.Compare(a.Index, b.Index), cmp.Compare(a.ID, b.ID))
		})
		return out, nil
	}
	const op = Prefix + OpOrder
	h := microerr.Handler(op, maxRequest, srv.Timeout, func(ctx context.Context, r OrderRequest) (any, error) {
		owner, err := srv.Owner(ctx, r.Order)
		if err != nil {
			return nil, err
		}
		if r.Account == "" || owner != r.Account {
			return nil, errs.Errorf(op, errs.NotFound, "no order %s", r.Order)
		}
		list, err := srv.Store.ByOrder(ctx, r.Order)
		if err != nil {
			return nil, err
		}
		return views(list, r.Account)
	})
	mine := microerr.Handler(Prefix+OpMine, maxRequest, srv.Timeout, func(ctx context.Context, r AccountRequest) (any, error) {
		if r.Account == "" {
			return nil, errs.E(Prefix+OpMine, errs.Invalid, "no account")
		}
		list, err := srv.Store.ByHolder(ctx, r.Account)
		if err != nil {
			return nil, err
		}
		return views(list, r.Account)
	})
	// staffOf checks that the caller may work the event's gates.
	staffOf := func(op, event string, admin bool, staff []string) error {
		org, err := srv.Organizer(event)
		if err != nil {
			return err
		}
		if !admin && (org == "" || !slices.Contains(staff, org)) {
			return errs.Errorf(op, errs.NotFound, "no event %s", event)
		}
		return nil
	}
	gate := microerr.Handler(Prefix+OpGate, maxRequest, srv.Timeout, func(ctx context.Context, r GateRequest) (any, error) {
		if err := staffOf(Prefix+OpGate, r.Event, r.Admin, r.Staff); err != nil {
			return nil, err
		}
		return srv.Gate(ctx, r.Event)
	})
	scan := microerr.Handler(Prefix+OpScan, maxRequest, srv.Timeout, func(ctx context.Context, r ScanRequest) (any, error) {
		if err := staffOf(Prefix+OpScan, r.Event, r.Admin, r.Staff); err != nil {
			return nil, err
		}
		return srv.Scan(ctx, r)
	})
	for op, h := range map[string]micro.HandlerFunc{OpOrder: h, OpMine: mine, OpGate: gate, OpScan: scan} {
		if err := s.AddEndpoint(op, microerr.Concurrent(nc, h, 0), micro.WithEndpointSubject(Prefix+op)); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Client calls the tickets service.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one call. Default 10s.
	Timeout time.Duration
}

func (c *Client) call(ctx context.Context, op string, req, resp any) error {
	t := c.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	return microerr.Call(ctx, c.NC, t, "tickets", Prefix+op, Prefix+op, req, resp)
}

// OrderTickets lists the tickets of an account's order.
func (c *Client) OrderTickets(ctx context.Context, r OrderRequest) (Tickets, error) {
	var out Tickets
	return out, c.call(ctx, OpOrder, r, &out)
}

// Mine lists an account's tickets.
func (c *Client) Mine(ctx context.Context, r AccountRequest) (Tickets, error) {
	var out Tickets
	return out, c.call(ctx, OpMine, r, &out)
}

// Scan checks a scanned barcode in.
func (c *Client) Scan(ctx context.Context, r ScanRequest) (Scan, error) {
	var out Scan
	return out, c.call(ctx, OpScan, r, &out)
}

// Gate reads an event's gate material.
func (c *Client) Gate(ctx context.Context, r GateRequest) (Gate, error) {
	var out Gate
	return out, c.call(ctx, OpGate, r, &out)
}
