package postgres_test

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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
)

var quiet = postgres.MigrateOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

// files is a migration set; each migration also appends a row to a log
// table, so that the tests can count how often it ran.
func files(extra map[string]string) fstest.MapFS {
	fs := fstest.MapFS{
		"m/0001_log.up.sql": {Data: []byte(`
CREATE TABLE run_log (version int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO run_log (version) VALUES (1);`)},
		"m/0002_things.up.sql": {Data: []byte(`
CREATE TABLE things (id text PRIMARY KEY);
INSERT INTO run_log (version) VALUES (2);`)},
		"m/0010_more.up.sql": {Data: []byte(`
ALTER TABLE things ADD COLUMN name text NOT NULL DEFAULT '';
INSERT INTO run_log (version) VALUES (10);`)},
		"m/0002_things.down.sql": {Data: []byte(`DROP TABLE things;`)}, // ignored
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
	return migrations.Source{Component: "testcomp", FS: fs, Dir: "m"}
}

func runCounts(t *testing.T, pool *pgxpool.Pool) map[int]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version, count(*) FROM run_log GROUP BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var v, n int
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		out[v] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func recorded(t *testing.T, pool *pgxpool.Pool) []int64 {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT version FROM schema_migrations WHERE component = 'testcomp' ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestMigrateOnceThenNoOp(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, src(files(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []int64{1, 2, 10}) || len(res.Skipped) != 0 {
		t.Fatalf("first run: %+v", res)
	}
	res, err = postgres.Migrate(ctx, pool, src(files(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || !slices.Equal(res.Skipped, []int64{1, 2, 10}) {
		t.Fatalf("second run: %+v", res)
	}
	if got := runCounts(t, pool); got[1] != 1 || got[2] != 1 || got[10] != 1 || len(got) != 3 {
		t.Fatalf("runs per version: %v", got)
	}
	var name, sum string
	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT name, checksum, applied_at FROM schema_migrations WHERE component = 'testcomp' AND version = 2`).
		Scan(&name, &sum, &at); err != nil {
		t.Fatal(err)
	}
	if name != "things" || len(sum) != 64 || time.Since(at) > time.Minute {
		t.Fatalf("record of version 2: name %q checksum %q applied at %v", name, sum, at)
	}

	// A new file is applied on the next run, alone.
	res, err = postgres.Migrate(ctx, pool, src(files(map[string]string{"m/0011_idx.up.sql": `CREATE INDEX things_name ON things (name);`})), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []int64{11}) {
		t.Fatalf("third run: %+v", res)
	}
}

func TestMigrateRefusesChangedChecksum(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, src(files(map[string]string{"m/0010_more.up.sql": ""})), quiet); err != nil {
		t.Fatal(err)
	}
	// 0002 edited after it ran, and 0010 new: nothing may run.
	edited := files(map[string]string{"m/0002_things.up.sql": `CREATE TABLE things (id text PRIMARY KEY, extra int);
INSERT INTO run_log (version) VALUES (2);`})
	res, err := postgres.Migrate(ctx, pool, src(edited), quiet)
	if !errors.Is(err, migrations.ErrChecksumMismatch) {
		t.Fatalf("Migrate = %v, want ErrChecksumMismatch", err)
	}
	if !strings.Contains(err.Error(), "version 2") {
		t.Errorf("the error does not name the version: %v", err)
	}
	if len(res.Applied) != 0 || !slices.Equal(recorded(t, pool), []int64{1, 2}) {
		t.Fatalf("something ran despite the mismatch: %+v, recorded %v", res, recorded(t, pool))
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	broken := files(map[string]string{"m/0010_more.up.sql": `
CREATE TABLE half_done (id int);
INSERT INTO run_log (version) VALUES (10);
INSERT INTO no_such_table VALUES (1);`})
	res, err := postgres.Migrate(ctx, pool, src(broken), quiet)
	if err == nil {
		t.Fatal("a failing migration reported success")
	}
	for _, want := range []string{"version 10", "m/0010_more.up.sql", "line 4", "no_such_table"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if !slices.Equal(res.Applied, []int64{1, 2}) {
		t.Errorf("applied before the failure: %v", res.Applied)
	}
	if got := recorded(t, pool); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("recorded %v, want [1 2]", got)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('half_done') IS NOT NULL`).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatal("the failed migration's table survived: no rollback")
	}
	if got := runCounts(t, pool); got[10] != 0 {
		t.Fatalf("the failed migration's insert survived: %v", got)
	}

	// Fixed, it applies; the earlier ones are not run again.
	res, err = postgres.Migrate(ctx, pool, src(files(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []int64{10}) {
		t.Fatalf("after the fix: %+v", res)
	}
}

// TestMigrateConcurrentRunners starts several runners at once, each with its
// own pool as separate processes would: each version runs exactly once and
// every runner succeeds.
func TestMigrateConcurrentRunners(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Config(t)
	const runners = 4
	pools := make([]*pgxpool.Pool, runners)
	for i := range pools {
		pools[i] = pgtest.Open(t, cfg)
	}
	// The migrations are not idempotent: CREATE TABLE without IF NOT
	// EXISTS fails the second time, so a double run shows as an error too.
	fs := files(map[string]string{"m/0003_slow.up.sql": `SELECT pg_sleep(0.2); INSERT INTO run_log (version) VALUES (3);`})
	var wg sync.WaitGroup
	results := make([]migrations.Result, runners)
	failures := make([]error, runners)
	start := make(chan struct{})
	for i := range runners {
		wg.Go(func() {
			<-start
			results[i], failures[i] = postgres.Migrate(context.Background(), pools[i], src(fs), quiet)
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
	for _, v := range []int64{1, 2, 3, 10} {
		if applied[v] != 1 {
			t.Errorf("version %d applied by %d runners, want 1 (results %+v)", v, applied[v], results)
		}
	}
	if got := runCounts(t, pools[0]); fmt.Sprint(got) != "map[1:1 2:1 3:1 10:1]" {
		t.Fatalf("runs per version: %v", got)
	}
}

// TestMigrateComponentsAreSeparate: two components keep their own version
// sequences in one schema.
func TestMigrateComponentsAreSeparate(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	a := migrations.Source{Component: "alpha", FS: fstest.MapFS{"0001_a.up.sql": {Data: []byte(`CREATE TABLE a (id int);`)}}}
	b := migrations.Source{Component: "beta", FS: fstest.MapFS{"0001_b.up.sql": {Data: []byte(`CREATE TABLE b (id int);`)}}}
	for _, s := range []migrations.Source{a, b} {
		res, err := postgres.Migrate(ctx, pool, s, quiet)
		if err != nil || !slices.Equal(res.Applied, []int64{1}) {
			t.Fatalf("%s: %+v, %v", s.Component, res, err)
		}
	}
	// A version recorded for a component with no file is reported, not refused.
	res, err := postgres.Migrate(ctx, pool, migrations.Source{Component: "alpha", FS: fstest.MapFS{
		"0002_a2.up.sql": {Data: []byte(`CREATE TABLE a2 (id int);`)}}}, quiet)
	if err != nil || !slices.Equal(res.Unknown, []int64{1}) || !slices.Equal(res.Applied, []int64{2}) {
		t.Fatalf("older binary: %+v, %v", res, err)
	}
}

func TestMigrateBadSource(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	_, err := postgres.Migrate(context.Background(), pool, migrations.Source{Component: "x",
		FS: fstest.MapFS{"1_ok.up.sql": {Data: []byte("SELECT 1")}, "2-bad.sql": {Data: []byte("SELECT 1")}}}, quiet)
	if !errs.Is(errs.Invalid, err) || !strings.Contains(err.Error(), "2-bad.sql") {
		t.Fatalf("Migrate = %v, want invalid naming the file", err)
	}
}
