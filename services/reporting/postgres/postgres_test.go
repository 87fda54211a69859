package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"testing"

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
	if err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if res, err = postgres.Migrate(ctx, pool, quiet); err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
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
