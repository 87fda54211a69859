// Package postgres keeps the analytics funnels in PostgreSQL (the
// production store): one JSON state per event and the next offset of every
// consumed partition, written in one transaction per batch. Its schema is
// the embedded migrations/, applied by Migrate.
//
// An Apply takes transaction-scoped advisory locks on its partitions and
// on its events (in that order, each sorted, so two appliers never
// deadlock): two consumers that both believe they own a partition apply
// each record once, and two partitions' batches touching one event (queue
// events and inventory events of one event are on different topics) do
// not lose each other's update.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/analytics"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component
// "analytics".
var Migrations = migrations.Source{Component: "analytics", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is an analytics.Store on a migrated pool.
type Store struct{ pool *pgxpool.Pool }

var _ analytics.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const lockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('ticketing.analytics:' || coalesce(current_schema(), '') || ':' || $1, 0))`

func positionsOf(inputs []analytics.Input) []analytics.Position {
	seen := map[analytics.Position]bool{}
	var out []analytics.Position
	for _, in := range inputs {
		if !seen[in.Pos] {
			seen[in.Pos] = true
			out = append(out, in.Pos)
		}
	}
	slices.SortFunc(out, func(a, b analytics.Position) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out
}

// Apply implements analytics.Store.
func (s *Store) Apply(ctx context.Context, inputs []analytics.Input) (int, error) {
	const op = "analytics.apply"
	if len(inputs) == 0 {
		return 0, nil
	}
	positions := positionsOf(inputs)
	ids := analytics.EventIDs(inputs)
	slices.Sort(ids)
	var applied int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, p := range positions {
			if _, err := tx.Exec(ctx, lockSQL, "p:"+p.Topic+":"+strconv.Itoa(int(p.Partition))); err != nil {
				return err
			}
		}
		for _, id := range ids {
			if _, err := tx.Exec(ctx, lockSQL, "e:"+id); err != nil {
				return err
			}
		}
		next, err := offsets(ctx, tx, positions)
		if err != nil {
			return err
		}
		states := map[string]*analytics.State{}
		if len(ids) > 0 {
			rows, err := tx.Query(ctx, `SELECT event_id, state FROM analytics_funnels WHERE event_id = ANY($1)`, ids)
			if err != nil {
				return err
			}
			for rows.Next() {
				var id string
				var b []byte
				if err := rows.Scan(&id, &b); err != nil {
					rows.Close()
					return err
				}
				st := &analytics.State{}
				if err := json.Unmarshal(b, st); err != nil {
					rows.Close()
					return errs.E(op, errs.Other, "stored funnel of "+id+" is corrupt", err)
				}
				states[id] = st
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		changed, moved, n := analytics.Fold(next, states, inputs)
		applied = n
		b := &pgx.Batch{}
		for id, st := range changed {
			j, err := json.Marshal(st)
			if err != nil {
				return err
			}
			b.Queue(`INSERT INTO analytics_funnels (event_id, state) VALUES ($1, $2)
				ON CONFLICT (event_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`, id, j)
		}
		for p, n := range moved {
			b.Queue(`INSERT INTO analytics_offsets (kafka_topic, kafka_partition, next_offset) VALUES ($1, $2, $3)
				ON CONFLICT (kafka_topic, kafka_partition) DO UPDATE SET next_offset = EXCLUDED.next_offset`, p.Topic, p.Partition, n)
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, errs.E(op, postgres.Kind(err), err)
	}
	return applied, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func offsets(ctx context.Context, q querier, ps []analytics.Position) (map[analytics.Position]int64, error) {
	topics := make([]string, len(ps))
	parts := make([]int32, len(ps))
	for i, p := range ps {
		topics[i], parts[i] = p.Topic, p.Partition
	}
	rows, err := q.Query(ctx, `SELECT o.kafka_topic, o.kafka_partition, o.next_offset
		FROM analytics_offsets o JOIN unnest($1::text[], $2::integer[]) AS c(topic, part)
		ON o.kafka_topic = c.topic AND o.kafka_partition = c.part`, topics, parts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[analytics.Position]int64{}
	for rows.Next() {
		var p analytics.Position
		var n int64
		if err := rows.Scan(&p.Topic, &p.Partition, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

// Offsets implements analytics.Store.
func (s *Store) Offsets(ctx context.Context, ps []analytics.Position) (map[analytics.Position]int64, error) {
	out, err := offsets(ctx, s.pool, ps)
	if err != nil {
		return nil, errs.E("analytics.offsets", postgres.Kind(err), err)
	}
	return out, nil
}

// Funnel implements analytics.Store.
func (s *Store) Funnel(ctx context.Context, eventID string) (analytics.Funnel, error) {
	const op = "analytics.funnel"
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT state FROM analytics_funnels WHERE event_id = $1`, eventID).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return analytics.Funnel{}, errs.E(op, errs.NotFound, "no funnel for this event")
	}
	if err != nil {
		return analytics.Funnel{}, errs.E(op, postgres.Kind(err), err)
	}
	var st analytics.State
	if err := json.Unmarshal(b, &st); err != nil {
		return analytics.Funnel{}, errs.E(op, errs.Other, "stored funnel is corrupt", err)
	}
	return st.Funnel(), nil
}
