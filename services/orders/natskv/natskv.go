// Package natskv is the orders.Store of `ticketing dev`: one JetStream
// key-value bucket.
//
//	o.<order id>              the order (its revision is Order.Version), with its outbox
//	idem.<key>                the order an idempotency key made (kept 48 h)
//	hold.<hold id>            the order that claimed a hold ("" once released)
//	count.<account>.<event>   the tickets of the account's orders that count
//	acct.<account>.<order id> the account's orders (an index)
//	relayed                   how far Relay got in the bucket's stream
//
// Account ids appear hashed (hex SHA-256, 128 bits) in keys.
//
// # Writes
//
// An update that leaves whether the order counts against the purchase
// limit as it was (a payment attempt, requires_action, paid, confirmed,
// fulfilled) writes the order's key alone: one publish, compare-and-set
// at the revision it read. A write that claims or releases holds and
// tickets (a create, an end that frees them, a late payment that takes
// them again) is one transaction (internal/kvtx) of the keys it touches,
// each at the revision it was read at, committed in an atomic batch with
// those of concurrent callers (kvtx.Group: the server's cost is a
// batch's, hardly its size's). An update that changes nothing writes
// nothing.
//
// # Outbox
//
// The events of a write travel in the order's value (field "outbox":
// their CloudEvents messages, outbox.Entry, exactly those of the
// PostgreSQL store): the entries of the write that made the revision,
// after those of earlier revisions that the writer does not know to be
// relayed. The bucket keeps one revision a key, so a revision the relay
// has not read when the next replaces it is gone from the stream; its
// entries are in the next. Relay reads every revision of o.> from the
// bucket's stream in stream order, publishes the entries each carries to
// EVENTS with the event id as Nats-Msg-Id, and records how far it got
// under the key relayed: where a restarted relay starts, and the floor
// below which writers know the entries relayed (a store watches the key;
// the relay of the same Store tells it at once). So an order's events
// reach EVENTS in the order of its transitions; an acknowledged write's
// events are not lost (a kill of the core loses no stored revision); a
// repeat (a carried entry the relay had published, what a restarted relay
// publishes again) is dropped by EVENTS' duplicate window. A repeat later
// than the window would take a relay that publishes for that long
// without its checkpoint advancing, or one that reads a revision as
// far behind the writes (minutes) and whose order is written again
// within moments.
//
// # Due orders
//
// Every write of o.<id> has the header Orders-Next-At (the order's
// NextAt, unix nanoseconds, 0 for none): Due lists from an index that
// reads those headers from the stream (headers only, not the orders).
//
// # Buckets written before
//
// Earlier versions kept the outbox in keys out.<event id> and NextAt in
// keys due.<order id>. Relay publishes out.> entries in stream order with
// the orders' (so before the later events of the same orders) and purges
// them once published. Open migrates due.> once: the order each live
// entry names is written again, the same value with its Orders-Next-At
// header, then due.> is purged. Nodes of both versions on one bucket are
// not supported.
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
	"sync"
	"sync/atomic"
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
// history fits, with the outbox entries it may carry.
const MaxValueSize = 256 << 10

// NextAtHeader is the header of every write of an order's key: its
// NextAt in unix nanoseconds, 0 when nothing is due.
const NextAtHeader = "Orders-Next-At"

// KeyValueConfig is the bucket's configuration.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:         c.Bucket,
		Description:    "orders with their outbox, idempotency keys, hold claims and purchase counts",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       c.Replicas,
		MaxValueSize:   MaxValueSize,
		LimitMarkerTTL: time.Second, // per-key TTLs (idempotency keys)
	}
}

// Store is an orders.Store on a key-value bucket. Safe for concurrent use,
// also by several processes on one bucket.
type Store struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	nc     *nats.Conn
	cfg    Config
	prefix string // of the bucket's subjects: "$KV.<bucket>."
	group  *kvtx.Group
	due    *dueIndex

	// floor is the stream sequence up to which the outboxes the orders
	// carry are known to be in EVENTS (Relay's progress).
	floor     atomic.Uint64
	stopFloor context.CancelFunc
	closeOnce sync.Once
}

var _ orders.Store = (*Store)(nil)

// Open creates or updates the bucket, allows atomic batches on it,
// migrates the due entries of an earlier version (package doc) and
// returns a store on it. nc is the connection transactions are committed
// over (js's). Close stops its watches.
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
	s := &Store{kv: kv, js: js, nc: nc, cfg: c, prefix: "$KV." + c.Bucket + ".", group: kvtx.NewGroup(kv, nc)}
	s.due = newDueIndex(js, "KV_"+c.Bucket, s.prefix)
	if err := s.migrateDue(ctx); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	if err := s.watchFloor(); err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	return s, nil
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

const (
	orderPrefix = "o."
	relayedKey  = "relayed"
	// Keys of earlier versions (package doc).
	legacyOutPrefix = "out."
	legacyDuePrefix = "due."
)

