// Package postgres is the notification.Ledger in PostgreSQL, through
// pgx: one row per delivery. Its schema is the embedded migrations/,
// applied by Migrate.
package postgres

import (
	"context"
	"embed"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/notification"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this ledger, recorded as component
// "notification".
var Migrations = migrations.Source{Component: "notification", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the ledger's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Ledger is a notification.Ledger on a migrated pool.
type Ledger struct {
	pool *pgxpool.Pool
}

var _ notification.Ledger = (*Ledger)(nil)

// New returns a ledger on pool.
func New(pool *pgxpool.Pool) *Ledger { return &Ledger{pool: pool} }

func storeError(op string, err error) error {
	return errs.E(op, postgres.Kind(err), "notification ledger unavailable", err)
}

// Begin implements notification.Ledger: one statement inserts the row
// or, when it exists, reads whether it is done.
func (l *Ledger) Begin(ctx context.Context, key string) (bool, error) {
	const op = "notification.begin"
	if !notification.ValidKey(key) {
		return false, notification.BadKey(op)
	}
	var done bool
	err := l.pool.QueryRow(ctx, `INSERT INTO notification_deliveries (key) VALUES ($1)
		ON CONFLICT (key) DO UPDATE SET key = EXCLUDED.key RETURNING done`, key).Scan(&done)
	if err != nil {
		return false, storeError(op, err)
	}
	return done, nil
}

// Finish implements notification.Ledger.
func (l *Ledger) Finish(ctx context.Context, key string) error {
	const op = "notification.finish"
	if !notification.ValidKey(key) {
		return notification.BadKey(op)
	}
	_, err := l.pool.Exec(ctx, `INSERT INTO notification_deliveries (key, done, finished_at) VALUES ($1, true, now())
		ON CONFLICT (key) DO UPDATE SET done = true, finished_at = coalesce(notification_deliveries.finished_at, now())`, key)
	if err != nil {
		return storeError(op, err)
	}
	return nil
}
