package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/internal/outbox/pgrelay"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/supervisor"
	invapi "github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	orderskv "github.com/ticketing/ticketing/services/orders/natskv"
	orderspg "github.com/ticketing/ticketing/services/orders/postgres"
	"github.com/ticketing/ticketing/services/payment"
	paymentapi "github.com/ticketing/ticketing/services/payment/natsapi"
	"github.com/ticketing/ticketing/services/payment/natsevents"
	"github.com/ticketing/ticketing/services/payment/process"
	"github.com/ticketing/ticketing/services/pricing"
	pricingevents "github.com/ticketing/ticketing/services/pricing/natsevents"
	pricingkv "github.com/ticketing/ticketing/services/pricing/natskv"
	pricingpg "github.com/ticketing/ticketing/services/pricing/postgres"
)

// CheckoutConfig configures the checkout: prices, orders and their saga,
// and, in development, the payment service inside the core process.
type CheckoutConfig struct {
	// PostgresURL keeps orders (the system of record, with their outbox)
	// and prices in PostgreSQL; empty: JetStream key-value buckets.
	PostgresURL string
	// DefaultLimit is the tickets one account may buy of an event that
	// sets no limit. Default 8.
	DefaultLimit int
	// SagaTick is how often the saga looks for due orders. Default 200ms.
	SagaTick time.Duration
	// RepriceTick is how often dynamic pricing looks at the demand of the
	// events that have it on. Default 10s.
	RepriceTick time.Duration
	// Payment, when set, runs the payment service in this process
	// (ticketing dev); otherwise it runs as `ticketing payment`.
	Payment *process.Config
	// Tickets, when set, keeps issued tickets and check-ins in ScyllaDB
	// (its keyspace created and migrated at start); nil: the core's
	// JetStream.
	Tickets *cql.Config
}

// Defaults fills zero fields.
func (c *CheckoutConfig) Defaults() {
	if c.DefaultLimit == 0 {
		c.DefaultLimit = 8
	}
	if c.SagaTick == 0 {
		c.SagaTick = 200 * time.Millisecond
	}
	if c.RepriceTick == 0 {
		c.RepriceTick = 10 * time.Second
	}
}

// Validate checks the config after Defaults.
func (c *CheckoutConfig) Validate() error {
	if c.DefaultLimit < 1 {
		return errors.New("core: the default purchase limit must be at least 1")
	}
	if c.Tickets != nil {
		t := *c.Tickets
		t.Defaults()
		if err := t.Validate(); err != nil {
			return fmt.Errorf("core: the tickets' CQL store: %w", err)
		}
	}
	if c.Payment != nil {
		p := *c.Payment
		p.Defaults()
		return p.Validate()
	}
	return nil
}

// DemoPrices are price lists and vouchers of demo data
// (conf/demo/pricing.json).
type DemoPrices struct {
	Rules    []pricing.Rules   `json:"rules"`
	Vouchers []pricing.Voucher `json:"vouchers"`
}

// loadDemoPrices writes the demo price lists of events that have none,
// and the demo vouchers that do not exist.
func loadDemoPrices(ctx context.Context, store pricing.Store, d *DemoPrices) error {
	for _, r := range d.Rules {
		if _, err := store.Rules(ctx, r.Event); !errs.Is(errs.NotFound, err) {
			continue
		}
		if err := store.PutRules(ctx, r); err != nil && !errs.Is(errs.Conflict, err) {
			return fmt.Errorf("demo prices of %s: %w", r.Event, err)
		}
	}
	for _, v := range d.Vouchers {
		if _, err := store.Voucher(ctx, v.Code); !errs.Is(errs.NotFound, err) {
			continue
		}
		if err := store.PutVoucher(ctx, v); err != nil {
			return fmt.Errorf("demo voucher %s: %w", v.Code, err)
		}
	}
	return nil
}

