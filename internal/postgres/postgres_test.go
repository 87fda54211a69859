package postgres_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
)

func TestDefaults(t *testing.T) {
	c := postgres.Config{URL: "postgres://u:p@127.0.0.1:5432/db"}
	c.Defaults()
	want := int32(min(max(4*runtime.GOMAXPROCS(0), postgres.MinDefaultMaxConns), postgres.MaxDefaultMaxConns))
	if c.MaxConns != want {
		t.Errorf("MaxConns = %d, want %d", c.MaxConns, want)
	}
	if c.StatementTimeout != 15*time.Second || c.ConnectTimeout != 5*time.Second || c.ApplicationName != "ticketing" {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	ok := func() postgres.Config {
		c := postgres.Config{URL: "postgres://u:secret@127.0.0.1:5432/db"}
		c.Defaults()
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*postgres.Config)
		want string
	}{
		{"no url", func(c *postgres.Config) { c.URL = "" }, "URL is required"},
		{"bad url", func(c *postgres.Config) { c.URL = "postgres://u:secret@127.0.0.1:notaport/db" }, "cannot parse"},
		{"max conns", func(c *postgres.Config) { c.MaxConns = 5000 }, "max conns"},
		{"min over max", func(c *postgres.Config) { c.MinConns = c.MaxConns + 1 }, "min conns"},
		{"lifetime", func(c *postgres.Config) { c.MaxConnLifetime = -time.Second }, "max conn lifetime"},
		{"statement timeout", func(c *postgres.Config) { c.StatementTimeout = time.Microsecond }, "statement timeout"},
		{"search path", func(c *postgres.Config) { c.SearchPath = "a; drop table x" }, "search path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			err := c.Validate()
			if !errs.Is(errs.Invalid, err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an invalid error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestPoolConfig(t *testing.T) {
	c := postgres.Config{URL: "postgres://u:p@127.0.0.1:5432/db?pool_max_conns=99", MaxConns: 7, MinConns: 2,
		StatementTimeout: 2500 * time.Millisecond, IdleInTransactionTimeout: -1, SearchPath: "identity", ApplicationName: "edge"}
	pc, err := c.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.MaxConns != 7 || pc.MinConns != 2 {
		t.Errorf("conns = %d/%d, want 2/7: the Config overrides the URL", pc.MinConns, pc.MaxConns)
	}
	rp := pc.ConnConfig.RuntimeParams
	for k, want := range map[string]string{"statement_timeout": "2500", "idle_in_transaction_session_timeout": "0",
		"search_path": "identity", "application_name": "edge"} {
		if rp[k] != want {
			t.Errorf("runtime param %s = %q, want %q", k, rp[k], want)
		}
	}
	if pc.ConnConfig.ConnectTimeout != 5*time.Second {
		t.Errorf("connect timeout = %v", pc.ConnConfig.ConnectTimeout)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused.
	_, err := postgres.Open(ctx, postgres.Config{URL: "postgres://u:p@127.0.0.1:1/db?sslmode=disable", ConnectTimeout: time.Second})
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Open = %v, want unavailable", err)
	}
}

// TestSessionSettings checks on the real server that the runtime
// parameters reach the connection.
func TestSessionSettings(t *testing.T) {
	c := pgtest.Config(t)
	c.StatementTimeout = 1234 * time.Millisecond
	c.ApplicationName = "settings-test"
	pool := pgtest.Open(t, c)
	ctx := context.Background()
	var timeout, app, schema string
	if err := pool.QueryRow(ctx, `SELECT current_setting('statement_timeout'), current_setting('application_name'), current_schema()`).
		Scan(&timeout, &app, &schema); err != nil {
		t.Fatal(err)
	}
	if timeout != "1234ms" || app != "settings-test" || schema != c.SearchPath {
		t.Fatalf("statement_timeout=%s application_name=%s schema=%s", timeout, app, schema)
	}
	// The statement timeout is enforced, and reported as unavailable.
	c.StatementTimeout = 50 * time.Millisecond
	short := pgtest.Open(t, c)
	_, err := short.Exec(ctx, `SELECT pg_sleep(2)`)
	if err == nil || postgres.Kind(err) != errs.Unavailable {
		t.Fatalf("pg_sleep past the statement timeout: %v (kind %v)", err, postgres.Kind(err))
	}
}
