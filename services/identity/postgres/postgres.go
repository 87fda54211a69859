// Package postgres stores identity accounts and their mailed links in
// PostgreSQL (the production store). Its schema is the embedded
// migrations/, applied by Migrate.
//
// The database decides every race: unique indexes keep ids, addresses
// and link hashes unique; Update writes only where the row is still at the
// version the caller read (optimistic locking on users.version); TakeLink
// is one DELETE … RETURNING, so of concurrent takes one gets the row.
// Link expiry is judged by the server's clock (now()).
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/identity"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component "identity".
var Migrations = migrations.Source{Component: "identity", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is an identity.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
}

var _ identity.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Constraint names, from migrations/.
const (
	pkeyConstraint     = "users_pkey"
	emailConstraint    = "users_email_lower_key"
	linkPkeyConstraint = "links_pkey"
	linkUserConstraint = "links_user_id_fkey"
)

const accountColumns = `id, email, display_name, created_at, email_verified, roles, password, totp, recovery, passkeys, failures, failed_at, locale, version`

func errEmailTaken(op string) error {
	return errs.E(op, errs.Conflict, "a user with this email address exists").WithReason(identity.ReasonEmailTaken)
}

func errVersion(op string) error {
	return errs.E(op, errs.Conflict, "the account changed since it was read").WithReason(identity.ReasonVersionMismatch)
}

// columns are the values of a's columns after id, email, display_name and
// created_at, in accountColumns' order (without version). Lists are never
// NULL; FailedAt's zero is.
func columns(a identity.Account) []any {
	totp, _ := json.Marshal(a.TOTP)
	passkeys := a.Passkeys
	if passkeys == nil {
		passkeys = []identity.Passkey{}
	}
	pk, _ := json.Marshal(passkeys)
	var failedAt *time.Time
	if !a.FailedAt.IsZero() {
		failedAt = &a.FailedAt
	}
	return []any{a.EmailVerified, nonNil(a.Roles), a.Password, totp, nonNil(a.Recovery), pk, a.Failures, failedAt, a.Locale}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Create implements identity.Store. The unique indexes decide: of
// concurrent creates with one email, the database lets one commit.
func (s *Store) Create(ctx context.Context, a identity.Account) (identity.Account, error) {
	const op = "identity.create"
	a, err := identity.NormalizeAccount(a)
	if err != nil {
		return identity.Account{}, errs.E(op, err)
	}
	args := append([]any{a.ID, a.Email, a.DisplayName, a.CreatedAt}, columns(a)...)
	var version int64
	err = s.pool.QueryRow(ctx, `INSERT INTO users (id, email, display_name, created_at,
		email_verified, roles, password, totp, recovery, passkeys, failures, failed_at, locale)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING version`, args...).Scan(&version)
	if err == nil {
		a.Version = uint64(version)
		return a, nil
	}
	if postgres.Kind(err) == errs.Conflict {
		switch postgres.ConstraintOf(err) {
		case emailConstraint:
			return identity.Account{}, errEmailTaken(op)
		case pkeyConstraint:
			return identity.Account{}, errs.E(op, errs.Conflict, "the user id is taken").WithReason(identity.ReasonIDTaken)
		}
	}
	return identity.Account{}, storeError(op, err)
}

// updateSQL writes the row if it is at version $2 with creation time $3,
// and returns what the row was before (from the statement's snapshot) and
// the new version, NULL when nothing was written. No row: no such account.
const updateSQL = `WITH cur AS (
	SELECT version, created_at FROM users WHERE id = $1
), upd AS (
	UPDATE users SET email = $4, display_name = $5, email_verified = $6, roles = $7, password = $8,
		totp = $9, recovery = $10, passkeys = $11, failures = $12, failed_at = $13, locale = $14, version = version + 1
	WHERE id = $1 AND version = $2 AND created_at = $3
	RETURNING version
)
SELECT cur.version, cur.created_at, (SELECT version FROM upd) FROM cur`

// Update implements identity.Store. A changed email is unique by the
// index, and the old one is free once the row is written.
func (s *Store) Update(ctx context.Context, a identity.Account) (identity.Account, error) {
	const op = "identity.update"
	a, err := identity.NormalizeAccount(a)
	if err != nil {
		return identity.Account{}, errs.E(op, err)
	}
	if a.Version > math.MaxInt64 {
		return identity.Account{}, errVersion(op) // no row has it
	}
	args := append([]any{a.ID, int64(a.Version), a.CreatedAt, a.Email, a.DisplayName}, columns(a)...)
	var (
		curVersion int64
		curCreated time.Time
		newVersion *int64
	)
	err = s.pool.QueryRow(ctx, updateSQL, args...).Scan(&curVersion, &curCreated, &newVersion)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return identity.Account{}, errs.E(op, errs.NotFound, "no such user")
	case postgres.Kind(err) == errs.Conflict && postgres.ConstraintOf(err) == emailConstraint:
		return identity.Account{}, errEmailTaken(op)
	case err != nil:
		return identity.Account{}, storeError(op, err)
	case newVersion != nil:
		a.Version = uint64(*newVersion)
		return a, nil
	case uint64(curVersion) == a.Version && !curCreated.Equal(a.CreatedAt):
		return identity.Account{}, errs.E(op, errs.Invalid, "an account's creation time cannot change")
	}
	// At another version when the statement began, or updated by another
	// transaction while this one waited for the row.
	return identity.Account{}, errVersion(op)
}

