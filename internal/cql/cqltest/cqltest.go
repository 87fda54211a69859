// Package cqltest gives a test its own keyspace on the CQL server named by
// internal/testservers (Cassandra in tests, a single node: consistency ONE,
// one replica), dropped when the test ends, so that tests run in parallel
// and again without cleaning up after each other.
package cqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/scylladb/gocqlx/v2"

	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/testservers"
)

// Config returns the config of a new keyspace, created already. The test
// is skipped, or fails in CI, when no CQL server is configured.
func Config(t testing.TB) cql.Config {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := cql.Config{
		Hosts:             testservers.CQLHosts(t),
		Keyspace:          "t_" + hex.EncodeToString(b[:]),
		Consistency:       "ONE",
		Replication:       map[string]int{"datacenter1": 1},
		DisableHostLookup: true,
		NumConns:          1,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cql.EnsureKeyspace(ctx, c); err != nil {
		t.Fatalf("cqltest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cql.DropKeyspace(ctx, c); err != nil {
			t.Errorf("cqltest: %v", err)
		}
	})
	return c
}

// Open opens a session with c, closed when the test ends.
func Open(t testing.TB, c cql.Config) gocqlx.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := cql.Open(ctx, c)
	if err != nil {
		t.Fatalf("cqltest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Session opens a session on a new keyspace (see Config).
func Session(t testing.TB) (gocqlx.Session, cql.Config) {
	t.Helper()
	c := Config(t)
	return Open(t, c), c
}
