package natsapi_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/natsapi"
	"github.com/ticketing/ticketing/services/reporting/natskv"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

func TestEventReport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	store, err := natskv.Open(ctx, js, natskv.Config{Bucket: "reporting-api"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, reportingtest.Sample()); err != nil {
		t.Fatal(err)
	}
	svc := &reporting.Service{Store: store}
	m, err := natsapi.Serve(nc, svc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	c := &natsapi.Client{NC: nc}

	got, err := c.EventReport(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	want, err := svc.EventReport(ctx, "arena")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("over NATS: %+v\nin process: %+v", got, want)
	}
	if got.Totals.Sold != 3 || len(got.Zones) != 2 {
		t.Fatalf("report: %+v", got)
	}
	if _, err := c.EventReport(ctx, "nothing"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown event: %v, want not found", err)
	}
	if _, err := c.EventReport(ctx, "bad id!"); !errs.Is(errs.Invalid, err) {
		t.Fatalf("malformed id: %v, want invalid", err)
	}
	_ = m.Stop()
	if _, err := c.EventReport(ctx, "arena"); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("no service: %v, want unavailable", err)
	}
}
