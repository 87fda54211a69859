// Package postgres keeps the card vault's sealed records in PostgreSQL
// (the production store). Its schema is the embedded migrations/, applied
// by Migrate under component "payment_vault".
//
// The database decides every race: primary keys keep data key and token
// ids unique, foreign keys make every card and CVC name a stored data key,
// and UpdateKey writes only where the row is still at the version the
// caller read. CVC expiry is judged by the server's clock (now()); every
// PutCVC also deletes up to 100 expired CVCs, so none outlives the next
// card by much. A deleted row stays in the table's pages until vacuum,
// sealed.
package postgres

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/vault"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component
// "payment_vault".
var Migrations = migrations.Source{Component: "payment_vault", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is a vault.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
}

var _ vault.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Constraint names, from migrations/.
const (
	keysPkey        = "vault_data_keys_pkey"
	cardsPkey       = "vault_cards_pkey"
	cardsKeyFK      = "vault_cards_data_key_fkey"
	cvcsKeyFK       = "vault_cvcs_data_key_fkey"
	fingerprintName = "fingerprint"
)

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	k := postgres.Kind(err)
	if k == errs.Unavailable {
		return errs.E(op, k, "card vault unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}

// CreateKey implements vault.Store.
func (s *Store) CreateKey(ctx context.Context, k vault.WrappedKey) (vault.WrappedKey, error) {
	const op = "vault.create_key"
	k, err := k.Check()
	if err != nil {
		return vault.WrappedKey{}, errs.E(op, err)
	}
	var version int64
	err = s.pool.QueryRow(ctx, `INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ($1, $2, $3, $4) RETURNING version`,
		k.ID, k.KEK, k.Wrapped, k.Created).Scan(&version)
	if postgres.ConstraintOf(err) == keysPkey {
		return vault.WrappedKey{}, errs.E(op, errs.Conflict, "a data key with this id exists")
	}
	if err != nil {
		return vault.WrappedKey{}, storeError(op, err)
	}
	k.Version = uint64(version)
	return k, nil
}

const keyColumns = `id, kek, wrapped, created_at, version`

func scanKey(row pgx.Row) (vault.WrappedKey, error) {
	var (
		k       vault.WrappedKey
		version int64
	)
	if err := row.Scan(&k.ID, &k.KEK, &k.Wrapped, &k.Created, &version); err != nil {
		return vault.WrappedKey{}, err
	}
	k.Created = k.Created.UTC()
	k.Version = uint64(version)
	return k, nil
}

// Key implements vault.Store.
func (s *Store) Key(ctx context.Context, id string) (vault.WrappedKey, error) {
	const op = "vault.key"
	if !vault.ValidKeyID(id) {
		return vault.WrappedKey{}, errs.E(op, errs.NotFound, "no such data key")
	}
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM vault_data_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.WrappedKey{}, errs.E(op, errs.NotFound, "no such data key")
	}
	if err != nil {
		return vault.WrappedKey{}, storeError(op, err)
	}
	return k, nil
}

// Keys implements vault.Store.
func (s *Store) Keys(ctx context.Context, after string, limit int) ([]vault.WrappedKey, error) {
	const op = "vault.keys"
	if limit < 1 || limit > vault.MaxKeysPage {
		return nil, errs.Errorf(op, errs.Invalid, "limit must be 1 to %d", vault.MaxKeysPage)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM vault_data_keys WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, storeError(op, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (vault.WrappedKey, error) { return scanKey(r) })
	if err != nil {
		return nil, storeError(op, err)
	}
	return keys, nil
}

// updateKeySQL writes the row if it is at version $2 with creation time
// $3, and returns what the row was before and the new version, NULL when
// nothing was written. No row: no such key.
const updateKeySQL = `WITH cur AS (
	SELECT version, created_at FROM vault_data_keys WHERE id = $1
), upd AS (
	UPDATE vault_data_keys SET kek = $4, wrapped = $5, version = version + 1
	WHERE id = $1 AND version = $2 AND created_at = $3
	RETURNING version
)
SELECT cur.version, cur.created_at, (SELECT version FROM upd) FROM cur`

// UpdateKey implements vault.Store.
func (s *Store) UpdateKey(ctx context.Context, k vault.WrappedKey) (vault.WrappedKey, error) {
	const op = "vault.update_key"
	k, err := k.Check()
	if err != nil {
		return vault.WrappedKey{}, errs.E(op, err)
	}
	mismatch := errs.E(op, errs.Conflict, "the data key changed since it was read").WithReason(vault.ReasonVersionMismatch)
	if k.Version > math.MaxInt64 {
		return vault.WrappedKey{}, mismatch
	}
	var (
		curVersion int64
		curCreated time.Time
		newVersion *int64
	)
	err = s.pool.QueryRow(ctx, updateKeySQL, k.ID, int64(k.Version), k.Created, k.KEK, k.Wrapped).Scan(&curVersion, &curCreated, &newVersion)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return vault.WrappedKey{}, errs.E(op, errs.NotFound, "no such data key")
	case err != nil:
		return vault.WrappedKey{}, storeError(op, err)
	case newVersion != nil:
		k.Version = uint64(*newVersion)
		return k, nil
	case uint64(curVersion) == k.Version && !curCreated.Equal(k.Created):
		return vault.WrappedKey{}, errs.E(op, errs.Invalid, "a data key's creation time cannot change")
	}
	return vault.WrappedKey{}, mismatch
}

// PutCard implements vault.Store.
func (s *Store) PutCard(ctx context.Context, c vault.SealedCard) error {
	const op = "vault.put_card"
	c, err := c.Check()
	if err != nil {
		return errs.E(op, err)
	}
	t := c.Token
	_, err = s.pool.Exec(ctx, `INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, c.KeyID, string(t.Brand), t.Last4, t.ExpMonth, t.ExpYear, t.Fingerprint, t.Created, c.Sealed)
	switch postgres.ConstraintOf(err) {
	case "":
	case cardsPkey:
		return errs.E(op, errs.Conflict, "a card with this token id exists")
	case cardsKeyFK:
		return errs.E(op, errs.Invalid, "the record's data key does not exist")
	}
	if err != nil {
		return storeError(op, err)
	}
	return nil
}

// Card implements vault.Store.
func (s *Store) Card(ctx context.Context, id string) (vault.SealedCard, error) {
	const op = "vault.card"
	if !vault.ValidTokenID(id) {
		return vault.SealedCard{}, errs.E(op, errs.NotFound, "no such card")
	}
	var (
		c     vault.SealedCard
		brand string
	)
	err := s.pool.QueryRow(ctx, `SELECT token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed
		FROM vault_cards WHERE token_id = $1`, id).
		Scan(&c.Token.ID, &c.KeyID, &brand, &c.Token.Last4, &c.Token.ExpMonth, &c.Token.ExpYear, &c.Token.Fingerprint, &c.Token.Created, &c.Sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.SealedCard{}, errs.E(op, errs.NotFound, "no such card")
	}
	if err != nil {
		return vault.SealedCard{}, storeError(op, err)
	}
	c.Token.Brand = payment.Brand(brand)
	c.Token.Created = c.Token.Created.UTC()
	return c, nil
}

// putCardWithCVCSQL stores a card and, when its $11 is not NULL, its CVC
// ($10-$12), in one statement, deleting up to 100 expired CVCs as
// putCVCSQL does.
const putCardWithCVCSQL = `WITH purged AS (
	DELETE FROM vault_cvcs WHERE token_id IN (
		SELECT token_id FROM vault_cvcs WHERE expires_at <= now() AND token_id <> $1
		LIMIT 100 FOR UPDATE SKIP LOCKED)
), cvc AS (
	INSERT INTO vault_cvcs (token_id, data_key, sealed, expires_at)
	SELECT $1, $10::text, $11::bytea, $12::timestamptz WHERE $11::bytea IS NOT NULL
	ON CONFLICT (token_id) DO UPDATE SET data_key = EXCLUDED.data_key, sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at
)
INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// PutCardWithCVC implements vault.Store: the card and its CVC in one
// statement (both or neither).
func (s *Store) PutCardWithCVC(ctx context.Context, c vault.SealedCard, cvc *vault.SealedCVC) error {
	const op = "vault.put_card"
	c, err := c.Check()
	if err != nil {
		return errs.E(op, err)
	}
	var (
		cvcKey     *string
		cvcSealed  []byte
		cvcExpires *time.Time
	)
	if cvc != nil {
		v, err := cvc.Check()
		if err != nil {
			return errs.E(op, err)
		}
		if v.TokenID != c.Token.ID {
			return errs.E(op, errs.Invalid, "the CVC is another card's")
		}
		cvcKey, cvcSealed, cvcExpires = &v.KeyID, v.Sealed, &v.ExpiresAt
	}
	t := c.Token
	_, err = s.pool.Exec(ctx, putCardWithCVCSQL, t.ID, c.KeyID, string(t.Brand), t.Last4, t.ExpMonth, t.ExpYear, t.Fingerprint, t.Created, c.Sealed,
		cvcKey, cvcSealed, cvcExpires)
	switch postgres.ConstraintOf(err) {
	case "":
	case cardsPkey:
		return errs.E(op, errs.Conflict, "a card with this token id exists")
	case cardsKeyFK, cvcsKeyFK:
		return errs.E(op, errs.Invalid, "the record's data key does not exist")
	}
	if err != nil {
		return storeError(op, err)
	}
	return nil
}

// putCVCSQL stores a CVC and deletes up to 100 expired others (skipping
// rows another writer is deleting).
const putCVCSQL = `WITH purged AS (
	DELETE FROM vault_cvcs WHERE token_id IN (
		SELECT token_id FROM vault_cvcs WHERE expires_at <= now() AND token_id <> $1
		LIMIT 100 FOR UPDATE SKIP LOCKED)
)
INSERT INTO vault_cvcs (token_id, data_key, sealed, expires_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (token_id) DO UPDATE SET data_key = EXCLUDED.data_key, sealed = EXCLUDED.sealed, expires_at = EXCLUDED.expires_at`

// PutCVC implements vault.Store.
func (s *Store) PutCVC(ctx context.Context, c vault.SealedCVC) error {
	const op = "vault.put_cvc"
	c, err := c.Check()
	if err != nil {
		return errs.E(op, err)
	}
	_, err = s.pool.Exec(ctx, putCVCSQL, c.TokenID, c.KeyID, c.Sealed, c.ExpiresAt)
	if postgres.ConstraintOf(err) == cvcsKeyFK {
		return errs.E(op, errs.Invalid, "the record's data key does not exist")
	}
	if err != nil {
		return storeError(op, err)
	}
	return nil
}

// CVC implements vault.Store.
func (s *Store) CVC(ctx context.Context, id string) (vault.SealedCVC, error) {
	const op = "vault.cvc"
	notFound := errs.E(op, errs.NotFound, "no CVC kept for this card")
	if !vault.ValidTokenID(id) {
		return vault.SealedCVC{}, notFound
	}
	var c vault.SealedCVC
	err := s.pool.QueryRow(ctx, `SELECT token_id, data_key, sealed, expires_at FROM vault_cvcs WHERE token_id = $1 AND expires_at > now()`, id).
		Scan(&c.TokenID, &c.KeyID, &c.Sealed, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.SealedCVC{}, notFound
	}
	if err != nil {
		return vault.SealedCVC{}, storeError(op, err)
	}
	c.ExpiresAt = c.ExpiresAt.UTC()
	return c, nil
}

// CardAndCVC implements vault.Store: the card and its unexpired CVC in
// one statement.
func (s *Store) CardAndCVC(ctx context.Context, id string) (vault.SealedCard, *vault.SealedCVC, error) {
	const op = "vault.card"
	if !vault.ValidTokenID(id) {
		return vault.SealedCard{}, nil, errs.E(op, errs.NotFound, "no such card")
	}
	var (
		c          vault.SealedCard
		brand      string
		cvcKey     *string
		cvcSealed  []byte
		cvcExpires *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT c.token_id, c.data_key, c.brand, c.last4, c.exp_month, c.exp_year, c.fingerprint, c.created_at, c.sealed,
			v.data_key, v.sealed, v.expires_at
		FROM vault_cards c LEFT JOIN vault_cvcs v ON v.token_id = c.token_id AND v.expires_at > now()
		WHERE c.token_id = $1`, id).
		Scan(&c.Token.ID, &c.KeyID, &brand, &c.Token.Last4, &c.Token.ExpMonth, &c.Token.ExpYear, &c.Token.Fingerprint, &c.Token.Created, &c.Sealed,
			&cvcKey, &cvcSealed, &cvcExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		return vault.SealedCard{}, nil, errs.E(op, errs.NotFound, "no such card")
	}
	if err != nil {
		return vault.SealedCard{}, nil, storeError(op, err)
	}
	c.Token.Brand = payment.Brand(brand)
	c.Token.Created = c.Token.Created.UTC()
	if cvcKey == nil || cvcExpires == nil {
		return c, nil, nil
	}
	return c, &vault.SealedCVC{TokenID: id, KeyID: *cvcKey, Sealed: cvcSealed, ExpiresAt: cvcExpires.UTC()}, nil
}

// DeleteCVC implements vault.Store.
func (s *Store) DeleteCVC(ctx context.Context, id string) error {
	const op = "vault.delete_cvc"
	if !vault.ValidTokenID(id) {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM vault_cvcs WHERE token_id = $1`, id); err != nil {
		return storeError(op, err)
	}
	return nil
}

// FingerprintCheck implements vault.Store. The insert and the read are two
// statements: the read's snapshot then sees a row a concurrent first call
// committed while the insert waited for it.
func (s *Store) FingerprintCheck(ctx context.Context, check string) (string, error) {
	const op = "vault.fingerprint_check"
	if _, err := s.pool.Exec(ctx, `INSERT INTO vault_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
		fingerprintName, check); err != nil {
		return "", storeError(op, err)
	}
	var v string
	if err := s.pool.QueryRow(ctx, `SELECT value FROM vault_meta WHERE name = $1`, fingerprintName).Scan(&v); err != nil {
		return "", storeError(op, err)
	}
	return v, nil
}
