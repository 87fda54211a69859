package natsapi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	"github.com/ticketing/ticketing/services/analytics/natsapi"
)

func TestFunnel(t *testing.T) {
	_, nc, _ := nodetest.Start(t)
	store, err := filestore.Open(filestore.Config{Path: filepath.Join(t.TempDir(), "a.json")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	on := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	p := analytics.Position{Topic: "ticketing.inventory", Partition: 0}
	sold := &analytics.Event{Type: analytics.TypeSeatsSold, Data: analytics.EventData{EventID: "arena", Quantity: 2,
		EventCapacity: 2, OnSaleAt: &on, At: on.Add(90 * time.Second)}}
	if _, err := store.Apply(ctx, []analytics.Input{{Pos: p, Offset: 0, Event: sold}}); err != nil {
		t.Fatal(err)
	}
	svc, err := natsapi.Serve(nc, store)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	c := &natsapi.Client{NC: nc}
	f, err := c.Funnel(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	if f.SoldTickets != 2 || f.TimeToSellOut == nil || *f.TimeToSellOut != 90*time.Second || !f.SoldOutAt.Equal(on.Add(90*time.Second)) {
		t.Fatalf("%+v", f)
	}
	if _, err := c.Funnel(ctx, "nothing"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown event: %v", err)
	}
	if _, err := c.Funnel(ctx, ""); !errs.Is(errs.Invalid, err) {
		t.Fatalf("empty event id: %v", err)
	}
	if info := svc.Info(); info.Name != "analytics" || len(info.Endpoints) != 1 || info.Endpoints[0].Subject != natsapi.SubjFunnel {
		t.Fatalf("service info %+v", info)
	}
}
