package natsapi

import (
	"context"
	"encoding/json"
	"iter"
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

// DrawPage asks for one page of an event's public draw record: tickets
// [r.Offset, r.Offset+r.Limit) of the draw list (Limit 0 or above
// MaxDrawLimit: MaxDrawLimit), with the commitment, the seed once
// revealed, Complete and Total. An edge's HTTP endpoint serving the record
// passes its offset/limit query through to this.
func (c *Client) DrawPage(ctx context.Context, r DrawRequest) (DrawRecord, error) {
	var rec DrawRecord
	err := c.call(ctx, "queue.draw", SubjDraw, r, &rec)
	return rec, err
}

// DrawPages yields an event's draw record page after page (limit tickets
// each; 0: MaxDrawLimit), from the first to the last, and stops at the
// first error, which it yields. A record that is not complete yet is one
// page without tickets. Pages of a complete record are consistent (the
// record is stored once and never changes); a page that disagrees with
// the first (commitment, seed, total) is an errs.Conflict error.
//
//	for page, err := range client.DrawPages(ctx, "event", 0) {
//		if err != nil { ... }
//		... page.Offset, page.Tickets ...
//	}
func (c *Client) DrawPages(ctx context.Context, eventID string, limit int) iter.Seq2[DrawRecord, error] {
	return func(yield func(DrawRecord, error) bool) {
		var first DrawRecord
		for off := 0; ; {
			p, err := c.DrawPage(ctx, DrawRequest{EventID: eventID, Offset: off, Limit: limit})
			if err == nil && off > 0 && (p.Commitment != first.Commitment || string(p.Seed) != string(first.Seed) ||
				p.Total != first.Total || !p.Complete || p.Offset != off) {
				err = errs.E("queue.draw", errs.Conflict, "the draw record changed between pages")
			}
			if err == nil && p.Complete && len(p.Tickets) == 0 && off < p.Total {
				err = errs.Errorf("queue.draw", errs.Other, "empty page at %d of %d", off, p.Total)
			}
			if err != nil {
				yield(DrawRecord{}, err)
				return
			}
			if off == 0 {
				first = p
			}
			if !yield(p, nil) {
				return
			}
			off += len(p.Tickets)
			if !p.Complete || off >= p.Total {
				return
			}
		}
	}
}

// Draw fetches an event's whole public draw record, every page (see
// DrawPages), as one DrawRecord (Offset 0, Tickets of length Total), ready
// for DrawRecord.Verify. Before the record is complete it is the record
// without tickets.
func (c *Client) Draw(ctx context.Context, eventID string) (DrawRecord, error) {
	var all DrawRecord
	for p, err := range c.DrawPages(ctx, eventID, 0) {
		if err != nil {
			return DrawRecord{}, err
		}
		if p.Offset == 0 {
			all = p
			all.Tickets = make([]queue.TicketID, 0, p.Total)
		}
		all.Tickets = append(all.Tickets, p.Tickets...)
	}
	if len(all.Tickets) == 0 {
		all.Tickets = nil
	}
	return all, nil
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
	return microerr.Call(ctx, c.NC, c.Timeout, "waiting-room", op, subj, req, resp)
}
