// Package natskv stores issued tickets in a JetStream key-value bucket, the
// embedded default of `ticketing dev`. Keys:
//
//	slot.<event>.<slot>  the ticket, JSON: one key per slot (Ticket.Slot)
//	ticket.<id>          where ticket <id> is: {event, slot}
//	order.<order>.<id>   the same, listed per order
//	holder.<h>.<id>      the same, listed per holder (h: the account id's
//	                     hex SHA-256, 128 bits)
//	in.<event>.<id>      the ticket's check-in: one per ticket (KV Create)
//	rev.<event>.<id>     the ticket's revocation: the first one stays (KV Create)
//
// The slot key is written with KV Create, a compare-and-set on "no such
// key": of any number of concurrent issues of a slot exactly one stores its
// ticket. Issue first claims the ticket id (KV Create of ticket.<id>), then
// the slot, then adds the order and holder keys; a lost slot gives the id
// claim back. Readers trust the slot key only: ByID, ByOrder and ByHolder
// follow their pointers and check that the slot holds that ticket, so a
// pointer left behind by a process that died midway is never mistaken for
// a ticket. A retried Issue of the same ticket completes what a failed one
// left undone.
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/fulfillment"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "fulfillment-tickets".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// Now is the clock for IssuedAt. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "fulfillment-tickets"
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
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf("fulfillment.natskv", errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "issued tickets: one key per event slot, pointers by ticket id and order",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 16 << 10,
	}
}

// Store is a fulfillment.Store on a key-value bucket. Safe for concurrent
// use, also by several processes on one bucket.
type Store struct {
	kv  jetstream.KeyValue
	nc  *nats.Conn // for reads from the bucket's leader (kvget); nil: none
	cfg Config
}

var _ fulfillment.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("fulfillment.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Store{kv: kv, nc: js.Conn(), cfg: c}, nil
}

// New returns a store on an existing bucket.
func New(kv jetstream.KeyValue, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Store{kv: kv, cfg: c}, nil
}

// pointer is the value of ticket.<id> and order.<order>.<id>.
type pointer struct {
	EventID string `json:"event_id"`
	Slot    string `json:"slot"`
}

func slotKey(event, slot string) string { return "slot." + event + "." + slot }
func idKey(id string) string            { return "ticket." + id }
func orderKey(order, id string) string  { return "order." + order + "." + id }

// holderKey is the holder's index entry of ticket id: account ids appear
// hashed (hex SHA-256, 128 bits) in keys.
func holderKey(holder, id string) string {
	sum := sha256.Sum256([]byte(holder))
	return "holder." + hex.EncodeToString(sum[:16]) + "." + id
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "ticket store unavailable", err)
}

// Issue implements fulfillment.Store.
func (s *Store) Issue(ctx context.Context, t fulfillment.Ticket) (fulfillment.Ticket, error) {
	const op = "fulfillment.issue"
	t, err := fulfillment.Normalize(t, s.cfg.Now())
	if err != nil {
		return fulfillment.Ticket{}, errs.E(op, err)
	}
	ptr := pointer{EventID: t.EventID, Slot: t.Slot()}
	pb, _ := json.Marshal(ptr)

	// 1. The ticket id.
	var idRev uint64
	claimedID := false
	for attempt := 0; !claimedID; attempt++ {
		idRev, err = s.kv.Create(ctx, idKey(t.ID), pb)
		if err == nil {
			claimedID = true
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fulfillment.Ticket{}, unavailable(op, err)
		}
		var p pointer
		err := s.getJSON(ctx, idKey(t.ID), &p)
		if errs.Is(errs.NotFound, err) && attempt < 3 {
			continue // given back meanwhile
		}
		if err != nil && !errs.Is(errs.NotFound, err) {
			return fulfillment.Ticket{}, unavailable(op, err)
		}
		if p != ptr {
			return fulfillment.Ticket{}, fulfillment.IDTaken(op)
		}
		break // ours from an earlier attempt of this issue: go on
	}

	// 2. The slot: the decision.
	tb, _ := json.Marshal(t)
	_, err = s.kv.Create(ctx, slotKey(ptr.EventID, ptr.Slot), tb)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrKeyExists):
		var existing fulfillment.Ticket
		if err := s.getJSON(ctx, slotKey(ptr.EventID, ptr.Slot), &existing); err != nil {
			return fulfillment.Ticket{}, unavailable(op, err)
		}
		if !existing.Same(t) {
			if claimedID {
				// Give the id back unless someone changed it meanwhile.
				dc, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = s.kv.Delete(dc, idKey(t.ID), jetstream.LastRevision(idRev))
				cancel()
			}
			// Complete the winner's pointers in case its issue died
			// before writing them; they are idempotent.
			_ = s.pointers(ctx, existing, true)
			return existing, fulfillment.SlotTaken(op, existing)
		}
		t = existing // a retry of the issue that won
	default:
		// The write may have landed (a timeout): keep the id claim; a
		// retry finds out.
		return fulfillment.Ticket{}, unavailable(op, err)
	}

	// 3. The pointers (the id's too when this call did not claim it: a
	// retry may have lost it).
	if err := s.pointers(ctx, t, !claimedID); err != nil {
		return fulfillment.Ticket{}, unavailable(op, fmt.Errorf("ticket %s issued, order index not written: %w", t.ID, err))
	}
	return t, nil
}

