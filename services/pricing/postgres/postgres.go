// Package postgres stores price lists, vouchers and their redemptions,
// quotes and add-on reservations in PostgreSQL (the production store). Its
// schema is the embedded migrations/, applied by Migrate under the
// component name "pricing".
//
// Every operation is one statement or one transaction, and the database
// decides every race:
//
//   - PutRules writes version 1 with an INSERT (the primary key refuses a
//     second) and version n+1 with an UPDATE where the row is at version
//     n; PutQuote is an INSERT, never an update.
//   - Redeem locks the voucher's row (SELECT … FOR UPDATE), so the
//     redemptions of one voucher are decided one after the other, each
//     counting the rows the ones before it committed; the primary key
//     (code, order_id) makes it idempotent per order. Unredeem deletes the
//     order's row.
//   - ReserveAddOns inserts the order's reservation (the primary key makes
//     it idempotent) and adds each item to its add-on's stock row with an
//     upsert whose update holds only while the sum stays within the
//     capacity; an item that does not fit rolls the whole transaction
//     back. Stock rows are taken in the order of their ids, so concurrent
//     reservations cannot deadlock.
//
// Records are stored as the domain's JSON (jsonb), normalized before they
// are written. Nothing is purged: quotes, redemptions and released
// reservations' stock rows stay.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/pricing"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component "pricing".
var Migrations = migrations.Source{Component: "pricing", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is a pricing.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
}

var _ pricing.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Constraint names, from migrations/.
const (
	rulesPkey  = "pricing_rules_pkey"
	quotesPkey = "pricing_quotes_pkey"
)

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	if k := postgres.Kind(err); k == errs.Unavailable {
		return errs.E(op, k, "pricing store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}

// tx runs f in a READ COMMITTED transaction, committed if f returns nil.
func (s *Store) tx(ctx context.Context, op string, f func(pgx.Tx) error) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, f)
	if err != nil {
		return storeError(op, err)
	}
	return nil
}

func mismatch(op string, version int64) error {
	return errs.Errorf(op, errs.Conflict, "the price list is not at version %d", version-1).WithReason(pricing.ReasonVersionMismatch)
}

// Rules implements pricing.Store.
func (s *Store) Rules(ctx context.Context, event string) (pricing.Rules, error) {
	const op = "pricing.rules"
	notFound := errs.E(op, errs.NotFound, "no price list for this event")
	if !pricing.ValidID(event) {
		return pricing.Rules{}, notFound
	}
	var r pricing.Rules
	err := s.one(ctx, op, &r, `SELECT rules FROM pricing_rules WHERE event = $1`, event)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Rules{}, notFound
	}
	return r, err
}

