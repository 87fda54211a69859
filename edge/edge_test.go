package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity/auth/authtest"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/edge/httpapi"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	"github.com/ticketing/ticketing/services/reporting"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
	"github.com/ticketing/ticketing/services/reporting/natskv"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

const adminToken = "edge-test-admin-token-0123456789"

// An edge started as `ticketing dev` and `ticketing edge` start it answers
// event reports and funnels from the real reporting and analytics micro
// services in the core, over its leaf node and the edge user's permissions.
func TestReportsThroughTheLeafNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core, coreNC, js := nodetest.Start(t)
	ids := authtest.Start(t, coreNC, js, "http://localhost:8080") // the identity service the edge asks at start
	// Reports need an account with the admin role; the admin token is a
	// bootstrap for roles only.
	admin := "Bearer " + ids.SignedIn(t, "admin").AccessToken
	buyer := "Bearer " + ids.SignedIn(t).AccessToken
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket}); err != nil {
		t.Fatal(err)
	}
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, reportingtest.Sample()); err != nil {
		t.Fatal(err)
	}
	svc := &reporting.Service{Store: store}
	ms, err := reportingapi.Serve(coreNC, svc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ms.Stop() }()
	funnels, err := filestore.Open(filestore.Config{Path: filepath.Join(t.TempDir(), "analytics.json")})
	if err != nil {
		t.Fatal(err)
	}
	on := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	sold := &analytics.Event{ID: "s1", Type: analytics.TypeSeatsSold, Data: analytics.EventData{EventID: "arena", Quantity: 2,
		EventCapacity: 2, OnSaleAt: &on, At: on.Add(90 * time.Second)}}
	if _, err := funnels.Apply(ctx, []analytics.Input{{Pos: analytics.Position{Topic: "ticketing.events"}, Event: sold}}); err != nil {
		t.Fatal(err)
	}
	as, err := analyticsapi.Serve(coreNC, funnels)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = as.Stop() }()

	sup := supervisortest.New(t)
	defer func() { _ = sup.Shutdown() }()
	e, err := edge.Start(ctx, edge.Config{
		HTTPAddr:  "127.0.0.1:0",
		Leaf:      leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}},
		API:       httpapi.Config{AdminToken: adminToken},
		RateLimit: edge.RateLimitConfig{Disabled: true},
	}, sup, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}

	get := func(path, auth string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.URL()+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// The services' interest crosses the leaf connection asynchronously:
	// until it has, the edge answers 503 (retry).
	getOK := func(path string) []byte {
		t.Helper()
		var status int
		var body []byte
		eventually.Nil(t, 10*time.Second, func() error {
			if status, body = get(path, admin); status == http.StatusServiceUnavailable {
				return fmt.Errorf("GET %s: %d %s", path, status, body)
			}
			return nil
		})
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		return body
	}
	body := getOK("/v1/reports/events/arena")
	var got httpapi.EventReportView
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want, err := svc.EventReport(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	if got.EventID != "arena" || got.Totals.Sold != want.Totals.Sold || got.Totals.NetCents != want.Totals.NetCents ||
		len(got.Zones) != len(want.Zones) || len(got.Hours) != len(want.Hours) {
		t.Fatalf("report %+v, the service's %+v", got, want)
	}
	var funnel httpapi.EventFunnelView
	if err := json.Unmarshal(getOK("/v1/reports/events/arena/funnel"), &funnel); err != nil {
		t.Fatal(err)
	}
	if funnel.EventID != "arena" || funnel.SoldTickets != 2 || funnel.TimeToSellOutSeconds == nil || *funnel.TimeToSellOutSeconds != 90 {
		t.Fatalf("funnel %+v", funnel)
	}
	for _, c := range []struct {
		path, auth string
		status     int
		code       string
	}{
		{"/v1/reports/events/arena", "", 401, "unauthorized"},
		{"/v1/reports/events/arena", "Bearer " + adminToken, 401, "unauthorized"},
		{"/v1/reports/events/arena", buyer, 403, "forbidden"},
		{"/v1/reports/events/Arena", admin, 400, "invalid_request"},
		{"/v1/reports/events/nothing", admin, 404, "not_found"},
		{"/v1/reports/events/arena/funnel", "", 401, "unauthorized"},
		{"/v1/reports/events/arena/funnel", buyer, 403, "forbidden"},
		{"/v1/reports/events/Arena/funnel", admin, 400, "invalid_request"},
		{"/v1/reports/events/nothing/funnel", admin, 404, "not_found"},
	} {
		status, body := get(c.path, c.auth)
		var eb httpapi.ErrorBody
		if err := json.Unmarshal(body, &eb); status != c.status || err != nil || eb.Error.Code != c.code {
			t.Errorf("GET %s (%q): %d %s, want %d %s", c.path, c.auth, status, body, c.status, c.code)
		}
	}
}

func TestConfigAdminToken(t *testing.T) {
	c := edge.Config{Leaf: leafnodes.EdgeConfig{Name: "e"}, API: httpapi.Config{AdminToken: "short"}}
	c.Defaults()
	if err := c.Validate(); err == nil {
		t.Fatal("a 5-character admin token was accepted")
	}
	c.API.AdminToken = adminToken
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.API.AdminToken = ""
	if err := c.Validate(); err != nil {
		t.Fatalf("no admin token (reports refused): %v", err)
	}
}
