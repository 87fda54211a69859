// Package reportingtest is the contract suite of reporting.Store, run
// against every implementation (the PostgreSQL store and the embedded
// natskv store), and helpers that build inventory domain events the way
// the bridge writes them.
package reportingtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
)

// Ev describes an inventory domain event.
type Ev struct {
	ID        string // CloudEvents id; default: derived from the other fields
	Type      string // "hold.placed", "seats.sold", … (without the prefix)
	EventID   string
	Zones     map[string]int
	Amount    int64
	Organizer string
	At        time.Time
}

// T0 is the time of the events of the suite: a whole hour, UTC.
var T0 = time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)

// Body encodes e as the bridge does: a CloudEvents structured JSON body
// whose data is services/inventory.EventData with the reporting fields.
func Body(e Ev) []byte {
	if e.At.IsZero() {
		e.At = T0
	}
	if e.ID == "" {
		e.ID = fmt.Sprintf("%s-%s-%d-%v", e.EventID, e.Type, e.At.UnixNano(), e.Zones)
	}
	onSale := T0.Add(-24 * time.Hour)
	capacity := 0
	for _, n := range e.Zones {
		capacity += n * 100
	}
	data := map[string]any{
		"event_id": e.EventID, "partition": e.EventID + ".0", "hold_id": "h-" + e.ID,
		"holder": "u1", "at": e.At, "zones": e.Zones, "amount_cents": e.Amount, "currency": "USD",
		"organizer_id": e.Organizer, "event_capacity": capacity, "on_sale_at": onSale,
	}
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: e.ID, Source: "/inventory",
		Type: reporting.TypePrefix + e.Type, Subject: e.EventID, Time: e.At, PartitionKey: e.EventID}
	b, err := cloudevents.Encode(&ce, data)
	if err != nil {
		panic(err)
	}
	return b
}

// Records makes records of bodies on one partition, from offset first on.
func Records(topic string, partition int32, first int64, bodies ...[]byte) []reporting.Record {
	out := make([]reporting.Record, len(bodies))
	for i, b := range bodies {
		out[i] = reporting.Record{Topic: topic, Partition: partition, Offset: first + int64(i), Value: b}
	}
	return out
}

// Expected folds records from empty cursors: what a store must hold after
// applying them, each once, in any batches.
func Expected(recs []reporting.Record) *reporting.Aggregates {
	return reporting.Fold(nil, recs).Delta
}

// Run runs the suite. newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) reporting.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, reporting.Store)
	}{
		{"ApplyAndRead", testApplyAndRead},
		{"Redelivery", testRedelivery},
		{"Offsets", testOffsets},
		{"DuplicateEventID", testDuplicateEventID},
		{"InvalidAndIgnored", testInvalidAndIgnored},
		{"ConcurrentApply", testConcurrentApply},
		{"Hours", testHours},
		{"NotFound", testNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// Sample is a stream of two events over two zones and three hours on two
// partitions.
func Sample() []reporting.Record {
	a := []([]byte){
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 2, "balcony": 1}, Amount: 30000, Organizer: "org1"}),
		Body(Ev{Type: "seats.sold", EventID: "arena", Zones: map[string]int{"floor": 2, "balcony": 1}, Amount: 30000, Organizer: "org1", At: T0.Add(10 * time.Minute)}),
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 4}, Amount: 40000, Organizer: "org1", At: T0.Add(70 * time.Minute)}),
		Body(Ev{Type: "hold.expired", EventID: "arena", Zones: map[string]int{"floor": 4}, Amount: 40000, Organizer: "org1", At: T0.Add(90 * time.Minute)}),
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"balcony": 2}, Amount: 10000, Organizer: "org1", At: T0.Add(2 * time.Hour)}),
		Body(Ev{Type: "hold.released", EventID: "arena", Zones: map[string]int{"balcony": 2}, Amount: 10000, Organizer: "org1", At: T0.Add(2*time.Hour + time.Minute)}),
		Body(Ev{Type: "sale.cancelled", EventID: "arena", Zones: map[string]int{"balcony": 1}, Amount: 5000, Organizer: "org1", At: T0.Add(2*time.Hour + 2*time.Minute)}),
	}
	b := [][]byte{
		Body(Ev{Type: "hold.placed", EventID: "club", Zones: map[string]int{"ga": 5}, Amount: 12500, Organizer: "org2"}),
		Body(Ev{Type: "seats.sold", EventID: "club", Zones: map[string]int{"ga": 5}, Amount: 12500, Organizer: "org2", At: T0.Add(time.Minute)}),
	}
	return append(Records("ticketing.inventory", 0, 0, a...), Records("ticketing.inventory", 1, 0, b...)...)
}

