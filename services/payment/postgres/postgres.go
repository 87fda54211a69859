// Package postgres keeps the payments ledger (payment.Ledger) in
// PostgreSQL, the production store. Its schema is the embedded
// migrations/, applied by Migrate under component "payment".
//
// A payment is a row of payments (the record as JSON, its version) and its
// entries rows of ledger_entries; Update reads the payment (one statement)
// and writes both in one more, whose CTEs update (or insert) the payment
// row, only where it is still at the version read (optimistic locking: a
// writer that lost reads again and calls its function again), and insert
// the appended entries only when that row was written. A statement is its
// own transaction: an update is two round trips and two transactions, not
// the four or more round trips of a read, BEGIN, UPDATE, an INSERT per
// entry and COMMIT; UpdateFrom, from a current copy, skips the read: one
// round trip. The schema holds the ledger's invariants for writers that
// skip the domain too: entry ids unique per payment (primary key), one
// capture per payment (a partial unique index), refunds never beyond the
// capture (a trigger), entries never updated or deleted (a trigger),
// kinds, sources, currencies and positive amounts (checks).
//
// SeenEvent is an INSERT … ON CONFLICT DO NOTHING into payment_events_seen;
// each call also deletes up to 100 ids older than Config.EventRetention.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/payment"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component
// "payment".
var Migrations = migrations.Source{Component: "payment", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Config configures the store.
type Config struct {
	// EventRetention is how long an event id is remembered: longer than
	// the gateway retries a webhook. Default 8 days; at least 7 days.
	EventRetention time.Duration
	// Now is the clock of payments' Created and Updated. Default
	// time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.EventRetention == 0 {
		c.EventRetention = 8 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.EventRetention < 7*24*time.Hour {
		return errs.Errorf("payment.postgres", errs.Invalid, "event retention %v is below 7 days", c.EventRetention)
	}
	return nil
}

// Store is a payment.Ledger on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
}

