// Package natskv keeps the payments ledger (payment.Ledger) in JetStream
// key-value buckets, the embedded default of `ticketing dev`:
//
//	payments        payment.<order id>  the payment with its entries, JSON; its Version is the revision
//	payment-events  event.<event id>    a gateway event seen (SeenEvent), kept Config.EventRetention
//
// A payment and its entries are one value, so an update writes both or
// neither. Update is read-modify-write with KV Update on the revision read
// (KV Create for a new payment): of concurrent writers from one revision
// exactly one lands, and the others read again and call their function
// again, which finds the entry it wanted to append already there when it
// is the same movement. UpdateFrom, from a copy at the stored revision,
// writes without reading first. SeenEvent is KV Create: of concurrent calls with
// one id exactly one creates the key. The events bucket's age limit
// forgets an id after EventRetention.
//
// List reads every payment key, sorts them and reads the payments after
// the cursor one by one until the page is full: fine for a development
// ledger, not for millions of payments.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/payment"
)

// Config configures the store.
type Config struct {
	// Bucket holds the payments. Default "payments".
	Bucket string
	// EventsBucket holds the gateway event ids seen. Default
	// "payment-events".
	EventsBucket string
	// EventRetention is how long an event id is remembered: longer than
	// the gateway retries a webhook. Default 8 days; at least 7 days.
	EventRetention time.Duration
	// Replicas of the buckets: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// Now is the clock of payments' Created and Updated. Default
	// time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "payments"
	}
	if c.EventsBucket == "" {
		c.EventsBucket = "payment-events"
	}
	if c.EventRetention == 0 {
		c.EventRetention = 8 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "payment.natskv"
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.EventRetention < 7*24*time.Hour:
		return errs.Errorf(op, errs.Invalid, "event retention %v is below 7 days", c.EventRetention)
	case c.Bucket == c.EventsBucket:
		return errs.E(op, errs.Invalid, "the events bucket must be another bucket")
	}
	return nil
}

// MaxValueSize bounds a value in the payments bucket: a payment of
// payment.MaxEntries entries with the longest ids, and the longest
// redirect URL and decline, is under 100 KiB.
const MaxValueSize = 256 << 10

// KeyValueConfigs are the buckets' configurations, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfigs() []jetstream.KeyValueConfig {
	c.Defaults()
	return []jetstream.KeyValueConfig{{
		Bucket:       c.Bucket,
		Description:  "payments: one order's payment and its ledger entries",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: MaxValueSize,
	}, {
		Bucket:       c.EventsBucket,
		Description:  "payment gateway events seen, for webhook de-duplication",
		History:      1,
		TTL:          c.EventRetention,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 1024,
	}}
}

// Store is a payment.Ledger on key-value buckets. Safe for concurrent use,
// also by several processes on the same buckets.
type Store struct {
	kv, events jetstream.KeyValue
	nc         *nats.Conn // for reads from the bucket's leader (kvget); nil: none
	cfg        Config
}

var _ payment.Ledger = (*Store)(nil)

// Open creates or updates the buckets and returns a store on them.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var kvs []jetstream.KeyValue
	for _, kc := range c.KeyValueConfigs() {
		kv, err := js.CreateOrUpdateKeyValue(ctx, kc)
		if err != nil {
			return nil, errs.E("payment.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", kc.Bucket, err))
		}
		kvs = append(kvs, kv)
	}
	return &Store{kv: kvs[0], events: kvs[1], nc: js.Conn(), cfg: c}, nil
}

func paymentKey(orderID string) string { return "payment." + orderID }

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "payments ledger unavailable", err)
}

func decode(e jetstream.KeyValueEntry) (payment.Payment, error) {
	var p payment.Payment
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return p, errs.E(errs.Other, fmt.Errorf("%s: %w", e.Key(), err))
	}
	p.Version = int64(e.Revision())
	return p, nil
}

// read returns the payment of orderID, from the bucket's leader when
// leader is set (after a conflict, when a replica may lag behind).
func (s *Store) read(ctx context.Context, orderID string, leader bool) (payment.Payment, bool, error) {
	var (
		e   jetstream.KeyValueEntry
		err error
	)
	if leader && s.nc != nil {
		e, err = kvget.LeaderEntry(ctx, s.nc, s.kv, paymentKey(orderID))
	} else {
		e, err = kvget.GetEntry(ctx, s.nc, s.kv, paymentKey(orderID))
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return payment.Payment{}, false, nil
	}
	if err != nil {
		return payment.Payment{}, false, err
	}
	p, err := decode(e)
	return p, err == nil, err
}

// Get implements payment.Ledger.
func (s *Store) Get(ctx context.Context, orderID string) (payment.Payment, error) {
	const op = "payment.get"
	if !payment.ValidOrderID(orderID) {
		return payment.Payment{}, errs.E(op, errs.NotFound, "no such payment")
	}
	p, ok, err := s.read(ctx, orderID, false)
	switch {
	case isDecode(err):
		return payment.Payment{}, errs.E(op, err)
	case err != nil:
		return payment.Payment{}, unavailable(op, err)
	case !ok:
		return payment.Payment{}, errs.E(op, errs.NotFound, "no such payment")
	}
	return p, nil
}

