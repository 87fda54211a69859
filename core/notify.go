package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/fulfillment"
	"github.com/ticketing/ticketing/services/notification"
	notificationkv "github.com/ticketing/ticketing/services/notification/natskv"
	notificationpg "github.com/ticketing/ticketing/services/notification/postgres"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/pricing"
)

// NotifyConsumer is the durable consumer of EVENTS through which the
// core mails order confirmations.
const NotifyConsumer = "notify-confirmations"

// notifyWorkers is how many confirmations a core node mails at once.
const notifyWorkers = 8

// notifying mails each fulfilled order's confirmation with its tickets.
type notifying struct {
	notifier *notification.Notifier
	saga     *orders.Saga
	tickets  fulfillment.Store
	core     *Core
	log      *slog.Logger
}

var fulfilledType = orders.EventTypePrefix + string(orders.Fulfilled)

// confirm mails the confirmation of order id, the delivery of the domain
// event eventID.
func (n *notifying) confirm(ctx context.Context, eventID, id string) error {
	o, err := n.saga.Store.Get(ctx, id)
	if err != nil {
		return err
	}
	a, err := n.core.accounts.ByID(ctx, o.Account)
	if errs.Is(errs.NotFound, err) {
		return nil // an account this identity service does not have (a partner's buyer): nobody to mail
	}
	if err != nil {
		return err
	}
	list, err := n.tickets.ByOrder(ctx, id)
	if err != nil {
		return err
	}
	c := notification.Confirmation{Order: o.ID, EventName: o.Event,
		Total:      pricing.Money{Amount: o.Amounts.Total, Currency: o.Amounts.Currency},
		TicketsURL: strings.TrimRight(cmp.Or(n.core.cfg.Identity.Auth.BaseURL, "http://localhost:8080"), "/") + "/tickets"}
	if ev, _, ok := n.core.Catalog.Event(o.Event); ok {
		c.EventName = ev.Name
	}
	for _, t := range list {
		c.Places = append(c.Places, notification.Place{Seat: t.Seat, Zone: t.Zone, Index: t.Index})
	}
	return n.notifier.Confirm(ctx, eventID, notification.Recipient{Email: a.Email, Name: a.DisplayName, Locale: a.Locale}, c)
}

func (n *notifying) handle(ctx context.Context, m jetstream.Msg) {
	ev, err := cloudevents.Unmarshal(m.Data())
	if err != nil {
		n.log.Warn("order event dropped: not a CloudEvent", "subject", m.Subject(), "err", err)
		_ = m.Term()
		return
	}
	if ev.Type == fulfilledType {
		err = n.confirm(ctx, ev.ID, ev.Subject)
	}
	if err != nil && !errs.Is(errs.NotFound, err) {
		if ctx.Err() == nil {
			n.log.Warn("order confirmation not mailed; redelivered later", "order", ev.Subject, "err", err)
		}
		_ = m.NakWithDelay(5 * time.Second)
		return
	}
	_ = m.Ack()
}

// startNotifying starts mailing order confirmations on this node: the
// deliveries' ledger in the orders' PostgreSQL when the checkout has one,
// else in JetStream.
func (c *Core) startNotifying(ctx context.Context, sup *supervisor.Supervisor, saga *orders.Saga, tickets fulfillment.Store) error {
	log := c.log.With("component", "notification")
	if c.mailer == nil || c.accounts == nil {
		return errors.New("core: notifications need the identity service's mailer and accounts")
	}
	var ledger notification.Ledger
	if url := c.cfg.Checkout.PostgresURL; url != "" {
		pool, err := postgres.Open(ctx, postgres.Config{URL: url, ApplicationName: "ticketing-core-notifications", MaxConns: 4})
		if err != nil {
			return err
		}
		if _, err := sup.Add("notification-postgres", func(context.Context) error { pool.Close(); return nil }); err != nil {
			pool.Close()
			return err
		}
		if _, err := notificationpg.Migrate(ctx, pool, log); err != nil {
			return err
		}
		ledger = notificationpg.New(pool)
	} else if err := retried(ctx, log, "the notifications bucket", func(ctx context.Context) error {
		var err error
		ledger, err = notificationkv.Open(ctx, c.JS, notificationkv.Config{Replicas: c.cfg.Streams.Replicas})
		return err
	}); err != nil {
		return err
	}
	from := c.cfg.Identity.Auth.From
	if from == "" {
		from = "Ticketing <no-reply@ticketing.localhost>"
	}
	domain := "ticketing.localhost"
	if addr, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(addr.Address, "@"); ok {
			domain = d
		}
	}
	var cons jetstream.Consumer
	if err := retried(ctx, log, "the confirmations' consumer", func(ctx context.Context) error {
		var err error
		cons, err = c.JS.CreateOrUpdateConsumer(ctx, jsnames.Events, jetstream.ConsumerConfig{
			Durable: NotifyConsumer, FilterSubject: orders.SubjectPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: time.Minute, MaxAckPending: 1024, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		return err
	}); err != nil {
		return fmt.Errorf("core: the confirmations' consumer: %w", err)
	}
	n := &notifying{notifier: &notification.Notifier{Ledger: ledger, Mailer: c.mailer, From: from, Domain: domain},
		saga: saga, tickets: tickets, core: c, log: log}
	_, err := sup.Start(supervisor.Component{Name: "notify-confirmations", Run: func(ctx context.Context) error {
		return workEvents(ctx, cons, notifyWorkers, n.handle)
	}})
	return err
}
