package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity/auth/authtest"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/catalog"
	catalogkv "github.com/ticketing/ticketing/services/catalog/natskv"
	"github.com/ticketing/ticketing/services/settings"
	settingsapi "github.com/ticketing/ticketing/services/settings/natsapi"
	settingskv "github.com/ticketing/ticketing/services/settings/natskv"
)

type answer struct {
	status     int
	retryAfter string
	limit      string
	body       httpapi.ErrorBody
}

// A running edge picks up drain mode, hold limits and the sales kill
// switch from the settings bucket within a second of `ticketing config
// set` (the config service's client), and goes back when they are unset.
func TestSettingsReachARunningEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core, coreNC, js := nodetest.Start(t)
	ids := authtest.Start(t, coreNC, js, "http://localhost:8080") // the identity service the edge asks at start
	buyer := "Bearer " + ids.SignedIn(t).AccessToken
	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := conf.Files.ReadFile("demo/demo.json")
	demo, err := catalog.ParseDataset(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&catalog.Service{Store: &catalogkv.Store{KV: set.Catalog}}).Load(ctx, demo); err != nil {
		t.Fatal(err)
	}
	svcs, err := settingsapi.Serve(coreNC, &settings.Service{
		Store:   &settingskv.Store{KV: set.Settings, JS: js, NC: coreNC},
		Auditor: &settingskv.Auditor{JS: js, Events: set.Events, Source: "/core/t/config"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svcs.Stop()
	config := &settingsapi.Client{NC: coreNC}

	e, err := edge.Start(ctx, edge.Config{
		HTTPAddr: "127.0.0.1:0",
		Leaf:     leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}},
		API:      httpapi.Config{AdminToken: adminToken, RequestTimeout: 300 * time.Millisecond},
	}, supervisortest.New(t), log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Settings.Ready():
	case <-ctx.Done():
		t.Fatal("the edge's settings never loaded")
	}

	do := func(method, path string) answer {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = bytes.NewReader([]byte(`{"seats":["floor-1-1"]}`))
		}
		req, _ := http.NewRequestWithContext(ctx, method, e.URL()+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "6d1b1d1e-0f4e-4a49-9e8d-3a1f0c6b2a11")
		req.Header.Set("Authorization", buyer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		a := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), limit: resp.Header.Get("RateLimit-Limit")}
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &a.body)
		return a
	}
	setting := func(name, scope, text string) {
		t.Helper()
		if _, err := config.Set(ctx, settings.SetRequest{Name: name, Scope: scope, Text: text, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	unset := func(name, scope string) {
		t.Helper()
		if _, err := config.Unset(ctx, settings.UnsetRequest{Name: name, Scope: scope, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	draining := func(a answer) bool {
		return a.status == 503 && a.body.Error.Reason == "draining"
	}

	if a := do("GET", "/v1/events"); a.status != 200 {
		t.Fatalf("before: %+v", a)
	}
	// Drain on for everyone: 503 with the Retry-After asked for, within a
	// second; health, readiness and metrics keep answering.
	setting(settings.EdgeDrainRetryAfter, "", "45s")
	t0 := time.Now()
	setting(settings.EdgeDrain, "", "true")
	eventually.True(t, time.Second, "the edge draining", func() bool { return draining(do("GET", "/v1/events")) })
	t.Logf("drain reached the running edge in %v", time.Since(t0))
	for _, path := range []string{"/v1/events/arena-concert", "/v1/openapi.json", "/queue/arena-onsale"} {
		if a := do("GET", path); !draining(a) || a.retryAfter != "45" {
			t.Fatalf("GET %s while draining: %+v", path, a)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if a := do("GET", path); a.status != 200 {
			t.Fatalf("GET %s while draining: %+v", path, a)
		}
	}
	// A bad value is refused and the edge keeps draining.
	if _, err := config.Set(ctx, settings.SetRequest{Name: settings.EdgeDrain, Text: "maybe", By: "test"}); err == nil {
		t.Fatal("drain 'maybe' accepted")
	}
	// This edge's own value wins over everyone's.
	setting(settings.EdgeDrain, "edge-t", "false")
	eventually.True(t, time.Second, "the edge serving again", func() bool { return do("GET", "/v1/events").status == 200 })
	unset(settings.EdgeDrain, "edge-t")
	eventually.True(t, time.Second, "the edge draining again", func() bool { return draining(do("GET", "/v1/events")) })
	unset(settings.EdgeDrain, "")
	eventually.True(t, time.Second, "the edge back", func() bool { return do("GET", "/v1/events").status == 200 })

	// Hold limits: the burst is the quota the RateLimit headers announce.
	if a := do("POST", "/v1/events/arena-concert/holds"); a.limit != "20" {
		t.Fatalf("configured hold limit: %+v", a)
	}
	setting(settings.EdgeHoldsBurst, "edge-t", "500")
	eventually.True(t, time.Second, "the new hold burst", func() bool { return do("POST", "/v1/events/arena-concert/holds").limit == "500" })

	// The sales kill switch: a flag paused for one organizer refuses its
	// events' holds and no other's.
	def := `{"key":"sales.enabled","enabled":true,"variants":{"on":true,"off":false},"default_variant":"on",
		"rules":[{"name":"pause echoes","organizers":["echoes-live"],"regions":["edge-t"],"variant":"off"}]}`
	if _, err := config.SetFlag(ctx, settings.SetFlagRequest{Definition: json.RawMessage(def), By: "test"}); err != nil {
		t.Fatal(err)
	}
	paused := func(a answer) bool { return a.status == 503 && a.body.Error.Reason == "sales_paused" }
	eventually.True(t, time.Second, "sales paused", func() bool { return paused(do("POST", "/v1/events/arena-concert/holds")) })
	if a := do("POST", "/v1/events/arena-concert/holds"); a.retryAfter != "30" {
		t.Fatalf("paused hold: %+v", a)
	}
	if a := do("POST", "/v1/events/club-night/holds"); paused(a) {
		t.Fatalf("another organizer's hold: %+v", a)
	}
	if err := config.DeleteFlag(ctx, settings.DeleteFlagRequest{Key: "sales.enabled", By: "test"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "sales open again", func() bool { return !paused(do("POST", "/v1/events/arena-concert/holds")) })
}
