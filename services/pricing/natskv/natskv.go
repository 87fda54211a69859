// Package natskv stores price lists, vouchers, quotes and add-on
// reservations in a JetStream key-value bucket, the embedded store of
// `ticketing dev`. Its keys:
//
//	rules.<event>    the event's price list, JSON; one version, the latest
//	voucher.<code>   a voucher, JSON
//	usage.<code>     the voucher's redemptions: order id → account
//	quote.<id>       a quote, JSON
//	addons.<event>   the event's add-on reservations: order id → add-on → units
//
// A bucket has no transactions, so every operation that must be atomic is
// a compare-and-set on one key's revision: PutRules writes version n+1
// with KV Update on the revision that holds version n (version 1 with KV
// Create); PutQuote is KV Create; Redeem, Unredeem, ReserveAddOns and
// ReleaseAddOns read the one record they change, decide, and write it
// back with KV Update on the revision they read (KV Create when there was
// none), reading again and deciding again when another writer got there
// first. The limits are checked against the record as it is at the
// revision written, so they hold under any concurrency, across processes
// too; the order id in the record makes the operation idempotent. Within
// one process, writers of one record also queue on a lock (striped by
// key), so that a burst of redemptions does not spend itself on failed
// compare-and-sets.
//
// Record sizes. A record is at most MaxRecordSize bytes (956 KiB, below
// the 1 MiB default max_payload of a server). Price lists, vouchers and
// quotes stay far below it: the largest the domain's limits allow are
// about 40 KiB (150 KiB with the largest repricing record), 15 KiB and
// 60 KiB. The records that grow are the two that hold one entry per
// order:
//
//   - usage.<code> holds one entry per live redemption: the order id and
//     the account id and 6 bytes; with ids of 30 bytes some 14,000
//     redemptions fit, with ids of MaxRefLen (128) bytes about 3,700;
//   - addons.<event> holds one entry per order with add-ons: the order id
//     and 6 bytes, and for each add-on its id, its count and 4 bytes;
//     with ids of 30 bytes and one add-on per order some 13,000 orders
//     fit.
//
// A write that would take a record past MaxRecordSize fails with
// errs.TooLarge and reason pricing.ReasonStoreLimit, and changes
// nothing: a voucher with more live redemptions than that (one with
// unlimited uses can get there), or an event with more add-on orders,
// needs the PostgreSQL store. Unredeem and
// ReleaseAddOns remove entries; nothing else does (quotes and price lists
// stay until the bucket is deleted).
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/pricing"
)

// MaxValueSize bounds a message in the bucket, headers included: the
// bucket's max_msg_size, under the 1 MiB default max_payload of a
// server.
const MaxValueSize = 960 << 10

// MaxRecordSize bounds a record, the value of a key: MaxValueSize less
// room for the headers of a compare-and-set.
const MaxRecordSize = MaxValueSize - 4<<10

// maxAttempts bounds the compare-and-sets of one operation: each failed
// one means another writer succeeded.
const maxAttempts = 100

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "pricing".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "pricing"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf("pricing.natskv", errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "price lists, vouchers and their redemptions, quotes, add-on reservations",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: MaxValueSize,
	}
}

// Store is a pricing.Store on a key-value bucket. Safe for concurrent
// use, also by several processes on one bucket.
type Store struct {
	kv    jetstream.KeyValue
	nc    *nats.Conn // for reads from the bucket's leader (kvget); nil: none
	locks [64]sync.Mutex
}

var _ pricing.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("pricing.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Store{kv: kv, nc: js.Conn()}, nil
}

// New returns a store on an existing bucket.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

func rulesKey(event string) string  { return "rules." + event }
func voucherKey(code string) string { return "voucher." + code }
func usageKey(code string) string   { return "usage." + code }
func quoteKey(id string) string     { return "quote." + id }
func addOnsKey(event string) string { return "addons." + event }

// lock serializes this process's writers of key.
func (s *Store) lock(key string) func() {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "pricing store unavailable", err)
}

