package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
)

// MigrationsTable records applied migrations, in the first schema of the
// connection's search_path. The component column lets several owning
// packages keep their own version sequences in one database.
const MigrationsTable = "schema_migrations"

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (
	component  text        NOT NULL,
	version    bigint      NOT NULL,
	name       text        NOT NULL,
	checksum   text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
)`

// lockSQL takes the transaction-scoped advisory lock of one component in
// the current schema: runners of the same component in the same schema
// queue behind each other (two processes starting at once), while other
// components and other schemas (parallel tests) do not wait. The key is
// computed by the server, so every process derives the same one.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('ticketing.migrate:' || coalesce(current_schema(), '') || ':' || $1, 0))`

// MigrateOptions tunes Migrate; the zero value is ready to use.
type MigrateOptions struct {
	// StatementTimeout bounds each migration's statements (SET LOCAL
	// statement_timeout). Default 0: no limit, the context bounds the run;
	// the pool's statement_timeout is lifted for migrations, since DDL on
	// a large table may legitimately take longer, and so may waiting for
	// the lock while another process migrates.
	StatementTimeout time.Duration
	// Logger reports each applied version. Default: slog.Default().
	Logger *slog.Logger
}

// Migrate applies src's migrations (files NNNN_name.up.sql, see package
// migrations) that are not yet recorded in schema_migrations: each once, in
// version order, each in its own transaction together with its record, so
// that a failing migration leaves no trace and those before it stay
// applied. Runners are serialized by a transaction-scoped advisory lock
// per component and schema, taken again for every migration, so two
// processes starting at once apply each version exactly once and neither
// fails.
//
// Migrate refuses to run (migrations.ErrChecksumMismatch) when a recorded
// migration's file has changed since it was applied. Recorded versions
// that this binary has no file for are reported in Result.Unknown and are
// not an error: during a rolling deploy an older binary meets a newer
// schema.
//
// A migration runs inside a transaction, so statements that refuse one
// (CREATE INDEX CONCURRENTLY, ALTER TYPE … ADD VALUE before PostgreSQL 12)
// cannot be used; several statements in one file are fine.
func Migrate(ctx context.Context, pool *pgxpool.Pool, src migrations.Source, opts MigrateOptions) (migrations.Result, error) {
	const op = "postgres.migrate"
	var res migrations.Result
	files, err := migrations.Load(src, "sql")
	if err != nil {
		return res, errs.E(op, errs.Invalid, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", src.Component)

	// The bookkeeping table, created under the lock: concurrent CREATE
	// TABLE IF NOT EXISTS can otherwise fail on pg_type's unique index.
	if err := inLockedTx(ctx, pool, src.Component, 0, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, createMigrationsTable)
		return err
	}); err != nil {
		return res, errs.E(op, Kind(err), fmt.Errorf("create %s: %w", MigrationsTable, err))
	}

	applied, err := appliedVersions(ctx, pool, src.Component)
	if err != nil {
		return res, errs.E(op, Kind(err), err)
	}
	res.Unknown, err = migrations.Verify(src.Component, files, applied)
	if err != nil {
		return res, errs.E(op, err)
	}
	if len(res.Unknown) > 0 {
		log.Warn("database has migrations this binary does not know; a newer version ran here", "versions", res.Unknown)
	}
	done := make(map[int64]bool, len(applied))
	for _, a := range applied {
		done[a.Version] = true
	}

	for _, m := range files {
		if done[m.Version] {
			res.Skipped = append(res.Skipped, m.Version)
			continue
		}
		start := time.Now()
		ran := false
		err := inLockedTx(ctx, pool, src.Component, opts.StatementTimeout, func(tx pgx.Tx) error {
			// Another runner may have applied it while we waited.
			var sum string
			err := tx.QueryRow(ctx, `SELECT checksum FROM `+MigrationsTable+` WHERE component = $1 AND version = $2`,
				src.Component, m.Version).Scan(&sum)
			switch {
			case err == nil:
				if sum != m.Checksum {
					return fmt.Errorf("%w: %s version %d (%s) was applied concurrently with another checksum",
						migrations.ErrChecksumMismatch, src.Component, m.Version, m.Name)
				}
				return nil
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			if _, err := tx.Exec(ctx, m.Body); err != nil {
				return fmt.Errorf("%s: %w", m.File, describe(err, m.Body))
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+MigrationsTable+` (component, version, name, checksum) VALUES ($1, $2, $3, $4)`,
				src.Component, m.Version, m.Name, m.Checksum); err != nil {
				return fmt.Errorf("record version %d: %w", m.Version, err)
			}
			ran = true
			return nil
		})
		if err != nil {
			return res, errs.E(op, Kind(err), fmt.Errorf("%s version %d (%s): %w", src.Component, m.Version, m.Name, err))
		}
		if ran {
			res.Applied = append(res.Applied, m.Version)
			log.Info("migration applied", "version", m.Version, "name", m.Name, "took", time.Since(start).Round(time.Millisecond))
		} else {
			res.Skipped = append(res.Skipped, m.Version)
		}
	}
	return res, nil
}

// inLockedTx runs f in a transaction holding the component's advisory lock.
// statementTimeout 0 means none.
func inLockedTx(ctx context.Context, pool *pgxpool.Pool, component string, statementTimeout time.Duration, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Lift the pool's timeout while waiting for the lock: another
		// runner may hold it for as long as its migration takes.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, lockSQL, component); err != nil {
			return fmt.Errorf("advisory lock: %w", err)
		}
		if statementTimeout > 0 {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d`, statementTimeout.Milliseconds())); err != nil {
				return err
			}
		}
		return f(tx)
	})
}

func appliedVersions(ctx context.Context, pool *pgxpool.Pool, component string) ([]migrations.Applied, error) {
	rows, err := pool.Query(ctx, `SELECT version, name, checksum FROM `+MigrationsTable+` WHERE component = $1 ORDER BY version`, component)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (migrations.Applied, error) {
		var a migrations.Applied
		err := r.Scan(&a.Version, &a.Name, &a.Checksum)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	return out, nil
}

// describe adds the line of a PostgreSQL error's position in body.
func describe(err error, body string) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Position <= 0 || int(pe.Position) > len(body) {
		return err
	}
	line := 1
	for _, c := range body[:pe.Position-1] {
		if c == '\n' {
			line++
		}
	}
	return fmt.Errorf("line %d: %w", line, err)
}
