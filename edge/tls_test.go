package edge_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity/auth/authtest"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/devpki"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/leafnodes"
)

// TestSecuredEdge: an edge as `ticketing edge` runs it by default, against
// a secured core: its leaf link is mutual TLS with user edge's nkey, and
// its API answers over HTTPS to a client that trusts the CA, while plain
// HTTP and a client that does not trust the CA get nothing.
func TestSecuredEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	l := nodetest.Secrets(t)
	core, err := node.Start(ctx, nodetest.SecureConfig(t, l), log)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Shutdown(context.Background())
	nc, err := core.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	authtest.Start(t, nc, js, "http://localhost:8080")
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket}); err != nil {
		t.Fatal(err)
	}
	seed, err := devpki.ReadSecret(l.Seed("edge"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.Start(ctx, edge.Config{
		HTTPAddr:  "127.0.0.1:0",
		HTTPTLS:   l.TLS(devpki.Edge),
		Leaf:      leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}, TLS: l.TLS(devpki.Edge), Seed: seed},
		RateLimit: edge.RateLimitConfig{Disabled: true},
	}, supervisortest.New(t), log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL(), "https://") {
		t.Fatalf("URL %s", e.URL())
	}
	trusting, err := tlsconf.Client(tlsconf.Files{CA: l.CA()})
	if err != nil {
		t.Fatal(err)
	}
	get := func(tc *tls.Config, url string) (int, error) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := hc.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, path := range []string{"/readyz", "/v1/events"} {
		if code, err := get(trusting, e.URL()+path); err != nil || code != 200 {
			t.Errorf("GET %s over HTTPS: %d %v", path, code, err)
		}
	}
	if code, err := get(nil, "http://"+strings.TrimPrefix(e.URL(), "https://")+"/readyz"); err == nil {
		t.Errorf("plain HTTP answered %d", code)
	}
	if code, err := get(nil, e.URL()+"/readyz"); err == nil {
		t.Errorf("a client that does not trust the CA got %d", code)
	}
}