// isDecode reports whether a read failed on the value (an *errs.Error of
// decode), not on the bucket.
func isDecode(err error) bool {
	var e *errs.Error
	return errors.As(err, &e)
}

// maxAttempts bounds Update's rounds: each lost round means another
// writer landed, so 50 concurrent writers need at most 50.
const maxAttempts = 200

// Update implements payment.Ledger.
func (s *Store) Update(ctx context.Context, orderID string, fn func(p *payment.Payment, exists bool) error) (payment.Payment, error) {
	return s.update(ctx, orderID, nil, fn)
}

// UpdateFrom implements payment.Ledger.
func (s *Store) UpdateFrom(ctx context.Context, from payment.Payment, fn func(p *payment.Payment, exists bool) error) (payment.Payment, error) {
	return s.update(ctx, from.OrderID, &from, fn)
}

// update is Update, its first round on from instead of a read when from
// is set (UpdateFrom).
func (s *Store) update(ctx context.Context, orderID string, from *payment.Payment, fn func(p *payment.Payment, exists bool) error) (payment.Payment, error) {
	const op = "payment.update"
	if !payment.ValidOrderID(orderID) {
		return payment.Payment{}, errs.E(op, errs.Invalid, "order id must be 1-64 letters, digits, '_' or '-'")
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 2 {
			if err := backoff(ctx, attempt); err != nil {
				return payment.Payment{}, unavailable(op, err)
			}
		}
		var (
			before payment.Payment
			exists bool
			err    error
		)
		held := from != nil
		if held {
			before, exists, from = *from, from.Version > 0, nil
		} else if before, exists, err = s.read(ctx, orderID, attempt > 0); err != nil {
			if isDecode(err) {
				return payment.Payment{}, errs.E(op, err)
			}
			return payment.Payment{}, unavailable(op, err)
		}
		if !exists {
			before = payment.Payment{OrderID: orderID}
		}
		after := before.Clone()
		err = fn(&after, exists)
		p, changed := payment.Payment{}, false
		if err == nil {
			p, _, changed, err = payment.Prepare(before, exists, after, s.cfg.Now())
		}
		switch {
		case held && (err != nil || !changed):
			continue // the caller's copy may be stale: read and judge again
		case err != nil:
			return payment.Payment{}, err
		case !changed && exists:
			return before, nil
		case !changed:
			return payment.Payment{}, errs.E(op, errs.NotFound, "no such payment")
		}
		p.Version = 0
		b, _ := json.Marshal(p)
		var rev uint64
		if exists {
			rev, err = s.kv.Update(ctx, paymentKey(orderID), b, uint64(before.Version))
		} else {
			rev, err = s.kv.Create(ctx, paymentKey(orderID), b)
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue // another writer landed first: read again
		}
		if err != nil {
			return payment.Payment{}, unavailable(op, err)
		}
		p.Version = int64(rev)
		return p, nil
	}
	return payment.Payment{}, errs.E(op, errs.Unavailable, "the payment is contended; try again")
}

// backoff waits a little, more after more lost rounds, so that writers
// contending for one payment spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 20)) * int64(time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SeenEvent implements payment.Ledger.
func (s *Store) SeenEvent(ctx context.Context, eventID string) (bool, error) {
	const op = "payment.seen_event"
	if !payment.ValidGatewayID(eventID) {
		return false, errs.E(op, errs.Invalid, "event id must be 1-255 letters, digits, '_' or '-'")
	}
	_, err := s.events.Create(ctx, "event."+eventID, []byte(s.cfg.Now().UTC().Format(time.RFC3339Nano)))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, unavailable(op, err)
	}
	return true, nil
}

// List implements payment.Ledger.
func (s *Store) List(ctx context.Context, f payment.ListFilter) (payment.Page, error) {
	const op = "payment.list"
	f, err := f.Normalize()
	if err != nil {
		return payment.Page{}, err
	}
	lister, err := s.kv.ListKeysFiltered(ctx, "payment.*")
	if err != nil {
		return payment.Page{}, unavailable(op, err)
	}
	var ids []string
	for k := range lister.Keys() {
		if id := strings.TrimPrefix(k, "payment."); id > f.After {
			ids = append(ids, id)
		}
	}
	if err := ctx.Err(); err != nil {
		return payment.Page{}, unavailable(op, err)
	}
	slices.Sort(ids)
	var out []payment.Payment
	for _, id := range ids {
		p, ok, err := s.read(ctx, id, false)
		if err != nil {
			if isDecode(err) {
				return payment.Page{}, errs.E(op, err)
			}
			return payment.Page{}, unavailable(op, err)
		}
		if !ok || !f.Match(p) {
			continue
		}
		if len(out) == f.Limit {
			return payment.Page{Payments: out, Next: out[len(out)-1].OrderID}, nil
		}
		out = append(out, p)
	}
	return payment.Page{Payments: out}, nil
}
