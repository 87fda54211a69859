package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/identitytest"
	"github.com/ticketing/ticketing/services/identity/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	identitytest.Run(t, func(t *testing.T) identity.Store {
		pool := pgtest.Pool(t)
		if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
			t.Fatal(err)
		}
		return postgres.New(pool)
	})
}

func TestMigrations(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	res, err = postgres.Migrate(ctx, pool, quiet)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	// The unique index holds for writers that skip the domain's
	// normalization too.
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, created_at) VALUES ('a', 'Mixed@Example.com', now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, created_at) VALUES ('b', 'mixed@example.com', now())`); err == nil {
		t.Fatal("a second user with the same address in another case was stored")
	}
}
