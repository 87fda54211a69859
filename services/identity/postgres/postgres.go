// Package postgres stores identity users in PostgreSQL (the production
// store). Its schema is the embedded migrations/, applied by Migrate.
package postgres

import (
	"context"
	"embed"
	"errors"
	"log/slog"

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

// Constraint names, from migrations/0001_users.up.sql.
const (
	pkeyConstraint  = "users_pkey"
	emailConstraint = "users_email_lower_key"
)

// Create implements identity.Store. The unique indexes decide: of
// concurrent creates with one email, the database lets one commit.
func (s *Store) Create(ctx context.Context, u identity.User) error {
	const op = "identity.create"
	u, err := identity.Normalize(u)
	if err != nil {
		return errs.E(op, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (id, email, display_name, created_at) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Email, u.DisplayName, u.CreatedAt)
	if err == nil {
		return nil
	}
	if postgres.Kind(err) == errs.Conflict {
		switch postgres.ConstraintOf(err) {
		case emailConstraint:
			return errs.E(op, errs.Conflict, "a user with this email address exists").WithReason(identity.ReasonEmailTaken)
		case pkeyConstraint:
			return errs.E(op, errs.Conflict, "the user id is taken").WithReason(identity.ReasonIDTaken)
		}
	}
	return storeError(op, err)
}

// ByID implements identity.Store.
func (s *Store) ByID(ctx context.Context, id string) (identity.User, error) {
	const op = "identity.by_id"
	if !identity.ValidID(id) {
		return identity.User{}, errs.E(op, errs.NotFound, "no such user")
	}
	return s.one(ctx, op, `SELECT id, email, display_name, created_at FROM users WHERE id = $1`, id)
}

// ByEmail implements identity.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (identity.User, error) {
	const op = "identity.by_email"
	email, err := identity.NormalizeEmail(email)
	if err != nil {
		return identity.User{}, errs.E(op, errs.NotFound, "no such user")
	}
	// lower($1) matches the index expression, so the unique index is used.
	return s.one(ctx, op, `SELECT id, email, display_name, created_at FROM users WHERE lower(email) = lower($1)`, email)
}

func (s *Store) one(ctx context.Context, op, query, arg string) (identity.User, error) {
	var u identity.User
	err := s.pool.QueryRow(ctx, query, arg).Scan(&u.ID, &u.Email, &u.DisplayName, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return identity.User{}, errs.E(op, errs.NotFound, "no such user")
	}
	if err != nil {
		return identity.User{}, storeError(op, err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
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