// ByID implements identity.Store.
func (s *Store) ByID(ctx context.Context, id string) (identity.Account, error) {
	const op = "identity.by_id"
	if !identity.ValidID(id) {
		return identity.Account{}, errs.E(op, errs.NotFound, "no such user")
	}
	return s.one(ctx, op, `SELECT `+accountColumns+` FROM users WHERE id = $1`, id)
}

// ByEmail implements identity.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (identity.Account, error) {
	const op = "identity.by_email"
	email, err := identity.NormalizeEmail(email)
	if err != nil {
		return identity.Account{}, errs.E(op, errs.NotFound, "no such user")
	}
	// lower($1) matches the index expression, so the unique index is used.
	return s.one(ctx, op, `SELECT `+accountColumns+` FROM users WHERE lower(email) = lower($1)`, email)
}

func (s *Store) one(ctx context.Context, op, query, arg string) (identity.Account, error) {
	var (
		a              identity.Account
		totp, passkeys []byte
		failedAt       *time.Time
		version        int64
	)
	err := s.pool.QueryRow(ctx, query, arg).Scan(&a.ID, &a.Email, &a.DisplayName, &a.CreatedAt,
		&a.EmailVerified, &a.Roles, &a.Password, &totp, &a.Recovery, &passkeys, &a.Failures, &failedAt, &a.Locale, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return identity.Account{}, errs.E(op, errs.NotFound, "no such user")
	}
	if err != nil {
		return identity.Account{}, storeError(op, err)
	}
	if err := json.Unmarshal(totp, &a.TOTP); err != nil {
		return identity.Account{}, errs.E(op, errs.Other, fmt.Errorf("user %s: totp: %w", a.ID, err))
	}
	if err := json.Unmarshal(passkeys, &a.Passkeys); err != nil {
		return identity.Account{}, errs.E(op, errs.Other, fmt.Errorf("user %s: passkeys: %w", a.ID, err))
	}
	// Empty lists read as nil, as from the other stores.
	if len(a.Roles) == 0 {
		a.Roles = nil
	}
	if len(a.Recovery) == 0 {
		a.Recovery = nil
	}
	if len(a.Passkeys) == 0 {
		a.Passkeys = nil
	}
	a.CreatedAt = a.CreatedAt.UTC()
	if failedAt != nil {
		a.FailedAt = failedAt.UTC()
	}
	a.Version = uint64(version)
	return a, nil
}

// PutLink implements identity.Store. The link's user must exist: the
// foreign key refuses it otherwise (errs.Invalid).
func (s *Store) PutLink(ctx context.Context, l identity.Link) error {
	const op = "identity.put_link"
	l, err := identity.CheckLink(l)
	if err != nil {
		return errs.E(op, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO links (hash, purpose, user_id, email, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		l.Hash, l.Purpose, l.UserID, l.Email, l.ExpiresAt)
	if err == nil {
		return nil
	}
	switch postgres.ConstraintOf(err) {
	case linkPkeyConstraint:
		return errs.E(op, errs.Conflict, "a link with this hash exists")
	case linkUserConstraint:
		return errs.E(op, errs.Invalid, "the link's user does not exist")
	}
	return storeError(op, err)
}

// TakeLink implements identity.Store.
func (s *Store) TakeLink(ctx context.Context, hash string) (identity.Link, error) {
	const op = "identity.take_link"
	if !identity.ValidLinkHash(hash) {
		return identity.Link{}, errs.E(op, errs.NotFound, "no such link")
	}
	var l identity.Link
	err := s.pool.QueryRow(ctx, `DELETE FROM links WHERE hash = $1 AND expires_at > now()
		RETURNING hash, purpose, user_id, email, expires_at`, hash).Scan(&l.Hash, &l.Purpose, &l.UserID, &l.Email, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return identity.Link{}, errs.E(op, errs.NotFound, "no such link")
	}
	if err != nil {
		return identity.Link{}, storeError(op, err)
	}
	l.ExpiresAt = l.ExpiresAt.UTC()
	return l, nil
}

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	k := postgres.Kind(err)
	if k == errs.Unavailable {
		return errs.E(op, k, "user store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}
