// Package natsapi is the orders service's request/reply API on NATS (a
// micro service named "orders", subjects orders.<op>) and its client, the
// edge's. The edge has authenticated the caller: requests carry the
// account (and for refunds the caller's roles), and the service answers
// another account's order as not found.
package natsapi

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/pricing"
)

// The operations, each on subject Prefix+op.
const (
	Prefix   = "orders."
	OpQuote  = "quote"
	OpCreate = "create"
	OpGet    = "get"
	OpList   = "list"
	OpPay    = "pay"
	OpSync   = "sync"
	OpCancel = "cancel"
	OpRefund = "refund"
	// Prices: an event's price list, read and written by its organizer's
	// staff or an admin (the edge checks who), and vouchers (admins).
	OpPricesGet = "prices_get"
	OpPricesPut = "prices_put"
	OpVoucher   = "voucher_put"
)

// Ops lists every operation.
var Ops = []string{OpQuote, OpCreate, OpGet, OpList, OpPay, OpSync, OpCancel, OpRefund, OpPricesGet, OpPricesPut, OpVoucher}

// EventRequest names an event.
type EventRequest struct {
	Event string `json:"event"`
}

// PricesRequest writes an event's price list: Rules is the operator's
// document (pricing.DecodeRules), its version the stored one + 1.
type PricesRequest struct {
	Event string          `json:"event"`
	Rules json.RawMessage `json:"rules"`
}

// VoucherRequest creates or replaces a voucher (pricing.DecodeVoucher).
type VoucherRequest struct {
	Voucher json.RawMessage `json:"voucher"`
}

// OrderRequest names an order of an account.
type OrderRequest struct {
	Account string `json:"account"`
	ID      string `json:"id"`
}