func orderKey(id string) string             { return orderPrefix + keySafe(id) }
func idemKey(k string) string               { return "idem." + hashed(k) }
func holdKey(id string) string              { return "hold." + keySafe(id) }
func countKey(account, event string) string { return "count." + hashed(account) + "." + keySafe(event) }
func acctKey(account, id string) string     { return "acct." + hashed(account) + "." + keySafe(id) }

// count is the value of a count key.
type count struct {
	Tickets int `json:"tickets"`
}

// record is an order as its key keeps it: the order's fields, then the
// outbox entries the revision carries.
type record struct {
	orders.Order
	Outbox []outbox.Entry `json:"outbox,omitempty"`
}

// carried is what the relay reads of a revision.
type carried struct {
	Outbox []outbox.Entry `json:"outbox"`
}

// encode makes the value of an order whose JSON is ob, carrying out: the
// encoding of record{order, out}, without encoding the order again.
func encode(ob []byte, out []outbox.Entry) ([]byte, error) {
	if len(out) == 0 {
		return ob, nil
	}
	eb, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, len(ob)+len(`,"outbox":`)+len(eb))
	v = append(v, ob[:len(ob)-1]...) // the order's closing brace
	v = append(v, `,"outbox":`...)
	v = append(v, eb...)
	return append(v, '}'), nil
}

// entries are the outbox entries of events.
func (s *Store) entries(events []orders.Event) ([]outbox.Entry, error) {
	out := make([]outbox.Entry, 0, len(events))
	for _, e := range events {
		ce := orders.CloudEvent(e, s.cfg.Source)
		entry, err := outbox.NewEntry(orders.Subject(e.Order), &ce, e.Data)
		if err != nil {
			return nil, err
		}
		out = append(out, entry)
	}
	return out, nil
}

// nextAt is the NextAtHeader of an order.
func nextAt(o *orders.Order) nats.Header {
	n := int64(0)
	if !o.NextAt.IsZero() {
		n = o.NextAt.UnixNano()
	}
	return nats.Header{NextAtHeader: []string{strconv.FormatInt(n, 10)}}
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
	out, err := s.entries(o.Events())
	if err != nil {
		return orders.Order{}, false, errs.E(op, errs.Other, err)
	}
	o.Version = 0
	ob, err := json.Marshal(o)
	if err != nil {
		return orders.Order{}, false, errs.E(op, errs.Other, err)
	}
	value, err := encode(ob, out)
	if err != nil {
		return orders.Order{}, false, errs.E(op, errs.Other, err)
	}
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
		tx.PutHeader(orderKey(o.ID), value, 0, nextAt(&o))
		if o.IdemKey != "" {
			tx.PutTTL(idemKey(o.IdemKey), []byte(o.ID), 0, s.cfg.IdempotencyTTL)
		}
		tx.Put(acctKey(o.Account, o.ID), nil, 0)
		err = s.group.Commit(ctx, tx)
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

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	r, err := s.read(ctx, id, false)
	return r.Order, err
}

// read reads an order, with the outbox its revision carries when out.
func (s *Store) read(ctx context.Context, id string, out bool) (record, error) {
	const op = "orders.natskv.get"
	v, rev, err := s.get(ctx, orderKey(id))
	if err != nil {
		return record{}, err
	}
	if v == nil {
		return record{}, errs.Errorf(op, errs.NotFound, "no order %s", id)
	}
	var r record
	if out {
		err = json.Unmarshal(v, &r)
	} else {
		err = json.Unmarshal(v, &r.Order)
	}
	if err != nil {
		return record{}, errs.E(op, errs.Other, err)
	}
	r.Version = rev
	return r, nil
}

// Update implements orders.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*orders.Order) error) (orders.Order, error) {
	const op = "orders.natskv.update"
	for attempt := 0; attempt < s.cfg.Retries; attempt++ {
		r, err := s.read(ctx, id, true)
		if err != nil {
			return orders.Order{}, err
		}
		o := r.Order
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
		// The revision read is replaced: what it carries and is not
		// known to be relayed goes on in this one, before this write's
		// own events.
		var out []outbox.Entry
		if rev > s.floor.Load() {
			out = r.Outbox
		}
		mine, err := s.entries(events)
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Other, err)
		}
		value, err := encode(ob, append(out, mine...))
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Other, err)
		}
		var stored uint64
		if counted == o.State.Counts() {
			stored, err = s.put(ctx, orderKey(id), value, rev, nextAt(&o))
		} else {
			stored, err = s.commitCounting(ctx, &o, counted, value, rev)
		}
		if errs.Is(errs.Conflict, err) {
			continue
		}
		if err != nil {
			return orders.Order{}, err
		}
		o.Version = stored
		return o, nil
	}
	return orders.Order{}, errs.Errorf(op, errs.Unavailable, "gave up after %d conflicting writes", s.cfg.Retries)
}

