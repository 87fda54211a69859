// Package postgres is the production orders.Store: PostgreSQL is the
// system of record for orders. Its schema is the embedded migrations/
// (component "orders"), applied by Migrate:
//
//	orders           the order as JSON, with the columns it is found by
//	                 (account, created, next_at, idem_key) and its version
//	order_holds      a claim on each hold of an order that counts
//	purchase_counts  the tickets that count per account and event
//	order_outbox     the events not yet relayed to EVENTS
//
// Each write is one transaction: the order, its claims, the purchase
// count and the outbox entries of its events are committed together or
// not at all. Each is one statement, so one round trip: its
// data-modifying WITH queries write the tables, and a failure of any
// fails the whole.
//
//   - Create inserts the order (its idempotency key is a unique index),
//     its claims (the claims' primary key refuses a hold another order
//     counts with), then adds its tickets to the purchase count with
//     INSERT … ON CONFLICT DO UPDATE, which locks the count's row: of
//     concurrent creates, each sees the count the one before it left;
//     one that would pass the limit fails the statement (orders_refuse).
//   - Update reads the order, applies fn and writes it back where its
//     version is still the one read (compare-and-set), releasing or
//     taking claims and tickets when it stops or starts counting; when
//     another write came in between, it writes nothing, reads the order
//     again and applies fn again. An update that changes nothing (fn
//     leaves the order's encoding as it was and records no event)
//     writes nothing. The store remembers the orders it wrote
//     last (Config.Recent), so an update of one of those needs no read:
//     one round trip where the order had not changed, three where it had.
//
// Every write takes its locks in one order (the order's row, the claims
// by hold id, the purchase count), so that writes do not deadlock; one
// that does all the same, or fails to serialize, is tried again.
//
// The outbox is relayed by internal/outbox/pgrelay (RelayConfig); its
// entries are exactly those of the JetStream store (outbox.NewEntry of
// orders.CloudEvent), so consumers of EVENTS cannot tell the two stores
// apart. The store wakes the relays with a NOTIFY after its commits (see
// pgrelay.Notifier).
//
// Idempotency keys name their orders for Config.IdempotencyTTL (48h by
// default, at least 24h): the key is a column of the order; a request with
// an expired key clears it and makes a new order.
package postgres

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/internal/outbox/pgrelay"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/orders"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component "orders".
var Migrations = migrations.Source{Component: "orders", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Outbox is the store's outbox table.
const Outbox pgrelay.Table = "order_outbox"

// RelayConfig is the configuration of a relay of the store's outbox
// (pgrelay.New), to be completed with what differs from the defaults.
func RelayConfig() pgrelay.Config { return pgrelay.Config{Table: Outbox, Channel: string(Outbox)} }

// Config configures the store.
type Config struct {
	// IdempotencyTTL is how long an idempotency key names its order.
	// Default 48h; at least 24h.
	IdempotencyTTL time.Duration
	// Retries bounds how often a write that met another is tried again.
	// Default 50.
	Retries int
	// Source is the CloudEvents source of the orders' events. Default
	// "/orders".
	Source string
	// Recent is how many orders the store remembers as it last wrote or
	// read them, so that an update of one of them needs no read (it
	// writes where the order is still at the remembered version, and
	// reads only when another writer came first): about 1 kB each.
	// Default 4096; -1 remembers none.
	Recent int
	// NotifyInterval is the least time between two notifications to the
	// outbox relays (pgrelay.Notifier). Default 5ms; -1 sends none (the
	// relays poll).
	NotifyInterval time.Duration
	// Log reports failed notifications. Default slog.Default().
	Log *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = 48 * time.Hour
	}
	if c.Retries == 0 {
		c.Retries = 50
	}
	if c.Source == "" {
		c.Source = "/orders"
	}
	if c.Recent == 0 {
		c.Recent = 4096
	}
	if c.NotifyInterval == 0 {
		c.NotifyInterval = 5 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "orders.postgres.config"
	switch {
	case c.IdempotencyTTL < 24*time.Hour:
		return errs.Errorf(op, errs.Invalid, "idempotency keys must be kept at least 24h, not %v", c.IdempotencyTTL)
	case c.Retries < 1:
		return errs.Errorf(op, errs.Invalid, "retries must be at least 1, not %d", c.Retries)
	case c.Recent < -1:
		return errs.Errorf(op, errs.Invalid, "recent must be positive or -1, not %d", c.Recent)
	case c.NotifyInterval < 0 && c.NotifyInterval != -1:
		return errs.Errorf(op, errs.Invalid, "notify interval must be positive or -1, not %v", c.NotifyInterval)
	}
	return nil
}

// Store is an orders.Store on a pool whose schema has been migrated. Safe
// for concurrent use, also by several processes on one database.
type Store struct {
	pool     *pgxpool.Pool
	cfg      Config
	recent   *recent
	notifier *pgrelay.Notifier // nil: none
}

var _ orders.Store = (*Store)(nil)

// New returns a store on pool. Close stops its notifier.
func New(pool *pgxpool.Pool, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Store{pool: pool, cfg: c, recent: newRecent(c.Recent)}
	if c.NotifyInterval > 0 {
		n, err := pgrelay.NewNotifier(pool, RelayConfig().Channel, c.NotifyInterval, c.Log)
		if err != nil {
			return nil, err
		}
		s.notifier = n
	}
	return s, nil
}

// Close stops the store's notifier; the pool is the caller's.
func (s *Store) Close() {
	if s.notifier != nil {
		s.notifier.Close()
	}
}

// Constraint names, from migrations/; refuseLimit is raised by
// orders_refuse.
const (
	orderPkey   = "orders_pkey"
	idemIndex   = "orders_idem_key"
	holdPkey    = "order_holds_pkey"
	outboxPkey  = "order_outbox_pkey"
	refuseLimit = "purchase_limit"
)

// Each write is one statement (one round trip, atomic): its
// data-modifying WITH queries all run, in the order their reads of each
// other impose (the order, the claims, the count; the outbox entries at
// any point), and a failure of any fails them all.
var (
	// createSQL inserts the order (first: a request made again stops at
	// its idempotency key), claims its holds (sorted by the caller,
	// so that two writes never wait for each other's claims crosswise),
	// then adds its tickets to the count; more than $12 (when positive) is
	// refused with the count found as the error's detail. The count's row
	// stays locked until the statement commits: of concurrent creates,
	// each sees the count the one before it left.
	createSQL = `WITH o AS (
			INSERT INTO orders (id, account, event, state, next_at, created, record, version, idem_key, fingerprint)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)
			RETURNING id
		), h AS (
			INSERT INTO order_holds (hold_id, order_id) SELECT unnest($10::text[]), id FROM o
			RETURNING hold_id
		), c AS (
			INSERT INTO purchase_counts AS c (account, event, tickets)
			SELECT $2, $3, CASE WHEN $12::bigint > 0 AND $11::bigint > $12 THEN orders_refuse('` + refuseLimit + `', '0') ELSE $11 END
			FROM o WHERE (SELECT count(*) FROM h) >= 0
			ON CONFLICT (account, event) DO UPDATE SET tickets = CASE
				WHEN $12 > 0 AND c.tickets + EXCLUDED.tickets > $12 THEN orders_refuse('` + refuseLimit + `', c.tickets::text)
				ELSE c.tickets + EXCLUDED.tickets END
			RETURNING tickets
		), x AS (
			` + Outbox.Insert(13, "WHERE EXISTS (SELECT FROM o)") + `
			RETURNING id
		)
		SELECT count(*) FROM x`

	// updateSQL writes the order where it is still at version $2 and adds
	// its entries; at another version, it writes nothing and returns no
	// row.
	updateSQL = `WITH u AS (
			UPDATE orders SET state = $3, next_at = $4, record = $5, version = version + 1
			WHERE id = $1 AND version = $2
			RETURNING version
		), x AS (
			` + Outbox.Insert(6, "WHERE EXISTS (SELECT FROM u)") + `
			RETURNING id
		)
		SELECT version, (SELECT count(*) FROM x) FROM u`

	// updateCountingSQL is updateSQL for an order that starts or stops
	// counting: it also releases the claims $10 and takes the claims $11
	// (those another order has claimed meanwhile stay that order's: the
	// saga decides what a late payment gets), then adds $12 to the count
	// (negative: releases tickets), without a limit.
	updateCountingSQL = `WITH u AS (
			UPDATE orders SET state = $3, next_at = $4, record = $5, version = version + 1
			WHERE id = $1 AND version = $2
			RETURNING version
		), x AS (
			` + Outbox.Insert(6, "WHERE EXISTS (SELECT FROM u)") + `
			RETURNING id
		), r AS (
			DELETE FROM order_holds WHERE hold_id = ANY($10::text[]) AND order_id = $1 AND EXISTS (SELECT FROM u)
			RETURNING hold_id
		), t AS (
			INSERT INTO order_holds (hold_id, order_id) SELECT unnest($11::text[]), $1 FROM u
			ON CONFLICT (hold_id) DO NOTHING
			RETURNING hold_id
		), c AS (
			INSERT INTO purchase_counts AS c (account, event, tickets)
			SELECT $13, $14, GREATEST($12::bigint, 0) FROM u
			WHERE $12 <> 0 AND (SELECT count(*) FROM r) + (SELECT count(*) FROM t) >= 0
			ON CONFLICT (account, event) DO UPDATE SET tickets = GREATEST(c.tickets + $12, 0)
			RETURNING tickets
		)
		SELECT version, (SELECT count(*) FROM x) FROM u`
)

// Create implements orders.Store.
func (s *Store) Create(ctx context.Context, o orders.Order, limit int) (orders.Order, bool, error) {
	const op = "orders.postgres.create"
	entries, err := s.rows(o.Events())
	if err != nil {
		return orders.Order{}, false, errs.E(op, err)
	}
	o.Version = 0
	record, err := json.Marshal(o)
	if err != nil {
		return orders.Order{}, false, errs.E(op, errs.Invalid, err)
	}
	holds := holdIDs(o.Holds)
	if len(slices.Compact(slices.Clone(holds))) != len(holds) {
		return orders.Order{}, false, errs.E(op, errs.Invalid, "an order has a hold twice")
	}
	args := append([]any{o.ID, o.Account, o.Event, string(o.State), nullTime(o.NextAt), o.Created, record,
		nullString(o.IdemKey), o.Fingerprint, holds, o.Tickets, max(limit, 0)}, entries.Args()...)
	for range s.cfg.Retries {
		_, err := s.pool.Exec(ctx, createSQL, args...)
		if err == nil {
			s.notify(entries.Len())
			s.recent.put(o.ID, record, 1)
			o.Version = 1
			return o, true, nil
		}
		switch postgres.ConstraintOf(err) {
		case idemIndex:
			// The key names an order: this request's, made before (or
			// concurrently, committed first), unless the key expired.
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			continue
		case holdPkey:
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			return orders.Order{}, false, errs.E(op, errs.Conflict, "a hold is in another order").WithReason(orders.ReasonHoldTaken)
		case refuseLimit:
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			return orders.Order{}, false, errs.Errorf(op, errs.Conflict,
				"at most %d tickets per account for this event: %s already bought or in open orders", limit, detail(err)).
				WithReason(orders.ReasonPurchaseLimit)
		case orderPkey:
			// The same request made concurrently, when ids derive from
			// idempotency keys (orders.IDFor), or another order.
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			return orders.Order{}, false, errs.Errorf(op, errs.Conflict, "an order %s exists", o.ID)
		case outboxPkey:
			if prev, ok, err := s.replay(ctx, o); ok || err != nil {
				return prev, false, err
			}
			return orders.Order{}, false, errs.E(op, errs.Conflict, "the order's events were written already")
		}
		if !retryable(err) {
			return orders.Order{}, false, storeError(op, err)
		}
	}
	return orders.Order{}, false, errs.Errorf(op, errs.Unavailable, "gave up after %d conflicting writes", s.cfg.Retries)
}

// replay returns the order that o's idempotency key names, if any (ok), or
// errs.Mismatch when another request made it. An expired key is cleared
// and names none.
func (s *Store) replay(ctx context.Context, o orders.Order) (orders.Order, bool, error) {
	const op = "orders.postgres.create"
	if o.IdemKey == "" {
		return orders.Order{}, false, nil
	}
	prev, err := s.one(ctx, op, `SELECT record, version FROM orders WHERE idem_key = $1`, o.IdemKey)
	switch {
	case errs.Is(errs.NotFound, err):
		return orders.Order{}, false, nil
	case err != nil:
		return orders.Order{}, false, err
	case time.Since(prev.Created) >= s.cfg.IdempotencyTTL:
		if _, err := s.pool.Exec(ctx, `UPDATE orders SET idem_key = NULL WHERE id = $1 AND idem_key = $2`, prev.ID, o.IdemKey); err != nil {
			return orders.Order{}, false, storeError(op, err)
		}
		return orders.Order{}, false, nil
	case prev.Fingerprint != o.Fingerprint:
		return orders.Order{}, false, errs.E(op, errs.Mismatch, "the idempotency key was used with another request")
	}
	return prev, true, nil
}

// Get implements orders.Store.
func (s *Store) Get(ctx context.Context, id string) (orders.Order, error) {
	const op = "orders.postgres.get"
	var (
		record  []byte
		version int64
	)
	err := s.pool.QueryRow(ctx, `SELECT record, version FROM orders WHERE id = $1`, id).Scan(&record, &version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return orders.Order{}, errs.E(op, errs.NotFound, "no such order")
	case err != nil:
		return orders.Order{}, storeError(op, err)
	}
	o, err := decode(record, uint64(version))
	if err != nil {
		return orders.Order{}, errs.E(op, err)
	}
	s.recent.put(id, record, o.Version)
	return o, nil
}

// Update implements orders.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*orders.Order) error) (orders.Order, error) {
	const op = "orders.postgres.update"
	recalled := false // the order was last read from s.recent
	for range s.cfg.Retries {
		var o orders.Order
		var err error
		r, ok := s.recent.get(id)
		if ok && !recalled {
			o, err = decode(r.record, r.version)
			recalled = true
		} else {
			o, err = s.Get(ctx, id)
			recalled = false
		}
		if err != nil {
			return orders.Order{}, err
		}
		was := struct {
			account, event string
			counts         bool
			tickets        int
			holds          []string
			version        uint64
			created        time.Time
		}{o.Account, o.Event, o.State.Counts(), o.Tickets, holdIDs(o.Holds), o.Version, o.Created}
		o.Version = 0
		read, err := json.Marshal(o)
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Invalid, err)
		}
		if err := fn(&o); err != nil {
			return orders.Order{}, err
		}
		if o.ID != id || o.Account != was.account || o.Event != was.event || !o.Created.Equal(was.created) {
			return orders.Order{}, errs.E(op, errs.Invalid, "an order's id, account, event and creation time cannot change")
		}
		events := o.Events()
		o.Version = 0
		record, err := json.Marshal(o)
		if err != nil {
			return orders.Order{}, errs.E(op, errs.Invalid, err)
		}
		if len(events) == 0 && bytes.Equal(record, read) {
			// Nothing changed (a step another node did, a payment
			// event applied again): nothing to write, once the order
			// is known to be the stored one (a remembered order may
			// have been replaced by another process: read it and
			// apply fn again).
			if recalled {
				continue
			}
			o.Version = was.version
			return o, nil
		}
		entries, err := s.rows(events)
		if err != nil {
			return orders.Order{}, errs.E(op, err)
		}
		args := append([]any{id, int64(was.version), string(o.State), nullTime(o.NextAt), record}, entries.Args()...)
		query := updateSQL
		// The claims and the count follow whether the order counts.
		var claimed, claims []string
		var before, after int
		if was.counts {
			claimed, before = was.holds, was.tickets
		}
		if o.State.Counts() {
			claims, after = holdIDs(o.Holds), o.Tickets
		}
		released, taken := minus(claimed, claims), minus(claims, claimed)
		if len(released) > 0 || len(taken) > 0 || after != before {
			query = updateCountingSQL
			args = append(args, released, taken, after-before, o.Account, o.Event)
		}
		var version int64
		var written int
		err = s.pool.QueryRow(ctx, query, args...).Scan(&version, &written)
		if err == nil {
			s.notify(written)
			o.Version = uint64(version)
			s.recent.put(id, record, o.Version)
			return o, nil
		}
		// Not written (written meanwhile by another: read it again), or
		// not known to be.
		s.recent.drop(id)
		recalled = false
		if !errors.Is(err, pgx.ErrNoRows) && !retryable(err) {
			return orders.Order{}, storeError(op, err)
		}
	}
	return orders.Order{}, errs.Errorf(op, errs.Unavailable, "gave up after %d conflicting writes", s.cfg.Retries)
}