var _ payment.Ledger = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Store{pool: pool, cfg: c}, nil
}

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	k := postgres.Kind(err)
	if k == errs.Unavailable {
		return errs.E(op, k, "payments ledger unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}

// selectSQL reads payments with their entries in one statement (one
// snapshot: the entries are the record's).
const selectSQL = `SELECT p.order_id, p.record, p.version, p.created_at, p.updated_at,
	coalesce((SELECT json_agg(json_build_object('id', e.entry_id, 'kind', e.kind, 'amount', e.amount,
		'currency', e.currency, 'at', e.at, 'source', e.source) ORDER BY e.seq)
		FROM ledger_entries e WHERE e.order_id = p.order_id), '[]')
FROM payments p`

func scan(row pgx.Row) (payment.Payment, error) {
	var (
		p                payment.Payment
		id               string
		record, entries  []byte
		version          int64
		created, updated time.Time
	)
	if err := row.Scan(&id, &record, &version, &created, &updated, &entries); err != nil {
		return payment.Payment{}, err
	}
	if err := json.Unmarshal(record, &p); err != nil {
		return payment.Payment{}, fmt.Errorf("payment %s: record: %w", id, err)
	}
	if err := json.Unmarshal(entries, &p.Entries); err != nil {
		return payment.Payment{}, fmt.Errorf("payment %s: entries: %w", id, err)
	}
	p.OrderID, p.Version = id, version
	p.Created, p.Updated = created.UTC(), updated.UTC()
	for i := range p.Entries {
		p.Entries[i].At = p.Entries[i].At.UTC()
	}
	if len(p.Entries) == 0 {
		p.Entries = nil
	}
	return p, nil
}

// record is what the record column holds: p without its entries,
// version and times (they have columns).
func record(p payment.Payment) []byte {
	p.Entries, p.Version, p.Created, p.Updated = nil, 0, time.Time{}, time.Time{}
	b, _ := json.Marshal(p)
	return b
}

func (s *Store) read(ctx context.Context, orderID string) (payment.Payment, bool, error) {
	p, err := scan(s.pool.QueryRow(ctx, selectSQL+` WHERE p.order_id = $1`, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return payment.Payment{}, false, nil
	}
	return p, err == nil, err
}

// Get implements payment.Ledger.
func (s *Store) Get(ctx context.Context, orderID string) (payment.Payment, error) {
	const op = "payment.get"
	if !payment.ValidOrderID(orderID) {
		return payment.Payment{}, errs.E(op, errs.NotFound, "no such payment")
	}
	p, ok, err := s.read(ctx, orderID)
	if err != nil {
		return payment.Payment{}, storeError(op, err)
	}
	if !ok {
		return payment.Payment{}, errs.E(op, errs.NotFound, "no such payment")
	}
	return p, nil
}

// errLost is a write that another writer overtook.
var errLost = errors.New("payment changed since it was read")

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
	conflicts := 0
	for attempt := 0; attempt < maxAttempts; attempt++ {
		if attempt > 2 {
			if err := backoff(ctx, attempt); err != nil {
				return payment.Payment{}, storeError(op, err)
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
		} else if before, exists, err = s.read(ctx, orderID); err != nil {
			return payment.Payment{}, storeError(op, err)
		}
		if !exists {
			before = payment.Payment{OrderID: orderID}
		}
		after := before.Clone()
		err = fn(&after, exists)
		p, appended, changed := payment.Payment{}, []payment.Entry(nil), false
		if err == nil {
			p, appended, changed, err = payment.Prepare(before, exists, after, s.cfg.Now())
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
		err = s.write(ctx, before, exists, &p, appended)
		switch {
		case err == nil:
			return p, nil
		case errors.Is(err, errLost):
			continue // overtaken: read again
		case postgres.Kind(err) == errs.Conflict && conflicts < 3:
			// A concurrent writer's row or entry came first: the same
			// as losing on the version, unless it keeps happening (rows
			// written around the domain).
			conflicts++
			continue
		}
		return payment.Payment{}, storeError(op, err)
	}
	return payment.Payment{}, errs.E(op, errs.Unavailable, "the payment is contended; try again")
}

// The writes of Update, one statement each: the payment row's update (at
// the version read, $13) or insert (where there is none), and, only when
// that row was written, the appended entries ($6…$12: arrays of their
// columns). A data-modifying CTE runs to completion whether or not the
// query reads it; its rows reach the foreign key and the triggers at the
// end of the statement, as a separate INSERT's would.
const (
	entriesCTE = `, appended AS (
	INSERT INTO ledger_entries (order_id, entry_id, seq, kind, amount, currency, at, source)
	SELECT $1, e.entry_id, e.seq, e.kind, e.amount, e.currency, e.at, e.source
	FROM unnest($6::text[], $7::integer[], $8::text[], $9::bigint[], $10::text[], $11::timestamptz[], $12::text[])
		AS e (entry_id, seq, kind, amount, currency, at, source)
	WHERE EXISTS (SELECT 1 FROM written)
)
SELECT version FROM written`
	updateSQL = `WITH written AS (
	UPDATE payments SET event = $2, account = $3, record = $4, version = version + 1, updated_at = $5
	WHERE order_id = $1 AND version = $13 RETURNING version
)` + entriesCTE
	insertSQL = `WITH written AS (
	INSERT INTO payments (order_id, event, account, record, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (order_id) DO NOTHING RETURNING version
)` + entriesCTE
)

// write stores p over before (at before.Version) with its appended
// entries, in one statement (updateSQL, insertSQL): errLost when the row
// moved on (or, for a new payment, exists).
func (s *Store) write(ctx context.Context, before payment.Payment, exists bool, p *payment.Payment, appended []payment.Entry) error {
	n := len(appended)
	var (
		ids, kinds, currencies, sources = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs                            = make([]int32, n)
		amounts                         = make([]int64, n)
		ats                             = make([]time.Time, n)
	)
	for i, e := range appended {
		ids[i], seqs[i], kinds[i], amounts[i], currencies[i], ats[i], sources[i] =
			e.ID, int32(len(before.Entries)+i), string(e.Kind), e.Amount, e.Currency, e.At, e.Source
	}
	// $5 is updated_at; for an insert created_at too (Prepare sets both
	// to now for a new payment).
	q, args := insertSQL, []any{p.OrderID, p.Event, p.Account, record(*p), p.Updated, ids, seqs, kinds, amounts, currencies, ats, sources}
	if exists {
		q, args = updateSQL, append(args, before.Version)
	}
	err := s.pool.QueryRow(ctx, q, args...).Scan(&p.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return errLost
	}
	return err
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

// seenSQL records an event id, and deletes up to 100 ids past the
// retention (skipping rows another call is deleting, and this id: an old
// row of it means it was seen).
const seenSQL = `WITH purged AS (
	DELETE FROM payment_events_seen WHERE id IN (
		SELECT id FROM payment_events_seen WHERE seen_at < now() - make_interval(secs => $2) AND id <> $1
		LIMIT 100 FOR UPDATE SKIP LOCKED)
)
INSERT INTO payment_events_seen (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`

// SeenEvent implements payment.Ledger.
func (s *Store) SeenEvent(ctx context.Context, eventID string) (bool, error) {
	const op = "payment.seen_event"
	if !payment.ValidGatewayID(eventID) {
		return false, errs.E(op, errs.Invalid, "event id must be 1-255 letters, digits, '_' or '-'")
	}
	tag, err := s.pool.Exec(ctx, seenSQL, eventID, s.cfg.EventRetention.Seconds())
	if err != nil {
		return false, storeError(op, err)
	}
	return tag.RowsAffected() == 1, nil
}

// List implements payment.Ledger.
func (s *Store) List(ctx context.Context, f payment.ListFilter) (payment.Page, error) {
	const op = "payment.list"
	f, err := f.Normalize()
	if err != nil {
		return payment.Page{}, err
	}
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	rows, err := s.pool.Query(ctx, selectSQL+` WHERE p.order_id > $1 AND ($2 = '' OR p.event = $2)
		AND (($3::timestamptz IS NULL AND $4::timestamptz IS NULL) OR EXISTS (SELECT 1 FROM ledger_entries m
			WHERE m.order_id = p.order_id AND ($3::timestamptz IS NULL OR m.at >= $3) AND ($4::timestamptz IS NULL OR m.at < $4)))
		ORDER BY p.order_id LIMIT $5`, f.After, f.Event, from, to, f.Limit+1)
	if err != nil {
		return payment.Page{}, storeError(op, err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (payment.Payment, error) { return scan(r) })
	if err != nil {
		return payment.Page{}, storeError(op, err)
	}
	page := payment.Page{Payments: ps}
	if len(ps) > f.Limit {
		page.Payments = ps[:f.Limit]
		page.Next = ps[f.Limit-1].OrderID
	}
	return page, nil
}
