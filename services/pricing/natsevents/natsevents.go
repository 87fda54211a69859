// Package natsevents is the pricing.Publisher of production: it publishes
// each price change into the core's JetStream stream EVENTS, which the
// bridge mirrors into Kafka, for audit and analytics.
//
// A change is one message on subject events.pricing.<event> (the stream
// takes every events.> subject): a CloudEvents structured body
// (internal/cloudevents) of type pricing.TypeChanged with the change as
// data, the attributes repeated as ce-* headers, "<event>/<zone>" as
// subject, the event id as partition key (the changes of one event stay
// in order in Kafka), and the change's id as CloudEvents id and
// Nats-Msg-Id, so that a publish repeated within the stream's duplicate
// window (EVENTS: 30 seconds by default) is stored once. Consumers that
// must count each change once dedupe by the id beyond that window.
//
// Publishing is synchronous: Publish returns once the stream has
// acknowledged the message, since a repricing that cannot record its
// change should say so (pricing.Service.Reprice then publishes it
// again). Price changes are rare (one per zone per repricing), so the
// round trip costs nothing that matters.
package natsevents

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/pricing"
)

// Config configures a Publisher.
type Config struct {
	// Source is the events' CloudEvents source, e.g.
	// "/core/core-1/pricing". Required.
	Source string
	// Domain is the JetStream domain of the EVENTS stream: jsnames.Domain
	// from an edge, empty from a core process. Default empty.
	Domain string
	// Prefix starts every subject. Default jsnames.EventsSubjPx
	// ("events.").
	Prefix string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = jsnames.EventsSubjPx
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.Source == "" {
		return errs.Errorf("pricing.natsevents.config", errs.Invalid, "no source")
	}
	return nil
}

// Subject is the EVENTS subject of a price change of event under prefix.
func Subject(prefix, event string) string { return prefix + "pricing." + event }

// Publisher publishes price changes into EVENTS. Safe for concurrent use.
type Publisher struct {
	js  jetstream.JetStream
	cfg Config
}

var _ pricing.Publisher = (*Publisher)(nil)

// New returns a Publisher on nc; it does not own nc.
func New(nc *nats.Conn, cfg Config) (*Publisher, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var js jetstream.JetStream
	var err error
	if cfg.Domain == "" {
		js, err = jetstream.New(nc)
	} else {
		js, err = jetstream.NewWithDomain(nc, cfg.Domain)
	}
	if err != nil {
		return nil, errs.E("pricing.natsevents.new", errs.Other, err)
	}
	return &Publisher{js: js, cfg: cfg}, nil
}

// Publish implements pricing.Publisher: it returns once the stream has
// stored the event (or had it already: same id within its duplicate
// window). Failures are errs.Unavailable; an event without an id, a
// valid event id or a time is errs.Invalid.
func (p *Publisher) Publish(ctx context.Context, ev pricing.Changed) error {
	const op = "pricing.natsevents.publish"
	if ev.ID == "" || !pricing.ValidID(ev.Event) || !pricing.ValidID(ev.Zone) || ev.At.IsZero() {
		return errs.Errorf(op, errs.Invalid, "a price change needs an id, its event and zone, and a time")
	}
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: ev.ID, Source: p.cfg.Source, Type: pricing.TypeChanged,
		Subject: ev.Event + "/" + ev.Zone, Time: ev.At.UTC(), DataContentType: "application/json", PartitionKey: ev.Event}
	body, err := cloudevents.Encode(&ce, ev)
	if err != nil {
		return errs.E(op, errs.Other, err)
	}
	m := nats.NewMsg(Subject(p.cfg.Prefix, ev.Event))
	for _, kv := range ce.Headers() {
		m.Header.Set(kv[0], kv[1])
	}
	m.Header.Set(nats.MsgIdHdr, ce.ID)
	m.Data = body
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		return errs.E(op, errs.Unavailable, "price change event not published", err)
	}
	return nil
}