// get reads key as v and returns its revision, 0 when there is none.
// fresh reads from the bucket's leader (after a compare-and-set failed,
// a replica may lag behind the write that beat it).
func (s *Store) get(ctx context.Context, op, key string, v any, fresh bool) (uint64, error) {
	var e jetstream.KeyValueEntry
	var err error
	if fresh && s.nc != nil {
		e, err = kvget.LeaderEntry(ctx, s.nc, s.kv, key)
	} else {
		e, err = kvget.GetEntry(ctx, s.nc, s.kv, key)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(op, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, errs.E(op, errs.Other, fmt.Errorf("%s: %w", key, err))
	}
	return e.Revision(), nil
}

// cas writes v at key if the key is still at rev (absent for 0). It
// reports false when another write got there first.
func (s *Store) cas(ctx context.Context, op, key string, v any, rev uint64) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, errs.E(op, errs.Other, err)
	}
	if len(b) > MaxRecordSize {
		return false, errs.Errorf(op, errs.TooLarge, "the record %s would have %d bytes, this store keeps at most %d", key, len(b), MaxRecordSize).
			WithReason(pricing.ReasonStoreLimit)
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, key, b)
	} else {
		_, err = s.kv.Update(ctx, key, b, rev)
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil
	}
	return false, unavailable(op, err)
}

func contended(op string) error {
	return errs.E(op, errs.Unavailable, "the record kept changing; try again")
}

// Rules implements pricing.Store.
func (s *Store) Rules(ctx context.Context, event string) (pricing.Rules, error) {
	const op = "pricing.rules"
	if !pricing.ValidID(event) {
		return pricing.Rules{}, errs.E(op, errs.NotFound, "no price list for this event")
	}
	var r pricing.Rules
	rev, err := s.get(ctx, op, rulesKey(event), &r, false)
	if err != nil {
		return pricing.Rules{}, err
	}
	if rev == 0 {
		return pricing.Rules{}, errs.E(op, errs.NotFound, "no price list for this event")
	}
	return r, nil
}

// PutRules implements pricing.Store.
func (s *Store) PutRules(ctx context.Context, r pricing.Rules) error {
	const op = "pricing.put_rules"
	r, err := r.Normalize()
	if err != nil {
		return errs.E(op, err)
	}
	mismatch := errs.Errorf(op, errs.Conflict, "the price list is not at version %d", r.Version-1).WithReason(pricing.ReasonVersionMismatch)
	key := rulesKey(r.Event)
	var rev uint64
	if r.Version > 1 {
		var cur pricing.Rules
		if rev, err = s.get(ctx, op, key, &cur, true); err != nil {
			return err
		}
		if rev == 0 || cur.Version != r.Version-1 {
			return mismatch
		}
	}
	ok, err := s.cas(ctx, op, key, r, rev)
	if err != nil {
		return err
	}
	if !ok {
		return mismatch
	}
	return nil
}

// Voucher implements pricing.Store.
func (s *Store) Voucher(ctx context.Context, code string) (pricing.Voucher, error) {
	const op = "pricing.voucher"
	v, found, err := s.voucher(ctx, op, pricing.NormalizeCode(code))
	if err == nil && !found {
		err = errNoVoucher(op)
	}
	return v, err
}

func errNoVoucher(op string) error {
	return errs.E(op, errs.NotFound, "no such voucher").WithReason(pricing.ReasonVoucherNotFound)
}

func (s *Store) voucher(ctx context.Context, op, code string) (pricing.Voucher, bool, error) {
	if !pricing.ValidCode(code) {
		return pricing.Voucher{}, false, nil
	}
	var v pricing.Voucher
	rev, err := s.get(ctx, op, voucherKey(code), &v, false)
	return v, rev != 0, err
}

