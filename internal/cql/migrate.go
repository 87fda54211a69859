package cql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
)

// Tables the runner keeps in the keyspace.
const (
	MigrationsTable = "schema_migrations"
	LocksTable      = "schema_migration_locks"
)

var bookkeeping = []string{
	`CREATE TABLE IF NOT EXISTS ` + MigrationsTable + ` (
	component  text,
	version    bigint,
	name       text,
	checksum   text,
	applied_at timestamp,
	PRIMARY KEY ((component), version)
)`,
	`CREATE TABLE IF NOT EXISTS ` + LocksTable + ` (
	component   text PRIMARY KEY,
	owner       text,
	acquired_at timestamp
)`,
}

// MigrateOptions tunes Migrate; the zero value is ready to use.
type MigrateOptions struct {
	// LockTTL is how long the migration lock outlives a runner that died
	// holding it. The runner renews it every LockTTL/3. Default 1m.
	LockTTL time.Duration
	// Logger reports each applied version. Default slog.Default().
	Logger *slog.Logger
}

// Migrate applies src's migrations (files NNNN_name.up.cql, see package
// migrations) that are not yet recorded in the keyspace's
// schema_migrations table: each once, in version order, statement by
// statement (statements end with ';'), waiting for the cluster to agree on
// the schema after each.
//
// Runners are serialized by a lock row taken with a lightweight
// transaction (INSERT … IF NOT EXISTS USING TTL, at SERIAL consistency:
// across data centers), renewed while the runner works and expiring if it
// dies. A migration is recorded with INSERT … IF NOT EXISTS too, so even a
// runner that lost its lock cannot record a version twice.
//
// CQL has no transactions: a migration that fails halfway is not recorded,
// and its statements run again from the first on the next run. Write every
// statement so that running it again is harmless: CREATE … IF NOT EXISTS,
// ALTER … ADD only with a new migration. Migrate refuses to run
// (migrations.ErrChecksumMismatch) when a recorded migration's file has
// changed; recorded versions without a file are reported in Result.Unknown.
//
// sess must be bound to the keyspace (Open).
func Migrate(ctx context.Context, sess gocqlx.Session, src migrations.Source, opts MigrateOptions) (res migrations.Result, err error) {
	const op = "cql.migrate"
	files, err := migrations.Load(src, "cql")
	if err != nil {
		return res, errs.E(op, errs.Invalid, err)
	}
	bodies := make(map[int64][]string, len(files))
	for _, f := range files {
		stmts, err := SplitStatements(f.Body)
		if err != nil {
			return res, errs.E(op, errs.Invalid, fmt.Errorf("%s: %w", f.File, err))
		}
		if len(stmts) == 0 {
			return res, errs.E(op, errs.Invalid, fmt.Errorf("%s: no statements", f.File))
		}
		bodies[f.Version] = stmts
	}
	if opts.LockTTL == 0 {
		opts.LockTTL = time.Minute
	}
	if opts.LockTTL < 3*time.Second {
		return res, errs.Errorf(op, errs.Invalid, "lock TTL %v is below 3s", opts.LockTTL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", src.Component)

	for _, stmt := range bookkeeping {
		if err := sess.ContextQuery(ctx, stmt, nil).ExecRelease(); err != nil {
			return res, errs.E(op, Kind(err), fmt.Errorf("create bookkeeping table: %w", err))
		}
	}
	if err := sess.AwaitSchemaAgreement(ctx); err != nil {
		return res, errs.E(op, errs.Unavailable, fmt.Errorf("schema agreement: %w", err))
	}

	lock, err := acquire(ctx, sess, src.Component, opts.LockTTL)
	if err != nil {
		return res, errs.E(op, Kind(err), err)
	}
	// Work under a context that ends when the lock is lost.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopRenew := lock.keep(ctx, cancel)
	defer func() {
		stopRenew()
		if rerr := lock.release(ctx); rerr != nil && err == nil {
			log.Warn("migration lock not released; it expires by itself", "err", rerr)
		}
	}()

	applied, err := appliedVersions(ctx, sess, src.Component)
	if err != nil {
		return res, errs.E(op, Kind(err), err)
	}
	res.Unknown, err = migrations.Verify(src.Component, files, applied)
	if err != nil {
		return res, errs.E(op, err)
	}
	if len(res.Unknown) > 0 {
		log.Warn("keyspace has migrations this binary does not know; a newer version ran here", "versions", res.Unknown)
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
		for i, stmt := range bodies[m.Version] {
			if err := sess.ContextQuery(ctx, stmt, nil).ExecRelease(); err != nil {
				if cause := context.Cause(ctx); cause != nil {
					err = cause
				}
				return res, errs.E(op, Kind(err), fmt.Errorf("%s version %d (%s), %s statement %d: %w",
					src.Component, m.Version, m.Name, m.File, i+1, err))
			}
			if err := sess.AwaitSchemaAgreement(ctx); err != nil {
				return res, errs.E(op, errs.Unavailable, fmt.Errorf("schema agreement: %w", err))
			}
		}
		ran, err := record(ctx, sess, src.Component, m)
		if err != nil {
			return res, errs.E(op, Kind(err), err)
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

// record inserts m's row unless it exists; it reports whether it did. An
// existing row (a runner that lost its lock got there first) must match.
func record(ctx context.Context, sess gocqlx.Session, component string, m migrations.Migration) (bool, error) {
	var existing struct {
		Component string
		Version   int64
		Name      string
		Checksum  string
		AppliedAt time.Time
	}
	applied, err := sess.ContextQuery(ctx, `INSERT INTO `+MigrationsTable+` (component, version, name, checksum, applied_at)
		VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`, nil).
		Bind(component, m.Version, m.Name, m.Checksum, time.Now().UTC()).
		SerialConsistency(gocql.Serial).
		GetCASRelease(&existing)
	if err != nil {
		return false, fmt.Errorf("record version %d: %w", m.Version, err)
	}
	if !applied && existing.Checksum != m.Checksum {
		return false, fmt.Errorf("%w: %s version %d (%s) was recorded concurrently with another checksum",
			migrations.ErrChecksumMismatch, component, m.Version, m.Name)
	}
	return applied, nil
}

func appliedVersions(ctx context.Context, sess gocqlx.Session, component string) ([]migrations.Applied, error) {
	var rows []struct {
		Version  int64
		Name     string
		Checksum string
	}
	if err := sess.ContextQuery(ctx, `SELECT version, name, checksum FROM `+MigrationsTable+` WHERE component = ?`, nil).
		Bind(component).SelectRelease(&rows); err != nil {
		return nil, fmt.Errorf("read %s: %w", MigrationsTable, err)
	}
	out := make([]migrations.Applied, len(rows))
	for i, r := range rows {
		out[i] = migrations.Applied{Version: r.Version, Name: r.Name, Checksum: r.Checksum}
	}
	return out, nil
}

// migrationLock is a held lock row.
type migrationLock struct {
	sess      gocqlx.Session
	component string
	owner     string
	ttl       time.Duration
}

// ErrLockLost means the runner's lock expired or was taken while it
// worked; it stops.
var ErrLockLost = errors.New("cql: migration lock lost")

func acquire(ctx context.Context, sess gocqlx.Session, component string, ttl time.Duration) (*migrationLock, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	l := &migrationLock{sess: sess, component: component, owner: hex.EncodeToString(b[:]), ttl: ttl}
	wait := 50 * time.Millisecond
	for {
		var holder struct {
			Component  string
			Owner      string
			AcquiredAt time.Time
		}
		applied, err := sess.ContextQuery(ctx, `INSERT INTO `+LocksTable+` (component, owner, acquired_at)
			VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`, nil).
			Bind(component, l.owner, time.Now().UTC(), int(ttl.Seconds())).
			SerialConsistency(gocql.Serial).
			GetCASRelease(&holder)
		if err != nil {
			return nil, fmt.Errorf("migration lock: %w", err)
		}
		if applied || holder.Owner == l.owner { // ours (a retried insert)
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("migration lock held by %s since %v: %w", holder.Owner, holder.AcquiredAt, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// keep renews the lock every ttl/3 until stop is called; if the lock is
// lost it cancels the run with ErrLockLost.
func (l *migrationLock) keep(ctx context.Context, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(l.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			applied, err := l.sess.ContextQuery(ctx, `UPDATE `+LocksTable+` USING TTL ? SET owner = ?, acquired_at = ?
				WHERE component = ? IF owner = ?`, nil).
				Bind(int(l.ttl.Seconds()), l.owner, time.Now().UTC(), l.component, l.owner).
				SerialConsistency(gocql.Serial).
				ExecCASRelease()
			if err == nil && !applied {
				cancel(ErrLockLost)
				return
			}
			// An error is retried on the next tick; the TTL leaves time.
		}
	}()
	return func() { close(done); <-finished }
}

func (l *migrationLock) release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := l.sess.ContextQuery(ctx, `DELETE FROM `+LocksTable+` WHERE component = ? IF owner = ?`, nil).
		Bind(l.component, l.owner).SerialConsistency(gocql.Serial).ExecCASRelease()
	return err
}

// SplitStatements splits a CQL script at the semicolons that end its
// statements, skipping those inside string literals ('…' with ” for a
// quote), quoted identifiers ("…"), $$…$$ function bodies and comments
// (-- and // to the end of the line, /* … */). It drops comments-only and
// empty statements; a trailing statement without ';' counts.
func SplitStatements(script string) ([]string, error) {
	var (
		out   []string
		cur   strings.Builder
		empty = true // cur holds nothing but whitespace and comments
	)
	flush := func() {
		if !empty {
			out = append(out, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
		empty = true
	}
	for i := 0; i < len(script); {
		c := script[i]
		rest := script[i:]
		switch {
		case strings.HasPrefix(rest, "--"), strings.HasPrefix(rest, "//"):
			end := strings.IndexByte(rest, '\n')
			if end < 0 {
				end = len(rest)
			}
			i += end
		case strings.HasPrefix(rest, "/*"):
			end := strings.Index(rest[2:], "*/")
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += end + 4
			cur.WriteByte(' ')
		case strings.HasPrefix(rest, "$$"):
			end := strings.Index(rest[2:], "$$")
			if end < 0 {
				return nil, errors.New("unterminated $$ literal")
			}
			cur.WriteString(rest[:end+4])
			i += end + 4
			empty = false
		case c == '\'' || c == '"':
			j := 1
			for {
				k := strings.IndexByte(rest[j:], c)
				if k < 0 {
					return nil, fmt.Errorf("unterminated %c literal", c)
				}
				j += k + 1
				if j < len(rest) && rest[j] == c { // doubled: an escaped quote
					j++
					continue
				}
				break
			}
			cur.WriteString(rest[:j])
			i += j
			empty = false
		case c == ';':
			flush()
			i++
		default:
			cur.WriteByte(c)
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				empty = false
			}
			i++
		}
	}
	flush()
	return out, nil
}
