// Package natsevents is the fraud.Publisher of production: it publishes
// each decision into the core's JetStream stream EVENTS, which the bridge
// mirrors into Kafka (topic by type: ticketing.fraud.decided goes to the
// default events topic), for analytics.
//
// A decision is one message on subject events.fraud.<action>
// (events.fraud.signin, …; the stream takes every events.> subject): a
// CloudEvents structured body (internal/cloudevents) of type
// fraud.TypeDecided, with the attributes repeated as ce-* headers, the
// decision's subject ("account:<id>" or "network:<prefix>") as subject
// and partition key, and the event id as Nats-Msg-Id, so that a publish
// retried within the stream's duplicate window is stored once.
//
// Publishing is asynchronous from a bounded buffer, so that a decision
// never waits for the stream: when the core is slow or away, events beyond
// the buffer are dropped and counted (Dropped), and Publish says so with
// errs.Unavailable (the engine counts that too).
//
// An edge's leaf user may publish only events.queue.> into EVENTS
// (conf/nats/core.conf); a fraud engine run on an edge needs
// events.fraud.> added there.
package natsevents

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/fraud"
)

// Config configures a Publisher.
type Config struct {
	// Source is the events' CloudEvents source, e.g.
	// "/core/core-1/fraud". Required.
	Source string
	// Domain is the JetStream domain of the EVENTS stream: jsnames.Domain
	// from an edge, empty from a core process. Default empty.
	Domain string
	// Prefix starts every subject. Default jsnames.EventsSubjPx
	// ("events.").
	Prefix string
	// Buffer is how many events may wait to be published. Default 4096.
	Buffer int
	// Log gets the failures (rate-limited). Default slog.Default().
	Log *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = jsnames.EventsSubjPx
	}
	if c.Buffer == 0 {
		c.Buffer = 4096
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "fraud.natsevents.config"
	switch {
	case c.Source == "":
		return errs.Errorf(op, errs.Invalid, "no source")
	case c.Buffer < 1:
		return errs.Errorf(op, errs.Invalid, "buffer must be at least 1, got %d", c.Buffer)
	}
	return nil
}

// Subject is the EVENTS subject of a decision on action under prefix.
func Subject(prefix string, action fraud.Action) string {
	return prefix + "fraud." + string(action)
}

// window bounds the publishes awaiting the stream's acknowledgement.
const window = 1024

// Publisher publishes decisions into EVENTS.
type Publisher struct {
	js     jetstream.JetStream
	cfg    Config
	mu     sync.RWMutex // guards closed against sends on ch
	closed bool
	ch     chan *nats.Msg
	done   chan struct{}

	dropped, failed atomic.Int64
}

var _ fraud.Publisher = (*Publisher)(nil)

// New starts a Publisher on nc. Close it to flush what is buffered; it
// does not own nc.
func New(nc *nats.Conn, cfg Config) (*Publisher, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, ch: make(chan *nats.Msg, cfg.Buffer), done: make(chan struct{})}
	opts := []jetstream.JetStreamOpt{
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncTimeout(10 * time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { p.fail(m, err) }),
	}
	var err error
	if cfg.Domain == "" {
		p.js, err = jetstream.New(nc, opts...)
	} else {
		p.js, err = jetstream.NewWithDomain(nc, cfg.Domain, opts...)
	}
	if err != nil {
		return nil, errs.E("fraud.natsevents.new", errs.Other, err)
	}
	go p.run()
	return p, nil
}

// Publish implements fraud.Publisher: it encodes the event and queues it,
// never waiting. A full buffer or a closed Publisher drops it
// (errs.Unavailable).
func (p *Publisher) Publish(_ context.Context, ev fraud.Event) error {
	const op = "fraud.natsevents.publish"
	if !ev.Action.Valid() || ev.ID == "" {
		return errs.Errorf(op, errs.Invalid, "event without a valid action or id")
	}
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: ev.ID, Source: p.cfg.Source, Type: fraud.TypeDecided,
		Subject: ev.Subject, Time: ev.At.UTC(), DataContentType: "application/json", PartitionKey: ev.Subject}
	body, err := cloudevents.Encode(&ce, ev)
	if err != nil {
		return errs.E(op, errs.Other, err)
	}
	m := nats.NewMsg(Subject(p.cfg.Prefix, ev.Action))
	for _, kv := range ce.Headers() {
		m.Header.Set(kv[0], kv[1])
	}
	m.Header.Set(nats.MsgIdHdr, ce.ID)
	m.Data = body
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.dropped.Add(1)
		return errs.E(op, errs.Unavailable, "publisher closed")
	}
	select {
	case p.ch <- m:
		return nil
	default:
		p.dropped.Add(1)
		return errs.E(op, errs.Unavailable, "event buffer full")
	}
}

func (p *Publisher) fail(m *nats.Msg, err error) {
	if n := p.failed.Add(1); n == 1 || n%1000 == 0 {
		p.cfg.Log.Warn("fraud decision event not published", "subject", m.Subject, "err", err, "failed", n)
	}
}

func (p *Publisher) run() {
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
func (p *Publisher) settle(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.js.PublishAsyncComplete():
	case <-t.C:
	}
}

// Stats are a Publisher's counts.
type Stats struct {
	// Dropped events found the buffer full or the Publisher closed.
	Dropped int64
	// Failed events were refused or not acknowledged.
	Failed int64
}

// Stats returns the counts so far.
func (p *Publisher) Stats() Stats {
	return Stats{Dropped: p.dropped.Load(), Failed: p.failed.Load()}
}

// Close stops taking events and publishes what is buffered, waiting for
// it within ctx.
func (p *Publisher) Close(ctx context.Context) {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.ch)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
	case <-ctx.Done():
	}
}