// PutVoucher implements pricing.Store.
func (s *Store) PutVoucher(ctx context.Context, v pricing.Voucher) error {
	const op = "pricing.put_voucher"
	v, err := v.Normalize()
	if err != nil {
		return errs.E(op, err)
	}
	b, _ := json.Marshal(v)
	if _, err := s.kv.Put(ctx, voucherKey(v.Code), b); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutQuote implements pricing.Store.
func (s *Store) PutQuote(ctx context.Context, q pricing.Quote) error {
	const op = "pricing.put_quote"
	q, err := q.Normalize()
	if err != nil {
		return errs.E(op, err)
	}
	ok, err := s.cas(ctx, op, quoteKey(q.ID), q, 0)
	if err != nil {
		return err
	}
	if !ok {
		return errs.E(op, errs.Conflict, "a quote with this id exists").WithReason(pricing.ReasonQuoteExists)
	}
	return nil
}

// PurgeQuotes implements pricing.Store by a scan of the quotes (this is
// the development store: a quote's expiry is in its value).
func (s *Store) PurgeQuotes(ctx context.Context, before time.Time) (int, error) {
	const op = "pricing.purge_quotes"
	lister, err := s.kv.ListKeysFiltered(ctx, quoteKey("*"))
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(op, err)
	}
	var old []string
	for k := range lister.Keys() {
		var q pricing.Quote
		if _, err := s.get(ctx, op, k, &q, false); err != nil {
			_ = lister.Stop()
			return 0, err
		}
		if !q.ExpiresAt.IsZero() && q.ExpiresAt.Before(before) {
			old = append(old, k)
		}
	}
	for i, k := range old {
		if err := s.kv.Purge(ctx, k); err != nil {
			return i, unavailable(op, err)
		}
	}
	return len(old), nil
}

// Quote implements pricing.Store.
func (s *Store) Quote(ctx context.Context, id string) (pricing.Quote, error) {
	const op = "pricing.quote"
	notFound := errs.E(op, errs.NotFound, "no such quote")
	if !pricing.ValidQuoteID(id) {
		return pricing.Quote{}, notFound
	}
	var q pricing.Quote
	rev, err := s.get(ctx, op, quoteKey(id), &q, false)
	if err != nil {
		return pricing.Quote{}, err
	}
	if rev == 0 {
		return pricing.Quote{}, notFound
	}
	return q, nil
}

// usage is the value of usage.<code>.
type usage struct {
	// Orders maps the id of each order that redeemed the voucher to its
	// account.
	Orders map[string]string `json:"orders"`
}

// Redeem implements pricing.Store.
func (s *Store) Redeem(ctx context.Context, code, account, orderID string, now time.Time) error {
	const op = "pricing.redeem"
	code, err := pricing.CheckRedemption(code, account, orderID)
	if err != nil {
		return err
	}
	key := usageKey(code)
	defer s.lock(key)()
	v, found, err := s.voucher(ctx, op, code)
	if err != nil {
		return err
	}
	if !found {
		return errNoVoucher(op)
	}
	for attempt := range maxAttempts {
		var u usage
		rev, err := s.get(ctx, op, key, &u, attempt > 0)
		if err != nil {
			return err
		}
		if a, ok := u.Orders[orderID]; ok {
			if a != account {
				return errs.E(op, errs.Mismatch, "the order redeemed this voucher for another account")
			}
			return nil
		}
		if err := v.ActiveAt(now); err != nil {
			return err
		}
		if v.MaxUses > 0 && len(u.Orders) >= v.MaxUses {
			return errs.E(op, errs.Conflict, "this voucher has been used up").WithReason(pricing.ReasonVoucherExhausted)
		}
		if v.MaxPerAccount > 0 {
			n := 0
			for _, a := range u.Orders {
				if a == account {
					n++
				}
			}
			if n >= v.MaxPerAccount {
				return errs.E(op, errs.Conflict, "this account has used this voucher as often as it may").WithReason(pricing.ReasonVoucherAccountLimit)
			}
		}
		if u.Orders == nil {
			u.Orders = map[string]string{}
		}
		u.Orders[orderID] = account
		ok, err := s.cas(ctx, op, key, u, rev)
		if err != nil || ok {
			return err
		}
	}
	return contended(op)
}

