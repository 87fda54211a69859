package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity/auth/authtest"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/leafnodes"
)

// A component of the edge that dies after the start (its HTTP listener
// closed, its connection closed for good) shuts the whole edge down, in
// the reverse order of the start, and the process's Wait returns the
// failure: `ticketing edge` exits non-zero instead of living on without
// it.
func TestAFailedComponentShutsTheEdgeDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(e *Edge)
		// failed is what Wait's error may name: with the connection
		// closed, the catalog's watch on it may notice first.
		failed []string
	}{
		{"listener closed", func(e *Edge) { _ = e.ln.Close() }, []string{"http failed"}},
		{"connection closed for good", func(e *Edge) { e.NC.Close() },
			[]string{"nats-conn failed: connection closed", "catalog-follower failed: catalog follow: the watch ended"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			core, coreNC, js := nodetest.Start(t)
			authtest.Start(t, coreNC, js, "http://localhost:8080")
			if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket}); err != nil {
				t.Fatal(err)
			}
			sup, stops := supervisortest.Recording(t)
			e, err := Start(ctx, Config{
				HTTPAddr:  "127.0.0.1:0",
				Leaf:      leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}},
				RateLimit: RateLimitConfig{Disabled: true},
			}, sup, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			started := names(sup.Report())
			if want := []string{"nats-leaf", "nats-conn", "catalog-follower", "settings-follower", "access-token-keys", "waiting-room-events", "waiting-rooms", "admission-keys", "http"}; !slices.Equal(started, want) {
				t.Fatalf("components %v, want %v", started, want)
			}
			tc.kill(e)
			err = sup.Wait(ctx)
			if err == nil || !slices.ContainsFunc(tc.failed, func(f string) bool { return strings.HasPrefix(err.Error(), f) }) {
				t.Fatalf("Wait returned %v, want one of %q", err, tc.failed)
			}
			slices.Reverse(started)
			if got := stops.Names(); !slices.Equal(got, started) {
				t.Fatalf("stopped %v, want the reverse of the start %v", got, started)
			}
		})
	}
}

func names(r supervisor.Report) []string {
	var n []string
	for _, c := range r.Components {
		n = append(n, c.Name)
	}
	return n
}

// A client that opened a connection and never sent a request on it (as
// Go's http.Transport does when it dials ahead) does not hold the edge's
// shutdown: it stops cleanly within a deadline shorter than the server's
// 30 s read timeout, while a request in flight still gets its answer.
func TestShutdownDoesNotWaitForUnusedConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	core, coreNC, js := nodetest.Start(t)
	authtest.Start(t, coreNC, js, "http://localhost:8080")
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket}); err != nil {
		t.Fatal(err)
	}
	sup, err := supervisor.New(supervisor.Config{ShutdownTimeout: 10 * time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Start(ctx, Config{
		HTTPAddr:  "127.0.0.1:0",
		Leaf:      leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}},
		RateLimit: RateLimitConfig{Disabled: true},
	}, sup, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		_ = sup.Shutdown()
		t.Fatal(err)
	}
	idle, err := net.Dial("tcp", e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	resp, err := http.Get(e.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := sup.Shutdown(); err != nil {
		t.Fatalf("shutdown with an unused connection open: %v", err)
	}
}
