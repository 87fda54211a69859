// Package postgres stores the audit chains in PostgreSQL (the production
// store): one append-only table, audit_entries, whose triggers refuse
// UPDATE, DELETE and TRUNCATE. Its schema is the embedded migrations/,
// applied by Migrate.
//
// Appends to a chain are serialized by a transaction-scoped advisory lock
// per chain, so that two consumers that both believe they own a partition
// (during a rebalance) append each record once: the second reads the head
// the first committed and skips what it holds. An Append call is one
// transaction: all of its records or none.
package postgres

import (
	"context"
	"embed"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/audit"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component "audit".
var Migrations = migrations.Source{Component: "audit", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is an audit.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
}

var _ audit.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// lockSQL takes the append lock of one chain, in the current schema.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('ticketing.audit:' || coalesce(current_schema(), '') || ':' || $1 || ':' || ($2::integer)::text, 0))`

const headsSQL = `
SELECT c.topic, c.part, e.seq, e.kafka_offset, e.hash
FROM unnest($1::text[], $2::integer[]) AS c(topic, part)
CROSS JOIN LATERAL (
	SELECT seq, kafka_offset, hash FROM audit_entries
	WHERE kafka_topic = c.topic AND kafka_partition = c.part
	ORDER BY seq DESC LIMIT 1
) e`

// Append implements audit.Store.
func (s *Store) Append(ctx context.Context, recs []audit.Record) (audit.AppendResult, error) {
	const op = "audit.append"
	if err := audit.CheckOrder(recs); err != nil {
		return audit.AppendResult{}, err
	}
	if len(recs) == 0 {
		return audit.AppendResult{}, nil
	}
	chains := chainsOf(recs)
	var res audit.AppendResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, c := range chains { // in order: no deadlock between appenders
			if _, err := tx.Exec(ctx, lockSQL, c.Topic, c.Partition); err != nil {
				return err
			}
		}
		heads, err := heads(ctx, tx, chains)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		if ids := audit.IDs(recs); len(ids) > 0 {
			rows, err := tx.Query(ctx, `SELECT event_id FROM audit_entries WHERE event_id = ANY($1)`, ids)
			if err != nil {
				return err
			}
			found, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, id := range found {
				known[id] = true
			}
		}
		entries, r, err := audit.Plan(heads, known, recs)
		if err != nil {
			return err
		}
		res = r
		if len(entries) == 0 {
			return nil
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"audit_entries"},
			[]string{"kafka_topic", "kafka_partition", "seq", "kafka_offset", "event_id", "event_type", "event_time", "body", "prev_hash", "hash"},
			pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
				e := &entries[i]
				body := e.Body
				if body == nil {
					body = []byte{}
				}
				return []any{e.Topic, e.Partition, e.Seq, e.Offset, e.EventID, e.Type, e.Time, body, e.PrevHash[:], e.Hash[:]}, nil
			}))
		return err
	})
	if err != nil {
		return audit.AppendResult{}, errs.E(op, postgres.Kind(err), err)
	}
	return res, nil
}

func chainsOf(recs []audit.Record) []audit.Chain {
	seen := map[audit.Chain]bool{}
	var out []audit.Chain
	for _, r := range recs {
		if c := r.Chain(); !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sortChains(out)
	return out
}

func sortChains(cs []audit.Chain) {
	slices.SortFunc(cs, func(a, b audit.Chain) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func heads(ctx context.Context, q querier, chains []audit.Chain) (map[audit.Chain]audit.Head, error) {
	topics := make([]string, len(chains))
	parts := make([]int32, len(chains))
	for i, c := range chains {
		topics[i], parts[i] = c.Topic, c.Partition
	}
	rows, err := q.Query(ctx, headsSQL, topics, parts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[audit.Chain]audit.Head{}
	for rows.Next() {
		var (
			c    audit.Chain
			h    audit.Head
			hash []byte
		)
		if err := rows.Scan(&c.Topic, &c.Partition, &h.Seq, &h.Offset, &hash); err != nil {
			return nil, err
		}
		// A malformed stored hash (tampering) chains the next entry to a
		// zero hash; Verify reports the malformed one.
		h.Hash, _ = audit.HashFromBytes(hash)
		out[c] = h
	}
	return out, rows.Err()
}

// Heads implements audit.Store.
func (s *Store) Heads(ctx context.Context, chains []audit.Chain) (map[audit.Chain]audit.Head, error) {
	out, err := heads(ctx, s.pool, chains)
	if err != nil {
		return nil, errs.E("audit.heads", postgres.Kind(err), err)
	}
	return out, nil
}

// Chains implements audit.Reader.
func (s *Store) Chains(ctx context.Context) ([]audit.Chain, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT kafka_topic, kafka_partition FROM audit_entries`)
	if err != nil {
		return nil, errs.E("audit.chains", postgres.Kind(err), err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Chain, error) {
		var c audit.Chain
		err := r.Scan(&c.Topic, &c.Partition)
		return c, err
	})
	if err != nil {
		return nil, errs.E("audit.chains", postgres.Kind(err), err)
	}
	sortChains(out)
	return out, nil
}

// Entries implements audit.Reader, in insertion order (pos).
func (s *Store) Entries(ctx context.Context, c audit.Chain, fn func(audit.Entry) error) error {
	const op = "audit.entries"
	rows, err := s.pool.Query(ctx, `
		SELECT seq, kafka_offset, event_id, event_type, event_time, body, prev_hash, hash
		FROM audit_entries WHERE kafka_topic = $1 AND kafka_partition = $2 ORDER BY pos`, c.Topic, c.Partition)
	if err != nil {
		return errs.E(op, postgres.Kind(err), err)
	}
	defer rows.Close()
	var pos int64
	for rows.Next() {
		pos++
		e := audit.Entry{Topic: c.Topic, Partition: c.Partition}
		var prev, hash []byte
		if err := rows.Scan(&e.Seq, &e.Offset, &e.EventID, &e.Type, &e.Time, &e.Body, &prev, &hash); err != nil {
			return errs.E(op, postgres.Kind(err), err)
		}
		e.Time = e.Time.UTC()
		if e.PrevHash, err = audit.HashFromBytes(prev); err == nil {
			e.Hash, err = audit.HashFromBytes(hash)
		}
		if err != nil {
			return &audit.MalformedError{Chain: c, Position: pos, Err: err}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return errs.E(op, postgres.Kind(err), err)
	}
	return nil
}
