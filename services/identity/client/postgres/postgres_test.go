package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/identity/client/clienttest"
	"github.com/ticketing/ticketing/services/identity/client/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	clienttest.Run(t, func(t *testing.T) client.Store {
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
	// Recorded as their own component, beside the users' "identity".
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE component = 'identity_clients' AND version = 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations rows of identity_clients: %d, %v", n, err)
	}
	// Ids order by their bytes whatever the database's default collation
	// (the devstack's is C, so the contract's ListOrderIsBytewise alone
	// would not notice a column without it).
	var coll string
	if err := pool.QueryRow(ctx, `SELECT coalesce(collation_name, '') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'oauth_clients' AND column_name = 'id'`).Scan(&coll); err != nil || coll != "C" {
		t.Fatalf("collation of oauth_clients.id: %q, %v; want C", coll, err)
	}
	// The table's checks hold for writers that skip the domain.
	for _, q := range []string{
		`INSERT INTO oauth_clients (id, name, scopes, created_at) VALUES ('u_1', 'x', '{events:read}', now())`,
		`INSERT INTO oauth_clients (id, name, scopes, created_at) VALUES ('c_1', 'x', '{}', now())`,
		`INSERT INTO oauth_clients (id, name, scopes, secret_hashes, created_at) VALUES ('c_1', 'x', '{events:read}', '{a,b,c}', now())`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("stored: %s", q)
		}
	}
}
