// Package nodetest starts an embedded core node for tests: JetStream in a
// temporary directory, a client listener only with StartListening, a
// leaf-node listener on a free port, stopped when the test ends. Secrets
// and SecureConfig give a node everything `ticketing core` secures (mutual
// TLS, nkeys, an encrypted store); Log captures what a server logs.
package nodetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/leafnodes"
)

// Start starts a node and returns it with an in-process connection as the
// core user and a JetStream context on it.
func Start(t testing.TB) (*node.Node, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return start(t, "-")
}

// StartListening is Start with a client listener on a free loopback port,
// for other processes (node.ClientURL, node.CoreCredentials).
func StartListening(t testing.TB) (*node.Node, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return start(t, "127.0.0.1:0")
}

func start(t testing.TB, clientAddr string) (*node.Node, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Start(ctx, node.Config{Name: "t", DataDir: t.TempDir(), ClientAddr: clientAddr, LeafAddr: "127.0.0.1:0"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := n.Connect("test")
	if err != nil {
		n.Shutdown(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return n, nc, js
}

// Secrets makes a development PKI (devpki) in a temporary directory.
func Secrets(t testing.TB) devpki.Layout {
	t.Helper()
	res, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return res.Layout
}

// SecureConfig is a node config with everything `ticketing core` turns
// on, from l's files: mutual TLS on every listener with the core
// certificate, nkey users, an encrypted store. Listeners on free loopback
// ports; the data in a temporary directory.
func SecureConfig(t testing.TB, l devpki.Layout) node.Config {
	t.Helper()
	read := func(path string) string {
		s, err := devpki.ReadSecret(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return node.Config{Name: "t", DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0",
		TLS:      l.TLS(devpki.Core),
		CoreSeed: read(l.Seed("core")),
		Credentials: leafnodes.Credentials{NKeys: leafnodes.UserKeys{Core: read(l.PublicKey("core")),
			Edge: read(l.PublicKey("edge")), Sys: read(l.PublicKey("sys"))}},
		Store: node.StoreEncryption{Key: read(l.StoreKey())},
	}
}

// Log keeps every record of a logger (nats-server's through natsembed's
// adapter included) for a test to search.
type Log struct {
	mu   sync.Mutex
	msgs []string
}

// Logger is a logger at debug level that writes into l.
func (l *Log) Logger() *slog.Logger { return slog.New(logHandler{l}) }

// Contains reports whether a message contains s.
func (l *Log) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// String is every message, one a line.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

type logHandler struct{ l *Log }

func (h logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	h.l.mu.Lock()
	h.l.msgs = append(h.l.msgs, r.Level.String()+" "+r.Message)
	h.l.mu.Unlock()
	return nil
}
func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHandler) WithGroup(string) slog.Handler      { return h }

// PlaintextRefused speaks NATS in plaintext to addr (a client or leaf-node
// port): it reads the server's INFO, which must require TLS, sends CONNECT
// and PING without starting TLS, and returns nil when the server closes the
// connection instead of answering PONG.
func PlaintextRefused(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	info, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no INFO: %w", err)
	}
	if !strings.Contains(info, `"tls_required":true`) {
		return fmt.Errorf("the server does not require TLS: %s", info)
	}
	if _, err := c.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
		return nil
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil // closed: refused
		}
		if strings.HasPrefix(line, "PONG") {
			return errors.New("the server answered a plaintext client")
		}
	}
}
