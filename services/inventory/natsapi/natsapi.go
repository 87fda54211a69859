// Package natsapi is the NATS request/reply protocol of the inventory
// partition owners: the subjects, how answers and errors travel (NATS micro
// service error headers carrying errs kinds), and a Client that edges and
// benchmarks use. Requests for partition "<event>.<i>" go to
// "inv.<event>.<i>.<op>"; whichever core node holds the partition's lease
// answers.
package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/internal/tracing"
	"github.com/ticketing/ticketing/services/inventory"
)

// Operations of a partition owner.
const (
	OpHold         = "hold"
	OpGet          = "get"
	OpRelease      = "release"
	OpConfirm      = "confirm"
	OpCancel       = "cancel"
	OpAvailability = "availability"
)

// Ops lists every operation; edges may call only the public ones (see
// conf/nats/core.conf).
var Ops = []string{OpHold, OpGet, OpRelease, OpConfirm, OpCancel, OpAvailability}

// ServiceName is the NATS micro service name of partition owners.
const ServiceName = "inventory"

// Group is the subject prefix of a partition's endpoints.
func Group(partition string) string { return "inv." + partition }

// Subject is where op requests for a partition go.
func Subject(partition, op string) string { return Group(partition) + "." + op }

// decodeAnswer turns an answer message into v or an error.
func decodeAnswer(op string, m *nats.Msg, v any) error {
	if m.Header.Get(micro.ErrorCodeHeader) != "" { // the op's name is built for errors only
		return microerr.Decode("inventory."+op, m)
	}
	var err error
	if h, ok := v.(*inventory.Hold); ok {
		err = h.DecodeJSON(m.Data) // most answers, without reflection
	} else {
		err = json.Unmarshal(m.Data, v)
	}
	if err != nil {
		return errs.E("inventory."+op, errs.Other, fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

// Client calls partition owners. It retries while no owner answers (a
// partition between owners) or the owner says it is unavailable, until the
// context's deadline or Timeout; every operation is safe to retry (holds
// carry idempotency keys).
type Client struct {
	NC *nats.Conn
	// Timeout bounds one call, retries included, when the context has no
	// earlier deadline. Default 5s.
	Timeout time.Duration
	// AttemptTimeout bounds one request. Default 2s.
	AttemptTimeout time.Duration
}

func (c *Client) call(ctx context.Context, partition, op string, req, resp any) error {
	if tracing.Sampled(ctx) {
		return c.tracedCall(ctx, partition, op, req, resp)
	}
	return c.do(ctx, nil, partition, op, req, resp)
}

// do is call, with hdr (nil: none) on every request.
func (c *Client) do(ctx context.Context, hdr nats.Header, partition, op string, req, resp any) error {
	var body []byte
	var err error
	if r, ok := req.(inventory.HoldRequest); ok {
		body = r.AppendJSON(make([]byte, 0, 192)) // every hold, without reflection
	} else if body, err = json.Marshal(req); err != nil {
		return errs.E("inventory."+op, errs.Invalid, err)
	}
	timeout, attempt := c.Timeout, c.AttemptTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if attempt <= 0 {
		attempt = 2 * time.Second
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	subj := Subject(partition, op)
	backoff := 10 * time.Millisecond
	for {
		// One request per attempt, bounded by the attempt timeout and the
		// call's deadline (a plain timed request: no context to allocate on
		// the hot path; cancellation is checked between attempts).
		wait := min(attempt, time.Until(deadline))
		var m *nats.Msg
		if wait > 0 {
			m, err = c.request(subj, body, hdr, wait)
		} else {
			err = context.DeadlineExceeded
		}
		if err == nil {
			err = decodeAnswer(op, m, resp)
			if !errs.Is(errs.Unavailable, err) {
				return err
			}
		}
		retryable := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) ||
			errors.Is(err, nats.ErrTimeout) || errs.Is(errs.Unavailable, err)
		done := ctx.Err() != nil || !time.Now().Add(backoff).Before(deadline)
		if !retryable || done {
			if retryable {
				return errs.E("inventory."+op, errs.Unavailable, "the inventory for this event is not answering; try again", err)
			}
			if errs.KindOf(err) == errs.Other {
				return errs.E("inventory."+op, errs.Unavailable, "the inventory for this event is not reachable; try again", err)
			}
			return err
		}
		pause.For(ctx, backoff)
		if backoff < 250*time.Millisecond {
			backoff *= 2
		}
	}
}

// Hold places a hold in a partition.
func (c *Client) Hold(ctx context.Context, partition string, r inventory.HoldRequest) (inventory.Hold, error) {
	var h inventory.Hold
	err := c.call(ctx, partition, OpHold, r, &h)
	return h, err
}

// Get reads a hold; ref.Token must be the hold's token.
func (c *Client) Get(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error) {
	return c.byRef(ctx, OpGet, ref)
}

// Release releases a hold; ref.Token must be the hold's token.
func (c *Client) Release(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error) {
	return c.byRef(ctx, OpRelease, ref)
}

func (c *Client) byRef(ctx context.Context, op string, ref inventory.HoldRef) (inventory.Hold, error) {
	return c.onHold(ctx, op, ref.HoldID, ref)
}

// Confirm sells a live hold (internal callers only).
func (c *Client) Confirm(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error) {
	return c.onHold(ctx, OpConfirm, r.HoldID, r)
}

// CancelSale frees a sold hold (internal callers only).
func (c *Client) CancelSale(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error) {
	return c.onHold(ctx, OpCancel, r.HoldID, r)
}

// onHold sends req to the partition a hold id names.
func (c *Client) onHold(ctx context.Context, op, holdID string, req any) (inventory.Hold, error) {
	p, ok := inventory.PartitionOfHold(holdID)
	if !ok {
		return inventory.Hold{}, errs.Errorf("inventory."+op, errs.NotFound, "no hold %q", holdID)
	}
	var h inventory.Hold
	err := c.call(ctx, p, op, req, &h)
	return h, err
}

// Availability reads a partition's seat statuses and zone counts.
func (c *Client) Availability(ctx context.Context, partition string) (inventory.Availability, error) {
	var a inventory.Availability
	err := c.call(ctx, partition, OpAvailability, struct{}{}, &a)
	return a, err
}

// AvailabilityExpiring is Availability with each zone's Expiring: the held
// seats (GA quantity) whose hold expires within the horizon (at most
// inventory.MaxExpiringWithin; millisecond precision). The owner counts
// them off its expiry heap, in time proportional to those holds.
func (c *Client) AvailabilityExpiring(ctx context.Context, partition string, within time.Duration) (inventory.Availability, error) {
	var a inventory.Availability
	err := c.call(ctx, partition, OpAvailability, inventory.AvailabilityRequest{ExpiringWithinMS: within.Milliseconds()}, &a)
	return a, err
}
