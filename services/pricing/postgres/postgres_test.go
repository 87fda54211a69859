package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/pricing"
	"github.com/ticketing/ticketing/services/pricing/postgres"
	"github.com/ticketing/ticketing/services/pricing/pricingtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	pricingtest.Run(t, func(t *testing.T) pricing.Store {
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
	if err != nil || !slices.Equal(res.Applied, []int64{1, 2}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	res, err = postgres.Migrate(ctx, pool, quiet)
	if err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	var component string
	if err := pool.QueryRow(ctx, `SELECT component FROM schema_migrations WHERE version = 1`).Scan(&component); err != nil || component != "pricing" {
		t.Fatalf("recorded as %q, %v", component, err)
	}
	// The checks hold for writers that skip the domain.
	for _, q := range []string{
		`INSERT INTO pricing_rules (event, version, rules) VALUES ('Bad Event', 1, '{}')`,
		`INSERT INTO pricing_rules (event, version, rules) VALUES ('e', 0, '{}')`,
		`INSERT INTO pricing_vouchers (code, voucher) VALUES ('lower', '{}')`,
		`INSERT INTO pricing_redemptions (code, order_id, account, redeemed_at) VALUES ('NOSUCH', 'o', 'a', now())`,
		`INSERT INTO pricing_addon_stock (event, addon, reserved) VALUES ('e', 'a', -1)`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}
