// Package pgtest gives each test its own PostgreSQL schema on the server
// named by internal/testservers, so that tests run in parallel and again
// without cleaning up after each other.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/testservers"
)

// Config returns a pool config for a new, empty schema that is dropped when
// the test ends. The test is skipped, or fails in CI, when no PostgreSQL
// server is configured.
func Config(t testing.TB) postgres.Config {
	t.Helper()
	url := testservers.PostgresURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return postgres.Config{URL: url, SearchPath: schema, MaxConns: 8, ApplicationName: "ticketing-test"}
}

// Pool opens a pool on a new schema (see Config), closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return Open(t, Config(t))
}

// Open opens a pool with c, closed when the test ends.
func Open(t testing.TB, c postgres.Config) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, c)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
