package core

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/scylladb/gocqlx/v2"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/keyring"
	keyringkv "github.com/ticketing/ticketing/internal/keyring/natskv"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/fulfillment"
	fulfillmentcql "github.com/ticketing/ticketing/services/fulfillment/cql"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	fulfillmentkv "github.com/ticketing/ticketing/services/fulfillment/natskv"
	"github.com/ticketing/ticketing/services/orders"
)

// IssueConsumer is the durable consumer of EVENTS through which the core
// issues the tickets of confirmed orders.
const IssueConsumer = "fulfillment-issue"

// issueWorkers is how many confirmed orders a core node issues at once.
const issueWorkers = 16

// issuing issues the tickets of confirmed orders and marks them
// fulfilled, and revokes the tickets of refunded orders.
type issuing struct {
	saga    *orders.Saga
	issuer  *fulfillment.Issuer
	catalog *catalog.Cache
	log     *slog.Logger
}

// TicketValidity is how long before and after its event's start a
// ticket admits.
const TicketValidity = 24 * time.Hour

// saleOf is what o sold, its tickets valid TicketValidity either side of
// the event's start (of the order's creation when the event has none).
func saleOf(o orders.Order, ev catalog.Event) fulfillment.Sale {
	at := ev.StartsAt
	if at.IsZero() {
		at = o.Created
	}
	s := fulfillment.Sale{Order: o.ID, Account: o.Account, Event: o.Event,
		ValidFrom: at.Add(-TicketValidity), ValidUntil: at.Add(TicketValidity)}
	for _, h := range o.Holds {
		s.Holds = append(s.Holds, fulfillment.SoldHold{ID: h.ID, Seats: h.Seats, Zone: h.Zone, Quantity: h.Quantity})
	}
	return s
}

// fulfill issues the tickets of a confirmed order and marks it fulfilled.
// An order that is not confirmed (fulfilled already, or refunding since)
// needs nothing.
func (is *issuing) fulfill(ctx context.Context, id string) error {
	o, err := is.saga.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	if o.State != orders.Confirmed {
		return nil
	}
	ev, _, ok := is.catalog.Event(o.Event)
	if !ok {
		return errs.Errorf("core.issue", errs.Unavailable, "event %s of order %s is not in the catalog (yet)", o.Event, o.ID)
	}
	if _, err := is.issuer.Issue(ctx, saleOf(o, ev)); err != nil {
		return err
	}
	_, err = is.saga.Fulfill(ctx, id)
	if errs.Is(errs.Conflict, err) {
		// Refunding since: the tickets just issued are taken back (the
		// refund's event may have been handled before they existed).
		return is.revoke(ctx, id)
	}
	return err
}

// revoke revokes every ticket of an order (its money went back).
func (is *issuing) revoke(ctx context.Context, id string) error {
	list, err := is.issuer.Store.ByOrder(ctx, id)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, t := range list {
		if _, err := is.issuer.Store.Revoke(ctx, fulfillment.Revocation{TicketID: t.ID, EventID: t.EventID, Reason: "refunded", At: now}); err != nil {
			return err
		}
	}
	return nil
}

// workEvents hands the messages of a durable consumer of EVENTS to
// workers goroutines running handle (which acks or naks each), until ctx
// ends; a consumer that stops before (its connection closed for good)
// is an error.
func workEvents(ctx context.Context, cons jetstream.Consumer, workers int, handle func(context.Context, jetstream.Msg)) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * workers))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); it.Stop() }()
	work := make(chan jetstream.Msg)
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for m := range work {
				handle(ctx, m)
			}
		}()
	}
	defer func() {
		close(work)
		for range workers {
			<-done
		}
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("the consumer stopped: %w", err) // its connection closed for good
		}
		work <- m
	}
}

const (
	confirmedType = orders.EventTypePrefix + string(orders.Confirmed)
	refundingType = orders.EventTypePrefix + string(orders.Refunding)
)

