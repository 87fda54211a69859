package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
)

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want errs.Kind
	}{
		{"unique violation", &pgconn.PgError{Code: postgres.UniqueViolation}, errs.Conflict},
		{"check violation", &pgconn.PgError{Code: "23514"}, errs.Invalid},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, errs.Unavailable},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, errs.Unavailable},
		{"undefined table: a bug", &pgconn.PgError{Code: "42P01"}, errs.Other},
		{"context deadline", fmt.Errorf("q: %w", context.DeadlineExceeded), errs.Unavailable},
		// A server that crashed during a statement: the connection ends,
		// the outcome is unknown, trying again may work.
		{"unexpected EOF", fmt.Errorf("q: %w", io.ErrUnexpectedEOF), errs.Unavailable},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, errs.Unavailable},
		{"connection closed", fmt.Errorf("q: %w", pgconn.ErrConnClosed), errs.Unavailable},
		{"anything else", errors.New("boom"), errs.Other},
		{"an errs error keeps its kind", errs.E("x", errs.NotFound, "no"), errs.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := postgres.Kind(tc.err); got != tc.want {
				t.Fatalf("Kind(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A connection lost while a statement runs (the server crashed, or the
// network between) is errs.Unavailable, not an internal error: a proxy
// between the pool and the real server cuts it mid-statement.
func TestKindOfAConnectionLostMidStatement(t *testing.T) {
	c := pgtest.Config(t)
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startCutProxy(t, u.Host)
	u.Host = p.addr
	c.URL = u.String()
	pool := pgtest.Open(t, c)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	observer := pgtest.Pool(t)
	done := make(chan error, 1)
	go func() {
		_, err := pool.Exec(ctx, `SELECT pg_sleep(5)`)
		done <- err
	}()
	eventually.True(t, 10*time.Second, "the statement under way", func() bool {
		var n int
		err := observer.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' AND state = 'active'`).Scan(&n)
		return err == nil && n > 0
	})
	p.cut()
	err = <-done
	if err == nil || postgres.Kind(err) != errs.Unavailable {
		t.Fatalf("a statement whose connection was cut: %v (kind %v)", err, postgres.Kind(err))
	}
}

// cutProxy forwards TCP connections to a server until cut, which closes
// every one of them.
type cutProxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