// retried runs f until it succeeds or ctx ends, each attempt bounded to
// 5 s: a request sent while a cluster elects its meta leader, or while
// other nodes create the same resources, may go unanswered (as
// ensureStreams does).
func retried(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) error {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if attempt%4 == 0 {
			log.Warn("not ready yet; retrying", "what", what, "attempt", attempt, "err", err)
		}
		if !pause.For(ctx, 250*time.Millisecond) {
			return fmt.Errorf("core: %s: %w (last error: %v)", what, ctx.Err(), err)
		}
	}
}

// SagaLease is the lease of the node that runs the saga's timers, the
// outbox relay and the payment events' consumer.
const SagaLease = "orders-saga"

// checkout is the core's checkout: what startCheckout made.
type checkout struct {
	saga     *orders.Saga
	repricer *repricer
	relay    func(ctx context.Context) error
	payments jetstream.Consumer
}

// startCheckout starts prices, orders, the orders service and the saga's
// leader; with CheckoutConfig.Payment, the payment service first.
func (c *Core) startCheckout(ctx context.Context, sup *supervisor.Supervisor) error {
	cfg := c.cfg.Checkout
	log := c.log.With("component", "checkout")
	if cfg.Payment != nil {
		pc := *cfg.Payment
		pc.Node = c.cfg.Node.Name
		p, err := process.Start(ctx, pc, c.NC, c.JS, sup, c.log)
		if err != nil {
			return fmt.Errorf("core: payment service: %w", err)
		}
		c.Payment = p
	}
	var (
		prices pricing.Store
		store  orders.Store
		co     checkout
		err    error
	)
	if cfg.PostgresURL != "" {
		pool, err := postgres.Open(ctx, postgres.Config{URL: cfg.PostgresURL, ApplicationName: "ticketing-core-orders"})
		if err != nil {
			return err
		}
		if _, err := sup.Add("orders-postgres", func(context.Context) error { pool.Close(); return nil }); err != nil {
			return err
		}
		if _, err := pricingpg.Migrate(ctx, pool, log); err != nil {
			return err
		}
		if _, err := orderspg.Migrate(ctx, pool, log); err != nil {
			return err
		}
		prices = pricingpg.New(pool)
		pg, err := orderspg.New(pool, orderspg.Config{Source: "/core/" + c.cfg.Node.Name + "/orders", Log: log})
		if err != nil {
			return err
		}
		if _, err := sup.Add("orders-notifier", func(context.Context) error { pg.Close(); return nil }); err != nil {
			return err
		}
		store = pg
		rc := orderspg.RelayConfig()
		rc.Log = log
		relay, err := pgrelay.New(pool, c.JS, rc)
		if err != nil {
			return err
		}
		co.relay = relay.Run
	} else {
		var kv *orderskv.Store
		if err := retried(ctx, log, "the pricing and orders buckets", func(ctx context.Context) error {
			var err error
			if prices, err = pricingkv.Open(ctx, c.JS, pricingkv.Config{Replicas: c.cfg.Streams.Replicas}); err != nil {
				return err
			}
			kv, err = orderskv.Open(ctx, c.JS, c.NC, orderskv.Config{Replicas: c.cfg.Streams.Replicas, Source: "/core/" + c.cfg.Node.Name + "/orders"})
			return err
		}); err != nil {
			return err
		}
		if _, err := sup.Add("orders-kv", func(context.Context) error { kv.Close(); return nil }); err != nil {
			return err
		}
		store = kv
		relay := &orderskv.Relay{Store: kv, Log: log}
		co.relay = relay.Run
	}
	if c.cfg.DemoPrices != nil {
		if err := loadDemoPrices(ctx, prices, c.cfg.DemoPrices); err != nil {
			return err
		}
	}
	pricingPub, err := pricingevents.New(c.NC, pricingevents.Config{Source: "/core/" + c.cfg.Node.Name + "/pricing"})
	if err != nil {
		return err
	}
	inv := &invapi.Client{NC: c.NC, Timeout: 5 * time.Second, AttemptTimeout: 2 * time.Second}
	co.saga = &orders.Saga{Store: store, Inventory: inv, Payments: &paymentapi.Client{NC: c.NC}, Extras: prices, Log: log}
	c.Checkout = &orders.Checkout{Saga: co.saga, Holds: inv, Catalog: c.Catalog,
		Prices: &pricing.Service{Store: prices, Events: pricingPub}, DefaultLimit: cfg.DefaultLimit}
	co.repricer = &repricer{catalog: c.Catalog, inv: inv, prices: c.Checkout.Prices, log: log}
	svc, err := ordersapi.Serve(c.NC, ordersapi.Server{Checkout: c.Checkout})
	if err != nil {
		return err
	}
	if _, err := sup.Add("orders-service", func(context.Context) error { return svc.Stop() }); err != nil {
		return err
	}
	if err := c.startTickets(ctx, sup, co.saga); err != nil {
		return err
	}
	if err := retried(ctx, log, "the saga's payment consumer", func(ctx context.Context) error {
		var err error
		co.payments, err = c.JS.CreateOrUpdateConsumer(ctx, jsnames.Events, jetstream.ConsumerConfig{
			Durable: "orders-saga-payments", FilterSubject: natsevents.SubjectPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxAckPending: 1024, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		return err
	}); err != nil {
		return fmt.Errorf("core: the saga's payment consumer: %w", err)
	}
	_, err = sup.Start(supervisor.Component{Name: "orders-saga", Run: func(ctx context.Context) error {
		lease.Lead(ctx, c.Streams.Leases, SagaLease, c.cfg.Node.Name, c.cfg.Streams.LeaseTTL, log, func(ctx context.Context, _ *lease.Lease) {
			co.lead(ctx, cfg, log)
		})
		return nil
	}})
	return err
}

// lead runs the saga's leader's work: the outbox relay, the payment
// events' consumer, dynamic pricing, the quotes' purge and the due
// orders' timer.
func (co *checkout) lead(ctx context.Context, cfg CheckoutConfig, log interface {
	Warn(string, ...any)
}) {
	done := make(chan struct{}, 4)
	go func() { _ = co.relay(ctx); done <- struct{}{} }()
	go func() { co.consumePayments(ctx, log); done <- struct{}{} }()
	go func() { co.repricer.run(ctx, cfg.RepriceTick); done <- struct{}{} }()
	go func() { purgeQuotes(ctx, co.repricer.prices.Store, log); done <- struct{}{} }()
	co.saga.Run(ctx, cfg.SagaTick)
	for range 4 {
		<-done
	}
}

// purgeQuotes removes, at once and then every hour, the quotes that
// expired pricing.QuoteRetention ago: every quote asked is stored.
func purgeQuotes(ctx context.Context, store pricing.Store, log interface{ Warn(string, ...any) }) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if _, err := store.PurgeQuotes(ctx, time.Now().Add(-pricing.QuoteRetention)); err != nil && ctx.Err() == nil {
			log.Warn("quotes not purged", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// consumePayments applies the payment service's events to their orders
// (a capture a webhook reported, a 3-D Secure challenge that failed).
func (co *checkout) consumePayments(ctx context.Context, log interface{ Warn(string, ...any) }) {
	it, err := co.payments.Messages()
	if err != nil {
		log.Warn("payment events not consumed", "err", err)
		return
	}
	go func() { <-ctx.Done(); it.Stop() }()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				log.Warn("payment events consumer stopped", "err", err)
			}
			return
		}
		ev, err := cloudevents.Unmarshal(m.Data())
		var p payment.Payment
		if err == nil {
			err = json.Unmarshal(ev.Data, &p)
		}
		if err != nil {
			log.Warn("payment event dropped: not a payment", "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		res := paymentapi.Result(p)
		switch res.Status {
		case orders.PaymentSucceeded, orders.PaymentDeclined, orders.PaymentRequiresAction:
			if _, err := co.saga.OnPayment(ctx, p.OrderID, res, "event"); err != nil && !errs.Is(errs.NotFound, err) {
				log.Warn("payment event not applied; redelivered later", "order", p.OrderID, "err", err)
				_ = m.NakWithDelay(time.Second)
				continue
			}
		}
		_ = m.Ack()
	}
}
