package cql_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/cql/cqltest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
)

func TestConfigDefaults(t *testing.T) {
	c := cql.Config{Hosts: []string{"10.0.0.1"}, Keyspace: "fulfillment"}
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Consistency != "LOCAL_QUORUM" || c.SerialConsistency != "LOCAL_SERIAL" || c.Replication["datacenter1"] != 3 {
		t.Fatalf("defaults: %+v", c)
	}
	if got := c.ReplicationCQL(); got != "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3}" {
		t.Fatalf("ReplicationCQL = %s", got)
	}
	cl, err := c.Cluster(true)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Consistency != gocql.LocalQuorum || cl.SerialConsistency != gocql.LocalSerial || cl.Keyspace != "fulfillment" {
		t.Fatalf("cluster: consistency %v serial %v keyspace %q", cl.Consistency, cl.SerialConsistency, cl.Keyspace)
	}
	c = cql.Config{Hosts: []string{"a:9042"}, Keyspace: "k", Replication: map[string]int{"eu-west": 3, "us-east": 5}}
	if got := c.ReplicationCQL(); got != "{'class': 'NetworkTopologyStrategy', 'eu-west': 3, 'us-east': 5}" {
		t.Fatalf("ReplicationCQL = %s", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*cql.Config)
		want string
	}{
		{"no hosts", func(c *cql.Config) { c.Hosts = nil }, "host"},
		{"bad port", func(c *cql.Config) { c.Hosts = []string{"h:99999"} }, "port"},
		{"keyspace", func(c *cql.Config) { c.Keyspace = "Bad-Name" }, "keyspace"},
		{"keyspace injection", func(c *cql.Config) { c.Keyspace = "k; drop keyspace x" }, "keyspace"},
		{"dc", func(c *cql.Config) { c.Replication = map[string]int{"dc'1": 3} }, "data center"},
		{"rf", func(c *cql.Config) { c.Replication = map[string]int{"dc1": 0} }, "replicas"},
		{"consistency", func(c *cql.Config) { c.Consistency = "MOST" }, "consistency"},
		{"serial", func(c *cql.Config) { c.SerialConsistency = "QUORUM" }, "serial"},
		{"conns", func(c *cql.Config) { c.NumConns = 1000 }, "conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cql.Config{Hosts: []string{"127.0.0.1:9042"}, Keyspace: "k"}
			tc.edit(&c)
			c.Defaults()
			err := c.Validate()
			if !errs.Is(errs.Invalid, err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want invalid naming %q", err, tc.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	script := `
-- a comment; with a semicolon
CREATE TABLE a (id text PRIMARY KEY, "weird;name" text); // trailing comment;
/* block; comment */
INSERT INTO a (id) VALUES ('it''s; fine');
CREATE FUNCTION f (x int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return x; $$;
;;
SELECT * FROM a`
	got, err := cql.SplitStatements(script)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`CREATE TABLE a (id text PRIMARY KEY, "weird;name" text)`,
		`INSERT INTO a (id) VALUES ('it''s; fine')`,
		`CREATE FUNCTION f (x int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return x; $$`,
		`SELECT * FROM a`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for _, bad := range []string{`SELECT 'open`, `/* open`, `AS $$ open`, `"open`} {
		if _, err := cql.SplitStatements(bad); err == nil {
			t.Errorf("SplitStatements(%q) succeeded", bad)
		}
	}
	if got, _ := cql.SplitStatements("-- only a comment\n /* and another */ ;\n"); len(got) != 0 {
		t.Errorf("comments only: %q", got)
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want errs.Kind
	}{
		{context.DeadlineExceeded, errs.Unavailable},
		{fmt.Errorf("x: %w", gocql.ErrNoConnections), errs.Unavailable},
		{gocql.ErrNotFound, errs.NotFound},
		{errors.New("other"), errs.Other},
	} {
		if got := cql.Kind(tc.err); got != tc.want {
			t.Errorf("Kind(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := cql.Open(ctx, cql.Config{Hosts: []string{"127.0.0.1:1"}, Keyspace: "k", ConnectTimeout: time.Second,
		DisableHostLookup: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Open = %v, want unavailable", err)
	}
}

var quiet = cql.MigrateOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

// files is a migration set; each migration also adds a row to run_log, so
// that the tests can count how often it ran.
func files(extra map[string]string) fstest.MapFS {
	fs := fstest.MapFS{
		"cql/0001_log.up.cql": {Data: []byte(`
CREATE TABLE run_log (id timeuuid PRIMARY KEY, version int);
INSERT INTO run_log (id, version) VALUES (now(), 1);`)},
		"cql/0002_things.up.cql": {Data: []byte(`
-- A table; and a row.
CREATE TABLE things (id text PRIMARY KEY, name text);
INSERT INTO run_log (id, version) VALUES (now(), 2);`)},
	}
	for k, v := range extra {
		if v == "" {
			delete(fs, k)
			continue
		}
		fs[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return fs
}

func src(fs fstest.MapFS) migrations.Source {
	return migrations.Source{Component: "testcomp", FS: fs, Dir: "cql"}
}

func runCounts(t *testing.T, s gocqlx.Session) map[int]int {
	t.Helper()
	var versions []int
	if err := s.Query(`SELECT version FROM run_log`, nil).SelectRelease(&versions); err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, v := range versions {
		out[v]++
	}
	return out
}

func recorded(t *testing.T, s gocqlx.Session) []int64 {
	t.Helper()
	var out []int64
	if err := s.Query(`SELECT version FROM schema_migrations WHERE component = 'testcomp'`, nil).SelectRelease(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The migration tests share one keyspace per test; they run in parallel.

func TestMigrateOnceThenNoOp(t *testing.T) {
	t.Parallel()
	s, _ := cqltest.Session(t)
	ctx := context.Background()
	res, err := cql.Migrate(ctx, s, src(files(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []int64{1, 2}) {
		t.Fatalf("first run: %+v", res)
	}
	res, err = cql.Migrate(ctx, s, src(files(nil)), quiet)
	if err != nil || len(res.Applied) != 0 || !slices.Equal(res.Skipped, []int64{1, 2}) {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	if got := fmt.Sprint(runCounts(t, s)); got != "map[1:1 2:1]" {
		t.Fatalf("runs per version: %s", got)
	}
	res, err = cql.Migrate(ctx, s, src(files(map[string]string{"cql/0003_idx.up.cql": `ALTER TABLE things ADD extra int;`})), quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{3}) {
		t.Fatalf("third run: %+v, %v", res, err)
	}
	// The lock was given back.
	var owners []string
	if err := s.Query(`SELECT owner FROM schema_migration_locks WHERE component = 'testcomp'`, nil).SelectRelease(&owners); err != nil {
		t.Fatal(err)
	}
	if len(owners) != 0 {
		t.Fatalf("lock still held by %v", owners)
	}
}

func TestMigrateRefusesChangedChecksum(t *testing.T) {
	t.Parallel()
	s, _ := cqltest.Session(t)
	ctx := context.Background()
	if _, err := cql.Migrate(ctx, s, src(files(map[string]string{"cql/0002_things.up.cql": ""})), quiet); err != nil {
		t.Fatal(err)
	}
	edited := files(map[string]string{"cql/0001_log.up.cql": `CREATE TABLE run_log (id timeuuid PRIMARY KEY, version int, x int);`})
	res, err := cql.Migrate(ctx, s, src(edited), quiet)
	if !errors.Is(err, migrations.ErrChecksumMismatch) || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("Migrate = %v, want a checksum mismatch for version 1", err)
	}
	if len(res.Applied) != 0 || !slices.Equal(recorded(t, s), []int64{1}) {
		t.Fatalf("something ran despite the mismatch: %+v", res)
	}
}

func TestMigrateFailureStops(t *testing.T) {
	t.Parallel()
	s, _ := cqltest.Session(t)
	ctx := context.Background()
	broken := files(map[string]string{"cql/0003_broken.up.cql": `
CREATE TABLE IF NOT EXISTS partial (id text PRIMARY KEY);
INSERT INTO no_such_table (id) VALUES ('x');`})
	res, err := cql.Migrate(ctx, s, src(broken), quiet)
	if err == nil || !strings.Contains(err.Error(), "version 3") || !strings.Contains(err.Error(), "statement 2") {
		t.Fatalf("Migrate = %v, want an error naming version 3, statement 2", err)
	}
	if !slices.Equal(res.Applied, []int64{1, 2}) || !slices.Equal(recorded(t, s), []int64{1, 2}) {
		t.Fatalf("applied %v, recorded %v; want 1 and 2", res.Applied, recorded(t, s))
	}
	// Fixed, it runs from its first statement, which is idempotent.
	fixed := files(map[string]string{"cql/0003_broken.up.cql": `
CREATE TABLE IF NOT EXISTS partial (id text PRIMARY KEY);
INSERT INTO partial (id) VALUES ('x');`})
	res, err = cql.Migrate(ctx, s, src(fixed), quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{3}) {
		t.Fatalf("after the fix: %+v, %v", res, err)
	}
}

// TestMigrateConcurrentRunners: runners with their own sessions, as
// separate processes would have, start at once; each version runs once.
func TestMigrateConcurrentRunners(t *testing.T) {
	t.Parallel()
	c := cqltest.Config(t)
	const runners = 3
	sessions := make([]gocqlx.Session, runners)
	for i := range sessions {
		sessions[i] = cqltest.Open(t, c)
	}
	var wg sync.WaitGroup
	results := make([]migrations.Result, runners)
	failures := make([]error, runners)
	start := make(chan struct{})
	for i := range runners {
		wg.Go(func() {
			<-start
			results[i], failures[i] = cql.Migrate(context.Background(), sessions[i], src(files(nil)), quiet)
		})
	}
	close(start)
	wg.Wait()
	applied := map[int64]int{}
	for i := range runners {
		if failures[i] != nil {
			t.Errorf("runner %d: %v", i, failures[i])
		}
		for _, v := range results[i].Applied {
			applied[v]++
		}
	}
	if applied[1] != 1 || applied[2] != 1 {
		t.Fatalf("applied per version %v, want each once (results %+v)", applied, results)
	}
	if got := fmt.Sprint(runCounts(t, sessions[0])); got != "map[1:1 2:1]" {
		t.Fatalf("runs per version: %s", got)
	}
}

// A lock left by a runner that died is waited for until it expires.
func TestMigrateWaitsForExpiredLock(t *testing.T) {
	t.Parallel()
	s, _ := cqltest.Session(t)
	ctx := context.Background()
	// Create the bookkeeping tables with a first run of another component.
	if _, err := cql.Migrate(ctx, s, migrations.Source{Component: "other", FS: fstest.MapFS{
		"0001_x.up.cql": {Data: []byte(`CREATE TABLE IF NOT EXISTS x (id int PRIMARY KEY);`)}}}, quiet); err != nil {
		t.Fatal(err)
	}
	if err := s.Query(`INSERT INTO schema_migration_locks (component, owner, acquired_at) VALUES ('testcomp', 'dead', toTimestamp(now())) USING TTL 3`, nil).ExecRelease(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := cql.Migrate(short, s, src(files(nil)), quiet); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "dead") {
		t.Fatalf("Migrate while the lock is held = %v, want a timeout naming the holder", err)
	}
	start := time.Now()
	res, err := cql.Migrate(ctx, s, src(files(nil)), quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1, 2}) {
		t.Fatalf("Migrate after the lock expired: %+v, %v", res, err)
	}
	t.Logf("waited %v for the dead runner's lock", time.Since(start).Round(100*time.Millisecond))
}
