package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/payment/vault"
	"github.com/ticketing/ticketing/services/payment/vault/postgres"
	"github.com/ticketing/ticketing/services/payment/vault/vaulttest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestContract(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) vault.Store {
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
	// The checks hold for writers that skip the vault.
	if _, err := pool.Exec(ctx, `INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_000000000000000000000001', 'k1', decode(repeat('00', 60), 'hex'), now())`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_1', 'k1', decode(repeat('00', 60), 'hex'), now())`,
		`INSERT INTO vault_data_keys (id, kek, wrapped, created_at) VALUES ('dek_000000000000000000000002', 'k1', '\x00', now())`,
		`INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
			VALUES ('pm_00000000000000000000000000000001', 'dek_000000000000000000000009', 'visa', '4242', 12, 2030, 'x', now(), decode(repeat('00', 40), 'hex'))`,
		`INSERT INTO vault_cards (token_id, data_key, brand, last4, exp_month, exp_year, fingerprint, created_at, sealed)
			VALUES ('pm_00000000000000000000000000000001', 'dek_000000000000000000000001', 'visa', '4242424242424242', 12, 2030, 'x', now(), decode(repeat('00', 40), 'hex'))`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}