// put writes an order's key alone where it is still at revision rev, and
// returns the new revision; errs.Conflict (reason "revision") when it
// moved on.
func (s *Store) put(ctx context.Context, key string, value []byte, rev uint64, h nats.Header) (uint64, error) {
	const op = "orders.natskv.put"
	m := nats.NewMsg(s.prefix + key)
	for k, v := range h {
		m.Header[k] = v
	}
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	m.Data = value
	ack, err := s.js.PublishMsg(ctx, m)
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return 0, errs.E(op, errs.Conflict, err).WithReason("revision")
	case err != nil:
		return 0, errs.E(op, errs.Unavailable, err)
	}
	s.group.Saw(key, ack.Sequence)
	return ack.Sequence, nil
}

// commitCounting writes an order that stops or starts counting (counted
// is whether it did) in one batch with its count and its claims, and
// returns its revision.
func (s *Store) commitCounting(ctx context.Context, o *orders.Order, counted bool, value []byte, rev uint64) (uint64, error) {
	const op = "orders.natskv.update"
	v, crev, err := s.get(ctx, countKey(o.Account, o.Event))
	if err != nil {
		return 0, err
	}
	var c count
	if v != nil {
		if err := json.Unmarshal(v, &c); err != nil {
			return 0, errs.E(op, errs.Other, err)
		}
	}
	tx := kvtx.New(s.kv)
	if counted {
		// The order no longer counts: its tickets and holds are free
		// for other orders.
		c.Tickets = max(0, c.Tickets-o.Tickets)
		for _, h := range o.Holds {
			// Only this order writes a claim it holds: no check.
			tx.Blind(holdKey(h.ID), nil, 0)
		}
	} else {
		// A late payment: the order counts again. The limit is not
		// checked: the money is taken; the saga decides.
		c.Tickets += o.Tickets
		for _, h := range o.Holds {
			claim, hrev, err := s.get(ctx, holdKey(h.ID))
			if err != nil {
				return 0, err
			}
			if len(claim) == 0 {
				tx.Put(holdKey(h.ID), []byte(o.ID), hrev)
			}
		}
	}
	cb, _ := json.Marshal(c)
	tx.Put(countKey(o.Account, o.Event), cb, crev)
	tx.PutHeader(orderKey(o.ID), value, rev, nextAt(o))
	if err := s.group.Commit(ctx, tx); err != nil {
		return 0, err
	}
	return tx.Revision(orderKey(o.ID)), nil
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

// Due implements orders.Store from an index the store keeps of the
// orders' Orders-Next-At headers (read from the bucket's stream from the
// first call on).
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return s.due.list(ctx, now, limit)
}

// Close stops the store's watches.
func (s *Store) Close() {
	s.closeOnce.Do(func() {
		s.due.stop()
		s.stopFloor()
	})
}

// relayedUpTo records that the outboxes of the revisions up to seq are
// in EVENTS.
func (s *Store) relayedUpTo(seq uint64) {
	for {
		f := s.floor.Load()
		if seq <= f || s.floor.CompareAndSwap(f, seq) {
			return
		}
	}
}

// watchFloor follows the relay's checkpoint (the key relayed), written
// by whichever node relays.
func (s *Store) watchFloor() error {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.kv.Watch(ctx, relayedKey)
	if err != nil {
		cancel()
		return err
	}
	s.stopFloor = cancel
	go func() {
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			if n, err := strconv.ParseUint(string(e.Value()), 10, 64); err == nil {
				s.relayedUpTo(n)
			}
		}
	}()
	return nil
}

// migrateDue moves the due entries of an earlier version into the
// Orders-Next-At headers of their orders (package doc).
func (s *Store) migrateDue(ctx context.Context) error {
	lister, err := s.kv.ListKeysFiltered(ctx, legacyDuePrefix+">")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil
	}
	if err != nil {
		return err
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		v, _, err := s.get(ctx, k)
		if err != nil {
			return err
		}
		if len(v) == 0 {
			continue // nothing was due
		}
		id := strings.TrimPrefix(k, legacyDuePrefix)
		ov, rev, err := s.get(ctx, orderPrefix+id)
		if err != nil {
			return err
		}
		if ov == nil {
			continue
		}
		var o orders.Order
		if err := json.Unmarshal(ov, &o); err != nil {
			return fmt.Errorf("order %s: %w", id, err)
		}
		// The same value, with its header; a write since has one.
		if _, err := s.put(ctx, orderPrefix+id, ov, rev, nextAt(&o)); err != nil && !errs.Is(errs.Conflict, err) {
			return err
		}
	}
	st, err := s.js.Stream(ctx, "KV_"+s.cfg.Bucket)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSubject(s.prefix+legacyDuePrefix+">"))
}
