package natskv_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/catalog/natskv"
)

// TestStoreAndFollow: ids are taken once, a repeat of the same venue is
// accepted and another one refused, the demo data loads twice without
// change, and a follower's cache sees what is stored.
func TestStoreAndFollow(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, _, js := nodetest.Start(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "catalog"})
	if err != nil {
		t.Fatal(err)
	}
	svc := &catalog.Service{Store: &natskv.Store{KV: kv}}
	b, _ := conf.Files.ReadFile("demo/demo.json")
	demo, err := catalog.ParseDataset(b)
	if err != nil {
		t.Fatal(err)
	}
	if created, err := svc.Load(ctx, demo); err != nil || created != len(demo.Venues)+len(demo.Events) {
		t.Fatalf("first load: %d %v", created, err)
	}
	if created, err := svc.Load(ctx, demo); err != nil || created != 0 {
		t.Fatalf("second load: %d %v", created, err)
	}
	if err := svc.CreateVenue(ctx, demo.Venues[0]); !errs.Is(errs.Conflict, err) {
		t.Fatalf("the same id again: %v", err)
	}
	if _, err := svc.Store.Event(ctx, "nope"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown event: %v", err)
	}
	bad := demo.Events[0]
	bad.ID, bad.VenueID = "orphan", "no-such-venue"
	if err := svc.CreateEvent(ctx, bad); !errs.Is(errs.Invalid, err) {
		t.Fatalf("event at an unknown venue: %v", err)
	}

	cache := catalog.NewCache()
	seen := make(chan string, 16)
	cache.OnEvent(func(e catalog.Event, _ catalog.Venue) { seen <- e.ID })
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	go func() { followed <- natskv.Follow(fctx, kv, cache, log) }()
	defer func() {
		cancel()
		if err := <-followed; err != nil {
			t.Errorf("Follow ended with %v when its context ended, want nil", err)
		}
	}()
	select {
	case <-cache.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("cache not ready")
	}
	if got := len(cache.Events()); got != len(demo.Events) {
		t.Fatalf("cache has %d events, want %d", got, len(demo.Events))
	}
	e, v, ok := cache.Event("arena-concert")
	if !ok || v.ID != "arena" || !reflect.DeepEqual(e.Name, demo.Events[0].Name) {
		t.Fatalf("cached event %+v at %q", e, v.ID)
	}
	// A new event reaches the follower.
	extra := demo.Events[1]
	extra.ID = "club-night-2"
	if err := svc.CreateEvent(ctx, extra); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case id := <-seen:
			if id == "club-night-2" {
				return
			}
		case <-deadline:
			t.Fatal("the follower did not see the new event")
		}
	}
}

// notFoundKV answers every Get as a replica that has not caught up would:
// not found. The store then asks the stream's leader.
type notFoundKV struct{ jetstream.KeyValue }

func (notFoundKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, jetstream.ErrKeyNotFound
}

// A key a stale replica does not have is read from the stream's leader;
// an absent or deleted key is still not found.
func TestLeaderReadAfterStaleGet(t *testing.T) {
	ctx := context.Background()
	_, nc, js := nodetest.Start(t)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "catalog"})
	if err != nil {
		t.Fatal(err)
	}
	writer := &natskv.Store{KV: kv}
	v := catalog.Venue{ID: "hall", Name: "Hall", City: "Town",
		Zones: []catalog.Zone{{ID: "ga", Name: "Floor", Kind: catalog.GA, Capacity: 10, Currency: "USD"}}}
	if err := writer.CreateVenue(ctx, v); err != nil {
		t.Fatal(err)
	}
	stale := &natskv.Store{KV: notFoundKV{kv}, NC: nc}
	got, err := stale.Venue(ctx, "hall")
	if err != nil || got.Name != "Hall" {
		t.Fatalf("venue through the leader: %+v %v", got, err)
	}
	if _, err := stale.Venue(ctx, "nowhere"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("absent venue: %v, want not found", err)
	}
	if err := kv.Delete(ctx, "venue.hall"); err != nil {
		t.Fatal(err)
	}
	if _, err := stale.Venue(ctx, "hall"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("deleted venue: %v, want not found", err)
	}
	if _, err := (&natskv.Store{KV: notFoundKV{kv}}).Venue(ctx, "hall"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("without a connection the store trusts Get: %v", err)
	}
}
