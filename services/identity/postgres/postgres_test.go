package postgres_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	ipostgres "github.com/ticketing/ticketing/internal/postgres"
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
	if err != nil || !slices.Equal(res.Applied, []int64{1, 2, 3}) {
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
	// So do the links' checks.
	for _, q := range []string{
		`INSERT INTO links (hash, purpose, user_id, email, expires_at) VALUES ('ABC', 'verify', 'a', 'a@example.com', now())`,
		`INSERT INTO links (hash, purpose, user_id, email, expires_at) VALUES (repeat('a', 64), 'verify', 'nobody', 'a@example.com', now())`,
		`UPDATE users SET failures = -1 WHERE id = 'a'`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}

// Users stored before accounts existed read as accounts with the
// defaults, and can be updated.
func TestMigrationKeepsUsers(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	first, err := fs.ReadFile(postgres.Migrations.FS, "migrations/0001_users.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1 := migrations.Source{Component: postgres.Migrations.Component, Dir: ".",
		FS: fstest.MapFS{"0001_users.up.sql": {Data: first}}}
	if _, err := ipostgres.Migrate(ctx, pool, v1, ipostgres.MigrateOptions{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, display_name, created_at) VALUES ('u_old', 'old@example.com', 'Old', $1)`, created); err != nil {
		t.Fatal(err)
	}
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{2, 3}) {
		t.Fatalf("migrating to accounts: %+v, %v", res, err)
	}
	s := postgres.New(pool)
	a, err := s.ByEmail(ctx, "old@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Account{User: identity.User{ID: "u_old", Email: "old@example.com", DisplayName: "Old", CreatedAt: created}, Version: 1}
	if a.User != want.User || a.Version != 1 || a.EmailVerified || a.Roles != nil || a.Password != "" ||
		a.TOTP != (identity.TOTP{}) || a.Recovery != nil || a.Passkeys != nil || a.Failures != 0 || !a.FailedAt.IsZero() {
		t.Fatalf("migrated user reads as %+v, want %+v", a, want)
	}
	a.EmailVerified = true
	if a, err = s.Update(ctx, a); err != nil || a.Version != 2 {
		t.Fatalf("Update = %+v, %v", a, err)
	}
	_, err = s.Update(ctx, want)
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != identity.ReasonVersionMismatch {
		t.Fatalf("stale update: %v", err)
	}
}