// one reads the JSON of one row's column into v; pgx.ErrNoRows as it is.
func (s *Store) one(ctx context.Context, op string, v any, query string, args ...any) error {
	var b []byte
	err := s.pool.QueryRow(ctx, query, args...).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if err != nil {
		return storeError(op, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errs.E(op, errs.Other, err)
	}
	return nil
}

// PutRules implements pricing.Store.
func (s *Store) PutRules(ctx context.Context, r pricing.Rules) error {
	const op = "pricing.put_rules"
	r, err := r.Normalize()
	if err != nil {
		return errs.E(op, err)
	}
	b, _ := json.Marshal(r)
	if r.Version == 1 {
		_, err := s.pool.Exec(ctx, `INSERT INTO pricing_rules (event, version, rules) VALUES ($1, 1, $2)`, r.Event, b)
		if postgres.ConstraintOf(err) == rulesPkey {
			return mismatch(op, r.Version)
		}
		if err != nil {
			return storeError(op, err)
		}
		return nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE pricing_rules SET version = $2, rules = $3 WHERE event = $1 AND version = $2 - 1`,
		r.Event, r.Version, b)
	if err != nil {
		return storeError(op, err)
	}
	if tag.RowsAffected() == 0 {
		return mismatch(op, r.Version)
	}
	return nil
}

func errNoVoucher(op string) error {
	return errs.E(op, errs.NotFound, "no such voucher").WithReason(pricing.ReasonVoucherNotFound)
}

// Voucher implements pricing.Store.
func (s *Store) Voucher(ctx context.Context, code string) (pricing.Voucher, error) {
	const op = "pricing.voucher"
	code = pricing.NormalizeCode(code)
	if !pricing.ValidCode(code) {
		return pricing.Voucher{}, errNoVoucher(op)
	}
	var v pricing.Voucher
	err := s.one(ctx, op, &v, `SELECT voucher FROM pricing_vouchers WHERE code = $1`, code)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Voucher{}, errNoVoucher(op)
	}
	return v, err
}

// PutVoucher implements pricing.Store.
func (s *Store) PutVoucher(ctx context.Context, v pricing.Voucher) error {
	const op = "pricing.put_voucher"
	v, err := v.Normalize()
	if err != nil {
		return errs.E(op, err)
	}
	b, _ := json.Marshal(v)
	_, err = s.pool.Exec(ctx, `INSERT INTO pricing_vouchers (code, voucher) VALUES ($1, $2)
		ON CONFLICT (code) DO UPDATE SET voucher = EXCLUDED.voucher`, v.Code, b)
	if err != nil {
		return storeError(op, err)
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
	b, _ := json.Marshal(q)
	_, err = s.pool.Exec(ctx, `INSERT INTO pricing_quotes (id, event, account, quote, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, q.ID, q.Event, q.Account, b, q.CreatedAt, q.ExpiresAt)
	if postgres.ConstraintOf(err) == quotesPkey {
		return errs.E(op, errs.Conflict, "a quote with this id exists").WithReason(pricing.ReasonQuoteExists)
	}
	if err != nil {
		return storeError(op, err)
	}
	return nil
}

// PurgeQuotes implements pricing.Store.
func (s *Store) PurgeQuotes(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pricing_quotes WHERE expires_at < $1`, before)
	if err != nil {
		return 0, storeError("pricing.purge_quotes", err)
	}
	return int(tag.RowsAffected()), nil
}

// Quote implements pricing.Store.
func (s *Store) Quote(ctx context.Context, id string) (pricing.Quote, error) {
	const op = "pricing.quote"
	notFound := errs.E(op, errs.NotFound, "no such quote")
	if !pricing.ValidQuoteID(id) {
		return pricing.Quote{}, notFound
	}
	var q pricing.Quote
	err := s.one(ctx, op, &q, `SELECT quote FROM pricing_quotes WHERE id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Quote{}, notFound
	}
	return q, err
}

// lockVoucher locks the voucher's row for the transaction and returns it.
func lockVoucher(ctx context.Context, op string, tx pgx.Tx, code string) (pricing.Voucher, error) {
	var b []byte
	err := tx.QueryRow(ctx, `SELECT voucher FROM pricing_vouchers WHERE code = $1 FOR UPDATE`, code).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Voucher{}, errNoVoucher(op)
	}
	if err != nil {
		return pricing.Voucher{}, err
	}
	var v pricing.Voucher
	if err := json.Unmarshal(b, &v); err != nil {
		return pricing.Voucher{}, errs.E(op, errs.Other, fmt.Errorf("voucher %s: %w", code, err))
	}
	return v, nil
}

