package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
)

const plaintextWarning = "Plaintext passwords detected"

func start(t *testing.T, c node.Config, log *nodetest.Log) *node.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, c, log.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(n) })
	return n
}

func stop(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Shutdown(ctx)
}

func clientTLS(t *testing.T, f tlsconf.Files) nats.Option {
	t.Helper()
	c, err := tlsconf.Client(f)
	if err != nil {
		t.Fatal(err)
	}
	return nats.Secure(c)
}

func seedAuth(t *testing.T, l devpki.Layout, user string) nats.Option {
	t.Helper()
	seed, err := devpki.ReadSecret(l.Seed(user))
	if err != nil {
		t.Fatal(err)
	}
	o, err := leafnodes.NKeyAuth(seed)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSecureNodeClients: the client port of a secured node takes a client
// with a certificate of the CA and user core's nkey, and refuses one
// without a certificate, with a certificate of another CA, in plaintext,
// or with the old password; the node's own connections work; nats-server
// does not warn of plaintext passwords (it does on an insecure node, so
// the capture works).
func TestSecureNodeClients(t *testing.T) {
	l, other := nodetest.Secrets(t), nodetest.Secrets(t)
	var log nodetest.Log
	n := start(t, nodetest.SecureConfig(t, l), &log)
	own, err := n.Connect("own")
	if err != nil {
		t.Fatalf("the node's own connection: %v", err)
	}
	defer own.Close()
	if _, err := own.Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) }); err != nil {
		t.Fatal(err)
	}
	_ = own.Flush()

	url := n.ClientURL()
	connect := func(opts ...nats.Option) error {
		nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, opts...)...)
		if err != nil {
			return err
		}
		defer nc.Close()
		_, err = nc.Request("ping", nil, 5*time.Second)
		return err
	}
	if err := connect(clientTLS(t, l.TLS(devpki.Client)), seedAuth(t, l, "core")); err != nil {
		t.Fatalf("a client with a certificate and the core nkey: %v", err)
	}
	foreign := other.TLS(devpki.Client)
	foreign.CA = l.CA()
	for _, c := range []struct {
		name string
		opts []nats.Option
	}{
		{"no certificate", []nats.Option{clientTLS(t, tlsconf.Files{CA: l.CA()}), seedAuth(t, l, "core")}},
		{"a certificate of another CA", []nats.Option{clientTLS(t, foreign), seedAuth(t, l, "core")}},
		{"the dev password", []nats.Option{clientTLS(t, l.TLS(devpki.Client)), nats.UserInfo("core", "core-dev-password")}},
		{"another CA's core key", []nats.Option{clientTLS(t, l.TLS(devpki.Client)), seedAuth(t, other, "core")}},
		{"user edge's key (leaf nodes only)", []nats.Option{clientTLS(t, l.TLS(devpki.Client)), seedAuth(t, l, "edge")}},
	} {
		if err := connect(c.opts...); err == nil {
			t.Errorf("%s: connected", c.name)
		} else {
			t.Logf("%s: refused: %v", c.name, err)
		}
	}
	if err := nodetest.PlaintextRefused(strings.TrimPrefix(url, "tls://")); err != nil {
		t.Errorf("plaintext on the client port: %v", err)
	}
	if err := nodetest.PlaintextRefused(strings.TrimPrefix(n.LeafURL(), "nats-leaf://")); err != nil {
		t.Errorf("plaintext on the leaf-node port: %v", err)
	}
	if log.Contains(plaintextWarning) {
		t.Errorf("a secured node warns of plaintext passwords:\n%s", log.String())
	}

	var plain nodetest.Log
	pn := start(t, node.Config{Name: "plain", DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0", LeafAddr: "127.0.0.1:0"}, &plain)
	if nodetest.PlaintextRefused(strings.TrimPrefix(pn.ClientURL(), "nats://")) == nil {
		t.Error("PlaintextRefused says an insecure node refuses plaintext")
	}
	if !plain.Contains(plaintextWarning) {
		t.Errorf("an insecure node logs no %q: is the log captured?\n%s", plaintextWarning, plain.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRoutesNeedCertificate: two secured nodes form a cluster over mutual
// TLS routes; a third with a certificate of another CA never joins it.
func TestRoutesNeedCertificate(t *testing.T) {
	l, other := nodetest.Secrets(t), nodetest.Secrets(t)
	a, b, c := freeAddr(t), freeAddr(t), freeAddr(t)
	routes := []string{"nats-route://" + a, "nats-route://" + b}
	var log nodetest.Log
	cfgs := []node.Config{nodetest.SecureConfig(t, l), nodetest.SecureConfig(t, l)}
	for i, addr := range []string{a, b} {
		cfgs[i].Name, cfgs[i].ClusterAddr, cfgs[i].Routes = fmt.Sprintf("core-%d", i+1), addr, routes
	}
	nodes := make([]*node.Node, 2)
	errc := make(chan error, 2)
	for i := range cfgs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var err error
			nodes[i], err = node.Start(ctx, cfgs[i], log.Logger())
			errc <- err
		}()
	}
	for range cfgs {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		t.Cleanup(func() { stop(n) })
	}
	if !nodes[0].Clustered() || nodes[0].Server.NumRoutes() == 0 {
		t.Fatal("the two nodes have no route")
	}
	// Routes over TLS are framed (s2_auto), so that a flush is one record.
	rz, err := nodes[0].Server.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rz.Routes {
		if r.Compression == "" || r.Compression == "off" {
			t.Errorf("route to %s: compression %q", r.RemoteName, r.Compression)
		}
	}

	// The intruder: a server with every route and a certificate of
	// another CA (no JetStream: it would wait for a quorum).
	bad := nodetest.SecureConfig(t, other)
	bad.Name, bad.ClusterAddr, bad.Routes = "intruder", c, append(routes, "nats-route://"+c)
	opts, err := bad.Options()
	if err != nil {
		t.Fatal(err)
	}
	opts.JetStream = false
	var badLog nodetest.Log
	s, err := natsembed.Start(opts, badLog.Logger(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	eventually.True(t, 20*time.Second, "a route handshake refused", func() bool {
		return log.Contains("TLS route handshake error") && badLog.Contains("TLS route handshake error")
	})
	if s.NumRoutes() != 0 {
		t.Errorf("the intruder has %d routes", s.NumRoutes())
	}
	if rz, err = nodes[0].Server.Routez(nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rz.Routes {
		if r.RemoteName == "intruder" {
			t.Error("core-1 has a route to the intruder")
		}
	}
}

// TestEncryptedStore: a stream written by a node with a store key leaves
// no plaintext in the files; the node refuses to start with another key or
// none; nats-server itself, given another key or none, cannot read the
// stream; with the right key everything is there.
func TestEncryptedStore(t *testing.T) {
	const marker = "PLAINTEXT-MARKER-7f3c9a"
	write := func(c node.Config) {
		t.Helper()
		var log nodetest.Log
		n := start(t, c, &log)
		nc, err := n.Connect("writer")
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx := context.Background()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SECRET", Subjects: []string{"secret.>"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 100 {
			if _, err := js.Publish(ctx, "secret.x", fmt.Appendf(nil, "%s %d", marker, i)); err != nil {
				t.Fatal(err)
			}
		}
		nc.Close()
		stop(n)
	}
	contains := func(dir string) bool {
		t.Helper()
		found := false
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			found = found || bytes.Contains(b, []byte(marker))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	// The check of the check: without a key the marker is in the files.
	plain := node.Config{Name: "plain", DataDir: t.TempDir(), ClientAddr: "-", LeafAddr: "127.0.0.1:0"}
	write(plain)
	if !contains(plain.DataDir) {
		t.Fatal("the marker is not found in an unencrypted store: the scan is broken")
	}

	l := nodetest.Secrets(t)
	cfg := nodetest.SecureConfig(t, l)
	write(cfg)
	if contains(cfg.DataDir) {
		t.Fatal("the encrypted store holds the plaintext")
	}
	for _, key := range []string{"", "another key"} {
		c := cfg
		c.Store.Key = key
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n, err := node.Start(ctx, c, (&nodetest.Log{}).Logger())
		cancel()
		if !errors.Is(err, node.ErrStoreKey) {
			if n != nil {
				stop(n)
			}
			t.Fatalf("key %q: node.Start: %v, want ErrStoreKey", key, err)
		}
	}
	// Past node's check, nats-server alone cannot read the stream.
	for _, key := range []string{"", "another key"} {
		c := cfg
		c.Store.Key = key
		opts, err := c.Options()
		if err != nil {
			t.Fatal(err)
		}
		var log nodetest.Log
		s, err := natsembed.Start(opts, log.Logger(), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := natsembed.Connect(s, seedAuth(t, l, "core"))
		if err != nil {
			s.Shutdown()
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = js.Stream(ctx, "SECRET")
		cancel()
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("key %q: the stream: %v, want not found", key, err)
		}
		if !log.Contains("Error decrypting") && !log.Contains("encrypt") {
			t.Logf("key %q: server log:\n%s", key, log.String())
		}
	}
	// The right key reads it all.
	var log nodetest.Log
	n := start(t, cfg, &log)
	nc, err := n.Connect("reader")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	st, err := js.Stream(ctx, "SECRET")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 100)
	if err != nil || !bytes.HasPrefix(m.Data, []byte(marker)) {
		t.Fatalf("message 100 with the right key: %q, %v", m.Data, err)
	}
}

// TestValidateSecurity: a seed that does not fit the core's public key,
// an nkey without its seed, a certificate without its CA, a cipher
// nats-server does not know are refused.
func TestValidateSecurity(t *testing.T) {
	l, other := nodetest.Secrets(t), nodetest.Secrets(t)
	otherSeed, _ := devpki.ReadSecret(other.Seed("core"))
	for name, change := range map[string]func(*node.Config){
		"another seed":     func(c *node.Config) { c.CoreSeed = otherSeed },
		"no seed":          func(c *node.Config) { c.CoreSeed = "" },
		"no CA":            func(c *node.Config) { c.TLS.CA = "" },
		"no key":           func(c *node.Config) { c.TLS.Key = "" },
		"unknown cipher":   func(c *node.Config) { c.Store.Cipher = "rot13" },
		"invalid user key": func(c *node.Config) { c.Credentials.NKeys.Edge = "not-a-key" },
	} {
		c := nodetest.SecureConfig(t, l)
		change(&c)
		if _, err := c.Options(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := nodetest.SecureConfig(t, l).Options(); err != nil {
		t.Errorf("the secure config: %v", err)
	}
}
