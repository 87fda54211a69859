// Package natskv is the orders.Store of `ticketing dev`: one JetStream
// key-value bucket, each write one atomic batch (internal/kvtx) of the
// keys it touches, each at the revision it was read at:
//
//	o.<order id>              the order (its revision is Order.Version)
//	idem.<key>                the order an idempotency key made (kept 48 h)
//	hold.<hold id>            the order that claimed a hold ("" once released)
//	count.<account>.<event>   the tickets of the account's orders that count
//	acct.<account>.<order id> the account's orders (an index)
//	due.<order id>            when the saga acts on the order next
//	out.<event id>            an event not yet relayed to EVENTS (the outbox)
//
// Account ids appear hashed (hex SHA-256, 128 bits) in keys. Relay
// publishes the outbox to EVENTS and purges what it published.
package natskv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvtx"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/services/orders"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "orders".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// IdempotencyTTL is how long an idempotency key names its order.
	// Default and minimum 24h; default 48h.
	IdempotencyTTL time.Duration
	// Retries bounds how often a write read again after a conflict is
	// tried. Default 50.
	Retries int
	// Source is the CloudEvents source of the orders' events. Default
	// "/orders".
	Source string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "orders"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 48 * time.Hour
	}
	if c.Retries == 0 {
		c.Retries = 50
	}
	if c.Source == "" {
		c.Source = "/orders"
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "orders.natskv"
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.IdempotencyTTL < 24*time.Hour:
		return errs.Errorf(op, errs.Invalid, "idempotency keys must be kept at least 24h, not %v", c.IdempotencyTTL)
	case c.Retries < 1:
		return errs.Errorf(op, errs.Invalid, "retries must be at least 1")
	}
	return nil
}

// MaxValueSize bounds a value: an order with the most holds, lines and
// history fits.
const MaxValueSize = 256 << 10

// KeyValueConfig is the bucket's configuration.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:         c.Bucket,
		Description:    "orders, their idempotency keys, hold claims, purchase counts and outbox",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		MaxValueSize:   MaxValueSize,
		LimitMarkerTTL: time.Second, // per-key TTLs (idempotency keys, done due entries)
	}
}

// Store is an orders.Store on a key-value bucket. Safe for concurrent use,
// also by several processes on one bucket.
type Store struct {
	kv  jetstream.KeyValue
	js  jetstream.JetStream
	nc  *nats.Conn
	cfg Config
	due *dueIndex
}

var _ orders.Store = (*Store)(nil)

// Open creates or updates the bucket, allows atomic batches on it and
// returns a store on it. nc is the connection transactions are committed
// over (js's).
func Open(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, c Config) (*Store, error) {
	const op = "orders.natskv.open"
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	if err := kvtx.Enable(ctx, js, kv); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	return &Store{kv: kv, js: js, nc: nc, cfg: c, due: newDueIndex(kv)}, nil
}

// Bucket is the store's bucket.
func (s *Store) Bucket() jetstream.KeyValue { return s.kv }

func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// keySafe maps an id into a KV key token: ids of orders, holds and events
// are made of key-safe characters already; anything else is hashed.
func keySafe(id string) string {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "h" + hashed(id)
		}
	}
	if id == "" {
		return "h" + hashed(id)
	}
	return id
}

func orderKey(id string) string             { return "o." + keySafe(id) }
func idemKey(k string) string               { return "idem." + hashed(k) }
func holdKey(id string) string              { return "hold." + keySafe(id) }
func countKey(account, event string) string { return "count." + hashed(account) + "." + keySafe(event) }
func acctKey(account, id string) string     { return "acct." + hashed(account) + "." + keySafe(id) }
func dueKey(id string) string               { return "due." + keySafe(id) }

// count is the value of a count key.
type count struct {
	Tickets int `json:"tickets"`
}

// get reads key: its value and revision, or revision 0 when it does not
// exist.
func (s *Store) get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, errs.E("orders.natskv", errs.Unavailable, err)
	}
	return e.Value(), e.Revision(), nil
}