// ByAccount implements orders.Store. An unknown cursor starts at the top.
func (s *Store) ByAccount(ctx context.Context, account, after string, limit int) ([]orders.Order, error) {
	const op = "orders.postgres.by_account"
	limit = min(max(limit, 1), 100)
	rows, err := s.pool.Query(ctx, `SELECT record, version FROM orders
		WHERE account = $1 AND (created, id) < (
			coalesce((SELECT created FROM orders WHERE id = $2 AND account = $1), 'infinity'),
			coalesce((SELECT id FROM orders WHERE id = $2 AND account = $1), ''))
		ORDER BY created DESC, id DESC LIMIT $3`, account, after, limit)
	if err != nil {
		return nil, storeError(op, err)
	}
	var out []orders.Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			rows.Close()
			return nil, storeError(op, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError(op, err)
	}
	return out, nil
}

// Due implements orders.Store.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	const op = "orders.postgres.due"
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM orders WHERE next_at <= $1 ORDER BY next_at, id LIMIT $2`, now, limit)
	if err != nil {
		return nil, storeError(op, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, storeError(op, err)
	}
	return ids, nil
}

// one reads the order a query of record and version finds, or
// errs.NotFound.
func (s *Store) one(ctx context.Context, op, query string, arg any) (orders.Order, error) {
	rows, _ := s.pool.Query(ctx, query, arg)
	o, err := pgx.CollectExactlyOneRow(rows, scan)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return orders.Order{}, errs.E(op, errs.NotFound, "no such order")
	case err != nil:
		return orders.Order{}, storeError(op, err)
	}
	return o, nil
}

func scan(row pgx.CollectableRow) (orders.Order, error) {
	var (
		record  []byte
		version int64
	)
	if err := row.Scan(&record, &version); err != nil {
		return orders.Order{}, err
	}
	return decode(record, uint64(version))
}

// decode makes the order of a record at version.
func decode(record []byte, version uint64) (orders.Order, error) {
	var o orders.Order
	if err := json.Unmarshal(record, &o); err != nil {
		return orders.Order{}, errs.E(errs.Other, fmt.Errorf("the record of an order: %w", err))
	}
	o.Version = version
	return o, nil
}

// rows are the outbox rows of events: the entries the JetStream store
// makes of them.
func (s *Store) rows(events []orders.Event) (pgrelay.Rows, error) {
	entries := make([]outbox.Entry, 0, len(events))
	for _, e := range events {
		ce := orders.CloudEvent(e, s.cfg.Source)
		entry, err := outbox.NewEntry(orders.Subject(e.Order), &ce, e.Data)
		if err != nil {
			return pgrelay.Rows{}, errs.E(errs.Invalid, err)
		}
		entries = append(entries, entry)
	}
	return pgrelay.NewRows(entries)
}

func (s *Store) notify(entries int) {
	if entries > 0 && s.notifier != nil {
		s.notifier.Notify()
	}
}

// holdIDs are the ids of holds, sorted (the order claims are taken in).
func holdIDs(holds []orders.Hold) []string {
	ids := make([]string, len(holds))
	for i, h := range holds {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	return ids
}

// minus is the sorted a less the sorted b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// detail is the detail of a PostgreSQL error.
func detail(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Detail
	}
	return ""
}

// retryable reports whether a write that failed with err may succeed when
// tried again at once: a deadlock or serialization failure (class 40).
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && len(pe.Code) == 5 && pe.Code[:2] == "40"
}

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	if k := postgres.Kind(err); k == errs.Unavailable {
		return errs.E(op, k, "order store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}