// Unredeem implements pricing.Store.
func (s *Store) Unredeem(ctx context.Context, code, orderID string) error {
	const op = "pricing.unredeem"
	code, err := pricing.CheckUnredemption(code, orderID)
	if err != nil {
		return err
	}
	key := usageKey(code)
	defer s.lock(key)()
	_, found, err := s.voucher(ctx, op, code)
	if err != nil {
		return err
	}
	if !found {
		return errNoVoucher(op)
	}
	for attempt := range maxAttempts {
		var u usage
		rev, err := s.get(ctx, op, key, &u, attempt > 0)
		if err != nil {
			return err
		}
		if _, ok := u.Orders[orderID]; !ok {
			return nil
		}
		delete(u.Orders, orderID)
		ok, err := s.cas(ctx, op, key, u, rev)
		if err != nil || ok {
			return err
		}
	}
	return contended(op)
}

// reservations is the value of addons.<event>.
type reservations struct {
	// Orders maps the id of each order with a reservation to the units it
	// has of each add-on.
	Orders map[string]map[string]int `json:"orders"`
}

func checkOrder(op, event, orderID string) error {
	if !pricing.ValidID(event) {
		return errs.Errorf(op, errs.Invalid, "event id %q is not a valid id", event)
	}
	if !pricing.ValidRef(orderID) {
		return errs.E(op, errs.Invalid, "order id is not valid")
	}
	return nil
}

// ReserveAddOns implements pricing.Store.
func (s *Store) ReserveAddOns(ctx context.Context, event, orderID string, items []pricing.AddOnItem, capacity map[string]int) error {
	const op = "pricing.reserve_addons"
	if err := checkOrder(op, event, orderID); err != nil {
		return err
	}
	items, err := pricing.NormalizeAddOnItems(items, capacity)
	if err != nil {
		return errs.E(op, err)
	}
	if len(items) == 0 {
		return nil
	}
	want := make(map[string]int, len(items))
	for _, it := range items {
		want[it.ID] = it.Quantity
	}
	key := addOnsKey(event)
	defer s.lock(key)()
	for attempt := range maxAttempts {
		var r reservations
		rev, err := s.get(ctx, op, key, &r, attempt > 0)
		if err != nil {
			return err
		}
		if have, ok := r.Orders[orderID]; ok {
			if !maps.Equal(have, want) {
				return errs.E(op, errs.Mismatch, "the order has a reservation of other add-ons")
			}
			return nil
		}
		used := map[string]int{}
		for _, o := range r.Orders {
			for id, n := range o {
				used[id] += n
			}
		}
		for _, it := range items {
			if used[it.ID]+it.Quantity > capacity[it.ID] {
				return errs.Errorf(op, errs.Conflict, "add-on %s is sold out", it.ID).WithReason(pricing.ReasonAddOnSoldOut)
			}
		}
		if r.Orders == nil {
			r.Orders = map[string]map[string]int{}
		}
		r.Orders[orderID] = want
		ok, err := s.cas(ctx, op, key, r, rev)
		if err != nil || ok {
			return err
		}
	}
	return contended(op)
}

// ReleaseAddOns implements pricing.Store.
func (s *Store) ReleaseAddOns(ctx context.Context, event, orderID string) error {
	const op = "pricing.release_addons"
	if err := checkOrder(op, event, orderID); err != nil {
		return err
	}
	key := addOnsKey(event)
	defer s.lock(key)()
	for attempt := range maxAttempts {
		var r reservations
		rev, err := s.get(ctx, op, key, &r, attempt > 0)
		if err != nil {
			return err
		}
		if _, ok := r.Orders[orderID]; !ok {
			return nil
		}
		delete(r.Orders, orderID)
		ok, err := s.cas(ctx, op, key, r, rev)
		if err != nil || ok {
			return err
		}
	}
	return contended(op)
}
