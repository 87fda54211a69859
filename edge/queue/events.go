package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/queue"
)

// Domain event types of the waiting room (services/analytics counts them
// in the on-sale funnel).
const (
	TypeQueueJoined   = "ticketing.queue.joined"
	TypeQueueAdmitted = "ticketing.queue.admitted"
)

// EventSink receives the waiting room's domain events. QueueEvent must not
// block: it is called on the join and admission paths.
type EventSink interface {
	QueueEvent(typ, eventID string, ticket queue.TicketID, at time.Time)
}

// queueEventData is the data of a queue event: the session is the user's
// ticket in hex (never the session cookie).
type queueEventData struct {
	EventID string    `json:"event_id"`
	Session string    `json:"session"`
	At      time.Time `json:"at"`
}

// JetStreamEvents publishes the waiting room's domain events into the
// core's EVENTS stream (subject events.queue.<event>) as CloudEvents, with
// an id derived from the type, event and ticket, so that a ticket's join
// seen by two edges, or published twice, is one event within the stream's
// duplicate window. Publishing is asynchronous from a bounded buffer: when
// the core is slow or away, events beyond the buffer are dropped and
// counted (Dropped), never holding up a join.
type JetStreamEvents struct {
	js      jetstream.JetStream
	source  string
	log     *slog.Logger
	ch      chan *nats.Msg
	dropped atomic.Int64
	failed  atomic.Int64
	done    chan struct{}
	once    sync.Once
}

// eventsWindow bounds the publishes awaiting the core's acknowledgement.
// Every write to the stream is synced, so one publish at a time would cap
// the events at a few thousand a second, below an on-sale's join rate.
const eventsWindow = 1024

// NewJetStreamEvents starts a publisher of queue events for the edge
// named edge into the JetStream domain domain, buffering up to buffer
// events.
func NewJetStreamEvents(nc *nats.Conn, domain, edge string, buffer int, log *slog.Logger) (*JetStreamEvents, error) {
	p := &JetStreamEvents{source: "/edge/" + edge + "/queue", log: log, ch: make(chan *nats.Msg, buffer), done: make(chan struct{})}
	opts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(eventsWindow),
		jetstream.WithPublishAsyncTimeout(10 * time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.fail(m, err) }),
	}
	var js jetstream.JetStream
	var err error
	if domain == "" {
		js, err = jetstream.New(nc, opts...)
	} else {
		js, err = jetstream.NewWithDomain(nc, domain, opts...)
	}
	if err != nil {
		return nil, err
	}
	p.js = js
	go p.run()
	return p, nil
}

func (p *JetStreamEvents) fail(m *nats.Msg, err error) {
	if n := p.failed.Add(1); n == 1 || n%1000 == 0 {
		p.log.Warn("queue domain event not published", "subject", m.Subject, "err", err, "failed", n)
	}
}

// QueueEvent implements EventSink.
func (p *JetStreamEvents) QueueEvent(typ, eventID string, ticket queue.TicketID, at time.Time) {
	id := sha256.Sum256([]byte(typ + "\x00" + eventID + "\x00" + string(ticket[:])))
	ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: hex.EncodeToString(id[:16]), Source: p.source, Type: typ,
		Subject: ticket.String(), Time: at.UTC(), DataContentType: "application/json", PartitionKey: eventID}
	body, err := cloudevents.Encode(&ev, queueEventData{EventID: eventID, Session: ticket.String(), At: at.UTC()})
	if err != nil {
		return
	}
	h := make(nats.Header, 8)
	for _, kv := range ev.Headers() {
		h.Set(kv[0], kv[1])
	}
	h.Set(nats.MsgIdHdr, ev.ID)
	select {
	case p.ch <- &nats.Msg{Subject: jsnames.EventsSubjPx + "queue." + eventID, Header: h, Data: body}:
	default:
		p.dropped.Add(1)
	}
}

func (p *JetStreamEvents) run() {
	defer close(p.done)
	for m := range p.ch {
		// With the window full, the call waits for room (its stall wait)
		// and then refuses: wait for what is in flight and try again.
		_, err := p.js.PublishMsgAsync(m)
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			p.settle(10 * time.Second)
			_, err = p.js.PublishMsgAsync(m)
		}
		if err != nil {
			p.fail(m, err)
		}
	}
	p.settle(10 * time.Second)
}

// settle waits, at most d, for the publishes in flight to be acknowledged
// or to fail.
func (p *JetStreamEvents) settle(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.js.PublishAsyncComplete():
	case <-t.C:
	}
}

// Dropped is how many events the full buffer dropped; Failed how many the
// core refused or did not acknowledge.
func (p *JetStreamEvents) Dropped() int64 { return p.dropped.Load() }

// Failed is how many events were not acknowledged.
func (p *JetStreamEvents) Failed() int64 { return p.failed.Load() }

// Close publishes what is buffered (within ctx) and stops.
func (p *JetStreamEvents) Close(ctx context.Context) {
	p.once.Do(func() { close(p.ch) })
	select {
	case <-p.done:
	case <-ctx.Done():
	}
}