// Redeem implements pricing.Store.
func (s *Store) Redeem(ctx context.Context, code, account, orderID string, now time.Time) error {
	const op = "pricing.redeem"
	code, err := pricing.CheckRedemption(code, account, orderID)
	if err != nil {
		return err
	}
	return s.tx(ctx, op, func(tx pgx.Tx) error {
		v, err := lockVoucher(ctx, op, tx, code)
		if err != nil {
			return err
		}
		var had string
		err = tx.QueryRow(ctx, `SELECT account FROM pricing_redemptions WHERE code = $1 AND order_id = $2`, code, orderID).Scan(&had)
		switch {
		case err == nil && had == account:
			return nil
		case err == nil:
			return errs.E(op, errs.Mismatch, "the order redeemed this voucher for another account")
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if err := v.ActiveAt(now); err != nil {
			return err
		}
		if v.MaxUses > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pricing_redemptions WHERE code = $1`, code).Scan(&n); err != nil {
				return err
			}
			if n >= v.MaxUses {
				return errs.E(op, errs.Conflict, "this voucher has been used up").WithReason(pricing.ReasonVoucherExhausted)
			}
		}
		if v.MaxPerAccount > 0 {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pricing_redemptions WHERE code = $1 AND account = $2`, code, account).Scan(&n); err != nil {
				return err
			}
			if n >= v.MaxPerAccount {
				return errs.E(op, errs.Conflict, "this account has used this voucher as often as it may").WithReason(pricing.ReasonVoucherAccountLimit)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO pricing_redemptions (code, order_id, account, redeemed_at) VALUES ($1, $2, $3, $4)`,
			code, orderID, account, now)
		return err
	})
}

// Unredeem implements pricing.Store.
func (s *Store) Unredeem(ctx context.Context, code, orderID string) error {
	const op = "pricing.unredeem"
	code, err := pricing.CheckUnredemption(code, orderID)
	if err != nil {
		return err
	}
	var found bool
	err = s.pool.QueryRow(ctx, `WITH del AS (
		DELETE FROM pricing_redemptions WHERE code = $1 AND order_id = $2
	) SELECT EXISTS (SELECT 1 FROM pricing_vouchers WHERE code = $1)`, code, orderID).Scan(&found)
	if err != nil {
		return storeError(op, err)
	}
	if !found {
		return errNoVoucher(op)
	}
	return nil
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
	b, _ := json.Marshal(want)
	return s.tx(ctx, op, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO pricing_addon_reservations (event, order_id, items) VALUES ($1, $2, $3)
			ON CONFLICT (event, order_id) DO NOTHING`, event, orderID, b)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var hb []byte
			if err := tx.QueryRow(ctx, `SELECT items FROM pricing_addon_reservations WHERE event = $1 AND order_id = $2`,
				event, orderID).Scan(&hb); err != nil {
				return err
			}
			var have map[string]int
			if err := json.Unmarshal(hb, &have); err != nil {
				return errs.E(op, errs.Other, err)
			}
			if !maps.Equal(have, want) {
				return errs.E(op, errs.Mismatch, "the order has a reservation of other add-ons")
			}
			return nil
		}
		for _, it := range items { // sorted by id: the order of the locks
			soldOut := errs.Errorf(op, errs.Conflict, "add-on %s is sold out", it.ID).WithReason(pricing.ReasonAddOnSoldOut)
			if it.Quantity > capacity[it.ID] {
				return soldOut
			}
			tag, err := tx.Exec(ctx, `INSERT INTO pricing_addon_stock AS s (event, addon, reserved) VALUES ($1, $2, $3)
				ON CONFLICT (event, addon) DO UPDATE SET reserved = s.reserved + EXCLUDED.reserved
				WHERE s.reserved + EXCLUDED.reserved <= $4`, event, it.ID, it.Quantity, capacity[it.ID])
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return soldOut
			}
		}
		return nil
	})
}

// ReleaseAddOns implements pricing.Store.
func (s *Store) ReleaseAddOns(ctx context.Context, event, orderID string) error {
	const op = "pricing.release_addons"
	if err := checkOrder(op, event, orderID); err != nil {
		return err
	}
	return s.tx(ctx, op, func(tx pgx.Tx) error {
		var b []byte
		err := tx.QueryRow(ctx, `DELETE FROM pricing_addon_reservations WHERE event = $1 AND order_id = $2 RETURNING items`,
			event, orderID).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		var items map[string]int
		if err := json.Unmarshal(b, &items); err != nil {
			return errs.E(op, errs.Other, err)
		}
		for _, id := range slices.Sorted(maps.Keys(items)) {
			if _, err := tx.Exec(ctx, `UPDATE pricing_addon_stock SET reserved = reserved - $3 WHERE event = $1 AND addon = $2`,
				event, id, items[id]); err != nil {
				return err
			}
		}
		return nil
	})
}