// Create implements orders.Store.
func (s *Store) Create(ctx context.Context, o orders.Order, limit int) (orders.Order, bool, error) {
	const op = "orders.natskv.create"
	events := o.Events()
	for attempt := 0; attempt < s.cfg.Retries; attempt++ {
		if prev, ok, err := s.replay(ctx, o); ok || err != nil {
			return prev, false, err
		}
		tx := kvtx.New(s.kv)
		for _, h := range o.Holds {
			v, rev, err := s.get(ctx, holdKey(h.ID))
			if err != nil {
				return orders.Order{}, false, err
			}
			if len(v) > 0 {
				// Taken, unless by this request made concurrently.
				if prev, ok, err := s.replay(ctx, o); ok || err != nil {
					return prev, false, err
				}
				return orders.Order{}, false, errs.Errorf(op, errs.Conflict, "hold %s is in another order", h.ID).WithReason(orders.ReasonHoldTaken)
			}
			tx.Put(holdKey(h.ID), []byte(o.ID), rev)
		}
		v, rev, err := s.get(ctx, countKey(o.Account, o.Event))
		if err != nil {
			return orders.Order{}, false, err
		}
		var c count
		if v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return orders.Order{}, false, errs.E(op, errs.Other, err)
			}
		}
		if limit > 0 && c.Tickets+o.Tickets > limit {
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			return orders.Order{}, false, errs.Errorf(op, errs.Conflict, "at most %d tickets per account for this event: %d already bought or in open orders", limit, c.Tickets).WithReason(orders.ReasonPurchaseLimit)
		}
		c.Tickets += o.Tickets
		cb, _ := json.Marshal(c)
		tx.Put(countKey(o.Account, o.Event), cb, rev)
		o.Version = 0
		ob, err := json.Marshal(o)
		if err != nil {
			return orders.Order{}, false, errs.E(op, errs.Other, err)
		}
		tx.Put(orderKey(o.ID), ob, 0)
		if o.IdemKey != "" {
			tx.PutTTL(idemKey(o.IdemKey), []byte(o.ID), 0, s.cfg.IdempotencyTTL)
		}
		tx.Put(acctKey(o.Account, o.ID), nil, 0)
		s.putDue(tx, &o)
		if err := s.putEvents(tx, events); err != nil {
			return orders.Order{}, false, errs.E(op, errs.Other, err)
		}
		_, err = tx.Commit(ctx, s.nc)
		if errs.Is(errs.Conflict, err) {
			continue
		}
		if err != nil {
			return orders.Order{}, false, err
		}
		o.Version = tx.Revision(orderKey(o.ID))
		return o, true, nil
	}
	return orders.Order{}, false, errs.Errorf(op, errs.Unavailable, "gave up after %d conflicting writes", s.cfg.Retries)
}

// replay returns the order o's idempotency key made, if any (ok), or
// errs.Mismatch when it was made by another request.
func (s *Store) replay(ctx context.Context, o orders.Order) (orders.Order, bool, error) {
	if o.IdemKey == "" {
		return orders.Order{}, false, nil
	}
	v, _, err := s.get(ctx, idemKey(o.IdemKey))
	if err != nil || v == nil {
		return orders.Order{}, false, err
	}
	prev, err := s.Get(ctx, string(v))
	if err != nil {
		return orders.Order{}, false, err
	}
	if prev.Fingerprint != o.Fingerprint {
		return orders.Order{}, false, errs.E("orders.natskv.create", errs.Mismatch, "the idempotency key was used with another request")
	}
	return prev, true, nil
}

// putDue writes the order's due entry: when the saga acts on it next, or
// a tombstone that expires when nothing is due.
func (s *Store) putDue(tx *kvtx.Tx, o *orders.Order) {
	if o.NextAt.IsZero() {
		tx.Blind(dueKey(o.ID), nil, time.Minute)
		return
	}
	tx.Blind(dueKey(o.ID), strconv.AppendInt(nil, o.NextAt.UnixNano(), 10), 0)
}

func (s *Store) putEvents(tx *kvtx.Tx, events []orders.Event) error {
	for _, e := range events {
		ce := orders.CloudEvent(e, s.cfg.Source)
		b, err := outbox.Encode(orders.Subject(e.Order), &ce, e.Data)
		if err != nil {
			return err
		}
		outbox.Put(tx, e.ID, b)
	}
	return nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	v, rev, err := s.get(ctx, orderKey(id))
	if err != nil {
		return orders.Order{}, err
	}
	if v == nil {
		return orders.Order{}, errs.Errorf("orders.natskv.get", errs.NotFound, "no order %s", id)
	}
	var o orders.Order
	if err := json.Unmarshal(v, &o); err != nil {
		return orders.Order{}, errs.E("orders.natskv.get", errs.Other, err)
	}
	o.Version = rev
	return o, nil
}

