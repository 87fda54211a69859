// Package testservers is the one place tests get connection settings for the
// real servers (PostgreSQL, Redis, Kafka, a CQL server, OpenSearch, Mailpit's
// SMTP server and its API), and the
// path of promtool, the one external tool whose absence may skip a test.
//
// Each accessor reads one environment variable. `make test` starts every
// server natively on loopback (compose/devstack) and exports them; by hand:
//
//	compose/devstack up
//	eval "$(compose/devstack env)"
//	go test ./...
//
// When a variable is missing the test is skipped, unless CI or
// TICKETING_REQUIRE_SERVERS is set: then it fails, so that a CI run can never
// pass by skipping every server-backed test.
package testservers

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Environment variables read by this package (printed by `compose/devstack env`).
const (
	EnvPostgresURL   = "TICKETING_PG_URL"         // postgres://user:pass@host:port/db?sslmode=disable
	EnvRedisAddr     = "TICKETING_REDIS_ADDR"     // host:port
	EnvKafkaBrokers  = "TICKETING_KAFKA_BROKERS"  // host:port[,host:port…]
	EnvCQLHosts      = "TICKETING_CQL_HOSTS"      // host:port[,host:port…]
	EnvOpenSearchURL = "TICKETING_OPENSEARCH_URL" // http://host:port
	EnvSMTPAddr      = "TICKETING_SMTP_ADDR"      // host:port (Mailpit's SMTP server in tests)
	EnvMailpitURL    = "TICKETING_MAILPIT_URL"    // http://host:port (Mailpit's web UI and REST API)
	// EnvRequireServers, when set (not "0" or "false"), turns a missing
	// server variable into a test failure instead of a skip. CI does the same.
	EnvRequireServers = "TICKETING_REQUIRE_SERVERS"
)

// PostgresURL returns the PostgreSQL connection URL for pgx.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvPostgresURL)
}

// RedisAddr returns the Redis address as host:port.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvRedisAddr)
}

// KafkaBrokers returns the Kafka seed brokers, each host:port.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	return splitList(lookup(t, EnvKafkaBrokers))
}

// CQLHosts returns the CQL contact points (ScyllaDB, or Cassandra in tests),
// each host:port.
func CQLHosts(t testing.TB) []string {
	t.Helper()
	return splitList(lookup(t, EnvCQLHosts))
}

// OpenSearchURL returns the OpenSearch base URL, e.g. http://127.0.0.1:29200.
func OpenSearchURL(t testing.TB) string {
	t.Helper()
	return strings.TrimRight(lookup(t, EnvOpenSearchURL), "/")
}

// SMTPAddr returns the SMTP server's address as host:port: Mailpit, which
// keeps every message it is sent (see MailpitURL).
func SMTPAddr(t testing.TB) string {
	t.Helper()
	return lookup(t, EnvSMTPAddr)
}

// MailpitURL returns the base URL of Mailpit's REST API, e.g.
// http://127.0.0.1:28025, where tests read back what SMTPAddr received.
func MailpitURL(t testing.TB) string {
	t.Helper()
	return strings.TrimRight(lookup(t, EnvMailpitURL), "/")
}

// Required reports whether missing servers fail tests rather than skip them:
// true when CI or TICKETING_REQUIRE_SERVERS is set to anything but "", "0"
// or "false".
func Required() bool {
	return truthy(os.Getenv("CI")) || truthy(os.Getenv(EnvRequireServers))
}

// MissingMessage is what a test reports when the variable name is unset.
func MissingMessage(name string) string {
	return fmt.Sprintf("%s is not set: run the tests with `make test`, "+
		"or start the servers with `compose/devstack up` and then "+
		"`eval \"$(compose/devstack env)\"`", name)
}

// lookup reads a server variable; a missing one skips or fails (missing).
func lookup(t testing.TB, name string) string {
	t.Helper()
	v := strings.TrimSpace(os.Getenv(name))
	if name == EnvKafkaBrokers || name == EnvCQLHosts {
		if len(splitList(v)) == 0 {
			v = ""
		}
	}
	if v != "" {
		return v
	}
	missing(t, MissingMessage(name))
	return ""
}

// missing is the single place that skips: every accessor, and Promtool,
// goes through it. It fails the test instead when Required.
func missing(t testing.TB, msg string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (required because CI or %s is set)", msg, EnvRequireServers)
	}
	t.Skip(msg)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}
