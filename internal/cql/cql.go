// Package cql connects to the CQL stores (ScyllaDB in production, Apache
// Cassandra in tests) with gocql and gocqlx: a Config with defaults and
// Validate, the keyspace's creation with its replication, sessions, and a
// migration runner for each owning package's versioned .cql files (see
// Migrate).
//
// gocqlx v2 is used, not v3: v3 needs ScyllaDB's fork of gocql (a replace
// directive for github.com/gocql/gocql on the whole module), while v2
// builds on the upstream gocql v1.7.0 this module already uses.
package cql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"

	"github.com/ticketing/ticketing/internal/errs"
)

// Config configures a connection to a CQL cluster. Zero fields take the
// defaults documented on each field (see Defaults).
type Config struct {
	// Hosts are contact points, "host" or "host:port" (port default 9042).
	// Required.
	Hosts []string
	// Keyspace the sessions use. Required: lower-case letters, digits
	// and '_', starting with a letter, at most 48 characters.
	Keyspace string
	// LocalDC is the data center this process is in: requests go to its
	// nodes first, and the LOCAL_ consistencies count its replicas.
	// Default "datacenter1" (the name a single node reports).
	LocalDC string
	// Replication is the keyspace's replication, data center name →
	// replicas (NetworkTopologyStrategy), used when EnsureKeyspace
	// creates it. Default {LocalDC: 3}. Each factor 1-9.
	Replication map[string]int
	// Consistency of reads and writes: a gocql consistency name. Default
	// LOCAL_QUORUM; a single test node needs ONE.
	Consistency string
	// SerialConsistency of lightweight transactions: LOCAL_SERIAL
	// (default) or SERIAL.
	SerialConsistency string
	// ConnectTimeout bounds establishing a connection. Default 5s.
	ConnectTimeout time.Duration
	// Timeout bounds one request; lightweight transactions take several
	// round trips, so it is larger than a plain read needs. Default 10s.
	Timeout time.Duration
	// NumConns is the number of connections per host. Default 2.
	NumConns int
	// Retries of a failed request (on the next host). Default 2; -1 none.
	Retries int
	// DisableHostLookup uses the contact points only, without discovering
	// the other nodes from system.peers: for a single node that listens
	// on a non-default port (the tests). Default false.
	DisableHostLookup bool
	// Username and Password authenticate, when Username is set.
	Username, Password string
	// Logger receives the driver's messages. Default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.LocalDC == "" {
		c.LocalDC = "datacenter1"
	}
	if len(c.Replication) == 0 {
		c.Replication = map[string]int{c.LocalDC: 3}
	}
	if c.Consistency == "" {
		c.Consistency = "LOCAL_QUORUM"
	}
	if c.SerialConsistency == "" {
		c.SerialConsistency = "LOCAL_SERIAL"
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.NumConns == 0 {
		c.NumConns = 2
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

var (
	keyspacePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	dcPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(c.Hosts) == 0 {
		bad("at least one host is required")
	}
	for _, h := range c.Hosts {
		if h == "" {
			bad("empty host")
			continue
		}
		if host, port, err := net.SplitHostPort(h); err == nil {
			if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
				bad("host %q: bad host or port", h)
			}
		}
	}
	if !keyspacePattern.MatchString(c.Keyspace) {
		bad("keyspace %q must be lower-case letters, digits and '_', starting with a letter, at most 48", c.Keyspace)
	}
	if !dcPattern.MatchString(c.LocalDC) {
		bad("local data center %q is not a data center name", c.LocalDC)
	}
	for dc, rf := range c.Replication {
		if !dcPattern.MatchString(dc) {
			bad("replication: %q is not a data center name", dc)
		}
		if rf < 1 || rf > 9 {
			bad("replication: %d replicas in %s, want 1-9", rf, dc)
		}
	}
	if _, err := parseConsistency(c.Consistency); err != nil {
		bad("%v", err)
	}
	if _, err := parseSerial(c.SerialConsistency); err != nil {
		bad("%v", err)
	}
	if c.ConnectTimeout <= 0 || c.Timeout <= 0 {
		bad("timeouts must be positive")
	}
	if c.NumConns < 1 || c.NumConns > 64 {
		bad("conns per host %d, want 1-64", c.NumConns)
	}
	if c.Retries < -1 || c.Retries > 10 {
		bad("retries %d, want -1 (none) to 10", c.Retries)
	}
	if len(problems) > 0 {
		return errs.E("cql.config", errs.Invalid, errors.Join(problems...))
	}
	return nil
}

func parseConsistency(s string) (gocql.Consistency, error) {
	c, err := gocql.ParseConsistencyWrapper(strings.ToUpper(s))
	if err != nil {
		return 0, fmt.Errorf("consistency %q: %w", s, err)
	}
	return c, nil
}

func parseSerial(s string) (gocql.SerialConsistency, error) {
	var sc gocql.SerialConsistency
	if err := sc.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("serial consistency %q: want LOCAL_SERIAL or SERIAL", s)
	}
	return sc, nil
}

// ReplicationCQL is the keyspace's replication map in CQL.
func (c Config) ReplicationCQL() string {
	c.Defaults()
	var b strings.Builder
	b.WriteString("{'class': 'NetworkTopologyStrategy'")
	for _, dc := range slices.Sorted(maps.Keys(c.Replication)) {
		fmt.Fprintf(&b, ", '%s': %d", dc, c.Replication[dc])
	}
	b.WriteString("}")
	return b.String()
}