func (is *issuing) handle(ctx context.Context, m jetstream.Msg) {
	ev, err := cloudevents.Unmarshal(m.Data())
	if err != nil {
		is.log.Warn("order event dropped: not a CloudEvent", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	switch ev.Type {
	case confirmedType:
		err = is.fulfill(ctx, ev.Subject)
	case refundingType:
		err = is.revoke(ctx, ev.Subject)
	}
	if err != nil && !errs.Is(errs.NotFound, err) {
		if ctx.Err() == nil {
			is.log.Warn("tickets not issued or revoked; redelivered later", "order", ev.Subject, "type", ev.Type, "err", err)
		}
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.Ack()
}

// ticketStore opens the tickets' store: ScyllaDB when configured (its
// keyspace created and migrated), else the core's JetStream bucket.
func (c *Core) ticketStore(ctx context.Context, sup *supervisor.Supervisor, log *slog.Logger) (fulfillment.Store, error) {
	if cfg := c.cfg.Checkout.Tickets; cfg != nil {
		cc := *cfg
		if cc.Logger == nil {
			cc.Logger = log
		}
		cc.Defaults()
		var sess gocqlx.Session
		if err := retried(ctx, log, "the tickets' CQL store", func(ctx context.Context) error {
			if err := cql.EnsureKeyspace(ctx, cc); err != nil {
				return err
			}
			var err error
			sess, err = cql.Open(ctx, cc)
			return err
		}); err != nil {
			return nil, err
		}
		if _, err := sup.Add("tickets-cql", func(context.Context) error { sess.Close(); return nil }); err != nil {
			sess.Close()
			return nil, err
		}
		if _, err := fulfillmentcql.Migrate(ctx, sess, log); err != nil {
			return nil, fmt.Errorf("core: the tickets' CQL schema: %w", err)
		}
		return fulfillmentcql.New(sess, fulfillmentcql.Options{}), nil
	}
	var store *fulfillmentkv.Store
	err := retried(ctx, log, "the tickets bucket", func(ctx context.Context) error {
		var err error
		store, err = fulfillmentkv.Open(ctx, c.JS, fulfillmentkv.Config{Replicas: c.cfg.Streams.Replicas})
		return err
	})
	return store, err
}

// startTickets starts the tickets on this node: their store, the
// barcodes' signing keys (rotated), the tickets service and the issuing
// of confirmed orders' tickets.
func (c *Core) startTickets(ctx context.Context, sup *supervisor.Supervisor, saga *orders.Saga) error {
	log := c.log.With("component", "fulfillment")
	replicas := c.cfg.Streams.Replicas
	store, err := c.ticketStore(ctx, sup, log)
	if err != nil {
		return err
	}
	keys, err := keyringkv.New(c.Streams.TicketKeys, streams.TicketKeysConfig(replicas))
	if err != nil {
		return err
	}
	ring, err := keyring.NewKeyRing(TicketKeyRing, time.Now())
	if err != nil {
		return err
	}
	if _, err := keyring.Sync(ctx, keys, ring, time.Now()); err != nil {
		return fmt.Errorf("core: ticket keys: %w", err)
	}
	if _, err := sup.Start(supervisor.Component{Name: "ticket-keys", Run: func(ctx context.Context) error {
		keyring.Keep(ctx, keys, ring, time.Minute, time.Now, log, "tickets")
		return nil
	}}); err != nil {
		return err
	}
	rotation, err := sharedSecret(ctx, c.NC, c.Streams.Secrets, "ticket-rotation-key")
	if err != nil {
		return fmt.Errorf("core: ticket rotation secret: %w", err)
	}
	signer := ticketSigner{ring: ring, rotation: rotation}
	keeper := &gateKeeper{signer: signer, store: store, now: time.Now}
	svc, err := ticketsapi.Serve(c.NC, ticketsapi.Server{Store: store, Show: signer.show,
		Owner: func(ctx context.Context, order string) (string, error) {
			o, err := saga.Store.Get(ctx, order)
			return o.Account, err
		},
		Organizer: func(event string) (string, error) {
			ev, _, ok := c.Catalog.Event(event)
			if !ok {
				return "", errs.Errorf("tickets.gate", errs.NotFound, "no event %s", event)
			}
			return ev.OrganizerID, nil
		},
		Gate: keeper.gate,
		Scan: keeper.scan,
	})
	if err != nil {
		return fmt.Errorf("core: tickets service: %w", err)
	}
	if _, err := sup.Add("tickets-service", func(context.Context) error { return svc.Stop() }); err != nil {
		return err
	}
	var cons jetstream.Consumer
	if err := retried(ctx, log, "the tickets' issue consumer", func(ctx context.Context) error {
		var err error
		cons, err = c.JS.CreateOrUpdateConsumer(ctx, jsnames.Events, jetstream.ConsumerConfig{
			Durable: IssueConsumer, FilterSubject: orders.SubjectPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxAckPending: 4096, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	}); err != nil {
		return fmt.Errorf("core: the tickets' issue consumer: %w", err)
	}
	is := &issuing{saga: saga, issuer: &fulfillment.Issuer{Store: store, Signer: signer}, catalog: c.Catalog, log: log}
	if _, err := sup.Start(supervisor.Component{Name: "fulfillment-issue", Run: func(ctx context.Context) error {
		return workEvents(ctx, cons, issueWorkers, is.handle)
	}}); err != nil {
		return err
	}
	return c.startNotifying(ctx, sup, saga, store)
}