// Check fails unless the store holds exactly what want holds about
// events.
func Check(t *testing.T, s reporting.Store, want *reporting.Aggregates, events ...string) {
	t.Helper()
	if err := Diff(ctx(t), s, want, events...); err != nil {
		t.Fatal(err)
	}
}

// Diff returns nil when the store holds exactly what want holds about
// events, and else an error saying what differs.
func Diff(ctx context.Context, s reporting.Store, want *reporting.Aggregates, events ...string) error {
	for _, id := range events {
		w, ok := want.View(id)
		got, err := s.Event(ctx, id)
		if !ok {
			if !errs.Is(errs.NotFound, err) {
				return fmt.Errorf("event %s: %v, want not found", id, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("event %s: %w", id, err)
		}
		if !equalView(got, w) {
			return fmt.Errorf("event %s:\ngot  %s\nwant %s", id, js(got), js(w))
		}
	}
	return nil
}

func equalView(a, b reporting.EventView) bool {
	norm := func(v reporting.EventView) reporting.EventView {
		if len(v.Hours) == 0 {
			v.Hours = nil
		}
		if len(v.Levels) == 0 {
			v.Levels = nil
		}
		return v
	}
	a, b = norm(a), norm(b)
	if len(a.Hours) != len(b.Hours) {
		return false
	}
	for i := range a.Hours {
		if !a.Hours[i].Hour.Equal(b.Hours[i].Hour) || a.Hours[i].Hour.Location() != time.UTC {
			return false
		}
		a.Hours[i].Hour = b.Hours[i].Hour
	}
	if !a.Info.LastAt.Equal(b.Info.LastAt) || !a.Info.OnSaleAt.Equal(b.Info.OnSaleAt) {
		return false
	}
	a.Info.LastAt, a.Info.OnSaleAt = b.Info.LastAt, b.Info.OnSaleAt
	return reflect.DeepEqual(a, b)
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func apply(t *testing.T, s reporting.Store, recs []reporting.Record) reporting.Applied {
	t.Helper()
	a, err := s.Apply(ctx(t), recs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return a
}

func testApplyAndRead(t *testing.T, s reporting.Store) {
	recs := Sample()
	a := apply(t, s, recs)
	if a.Applied != len(recs) || a.Skipped != 0 || a.Duplicates != 0 || len(a.Invalid) != 0 {
		t.Fatalf("applied %+v, want all %d", a, len(recs))
	}
	want := Expected(recs)
	Check(t, s, want, "arena", "club")
	// The fold itself, checked by hand once: arena's floor zone.
	v, _ := s.Event(ctx(t), "arena")
	r := reporting.BuildReport(v)
	if r.Totals.Held != 9 || r.Totals.Sold != 3 || r.Totals.Cancelled != 1 || r.Totals.Expired != 4 || r.Totals.Released != 2 ||
		r.Totals.GrossCents != 30000 || r.Totals.RefundedCents != 5000 || r.Totals.HeldNow != 0 || r.Totals.SoldNow != 2 ||
		r.OrganizerID != "org1" || r.Currency != "USD" || len(r.Hours) != 3 || len(r.Zones) != 2 {
		t.Fatalf("arena report: %s", js(r))
	}
}

func testRedelivery(t *testing.T, s reporting.Store) {
	recs := Sample()
	apply(t, s, recs[:5])
	// Again, and overlapping: only what is new takes effect.
	if a := apply(t, s, recs[:5]); a.Applied != 0 || a.Skipped != 5 {
		t.Fatalf("the same batch again: %+v, want all skipped", a)
	}
	if a := apply(t, s, recs[3:]); a.Applied != len(recs)-5 || a.Skipped != 2 {
		t.Fatalf("an overlapping batch: %+v, want %d applied and 2 skipped", a, len(recs)-5)
	}
	Check(t, s, Expected(recs), "arena", "club")
}

func testOffsets(t *testing.T, s reporting.Store) {
	p0 := reporting.Partition{Topic: "ticketing.inventory", Partition: 0}
	p1 := reporting.Partition{Topic: "ticketing.inventory", Partition: 1}
	p2 := reporting.Partition{Topic: "other", Partition: 0}
	got, err := s.Offsets(ctx(t), []reporting.Partition{p0, p1, p2})
	if err != nil || len(got) != 0 {
		t.Fatalf("offsets of an empty store: %v, %v", got, err)
	}
	recs := Sample()
	apply(t, s, recs[:3])
	apply(t, s, recs[7:8])
	got, err = s.Offsets(ctx(t), []reporting.Partition{p0, p1, p2})
	want := map[reporting.Partition]int64{p0: 3, p1: 1}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets: %v, %v; want %v", got, err, want)
	}
	// Offsets need not be contiguous (transaction markers take offsets).
	apply(t, s, Records("ticketing.inventory", 0, 40, Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 1}, Organizer: "org1"})))
	got, _ = s.Offsets(ctx(t), []reporting.Partition{p0})
	if got[p0] != 41 {
		t.Fatalf("offset after a gap: %d, want 41", got[p0])
	}
}