// Cluster builds the gocql cluster config, applying Defaults first. With
// keyspace false the sessions are not bound to the keyspace (to create
// it).
func (c Config) Cluster(keyspace bool) (*gocql.ClusterConfig, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cons, _ := parseConsistency(c.Consistency)
	serial, _ := parseSerial(c.SerialConsistency)
	cl := gocql.NewCluster(c.Hosts...)
	if keyspace {
		cl.Keyspace = c.Keyspace
	}
	cl.ProtoVersion = 4
	cl.Consistency = cons
	cl.SerialConsistency = serial
	cl.ConnectTimeout = c.ConnectTimeout
	cl.Timeout = c.Timeout
	cl.WriteTimeout = c.Timeout
	cl.NumConns = c.NumConns
	cl.DisableInitialHostLookup = c.DisableHostLookup
	cl.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.DCAwareRoundRobinPolicy(c.LocalDC))
	if c.Retries > 0 {
		cl.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: c.Retries}
	} else {
		cl.RetryPolicy = nil
	}
	cl.MaxWaitSchemaAgreement = time.Minute
	if c.Username != "" {
		cl.Authenticator = gocql.PasswordAuthenticator{Username: c.Username, Password: c.Password}
	}
	cl.Logger = driverLogger{c.Logger.With("component", "gocql")}
	return cl, nil
}

// Open opens a session bound to the keyspace, which must exist (see
// EnsureKeyspace). The caller closes it, last in the shutdown order.
func Open(ctx context.Context, c Config) (gocqlx.Session, error) {
	cl, err := c.Cluster(true)
	if err != nil {
		return gocqlx.Session{}, err
	}
	return connect(ctx, cl)
}

func connect(ctx context.Context, cl *gocql.ClusterConfig) (gocqlx.Session, error) {
	type result struct {
		s   gocqlx.Session
		err error
	}
	// CreateSession takes no context: bound it with one.
	done := make(chan result, 1)
	go func() {
		s, err := gocqlx.WrapSession(cl.CreateSession())
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return gocqlx.Session{}, errs.E("cql.open", errs.Unavailable, "CQL store unavailable", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				r.s.Close()
			}
		}()
		return gocqlx.Session{}, errs.E("cql.open", errs.Unavailable, "CQL store unavailable", ctx.Err())
	}
}

// EnsureKeyspace creates the keyspace with c.Replication unless it exists
// (an existing keyspace's replication is left as it is: changing it needs
// a repair, an operator's decision), and waits for the cluster to agree on
// the schema.
func EnsureKeyspace(ctx context.Context, c Config) error {
	cl, err := c.Cluster(false)
	if err != nil {
		return err
	}
	s, err := connect(ctx, cl)
	if err != nil {
		return err
	}
	defer s.Close()
	stmt := fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s AND durable_writes = true`,
		c.Keyspace, c.ReplicationCQL())
	if err := s.ContextQuery(ctx, stmt, nil).ExecRelease(); err != nil {
		return errs.E("cql.keyspace", Kind(err), fmt.Errorf("create keyspace %s: %w", c.Keyspace, err))
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return errs.E("cql.keyspace", errs.Unavailable, fmt.Errorf("schema agreement: %w", err))
	}
	return nil
}

// Kind classifies a gocql error: timeouts, unavailable replicas, lost
// connections, a lightweight transaction of unknown outcome and a done
// context are errs.Unavailable (trying again may work); gocql.ErrNotFound is errs.NotFound; a request the server refused
// as malformed or unauthorized, and the rest, are errs.Other.
func Kind(err error) errs.Kind {
	if err == nil {
		return errs.Other
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return errs.KindOf(err)
	}
	if errors.Is(err, gocql.ErrNotFound) {
		return errs.NotFound
	}
	var (
		reqErr gocql.RequestError
		netErr net.Error
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, gocql.ErrNoConnections), errors.Is(err, gocql.ErrConnectionClosed),
		errors.Is(err, gocql.ErrTimeoutNoResponse), errors.Is(err, gocql.ErrSessionClosed),
		errors.Is(err, gocql.ErrTooManyTimeouts), errors.Is(err, gocql.ErrNoStreams), errors.Is(err, gocql.ErrUnavailable),
		errors.Is(err, gocql.ErrNoConnectionsStarted), errors.As(err, &netErr):
		return errs.Unavailable
	case errors.As(err, &reqErr):
		switch reqErr.Code() {
		case gocql.ErrCodeUnavailable, gocql.ErrCodeOverloaded, gocql.ErrCodeBootstrapping,
			gocql.ErrCodeTruncate, gocql.ErrCodeWriteTimeout, gocql.ErrCodeReadTimeout,
			gocql.ErrCodeReadFailure, gocql.ErrCodeWriteFailure, gocql.ErrCodeServer, gocql.ErrCodeCASWriteUnknown:
			return errs.Unavailable
		}
	}
	return errs.Other
}

// driverLogger sends gocql's log lines to slog at debug level: the driver
// reports reconnects and topology changes that are noise in normal runs.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) { l.log.Debug(strings.TrimSpace(fmt.Sprint(v...))) }
func (l driverLogger) Printf(format string, v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l driverLogger) Println(v ...any) { l.log.Debug(strings.TrimSpace(fmt.Sprintln(v...))) }

// DropKeyspace drops the keyspace and everything in it, if it exists. For
// tests and tools; nothing in the services calls it.
func DropKeyspace(ctx context.Context, c Config) error {
	cl, err := c.Cluster(false)
	if err != nil {
		return err
	}
	s, err := connect(ctx, cl)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.ContextQuery(ctx, `DROP KEYSPACE IF EXISTS `+c.Keyspace, nil).ExecRelease(); err != nil {
		return errs.E("cql.keyspace", Kind(err), fmt.Errorf("drop keyspace %s: %w", c.Keyspace, err))
	}
	return nil
}
