package node_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
)

// TestConnectSocket: a secured node's own socket connection goes over its
// TLS listener, as user core, and reaches the subscribers of its
// in-process connections; a node in plaintext is dialled in plaintext,
// and one without a client listener is reached in-process.
func TestConnectSocket(t *testing.T) {
	var log nodetest.Log
	secured := start(t, nodetest.SecureConfig(t, nodetest.Secrets(t)), &log)
	plain, _, _ := nodetest.StartListening(t)
	unlistening, _, _ := nodetest.Start(t)
	for _, c := range []struct {
		name   string
		n      *node.Node
		scheme string // of the connected URL; "" in-process (nats.go names a default URL)
	}{
		{"secured", secured, "tls://"},
		{"plaintext", plain, "nats://"},
		{"no client listener", unlistening, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			own, err := c.n.Connect("own")
			if err != nil {
				t.Fatal(err)
			}
			defer own.Close()
			if _, err := own.Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) }); err != nil {
				t.Fatal(err)
			}
			_ = own.Flush()
			nc, err := c.n.ConnectSocket("own-socket")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if u := nc.ConnectedUrl(); !strings.HasPrefix(u, c.scheme) {
				t.Errorf("connected to %q, want a URL starting %q", u, c.scheme)
			}
			if c.scheme == "tls://" && !nc.TLSRequired() {
				t.Error("the server does not require TLS")
			}
			m, err := nc.Request("ping", nil, 5*time.Second)
			if err != nil || string(m.Data) != "pong" {
				t.Fatalf("request over the socket connection: %v %v", m, err)
			}
		})
	}
}