// Update implements orders.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*orders.Order) error) (orders.Order, error) {
	const op = "orders.natskv.update"
	for attempt := 0; attempt < s.cfg.Retries; attempt++ {
		o, err := s.Get(ctx, id)
		if err != nil {
			return orders.Order{}, err
		}
		counted := o.State.Counts()
		rev := o.Version
		o.Version = 0
		read, err := json.Marshal(o)
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Other, err)
		}
		if err := fn(&o); err != nil {
			return orders.Order{}, err
		}
		events := o.Events()
		o.Version = 0
		ob, err := json.Marshal(o)
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Other, err)
		}
		if len(events) == 0 && bytes.Equal(ob, read) {
			// Nothing changed (a step another node did, a payment
			// event applied again): nothing to write.
			o.Version = rev
			return o, nil
		}
		tx := kvtx.New(s.kv)
		if counted && !o.State.Counts() {
			// The order no longer counts: its tickets and holds are free
			// for other orders.
			v, crev, err := s.get(ctx, countKey(o.Account, o.Event))
			if err != nil {
				return orders.Order{}, err
			}
			var c count
			if v != nil {
				if err := json.Unmarshal(v, &c); err != nil {
					return orders.Order{}, errs.E(op, errs.Other, err)
				}
			}
			c.Tickets = max(0, c.Tickets-o.Tickets)
			cb, _ := json.Marshal(c)
			tx.Put(countKey(o.Account, o.Event), cb, crev)
			for _, h := range o.Holds {
				// Only this order writes a claim it holds: no check.
				tx.Blind(holdKey(h.ID), nil, 0)
			}
		} else if !counted && o.State.Counts() {
			// A late payment: the order counts again. The limit is not
			// checked: the money is taken; the saga decides.
			v, crev, err := s.get(ctx, countKey(o.Account, o.Event))
			if err != nil {
				return orders.Order{}, err
			}
			var c count
			if v != nil {
				if err := json.Unmarshal(v, &c); err != nil {
					return orders.Order{}, errs.E(op, errs.Other, err)
				}
			}
			c.Tickets += o.Tickets
			cb, _ := json.Marshal(c)
			tx.Put(countKey(o.Account, o.Event), cb, crev)
			for _, h := range o.Holds {
				claim, hrev, err := s.get(ctx, holdKey(h.ID))
				if err != nil {
					return orders.Order{}, err
				}
				if len(claim) == 0 {
					tx.Put(holdKey(h.ID), []byte(o.ID), hrev)
				}
			}
		}
		tx.Put(orderKey(o.ID), ob, rev)
		s.putDue(tx, &o)
		if err := s.putEvents(tx, events); err != nil {
			return orders.Order{}, errs.E(op, errs.Other, err)
		}
		_, err = tx.Commit(ctx, s.nc)
		if errs.Is(errs.Conflict, err) {
			continue
		}
		if err != nil {
			return orders.Order{}, err
		}
		o.Version = tx.Revision(orderKey(o.ID))
		return o, nil
	}
	return orders.Order{}, errs.Errorf(op, errs.Unavailable, "gave up after %d conflicting writes", s.cfg.Retries)
}

// ByAccount implements orders.Store.
func (s *Store) ByAccount(ctx context.Context, account, after string, limit int) ([]orders.Order, error) {
	const op = "orders.natskv.by_account"
	limit = min(max(limit, 1), 100)
	lister, err := s.kv.ListKeysFiltered(ctx, "acct."+hashed(account)+".*")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, errs.E(op, errs.Unavailable, err)
	}
	var all []orders.Order
	for k := range lister.Keys() {
		id := k[strings.LastIndexByte(k, '.')+1:]
		o, err := s.Get(ctx, id)
		if errs.Is(errs.NotFound, err) {
			continue
		}
		if err != nil {
			_ = lister.Stop()
			return nil, err
		}
		if o.Account == account {
			all = append(all, o)
		}
	}
	slices.SortFunc(all, func(a, b orders.Order) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if after != "" {
		i := slices.IndexFunc(all, func(o orders.Order) bool { return o.ID == after })
		all = all[i+1:] // -1 + 1: an unknown cursor starts at the top
	}
	return all[:min(limit, len(all))], nil
}

// Due implements orders.Store from an index the store keeps of the due
// entries (a watch on due.>, started by the first call).
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due.list(ctx, now, limit)
}

// Close stops the due index's watch.
func (s *Store) Close() { s.due.stop() }
