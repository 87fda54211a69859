// Package natsapi is the payment service's request/reply API on NATS (a
// micro service named "payment", subjects payment.<op>) and its client,
// which is the order saga's orders.Payments. Only core processes may
// call it (the edges' leaf permissions do not reach payment.>); card
// numbers never travel on it: a payment names a vault token.
package natsapi

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment"
)

// The operations, each on subject Prefix+op.
const (
	Prefix   = "payment."
	OpPay    = "pay"
	OpStatus = "status"
	OpVoid   = "void"
	OpRefund = "refund"
)

// OrderRequest names an order.
type OrderRequest struct {
	Order string `json:"order"`
}

// RefundRequest refunds an order's capture.
type RefundRequest struct {
	Order  string `json:"order"`
	Amount int64  `json:"amount"`
	Reason string `json:"reason,omitempty"`
}

// maxRequest bounds a request body.
const maxRequest = 8 << 10

// Serve registers the payment service on nc. timeout bounds one request's
// work (gateway calls included). Requests are served concurrently, up to
// microerr.DefaultInFlight at once per operation.
func Serve(nc *nats.Conn, svc *payment.Service, timeout time.Duration) (micro.Service, error) {
	s, err := micro.AddService(nc, micro.Config{Name: "payment", Version: "1.0.0",
		Description: "payments of orders: the PCI boundary", QueueGroup: "payment"})
	if err != nil {
		return nil, err
	}
	eps := map[string]micro.HandlerFunc{
		OpPay: microerr.Handler("payment."+OpPay, maxRequest, timeout, func(ctx context.Context, r payment.PayRequest) (any, error) {
			return svc.Pay(ctx, r)
		}),
		OpStatus: microerr.Handler("payment."+OpStatus, maxRequest, timeout, func(ctx context.Context, r OrderRequest) (any, error) {
			return svc.Status(ctx, r.Order)
		}),
		OpVoid: microerr.Handler("payment."+OpVoid, maxRequest, timeout, func(ctx context.Context, r OrderRequest) (any, error) {
			return svc.Void(ctx, r.Order)
		}),
		OpRefund: microerr.Handler("payment."+OpRefund, maxRequest, timeout, func(ctx context.Context, r RefundRequest) (any, error) {
			return svc.Refund(ctx, r.Order, r.Amount, r.Reason)
		}),
	}
	for op, f := range eps {
		// Each request on a goroutine of its own: a payment waiting for
		// the gateway holds up no other.
		if err := s.AddEndpoint(op, microerr.Concurrent(nc, f, 0), micro.WithEndpointSubject(Prefix+op)); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// Client calls the payment service; it is the saga's orders.Payments.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one call. Default 30s (a gateway may be slow).
	Timeout time.Duration
}

var _ orders.Payments = (*Client)(nil)

func (c *Client) call(ctx context.Context, op string, req any) (payment.Payment, error) {
	t := c.Timeout
	if t == 0 {
		t = 30 * time.Second
	}
	var p payment.Payment
	err := microerr.Call(ctx, c.NC, t, "payment", "payment."+op, Prefix+op, req, &p)
	return p, err
}

// Pay implements orders.Payments.
func (c *Client) Pay(ctx context.Context, r orders.PayRequest) (orders.PaymentResult, error) {
	p, err := c.call(ctx, OpPay, payment.PayRequest{Order: r.Order, Account: r.Account, Event: r.Event, Amount: r.Amount,
		Currency: r.Currency, Method: r.Method, ReturnURL: r.ReturnURL, Attempt: r.Attempt})
	return Result(p), err
}

// Status implements orders.Payments.
func (c *Client) Status(ctx context.Context, order string) (orders.PaymentResult, error) {
	p, err := c.call(ctx, OpStatus, OrderRequest{Order: order})
	return Result(p), err
}

// Void implements orders.Payments.
func (c *Client) Void(ctx context.Context, order string) (orders.PaymentResult, error) {
	p, err := c.call(ctx, OpVoid, OrderRequest{Order: order})
	return Result(p), err
}

// Refund implements orders.Payments.
func (c *Client) Refund(ctx context.Context, order string, amount int64, reason string) (orders.PaymentResult, error) {
	p, err := c.call(ctx, OpRefund, RefundRequest{Order: order, Amount: amount, Reason: reason})
	return Result(p), err
}

// Result is a payment as the saga sees it.
func Result(p payment.Payment) orders.PaymentResult {
	r := orders.PaymentResult{IntentID: p.IntentID, RedirectURL: p.RedirectURL, Captured: p.Captured, Refunded: p.Refunded}
	switch p.Status {
	case payment.StatusPending:
		r.Status = orders.PaymentPending
	case payment.StatusRequiresAction:
		r.Status = orders.PaymentRequiresAction
	case payment.StatusSucceeded, payment.StatusPartiallyRefunded:
		r.Status = orders.PaymentSucceeded
	case payment.StatusFailed:
		r.Status = orders.PaymentDeclined
	case payment.StatusCanceled:
		r.Status = orders.PaymentCanceled
	case payment.StatusRefunded:
		r.Status = orders.PaymentRefunded
	}
	if d := p.Decline; d != nil {
		r.DeclineCode, r.DeclineMessage = d.DeclineCode, d.Message
		if r.DeclineCode == "" {
			r.DeclineCode = d.Code
		}
	}
	if c := p.Card; c != nil {
		r.Brand, r.Last4 = string(c.Brand), c.Last4
	}
	return r
}