func testDuplicateEventID(t *testing.T, s reporting.Store) {
	b := Body(Ev{ID: "same", Type: "seats.sold", EventID: "arena", Zones: map[string]int{"floor": 1}, Amount: 100, Organizer: "org1"})
	apply(t, s, Records("ticketing.inventory", 0, 0, b))
	// The bridge wrote the same domain event again at a later offset.
	if a := apply(t, s, Records("ticketing.inventory", 0, 5, b)); a.Duplicates != 1 || a.Applied != 0 {
		t.Fatalf("a duplicate event id: %+v", a)
	}
	Check(t, s, Expected(Records("ticketing.inventory", 0, 0, b)), "arena")
	got, _ := s.Offsets(ctx(t), []reporting.Partition{{Topic: "ticketing.inventory", Partition: 0}})
	if got[reporting.Partition{Topic: "ticketing.inventory", Partition: 0}] != 6 {
		t.Fatalf("the offset did not move past the duplicate: %v", got)
	}
}

func testInvalidAndIgnored(t *testing.T, s reporting.Store) {
	other := cloudevents.Event{SpecVersion: "1.0", ID: "x1", Source: "/orders", Type: "ticketing.orders.created", Time: T0}
	ob, _ := other.Marshal()
	good := Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 1}, Organizer: "org1"})
	recs := Records("ticketing.inventory", 0, 0, []byte("{not json"), ob,
		Body(Ev{Type: "hold.placed", EventID: "bad id!", Zones: map[string]int{"floor": 1}}), good)
	a := apply(t, s, recs)
	if a.Applied != 1 || a.Ignored != 1 || len(a.Invalid) != 2 || a.Invalid[0].Offset != 0 || a.Invalid[1].Offset != 2 {
		t.Fatalf("applied %+v", a)
	}
	got, _ := s.Offsets(ctx(t), []reporting.Partition{{Topic: "ticketing.inventory", Partition: 0}})
	if got[reporting.Partition{Topic: "ticketing.inventory", Partition: 0}] != 4 {
		t.Fatalf("the offset did not move past bad records: %v", got)
	}
	Check(t, s, Expected(recs), "arena")
}

// Members that lost and got the same partitions apply the same batches at
// once: every record takes effect once.
func testConcurrentApply(t *testing.T, s reporting.Store) {
	recs := Sample()
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := recs
			if w%2 == 1 {
				batch = recs[:4] // a prefix: the same start, fewer records
			}
			for {
				a, err := s.Apply(ctx(t), batch)
				// A store that writes partition by partition may have
				// applied some partitions before it lost a race.
				mu.Lock()
				applied += a.Applied
				mu.Unlock()
				if errs.Is(errs.Conflict, err) || errs.Is(errs.Unavailable, err) {
					// Lost a race: reload and apply again, as the consumer does.
					continue
				}
				if err != nil {
					t.Errorf("apply: %v", err)
				}
				return
			}
		}()
	}
	wg.Wait()
	if applied != len(recs) {
		t.Fatalf("%d records applied in all, want %d", applied, len(recs))
	}
	Check(t, s, Expected(recs), "arena", "club")
}

func testHours(t *testing.T, s reporting.Store) {
	recs := Sample()
	apply(t, s, recs)
	want := Expected(recs).HoursIn(T0.Add(time.Hour), T0.Add(3*time.Hour))
	got, err := s.Hours(ctx(t), T0.Add(time.Hour), T0.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Hours) != len(want.Hours) || len(got.Hours) == 0 {
		t.Fatalf("hours: got %s, want %s", js(got), js(want))
	}
	for i := range got.Hours {
		g, w := got.Hours[i], want.Hours[i]
		if g.EventID != w.EventID || g.Zone != w.Zone || !g.Hour.Equal(w.Hour) || g.Counters != w.Counters {
			t.Fatalf("hour %d: got %s, want %s", i, js(g), js(w))
		}
	}
	if len(got.Events) != 1 || got.Events["arena"].OrganizerID != "org1" || got.Events["arena"].Currency != "USD" {
		t.Fatalf("events of the hours: %s", js(got.Events))
	}
}

func testNotFound(t *testing.T, s reporting.Store) {
	if _, err := s.Event(ctx(t), "nothing"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown event: %v, want not found", err)
	}
	if _, err := s.Apply(ctx(t), nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(c, Sample()); err == nil || errors.Is(err, nil) {
		t.Fatal("apply with a cancelled context succeeded")
	}
	if _, err := s.Event(ctx(t), "arena"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("after a cancelled apply: %v, want nothing stored", err)
	}
}
