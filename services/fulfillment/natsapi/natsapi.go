// Package natsapi is the tickets service's request/reply API on NATS (a
// micro service named "tickets", subjects tickets.<op>) and its client,
// the edge's. The edge has authenticated the caller: requests carry the
// account, and the service answers another account's order or ticket as
// not found.
package natsapi

import (
	"context"
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
)

// OrderRequest names an order of an account.
type OrderRequest struct {
	Account string `json:"account"`
	Order   string `json:"order"`
}

// Tickets is a list of tickets.
type Tickets struct {
	Tickets []fulfillment.View `json:"tickets"`
}

// Server is what the service runs on.
type Server struct {
	Store  fulfillment.Store
	Signer fulfillment.Signer
	// Encode writes a token as the text a barcode shows.
	Encode func([]byte) string
	// Owner returns the account that owns an order (errs.NotFound when
	// there is no such order).
	Owner func(ctx context.Context, order string) (string, error)
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
	const op = "tickets." + OpOrder
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
		out := Tickets{Tickets: make([]fulfillment.View, 0, len(list))}
		for _, t := range list {
			if t.Holder != r.Account {
				continue // transferred away
			}
			v, err := fulfillment.Show(srv.Signer, t, srv.Encode)
			if err != nil {
				return nil, err
			}
			out.Tickets = append(out.Tickets, v)
		}
		return out, nil
	})
	if err := s.AddEndpoint(OpOrder, microerr.Concurrent(nc, h, 0), micro.WithEndpointSubject(Prefix+OpOrder)); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Client calls the tickets service.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one call. Default 10s.
	Timeout time.Duration
}

// OrderTickets lists the tickets of an account's order.
func (c *Client) OrderTickets(ctx context.Context, r OrderRequest) (Tickets, error) {
	t := c.Timeout
	if t == 0 {
		t = 10 * time.Second
	}
	var out Tickets
	return out, microerr.Call(ctx, c.NC, t, "tickets", "tickets."+OpOrder, Prefix+OpOrder, r, &out)
}
