package leafnodes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/natsembed"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

func secret(t *testing.T, path string) string {
	t.Helper()
	s, err := devpki.ReadSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLeafNeedsCertificateAndKey: an edge with a certificate of the core's
// CA and user edge's seed joins a secured core over mutual TLS, and its
// own client listener requires TLS as well. Edges in plaintext, with a
// certificate of another CA, with the old password or another seed never
// join: each logs its refusal, and the core counts one leaf node.
func TestLeafNeedsCertificateAndKey(t *testing.T) {
	l, other := nodetest.Secrets(t), nodetest.Secrets(t)
	var coreLog nodetest.Log
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	core, err := node.Start(ctx, nodetest.SecureConfig(t, l), coreLog.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer core.Shutdown(context.Background())
	coreNC, err := core.Connect("core")
	if err != nil {
		t.Fatal(err)
	}
	defer coreNC.Close()
	subj := natsapi.Subject("ev.0", natsapi.OpHold)
	if _, err := coreNC.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond([]byte("held")) }); err != nil {
		t.Fatal(err)
	}
	_ = coreNC.Flush()
	hub := []string{core.LeafURL()}

	good := leafnodes.EdgeConfig{Name: "edge-good", ClientAddr: "127.0.0.1:0", Hubs: hub, Compression: "off",
		TLS: l.TLS(devpki.Edge), Seed: secret(t, l.Seed("edge"))}
	leaf, err := leafnodes.StartEdge(good, (&nodetest.Log{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Shutdown()
	if err := leafnodes.WaitConnected(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	nc, err := natsembed.Connect(leaf, nats.Name("edge"))
	if err != nil {
		t.Fatalf("the edge's own connection over TLS: %v", err)
	}
	defer nc.Close()
	eventually.Nil(t, 10*time.Second, func() error {
		_, err := nc.Request(subj, nil, time.Second)
		return err
	})
	if err := nodetest.PlaintextRefused(strings.TrimPrefix(leaf.ClientURL(), "tls://")); err != nil {
		t.Errorf("the edge's client port: %v", err)
	}

	foreignCert := other.TLS(devpki.Edge)
	foreignCert.CA = l.CA()
	for _, c := range []struct {
		name   string
		change func(*leafnodes.EdgeConfig)
	}{
		{"plaintext", func(c *leafnodes.EdgeConfig) { c.TLS = tlsconf.Files{} }},
		{"a certificate of another CA", func(c *leafnodes.EdgeConfig) { c.TLS = foreignCert }},
		{"trusting another CA", func(c *leafnodes.EdgeConfig) { c.TLS = other.TLS(devpki.Edge) }},
		{"the dev password", func(c *leafnodes.EdgeConfig) { c.Seed = "" }},
		{"another seed", func(c *leafnodes.EdgeConfig) { c.Seed = secret(t, other.Seed("edge")) }},
		{"user core's seed", func(c *leafnodes.EdgeConfig) { c.Seed = secret(t, l.Seed("core")) }},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			cfg := good
			cfg.Name, cfg.ClientAddr = "edge-bad", "-"
			c.change(&cfg)
			var log nodetest.Log
			coreErrors := errorCount(coreLog.String())
			bad, err := leafnodes.StartEdge(cfg, log.Logger())
			if err != nil {
				t.Fatal(err)
			}
			defer bad.Shutdown()
			// The refusal is logged by the side that saw it: with TLS 1.3
			// the client's certificate is checked after its handshake ends.
			eventually.True(t, 20*time.Second, "a refusal logged", func() bool {
				return log.Contains("ERROR") || errorCount(coreLog.String()) > coreErrors
			})
			if n := bad.NumLeafNodes(); n != 0 {
				t.Errorf("the edge has %d hub connections", n)
			}
			if n := core.Server.NumLeafNodes(); n != 1 {
				t.Errorf("the core has %d leaf nodes, want the good edge only", n)
			}
			t.Logf("refused: %s", firstError(log.String()+"\n"+coreLog.String()))
		})
	}
	// User core may publish anything: user edge's permissions must
	// still hold for the good edge (it joined as edge, not as core).
	if _, err := nc.Request(natsapi.Subject("ev.0", natsapi.OpConfirm), nil, 300*time.Millisecond); err == nil {
		t.Error("the edge reached an operation only the core may use")
	}
}

func errorCount(log string) int {
	return strings.Count("\n"+log, "\nERROR")
}

func firstError(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "ERROR") {
			return l
		}
	}
	return ""
}

// TestPlainLoopbackClients: a leaf server may take plaintext clients
// while its hub link is secured only on a loopback address.
func TestPlainLoopbackClients(t *testing.T) {
	l := nodetest.Secrets(t)
	for addr, ok := range map[string]bool{"127.0.0.1:0": true, "[::1]:4223": true, "localhost:0": true,
		"0.0.0.0:4223": false, "10.0.0.7:4223": false, "": false} {
		c := leafnodes.EdgeConfig{Name: "e", ClientAddr: addr, TLS: l.TLS(devpki.Edge), PlainLoopbackClients: true}
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("client address %q: %v, want accepted %v", addr, err, ok)
		}
	}
}