// ListRequest pages through an account's orders.
type ListRequest struct {
	Account string `json:"account"`
	After   string `json:"after,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// List is a page of an account's orders.
type List struct {
	Orders []orders.View `json:"orders"`
	// Next is the cursor of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// PayRequest pays an account's order with a vault card token.
type PayRequest struct {
	Account   string `json:"account"`
	ID        string `json:"id"`
	Method    string `json:"method"`
	ReturnURL string `json:"return_url"`
}

// RefundRequest refunds an order: the caller is an admin, or staff of the
// organizers listed.
type RefundRequest struct {
	ID     string   `json:"id"`
	Reason string   `json:"reason"`
	Admin  bool     `json:"admin,omitempty"`
	Staff  []string `json:"staff,omitempty"`
}

// Created is the answer of a create.
type Created struct {
	Order   orders.View `json:"order"`
	Created bool        `json:"created"`
}

const maxRequest = 16 << 10

// maxPrices bounds a price list's request (pricing.MaxRulesDoc and the
// envelope).
const maxPrices = pricing.MaxRulesDoc + 1<<10

// Server is what the service runs on.
type Server struct {
	Checkout *orders.Checkout
	// Timeout bounds a request's work. Default 30s.
	Timeout time.Duration
}

// Serve registers the orders service on nc. Requests are served
// concurrently, up to microerr.DefaultInFlight at once per operation.
func Serve(nc *nats.Conn, srv Server) (micro.Service, error) {
	if srv.Timeout == 0 {
		srv.Timeout = 30 * time.Second
	}
	s, err := micro.AddService(nc, micro.Config{Name: "orders", Version: "1.0.0",
		Description: "quotes, orders and their saga", QueueGroup: "orders"})
	if err != nil {
		return nil, err
	}
	c, saga := srv.Checkout, srv.Checkout.Saga
	view := func(o orders.Order, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		return o.View(), nil
	}
	h := func(op string) string { return "orders." + op }
	eps := map[string]micro.HandlerFunc{
		OpQuote: microerr.Handler(h(OpQuote), maxRequest, srv.Timeout, func(ctx context.Context, r orders.QuoteRequest) (any, error) {
			return c.Quote(ctx, r)
		}),
		OpCreate: microerr.Handler(h(OpCreate), maxRequest, srv.Timeout, func(ctx context.Context, r orders.CreateRequest) (any, error) {
			o, created, err := c.Create(ctx, r)
			if err != nil {
				return nil, err
			}
			return Created{Order: o.View(), Created: created}, nil
		}),
		OpGet: microerr.Handler(h(OpGet), maxRequest, srv.Timeout, func(ctx context.Context, r OrderRequest) (any, error) {
			return view(saga.Owned(ctx, r.ID, r.Account))
		}),
		OpList: microerr.Handler(h(OpList), maxRequest, srv.Timeout, func(ctx context.Context, r ListRequest) (any, error) {
			limit := min(max(r.Limit, 1), 100)
			if r.Limit == 0 {
				limit = 20
			}
			list, err := saga.Store.ByAccount(ctx, r.Account, r.After, limit)
			if err != nil {
				return nil, err
			}
			out := List{Orders: make([]orders.View, 0, len(list))}
			for _, o := range list {
				out.Orders = append(out.Orders, o.View())
			}
			if len(list) == limit {
				out.Next = list[len(list)-1].ID
			}
			return out, nil
		}),
		OpPay: microerr.Handler(h(OpPay), maxRequest, srv.Timeout, func(ctx context.Context, r PayRequest) (any, error) {
			return view(saga.Pay(ctx, r.ID, r.Account, r.Method, r.ReturnURL))
		}),
		OpSync: microerr.Handler(h(OpSync), maxRequest, srv.Timeout, func(ctx context.Context, r OrderRequest) (any, error) {
			o, err := saga.Sync(ctx, r.ID, r.Account)
			if r.Account == "" && err == nil {
				// The return from 3-D Secure, whose browser may carry no
				// session: it learns nothing of the order.
				return orders.View{ID: o.ID, State: o.State}, nil
			}
			return view(o, err)
		}),
		OpCancel: microerr.Handler(h(OpCancel), maxRequest, srv.Timeout, func(ctx context.Context, r OrderRequest) (any, error) {
			return view(saga.Cancel(ctx, r.ID, r.Account))
		}),
		OpPricesGet: microerr.Handler(h(OpPricesGet), maxRequest, srv.Timeout, func(ctx context.Context, r EventRequest) (any, error) {
			return c.Prices.Store.Rules(ctx, r.Event)
		}),
		OpPricesPut: microerr.Handler(h(OpPricesPut), maxPrices, srv.Timeout, func(ctx context.Context, r PricesRequest) (any, error) {
			rules, err := pricing.DecodeRules(r.Rules)
			if err != nil {
				return nil, err
			}
			if rules.Event != r.Event {
				return nil, errs.Errorf("orders.prices_put", errs.Invalid, "the price list is for event %q, not %q", rules.Event, r.Event)
			}
			if err := c.Prices.Store.PutRules(ctx, rules); err != nil {
				return nil, err
			}
			return c.Prices.Store.Rules(ctx, r.Event)
		}),
		OpVoucher: microerr.Handler(h(OpVoucher), maxPrices, srv.Timeout, func(ctx context.Context, r VoucherRequest) (any, error) {
			v, err := pricing.DecodeVoucher(r.Voucher)
			if err != nil {
				return nil, err
			}
			if err := c.Prices.Store.PutVoucher(ctx, v); err != nil {
				return nil, err
			}
			return c.Prices.Store.Voucher(ctx, v.Code)
		}),
		OpRefund: microerr.Handler(h(OpRefund), maxRequest, srv.Timeout, func(ctx context.Context, r RefundRequest) (any, error) {
			o, err := saga.Store.Get(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			if !r.Admin && (o.Organizer == "" || !slices.Contains(r.Staff, o.Organizer)) {
				return nil, errs.Errorf("orders.refund", errs.NotFound, "no order %s", r.ID)
			}
			return view(saga.Refund(ctx, r.ID, r.Reason))
		}),
	}
	for _, op := range Ops {
		// Each request on a goroutine of its own: a payment waiting for
		// the gateway holds up no other request.
		if err := s.AddEndpoint(op, microerr.Concurrent(nc, eps[op], 0), micro.WithEndpointSubject(Prefix+op)); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Client calls the orders service.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one call. Default 35s (a payment waits for the
	// gateway).
	Timeout time.Duration
}

// Call sends op's request and decodes its answer into resp.
func (c *Client) Call(ctx context.Context, op string, req, resp any) error {
	t := c.Timeout
	if t == 0 {
		t = 35 * time.Second
	}
	return microerr.Call(ctx, c.NC, t, "orders", "orders."+op, Prefix+op, req, resp)
}

// Quote asks a quote.
func (c *Client) Quote(ctx context.Context, r orders.QuoteRequest) (pricing.Quote, error) {
	var q pricing.Quote
	return q, c.Call(ctx, OpQuote, r, &q)
}

// Create places an order.
func (c *Client) Create(ctx context.Context, r orders.CreateRequest) (Created, error) {
	var out Created
	return out, c.Call(ctx, OpCreate, r, &out)
}

// Get reads an account's order.
func (c *Client) Get(ctx context.Context, r OrderRequest) (orders.View, error) {
	return c.view(ctx, OpGet, r)
}

// Pay pays an account's order.
func (c *Client) Pay(ctx context.Context, r PayRequest) (orders.View, error) {
	return c.view(ctx, OpPay, r)
}

// Sync reads an order's payment from the gateway (the buyer's return
// from 3-D Secure).
func (c *Client) Sync(ctx context.Context, r OrderRequest) (orders.View, error) {
	return c.view(ctx, OpSync, r)
}

// Cancel cancels an account's open order.
func (c *Client) Cancel(ctx context.Context, r OrderRequest) (orders.View, error) {
	return c.view(ctx, OpCancel, r)
}

// Refund refunds an order.
func (c *Client) Refund(ctx context.Context, r RefundRequest) (orders.View, error) {
	return c.view(ctx, OpRefund, r)
}

func (c *Client) view(ctx context.Context, op string, req any) (orders.View, error) {
	var v orders.View
	return v, c.Call(ctx, op, req, &v)
}

// Prices reads an event's price list.
func (c *Client) Prices(ctx context.Context, event string) (pricing.Rules, error) {
	var r pricing.Rules
	return r, c.Call(ctx, OpPricesGet, EventRequest{Event: event}, &r)
}

// PutPrices writes an event's price list.
func (c *Client) PutPrices(ctx context.Context, event string, rules []byte) (pricing.Rules, error) {
	var r pricing.Rules
	return r, c.Call(ctx, OpPricesPut, PricesRequest{Event: event, Rules: rules}, &r)
}

// PutVoucher creates or replaces a voucher.
func (c *Client) PutVoucher(ctx context.Context, voucher []byte) (pricing.Voucher, error) {
	var v pricing.Voucher
	return v, c.Call(ctx, OpVoucher, VoucherRequest{Voucher: voucher}, &v)
}

// List pages through an account's orders.
func (c *Client) List(ctx context.Context, r ListRequest) (List, error) {
	var l List
	return l, c.Call(ctx, OpList, r, &l)
}
