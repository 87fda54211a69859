package core_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/services/catalog"
)

// A component of the core that dies after the start (its connection
// closed for good, its server shut down by someone else) shuts the whole
// core down, in the reverse order of the start, and the process's Wait
// returns the failure: `ticketing core` exits non-zero.
func TestAFailedComponentShutsTheCoreDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kill   func(c *core.Core)
		failed []string
	}{
		{"connection closed for good", func(c *core.Core) { c.NC.Close() }, []string{"nats-conn failed: connection closed",
			// The catalog's or the settings' watch on it, or a consumer of
			// EVENTS, may notice first.
			"catalog-follower failed: catalog follow: the watch ended", "settings-follower failed: settings watch: the watch ended",
			"fulfillment-issue failed: the consumer stopped", "notify-confirmations failed: the consumer stopped"}},
		{"server shut down", func(c *core.Core) { go c.Node.Server.Shutdown() }, []string{"nats-server failed: the server shut down",
			// Connections, the catalog's or the settings' watch and the
			// consumers of EVENTS may notice first.
			"nats-conn", "catalog-follower failed", "settings-follower failed", "fulfillment-issue failed", "notify-confirmations failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			b, err := conf.Files.ReadFile("demo/demo.json")
			if err != nil {
				t.Fatal(err)
			}
			demo, err := catalog.ParseDataset(b)
			if err != nil {
				t.Fatal(err)
			}
			sup, stops := supervisortest.Recording(t)
			c, err := core.Start(ctx, core.Config{
				Node:       node.Config{Name: "t", DataDir: t.TempDir(), ClientAddr: "-", LeafAddr: "127.0.0.1:0"},
				AdminToken: "core-test-admin-token-0123456789",
				Demo:       &demo,
			}, sup, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			started := names(sup.Report())
			want := []string{"nats-server", "nats-conn", "nats-conn-relay", "nats-conn-log", "nats-conn-snapshots",
				"catalog-service", "owners", "catalog-follower", "settings-services", "settings-follower",
				"fraud-events", "identity-mail", "identity-service", "identity-keys", "orders-kv", "orders-service", "ticket-keys", "tickets-service", "fulfillment-issue", "notify-confirmations", "orders-saga", "waiting-room"}
			if !slices.Equal(started, want) {
				t.Fatalf("components %v, want %v", started, want)
			}
			tc.kill(c)
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
