package postgres_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/ticketing/ticketing/internal/migrations"
	pgpkg "github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/postgres"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore(t *testing.T) *postgres.Store {
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	return postgres.New(pool)
}

func TestContract(t *testing.T) {
	reportingtest.Run(t, func(t *testing.T) reporting.Store { return newStore(t) })
}

func TestMigrations(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1, 2}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if res, err = postgres.Migrate(ctx, pool, quiet); err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
}

// A schema of migration 1 with what a binary of its time wrote (hours with
// the inventory's face values): migration 2 keeps its ticket counts and
// offsets, the store reads them and adds the orders' money, and a binary
// of migration 1 still running (a rolling deploy) can still write its
// rows.
func TestMigrationFromVersion1(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	v1 := migrations.Source{Component: postgres.Migrations.Component, FS: fstest.MapFS{}, Dir: "."}
	b, err := fs.ReadFile(postgres.Migrations.FS, "migrations/0001_reporting.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1.FS.(fstest.MapFS)["0001_reporting.up.sql"] = &fstest.MapFile{Data: b}
	if res, err := pgpkg.Migrate(ctx, pool, v1, pgpkg.MigrateOptions{Logger: quiet}); err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("migration 1: %+v, %v", res, err)
	}
	// What the binary of migration 1 wrote, with its own statement.
	v1Hour := func(held, sold int64, gross int64) {
		t.Helper()
		if _, err := pool.Exec(ctx, `INSERT INTO reporting_hours AS h (event_id, zone, hour, held, released, expired, sold, cancelled, gross_cents, refunded_cents)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (event_id, zone, hour) DO UPDATE SET
				held = h.held + excluded.held, released = h.released + excluded.released,
				expired = h.expired + excluded.expired, sold = h.sold + excluded.sold,
				cancelled = h.cancelled + excluded.cancelled, gross_cents = h.gross_cents + excluded.gross_cents,
				refunded_cents = h.refunded_cents + excluded.refunded_cents`,
			"arena", "floor", reportingtest.T0, held, 0, 0, sold, 0, gross, 0); err != nil {
			t.Fatal(err)
		}
	}
	v1Hour(2, 2, 20000)
	for _, q := range []string{
		`INSERT INTO reporting_events (event_id, organizer_id, currency, last_at) VALUES ('arena', 'org1', 'USD', '2026-05-04T10:01:00Z')`,
		`INSERT INTO reporting_levels (event_id, zone, held, sold) VALUES ('arena', 'floor', 0, 2)`,
		`INSERT INTO reporting_cursors (topic, partition, next_offset, recent_ids) VALUES ('ticketing.inventory', 0, 2, '{a,b}')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if res, err := postgres.Migrate(ctx, pool, quiet); err != nil || !slices.Equal(res.Applied, []int64{2}) {
		t.Fatalf("migration 2: %+v, %v", res, err)
	}
	s := postgres.New(pool)
	inv := reporting.Partition{Topic: reportingtest.InventoryTopic, Partition: 0}
	if off, err := s.Offsets(ctx, []reporting.Partition{inv}); err != nil || off[inv] != 2 {
		t.Fatalf("offsets after migration 2: %v, %v", off, err)
	}
	paid := reportingtest.OrderBody(reportingtest.Ord{Type: "paid", Order: "o1", EventID: "arena", Organizer: "org1", Subtotal: 15000, Fees: 500})
	if a, err := s.Apply(ctx, reportingtest.Records(reportingtest.EventsTopic, 0, 0, paid)); err != nil || a.Applied != 1 {
		t.Fatalf("apply: %+v, %v", a, err)
	}
	v1Hour(1, 0, 9999) // an old binary's write, in the rolling deploy
	v, err := s.Event(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	r := reporting.BuildReport(v)
	if r.Totals.Held != 3 || r.Totals.Sold != 2 || r.Totals.SoldNow != 2 || r.Totals.OrdersPaid != 1 || r.Totals.GrossCents != 15000 ||
		r.Totals.CapturedCents != 15500 || r.Totals.NetCents != 15500 || r.OrganizerID != "org1" {
		t.Fatalf("report after migration 2: %+v", r)
	}
}

// A transaction that dies after writing the aggregates and the cursors,
// before its commit, leaves nothing: neither the aggregates nor the
// offsets moved, and applying the batch again counts it once.
func TestKilledBeforeCommit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	recs := reportingtest.Sample()
	if _, err := s.Apply(ctx, recs[:3]); err != nil {
		t.Fatal(err)
	}
	errKill := errors.New("killed")
	s.SetBeforeCommit(func() error { return errKill })
	if _, err := s.Apply(ctx, recs[3:]); !errors.Is(err, errKill) {
		t.Fatalf("apply: %v, want the kill", err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs[:3]), "arena", "club")
	off, err := s.Offsets(ctx, []reporting.Partition{{Topic: "ticketing.inventory", Partition: 0}, {Topic: "ticketing.inventory", Partition: 1}})
	if err != nil || len(off) != 1 || off[reporting.Partition{Topic: "ticketing.inventory", Partition: 0}] != 3 {
		t.Fatalf("offsets after the rolled-back apply: %v, %v", off, err)
	}
	s.SetBeforeCommit(nil)
	if _, err := s.Apply(ctx, recs); err != nil {
		t.Fatal(err)
	}
	reportingtest.Check(t, s, reportingtest.Expected(recs), "arena", "club")
}
