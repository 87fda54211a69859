package natsapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/queue"
)

// Client is the edge's side of the waiting-room protocol. Safe for
// concurrent use.
type Client struct {
	NC *nats.Conn
	// Timeout bounds one request when the context has no earlier deadline.
	// Default 5s.
	Timeout time.Duration
}

// Config asks for an event's waiting-room setup. An unknown event or one
// whose queue is off is an errs.NotFound error; a core that does not answer
// is errs.Unavailable.
func (c *Client) Config(ctx context.Context, eventID string) (Config, error) {
	var cfg Config
	err := c.call(ctx, "queue.config", SubjConfig, EventRequest{EventID: eventID}, &cfg)
	return cfg, err
}

// PreQueue sends one chunk of the edge's pre-queue (at most
// MaxPreQueueChunk tickets).
func (c *Client) PreQueue(ctx context.Context, chunk PreQueueChunk) error {
	if len(chunk.Tickets) > MaxPreQueueChunk {
		return errs.Errorf("queue.prequeue", errs.TooLarge, "a chunk holds at most %d tickets", MaxPreQueueChunk)
	}
	if chunk.Tickets == nil {
		chunk.Tickets = []queue.TicketID{}
	}
	var out struct{}
	return c.call(ctx, "queue.prequeue", SubjPreQueue, chunk, &out)
}

// Draw asks for an event's public draw record.
func (c *Client) Draw(ctx context.Context, eventID string) (DrawRecord, error) {
	var r DrawRecord
	err := c.call(ctx, "queue.draw", SubjDraw, EventRequest{EventID: eventID}, &r)
	return r, err
}

// Report publishes the edge's report for an event (no answer).
func (c *Client) Report(r Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return errs.E("queue.report", errs.Invalid, err)
	}
	return c.NC.Publish(ReportSubject(r.EventID), b)
}

// SubscribeDecisions calls f, in order, with every decision the core
// publishes for the event; undecodable messages are dropped. Unsubscribe
// to stop.
func (c *Client) SubscribeDecisions(eventID string, f func(Decision)) (*nats.Subscription, error) {
	return c.NC.Subscribe(DecisionSubject(eventID), func(m *nats.Msg) {
		var d Decision
		if json.Unmarshal(m.Data, &d) == nil && d.EventID == eventID {
			f(d)
		}
	})
}

func (c *Client) call(ctx context.Context, op, subj string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := c.NC.RequestWithContext(ctx, subj, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return errs.E(op, errs.Unavailable, "the waiting-room service is not answering; try again", err)
		}
		return errs.E(op, errs.Unavailable, "the waiting-room service is not reachable; try again", err)
	}
	if err := microerr.Decode(op, m); err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, resp); err != nil {
		return errs.E(op, errs.Other, fmt.Errorf("decode answer: %w", err))
	}
	return nil
}