// pointers writes t's order and holder keys, and its id key when withID,
// unless they exist.
func (s *Store) pointers(ctx context.Context, t fulfillment.Ticket, withID bool) error {
	pb, _ := json.Marshal(pointer{EventID: t.EventID, Slot: t.Slot()})
	keys := []string{orderKey(t.OrderID, t.ID), holderKey(t.Holder, t.ID)}
	if withID {
		keys = append(keys, idKey(t.ID))
	}
	for _, k := range keys {
		if _, err := s.kv.Create(ctx, k, pb); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
	return nil
}

// getJSON reads a key into v; a missing key is errs.NotFound.
//
// A key that a replica does not have yet is read from the bucket's leader:
// Issue reads a ticket id right after a Create said it exists, and in a
// cluster the replica that answers may lag (three lagging reads in a row
// made Issue refuse a free id as taken).
func (s *Store) getJSON(ctx context.Context, key string, v any) error {
	b, err := kvget.Get(ctx, s.nc, s.kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return errs.E(errs.NotFound, "no such ticket")
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

// follow reads the ticket a pointer names, checking that the slot holds
// ticket id; anything else is errs.NotFound.
func (s *Store) follow(ctx context.Context, pointerKey, id string) (fulfillment.Ticket, error) {
	var p pointer
	if err := s.getJSON(ctx, pointerKey, &p); err != nil {
		return fulfillment.Ticket{}, err
	}
	var t fulfillment.Ticket
	if err := s.getJSON(ctx, slotKey(p.EventID, p.Slot), &t); err != nil {
		return fulfillment.Ticket{}, err
	}
	if t.ID != id {
		return fulfillment.Ticket{}, errs.E(errs.NotFound, "no such ticket")
	}
	return t, nil
}

// ByID implements fulfillment.Store.
func (s *Store) ByID(ctx context.Context, id string) (fulfillment.Ticket, error) {
	const op = "fulfillment.by_id"
	if !fulfillment.ValidRef(id) {
		return fulfillment.Ticket{}, errs.E(op, errs.NotFound, "no such ticket")
	}
	t, err := s.follow(ctx, idKey(id), id)
	switch {
	case errs.Is(errs.NotFound, err):
		return fulfillment.Ticket{}, errs.E(op, err)
	case err != nil:
		return fulfillment.Ticket{}, unavailable(op, err)
	}
	return t, nil
}

// ByOrder implements fulfillment.Store.
func (s *Store) ByOrder(ctx context.Context, orderID string) ([]fulfillment.Ticket, error) {
	if !fulfillment.ValidRef(orderID) {
		return []fulfillment.Ticket{}, nil
	}
	return s.list(ctx, "fulfillment.by_order", orderKey(orderID, ""), fulfillment.MaxPerOrder,
		func(t fulfillment.Ticket) bool { return t.OrderID == orderID })
}

// ByHolder implements fulfillment.Store.
func (s *Store) ByHolder(ctx context.Context, holder string) ([]fulfillment.Ticket, error) {
	if !fulfillment.ValidRef(holder) {
		return []fulfillment.Ticket{}, nil
	}
	return s.list(ctx, "fulfillment.by_holder", holderKey(holder, ""), fulfillment.MaxPerHolder,
		func(t fulfillment.Ticket) bool { return t.Holder == holder })
}

// list follows the index entries under prefix (whose last token is the
// ticket id) to the tickets that pass keep, at most max, sorted by id.
func (s *Store) list(ctx context.Context, op, prefix string, max int, keep func(fulfillment.Ticket) bool) ([]fulfillment.Ticket, error) {
	out := []fulfillment.Ticket{}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lister, err := s.kv.ListKeysFiltered(lctx, prefix+"*")
	if err != nil {
		return nil, unavailable(op, err)
	}
	var keys []string
	for k := range lister.Keys() { // read to the end: the lister stops by itself
		keys = append(keys, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	slices.Sort(keys)
	for _, k := range keys {
		id := strings.TrimPrefix(k, prefix)
		t, err := s.follow(ctx, k, id)
		if errs.Is(errs.NotFound, err) {
			continue // a pointer whose issue lost or died
		}
		if err != nil {
			return nil, unavailable(op, err)
		}
		if !keep(t) {
			continue
		}
		out = append(out, t)
		if len(out) == max {
			break
		}
	}
	slices.SortFunc(out, func(a, b fulfillment.Ticket) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// checkInKey is a ticket's check-in: in.<event>.<ticket>.
func checkInKey(event, ticket string) string { return "in." + event + "." + ticket }

// CheckIn implements fulfillment.Store: KV Create of the ticket's
// check-in key decides.
func (s *Store) CheckIn(ctx context.Context, c fulfillment.CheckIn) (fulfillment.CheckIn, error) {
	const op = "fulfillment.check_in"
	c, err := fulfillment.NormalizeCheckIn(c)
	if err != nil {
		return fulfillment.CheckIn{}, errs.E(op, err)
	}
	b, _ := json.Marshal(c)
	key := checkInKey(c.EventID, c.TicketID)
	_, err = s.kv.Create(ctx, key, b)
	switch {
	case err == nil:
		return c, nil
	case !errors.Is(err, jetstream.ErrKeyExists):
		return fulfillment.CheckIn{}, unavailable(op, err)
	}
	var first fulfillment.CheckIn
	if err := s.getJSON(ctx, key, &first); err != nil {
		return fulfillment.CheckIn{}, unavailable(op, err)
	}
	if first.Nonce == c.Nonce {
		return first, nil
	}
	return first, fulfillment.CheckedIn(op, first)
}

// revokedKey is a ticket's revocation: rev.<event>.<ticket>.
func revokedKey(event, ticket string) string { return "rev." + event + "." + ticket }

// Revoke implements fulfillment.Store: KV Create of the ticket's
// revocation key; the first one stays.
func (s *Store) Revoke(ctx context.Context, r fulfillment.Revocation) (fulfillment.Revocation, error) {
	const op = "fulfillment.revoke"
	r, err := fulfillment.NormalizeRevocation(r)
	if err != nil {
		return fulfillment.Revocation{}, errs.E(op, err)
	}
	b, _ := json.Marshal(r)
	_, err = s.kv.Create(ctx, revokedKey(r.EventID, r.TicketID), b)
	switch {
	case err == nil:
		return r, nil
	case !errors.Is(err, jetstream.ErrKeyExists):
		return fulfillment.Revocation{}, unavailable(op, err)
	}
	return s.Revoked(ctx, r.EventID, r.TicketID)
}

// Revoked implements fulfillment.Store.
func (s *Store) Revoked(ctx context.Context, event, ticket string) (fulfillment.Revocation, error) {
	const op = "fulfillment.revoked"
	var r fulfillment.Revocation
	if !fulfillment.ValidEvent(event) || !fulfillment.ValidRef(ticket) {
		return r, errs.E(op, errs.NotFound, "not revoked")
	}
	err := s.getJSON(ctx, revokedKey(event, ticket), &r)
	switch {
	case errs.Is(errs.NotFound, err):
		return r, errs.E(op, errs.NotFound, "not revoked")
	case err != nil:
		return r, unavailable(op, err)
	}
	return r, nil
}

// Revocations implements fulfillment.Store.
func (s *Store) Revocations(ctx context.Context, event string) ([]fulfillment.Revocation, error) {
	const op = "fulfillment.revocations"
	out := []fulfillment.Revocation{}
	if !fulfillment.ValidEvent(event) {
		return out, nil
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lister, err := s.kv.ListKeysFiltered(lctx, revokedKey(event, "*"))
	if err != nil {
		return nil, unavailable(op, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	slices.Sort(keys)
	for _, k := range keys[:min(len(keys), fulfillment.MaxRevocations)] {
		var r fulfillment.Revocation
		if err := s.getJSON(ctx, k, &r); err != nil {
			if errs.Is(errs.NotFound, err) {
				continue
			}
			return nil, unavailable(op, err)
		}
		out = append(out, r)
	}
	return out, nil
}
