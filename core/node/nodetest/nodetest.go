// Package nodetest starts an embedded core node for tests: JetStream in a
// temporary directory, a client listener only with StartListening, a
// leaf-node listener on a free port, stopped when the test ends.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node"
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
