// Package postgres stores partner clients in PostgreSQL (the production
// store), in the table oauth_clients. Its schema is the embedded
// migrations/, applied by Migrate and recorded as its own component,
// "identity_clients", beside the identity users' "identity".
//
// Version is a counter in the row, starting at 1: Update is an UPDATE whose
// WHERE names the version read, so of concurrent updates from one version
// the database lets one change the row.
package postgres

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"math"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/identity/client"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component
// "identity_clients".
var Migrations = migrations.Source{Component: "identity_clients", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is a client.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
}

var _ client.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// pkeyConstraint is the primary key's name, from
// migrations/0001_oauth_clients.up.sql.
const pkeyConstraint = "oauth_clients_pkey"

const columns = `id, name, scopes, secret_hashes, disabled, created_at, channel, version`

// Create implements client.Store. The primary key decides: of concurrent
// creates with one id, the database lets one commit.
func (s *Store) Create(ctx context.Context, c client.Client) (client.Client, error) {
	const op = "client.postgres.create"
	c, err := client.Normalize(c)
	if err != nil {
		return client.Client{}, errs.E(op, err)
	}
	var version int64
	err = s.pool.QueryRow(ctx, `INSERT INTO oauth_clients (`+columns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 1) RETURNING version`,
		c.ID, c.Name, c.Scopes, hashes(c.SecretHashes), c.Disabled, c.CreatedAt, c.Channel).Scan(&version)
	if err != nil {
		if postgres.Kind(err) == errs.Conflict && postgres.ConstraintOf(err) == pkeyConstraint {
			return client.Client{}, errs.E(op, errs.Conflict, "the client id is taken").WithReason(client.ReasonIDTaken)
		}
		return client.Client{}, storeError(op, err)
	}
	c.Version = uint64(version)
	return c, nil
}

// hashes is never nil: the column is NOT NULL.
func hashes(h []string) []string {
	if h == nil {
		return []string{}
	}
	return h
}

// ByID implements client.Store.
func (s *Store) ByID(ctx context.Context, id string) (client.Client, error) {
	const op = "client.postgres.by_id"
	if !client.ValidID(id) {
		return client.Client{}, errs.E(op, errs.NotFound, "no such client")
	}
	c, err := scan(s.pool.QueryRow(ctx, `SELECT `+columns+` FROM oauth_clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return client.Client{}, errs.E(op, errs.NotFound, "no such client")
	}
	if err != nil {
		return client.Client{}, storeError(op, err)
	}
	return c, nil
}

// Update implements client.Store. The UPDATE matches the id, the version
// and CreatedAt; only when it changes no row is the row read to tell why.
func (s *Store) Update(ctx context.Context, c client.Client) (client.Client, error) {
	const op = "client.postgres.update"
	c, err := client.Normalize(c)
	if err != nil {
		return client.Client{}, errs.E(op, err)
	}
	mismatch := errs.E(op, errs.Conflict, "the client changed since it was read").WithReason(client.ReasonVersionMismatch)
	if c.Version > math.MaxInt64 {
		// No row has it; tell a missing client apart.
		if _, err := s.ByID(ctx, c.ID); err != nil {
			return client.Client{}, errs.E(op, err)
		}
		return client.Client{}, mismatch
	}
	var version int64
	err = s.pool.QueryRow(ctx, `UPDATE oauth_clients
		SET name = $3, scopes = $4, secret_hashes = $5, disabled = $6, channel = $7, version = version + 1
		WHERE id = $1 AND version = $2 AND created_at = $8
		RETURNING version`,
		c.ID, int64(c.Version), c.Name, c.Scopes, hashes(c.SecretHashes), c.Disabled, c.Channel, c.CreatedAt).Scan(&version)
	if err == nil {
		c.Version = uint64(version)
		return c, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return client.Client{}, storeError(op, err)
	}
	old, err := s.ByID(ctx, c.ID)
	switch {
	case err != nil:
		return client.Client{}, errs.E(op, err)
	case old.Version != c.Version:
		return client.Client{}, mismatch
	case !old.CreatedAt.Equal(c.CreatedAt):
		return client.Client{}, errs.E(op, errs.Invalid, "a client's created at cannot change")
	}
	// Changed and changed back to this version between the two
	// statements cannot happen (versions only grow): the row was updated
	// after the UPDATE looked, which is a mismatch all the same.
	return client.Client{}, mismatch
}

// List implements client.Store.
func (s *Store) List(ctx context.Context, after string, limit int) ([]client.Client, error) {
	const op = "client.postgres.list"
	if limit < 1 || limit > client.MaxList {
		return nil, errs.Errorf(op, errs.Invalid, "limit must be 1-%d", client.MaxList)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+columns+` FROM oauth_clients WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, storeError(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (client.Client, error) { return scan(r) })
	if err != nil {
		return nil, storeError(op, err)
	}
	return out, nil
}

func scan(r pgx.Row) (client.Client, error) {
	var (
		c       client.Client
		version int64
	)
	if err := r.Scan(&c.ID, &c.Name, &c.Scopes, &c.SecretHashes, &c.Disabled, &c.CreatedAt, &c.Channel, &version); err != nil {
		return client.Client{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.Version = uint64(version)
	if len(c.Scopes) == 0 {
		c.Scopes = nil
	}
	if len(c.SecretHashes) == 0 {
		c.SecretHashes = nil
	}
	return c, nil
}

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	k := postgres.Kind(err)
	if k == errs.Unavailable {
		return errs.E(op, k, "client store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}
