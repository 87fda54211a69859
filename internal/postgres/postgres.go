// Package postgres opens PostgreSQL connection pools (pgx/v5) with limits
// suited to many service processes sharing one server, and runs each owning
// package's versioned SQL migrations exactly once, in order, under an
// advisory lock (see Migrate).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
)

// Bounds of the default pool size: 4 connections per GOMAXPROCS, at least
// MinDefaultMaxConns and at most MaxDefaultMaxConns, so that a big machine
// does not alone use up the server's max_connections (100 by default).
const (
	MinDefaultMaxConns = 4
	MaxDefaultMaxConns = 32
)

// Config configures a pool. Zero fields take the defaults documented on
// each field (see Defaults). Pool settings in the URL (pool_max_conns, …)
// are overridden by these fields.
type Config struct {
	// URL is a libpq connection URL or key=value string, e.g.
	// postgres://user:pass@host:5432/db?sslmode=disable. Required.
	URL string

	// MaxConns caps the pool. Default: 4×GOMAXPROCS, bounded to
	// [MinDefaultMaxConns, MaxDefaultMaxConns]. At most 1000.
	MaxConns int32
	// MinConns are kept open even when idle. Default 0. At most MaxConns.
	MinConns int32
	// MaxConnLifetime closes a connection this long after it was opened
	// (so that servers behind a load balancer rebalance). Default 1h.
	MaxConnLifetime time.Duration
	// MaxConnLifetimeJitter spreads those closes. Default 5m.
	MaxConnLifetimeJitter time.Duration
	// MaxConnIdleTime closes a connection idle this long. Default 15m.
	MaxConnIdleTime time.Duration
	// HealthCheckPeriod is how often idle connections are checked. Default 30s.
	HealthCheckPeriod time.Duration
	// ConnectTimeout bounds establishing one connection (TCP, TLS, auth).
	// Default 5s.
	ConnectTimeout time.Duration
	// StatementTimeout is the server-side statement_timeout of every
	// connection: no statement runs longer. Default 15s; -1 disables it.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout is idle_in_transaction_session_timeout: a
	// transaction left open by a stuck client is ended. Default 60s; -1
	// disables it.
	IdleInTransactionTimeout time.Duration
	// ApplicationName shows in pg_stat_activity. Default "ticketing".
	ApplicationName string
	// SearchPath, when set, is the connection's search_path: a schema name
	// (tests use one per test). Default: the server's.
	SearchPath string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.MaxConns == 0 {
		c.MaxConns = int32(min(max(4*runtime.GOMAXPROCS(0), MinDefaultMaxConns), MaxDefaultMaxConns))
	}
	if c.MaxConnLifetime == 0 {
		c.MaxConnLifetime = time.Hour
	}
	if c.MaxConnLifetimeJitter == 0 {
		c.MaxConnLifetimeJitter = 5 * time.Minute
	}
	if c.MaxConnIdleTime == 0 {
		c.MaxConnIdleTime = 15 * time.Minute
	}
	if c.HealthCheckPeriod == 0 {
		c.HealthCheckPeriod = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = 15 * time.Second
	}
	if c.IdleInTransactionTimeout == 0 {
		c.IdleInTransactionTimeout = time.Minute
	}
	if c.ApplicationName == "" {
		c.ApplicationName = "ticketing"
	}
}

var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if c.URL == "" {
		bad("a URL is required")
	} else if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		bad("URL: %v", redact(err))
	}
	if c.MaxConns < 1 || c.MaxConns > 1000 {
		bad("max conns %d is not within 1-1000", c.MaxConns)
	}
	if c.MinConns < 0 || c.MinConns > c.MaxConns {
		bad("min conns %d is not within 0-%d (max conns)", c.MinConns, c.MaxConns)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"max conn lifetime", c.MaxConnLifetime}, {"max conn lifetime jitter", c.MaxConnLifetimeJitter},
		{"max conn idle time", c.MaxConnIdleTime}, {"health check period", c.HealthCheckPeriod},
		{"connect timeout", c.ConnectTimeout},
	} {
		if d.v <= 0 {
			bad("%s must be positive, not %v", d.name, d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"statement timeout", c.StatementTimeout}, {"idle in transaction timeout", c.IdleInTransactionTimeout}} {
		if d.v != -1 && d.v < time.Millisecond {
			bad("%s must be at least 1ms, or -1 for none, not %v", d.name, d.v)
		}
	}
	if len(c.ApplicationName) > 63 {
		bad("application name is longer than 63 bytes")
	}
	if c.SearchPath != "" && !schemaPattern.MatchString(c.SearchPath) {
		bad("search path %q must be one lower-case schema name", c.SearchPath)
	}
	if len(problems) > 0 {
		return errs.E("postgres.config", errs.Invalid, errors.Join(problems...))
	}
	return nil
}

// redact replaces a connection-string parse error, whose text and fields
// may carry the password (pgconn redacts only on a best-effort basis, and a
// wrapped url.Parse error repeats the URL), by a fixed message.
func redact(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("cannot parse the connection string (not shown: it may hold a password)")
	}
	return err
}

// PoolConfig turns c into a pgxpool config, applying Defaults first.
func (c Config) PoolConfig() (*pgxpool.Config, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, errs.E("postgres.config", errs.Invalid, redact(err))
	}
	pc.MaxConns = c.MaxConns
	pc.MinConns = c.MinConns
	pc.MaxConnLifetime = c.MaxConnLifetime
	pc.MaxConnLifetimeJitter = c.MaxConnLifetimeJitter
	pc.MaxConnIdleTime = c.MaxConnIdleTime
	pc.HealthCheckPeriod = c.HealthCheckPeriod
	pc.ConnConfig.ConnectTimeout = c.ConnectTimeout
	rp := pc.ConnConfig.RuntimeParams
	rp["application_name"] = c.ApplicationName
	rp["statement_timeout"] = millis(c.StatementTimeout)
	rp["idle_in_transaction_session_timeout"] = millis(c.IdleInTransactionTimeout)
	if c.SearchPath != "" {
		rp["search_path"] = c.SearchPath
	}
	return pc, nil
}

func millis(d time.Duration) string {
	if d < 0 {
		return "0" // PostgreSQL: 0 disables the timeout
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// Open creates a pool and checks that the server answers within the
// connect timeout, so that a wrong URL or a down server fails at start
// (errs.Unavailable) rather than on the first request. The caller closes
// the pool, last in the shutdown order.
func Open(ctx context.Context, c Config) (*pgxpool.Pool, error) {
	pc, err := c.PoolConfig()
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, errs.E("postgres.open", errs.Invalid, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pc.ConnConfig.ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, errs.E("postgres.open", errs.Unavailable, "database unavailable", err)
	}
	return pool, nil
}
