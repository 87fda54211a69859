package natsevents_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/pricing"
	"github.com/ticketing/ticketing/services/pricing/natsevents"
	"github.com/ticketing/ticketing/services/pricing/natskv"
)

var t0 = time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)

func dynamicRules() pricing.Rules {
	return pricing.Rules{Event: "arena-concert", Version: 1, Currency: "USD",
		Zones: map[string]int64{"floor": 20000, "balcony": 10000},
		Dynamic: &pricing.Dynamic{Enabled: true, Base: map[string]int64{"floor": 20000, "balcony": 10000},
			SellThrough: []pricing.SellThroughStep{{AtBP: 8000, MultiplierBP: 12500}},
			Floor:       pricing.Bound{BP: 8000}, Ceiling: pricing.Bound{BP: 15000}, MaxStep: pricing.Bound{Amount: 2000}},
		OnSaleAt: t0.Add(-time.Hour)}
}

// A repricing's changes reach EVENTS as CloudEvents on
// events.pricing.<event>, with the change as data and its id as
// Nats-Msg-Id (a repeat is stored once); the quote made before keeps its
// prices.
func TestRepricingReachesEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsevents.New(nc, natsevents.Config{Source: "/core/t/pricing"})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutRules(ctx, dynamicRules()); err != nil {
		t.Fatal(err)
	}
	svc := &pricing.Service{Store: store, Events: pub, Clock: func() time.Time { return t0 }}
	q, err := svc.Quote(ctx, pricing.Cart{Event: "arena-concert", Account: "u_1", Holds: []string{"h1"},
		Tickets: []pricing.Item{{Zone: "floor", Quantity: 1}}, ExpiresAt: t0.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}

	changed, err := svc.Reprice(ctx, "arena-concert", pricing.Demand{Sold: 900, Capacity: 1000}, t0.Add(time.Minute))
	if err != nil || !changed {
		t.Fatalf("Reprice: %v, %v", changed, err)
	}
	r, err := store.Rules(ctx, "arena-concert")
	if err != nil || r.Version != 2 || r.Zones["floor"] != 22000 || r.Zones["balcony"] != 12000 {
		t.Fatalf("rules after repricing: %+v, %v", r, err)
	}
	if got, err := store.Quote(ctx, q.ID); err != nil || got.Total != q.Total || got.RulesVersion != 1 {
		t.Fatalf("the quote after repricing: %+v, %v", got, err)
	}
	evs := pricing.ChangedEvents(r)
	if err := pub.Publish(ctx, evs[0]); err != nil { // a repeat: stored once
		t.Fatal(err)
	}

	info, err := set.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("%d events in the stream, want 2", info.State.Msgs)
	}
	c, err := set.Events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i, zone := range []string{"balcony", "floor"} {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ce, err := cloudevents.Unmarshal(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		h := m.Headers()
		if m.Subject() != "events.pricing.arena-concert" || ce.Type != pricing.TypeChanged || ce.Source != "/core/t/pricing" ||
			ce.Subject != "arena-concert/"+zone || ce.PartitionKey != "arena-concert" || ce.ID != evs[i].ID ||
			h.Get(nats.MsgIdHdr) != ce.ID || h.Get(cloudevents.HeaderType) != pricing.TypeChanged || !ce.Time.Equal(t0.Add(time.Minute)) {
			t.Fatalf("message %s %v: event %+v", m.Subject(), h, ce)
		}
		var data pricing.Changed
		if err := json.Unmarshal(ce.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Zone != zone || data.Old.Amount != map[string]int64{"floor": 20000, "balcony": 10000}[zone] ||
			data.New.Amount != r.Zones[zone] || data.New.Currency != "USD" || data.RulesVersion != 2 || data.Reason == "" ||
			data.SellThroughBP != 9000 || data.MultiplierBP != 12500 {
			t.Fatalf("data %s", ce.Data)
		}
	}
}

// Without a stream to take them, a publish fails as unavailable, and the
// Service publishes the changes again on its next Reprice of the event.
func TestUnpublishedChangesFollow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsevents.New(nc, natsevents.Config{Source: "/t"})
	if err != nil {
		t.Fatal(err)
	}
	r := dynamicRules()
	r.Dynamic.MaxStep = pricing.Bound{BP: 10000} // one step to the target
	if err := store.PutRules(ctx, r); err != nil {
		t.Fatal(err)
	}
	svc := &pricing.Service{Store: store, Events: pub}
	hot := pricing.Demand{Sold: 900, Capacity: 1000}
	changed, err := svc.Reprice(ctx, "arena-concert", hot, t0)
	if !changed || !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Reprice without EVENTS: %v, %v", changed, err)
	}

	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	changed, err = svc.Reprice(ctx, "arena-concert", hot, t0.Add(time.Minute))
	if changed || err != nil {
		t.Fatalf("Reprice at the target: %v, %v", changed, err)
	}
	info, err := set.Events.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream after the retry: %+v, %v", info.State, err)
	}
}

func TestPublishRefuses(t *testing.T) {
	_, nc, _ := nodetest.Start(t)
	if _, err := natsevents.New(nc, natsevents.Config{}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("New without a source: %v", err)
	}
	pub, err := natsevents.New(nc, natsevents.Config{Source: "/t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []pricing.Changed{
		{Event: "e", Zone: "z", At: t0},
		{ID: "x", Event: "E.>", Zone: "z", At: t0},
		{ID: "x", Event: "e", Zone: "z"},
	} {
		if err := pub.Publish(context.Background(), ev); !errs.Is(errs.Invalid, err) {
			t.Errorf("Publish(%+v): %v", ev, err)
		}
	}
	if got := natsevents.Subject("events.", "arena-concert"); got != "events.pricing.arena-concert" {
		t.Fatal(got)
	}
}
