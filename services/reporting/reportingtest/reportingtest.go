// Package reportingtest is the contract suite of reporting.Store, run
// against every implementation (the PostgreSQL store and the embedded
// natskv store), and helpers that build inventory and order domain events
// the way the bridge writes them.
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
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/reporting"
)

// The topics of the suite's records: the bridge's default topics.
const (
	InventoryTopic = "ticketing.inventory"
	EventsTopic    = "ticketing.events"
)

// Ev describes an inventory domain event.
type Ev struct {
	ID        string // CloudEvents id; default: derived from the other fields
	Type      string // "hold.placed", "seats.sold", … (without the prefix)
	EventID   string
	Zones     map[string]int
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
		"holder": "u1", "at": e.At, "zones": e.Zones, "currency": "USD",
		"organizer_id": e.Organizer, "event_capacity": capacity, "on_sale_at": onSale,
	}
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: e.ID, Source: "/inventory",
		Type: reporting.InventoryTypePrefix + e.Type, Subject: e.EventID, Time: e.At, PartitionKey: e.EventID}
	b, err := cloudevents.Encode(&ce, data)
	if err != nil {
		panic(err)
	}
	return b
}

// Ord describes an order domain event.
type Ord struct {
	ID string // CloudEvents id; default: derived from the order, type and time
	// Type is the order's new state ("paid", "refunded", "created", …) or
	// a note ("payment_declined"), without the prefix.
	Type      string
	Order     string
	EventID   string
	Organizer string
	Currency  string // default "USD"
	// The quoted amounts; the total is subtotal + fees − discount, + tax
	// unless TaxIncluded.
	Subtotal, Fees, Tax, Discount int64
	TaxIncluded                   bool
	// Captured defaults to the total for "paid" and "refunded"; Refunded
	// to Captured for "refunded".
	Captured, Refunded int64
	Late               string
	At                 time.Time
}

// Total is what the order's buyer pays.
func (o Ord) Total() int64 {
	t := o.Subtotal + o.Fees - o.Discount
	if !o.TaxIncluded {
		t += o.Tax
	}
	return t
}

// OrderBody encodes o as the orders' outbox writes it to EVENTS and the
// bridge to Kafka: the CloudEvent of services/orders.CloudEvent whose data
// is an orders.Summary.
func OrderBody(o Ord) []byte {
	if o.At.IsZero() {
		o.At = T0
	}
	if o.Currency == "" {
		o.Currency = "USD"
	}
	if o.ID == "" {
		o.ID = fmt.Sprintf("evt-%s-%s-%d", o.Order, o.Type, o.At.UnixNano())
	}
	if o.Captured == 0 && (o.Type == "paid" || o.Type == "refunded") {
		o.Captured = o.Total()
	}
	if o.Refunded == 0 && o.Type == "refunded" {
		o.Refunded = o.Captured
	}
	state := orders.State(o.Type)
	if o.Type == "payment_declined" {
		state = orders.AwaitingPayment
	}
	e := orders.Event{ID: o.ID, Type: orders.EventTypePrefix + o.Type, Order: o.Order, At: o.At, Data: orders.Summary{
		Order: o.Order, Account: "acct-1", Event: o.EventID, Organizer: o.Organizer, Channel: "web", State: state,
		Cause: "test", Tickets: 2, Captured: o.Captured, Refunded: o.Refunded, Late: orders.Late(o.Late),
		Amounts: orders.Amounts{Currency: o.Currency, Subtotal: o.Subtotal, Fees: o.Fees, Tax: o.Tax, Discount: o.Discount, Total: o.Total()},
	}}
	ce := orders.CloudEvent(e, "/core/test/orders")
	b, err := cloudevents.Encode(&ce, e.Data)
	if err != nil {
		panic(err)
	}
	return b
}

// PaymentBody is a payment event (ticketing.payment.<status>), which
// reporting does not count.
func PaymentBody(order, status string, at time.Time) []byte {
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "pay-" + order + "-" + status, Source: "/payment",
		Type: "ticketing.payment." + status, Subject: order, Time: at, PartitionKey: order}
	b, err := cloudevents.Encode(&ce, map[string]any{"order": order, "status": status, "amount": 1000, "currency": "USD"})
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
		{"OrderMoney", testOrderMoney},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// Sample is a stream of two events on four partitions: over two zones
// and three hours, their inventory events on two partitions of
// InventoryTopic, and their orders' events on two partitions of
// EventsTopic, with events reporting does not count (an order created,
// expired, refunding or confirmed, a payment). Arena has an order paid, a
// late payment that was refunded, and club an order whose tax is included
// in its prices.
func Sample() []reporting.Record {
	a := [][]byte{
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 2, "balcony": 1}, Organizer: "org1"}),
		Body(Ev{Type: "seats.sold", EventID: "arena", Zones: map[string]int{"floor": 2, "balcony": 1}, Organizer: "org1", At: T0.Add(10 * time.Minute)}),
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"floor": 4}, Organizer: "org1", At: T0.Add(70 * time.Minute)}),
		Body(Ev{Type: "hold.expired", EventID: "arena", Zones: map[string]int{"floor": 4}, Organizer: "org1", At: T0.Add(90 * time.Minute)}),
		Body(Ev{Type: "hold.placed", EventID: "arena", Zones: map[string]int{"balcony": 2}, Organizer: "org1", At: T0.Add(2 * time.Hour)}),
		Body(Ev{Type: "hold.released", EventID: "arena", Zones: map[string]int{"balcony": 2}, Organizer: "org1", At: T0.Add(2*time.Hour + time.Minute)}),
		Body(Ev{Type: "sale.cancelled", EventID: "arena", Zones: map[string]int{"balcony": 1}, Organizer: "org1", At: T0.Add(2*time.Hour + 2*time.Minute)}),
	}
	b := [][]byte{
		Body(Ev{Type: "hold.placed", EventID: "club", Zones: map[string]int{"ga": 5}, Organizer: "org2"}),
		Body(Ev{Type: "seats.sold", EventID: "club", Zones: map[string]int{"ga": 5}, Organizer: "org2", At: T0.Add(time.Minute)}),
	}
	a1 := Ord{Order: "o-a1", EventID: "arena", Organizer: "org1", Subtotal: 30000, Fees: 1500, Tax: 3229}
	a2 := Ord{Order: "o-a2", EventID: "arena", Organizer: "org1", Subtotal: 10000, Fees: 500, Discount: 1000, Tax: 974, Late: "refunded"}
	c1 := Ord{Order: "o-c1", EventID: "club", Organizer: "org2", Subtotal: 12500, Fees: 1000, Tax: 2083, TaxIncluded: true}
	at := func(o Ord, typ string, d time.Duration) []byte {
		o.Type, o.At = typ, T0.Add(d)
		return OrderBody(o)
	}
	e0 := [][]byte{
		at(a1, "created", time.Minute),
		at(a1, "paid", 10*time.Minute),
		at(a2, "created", 60*time.Minute),
		at(a2, "expired", 75*time.Minute),
		at(a2, "paid", 80*time.Minute), // late: the order had expired
		at(a2, "refunding", 80*time.Minute),
		at(a2, "refunded", 2*time.Hour+3*time.Minute),
	}
	e1 := [][]byte{
		at(c1, "paid", 2*time.Minute),
		PaymentBody("o-c1", "succeeded", T0.Add(2*time.Minute)),
		at(c1, "confirmed", 3*time.Minute),
	}
	recs := append(Records(InventoryTopic, 0, 0, a...), Records(InventoryTopic, 1, 0, b...)...)
	recs = append(recs, Records(EventsTopic, 0, 0, e0...)...)
	return append(recs, Records(EventsTopic, 1, 0, e1...)...)
}

// Counted is how many of recs, applied once each from empty cursors,
// change the figures.
func Counted(recs []reporting.Record) int { return reporting.Fold(nil, recs).Applied.Applied }

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
		if len(v.Revenue) == 0 {
			v.Revenue = nil
		}
		if len(v.Levels) == 0 {
			v.Levels = nil
		}
		return v
	}
	a, b = norm(a), norm(b)
	if len(a.Hours) != len(b.Hours) || len(a.Revenue) != len(b.Revenue) {
		return false
	}
	for i := range a.Hours {
		if !a.Hours[i].Hour.Equal(b.Hours[i].Hour) || a.Hours[i].Hour.Location() != time.UTC {
			return false
		}
		a.Hours[i].Hour = b.Hours[i].Hour
	}
	for i := range a.Revenue {
		if !a.Revenue[i].Hour.Equal(b.Revenue[i].Hour) || a.Revenue[i].Hour.Location() != time.UTC {
			return false
		}
		a.Revenue[i].Hour = b.Revenue[i].Hour
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
	if a.Applied != Counted(recs) || a.Applied+a.Ignored != len(recs) || a.Skipped != 0 || a.Duplicates != 0 || len(a.Invalid) != 0 {
		t.Fatalf("applied %+v, want %d applied and the other %d ignored", a, Counted(recs), len(recs)-Counted(recs))
	}
	want := Expected(recs)
	Check(t, s, want, "arena", "club")
	// The fold itself, checked by hand once: arena's tickets from its
	// inventory events, its money from its orders.
	v, _ := s.Event(ctx(t), "arena")
	r := reporting.BuildReport(v)
	if r.Totals.Held != 9 || r.Totals.Sold != 3 || r.Totals.Cancelled != 1 || r.Totals.Expired != 4 || r.Totals.Released != 2 ||
		r.Totals.HeldNow != 0 || r.Totals.SoldNow != 2 ||
		r.OrganizerID != "org1" || r.Currency != "USD" || len(r.Hours) != 3 || len(r.Zones) != 2 {
		t.Fatalf("arena report: %s", js(r))
	}
	money := reporting.Revenue{OrdersPaid: 2, OrdersRefunded: 1, CapturedCents: 34729 + 10474, GrossCents: 40000, FeesCents: 2000,
		TaxCents: 3229 + 974, DiscountCents: 1000, RefundedCents: 10474}
	if r.Totals.Revenue != money || r.Totals.NetCents != 34729 {
		t.Fatalf("arena's money: %s, want %s and net 34729", js(r.Totals.Revenue), js(money))
	}
	if h := r.Hours[1]; h.OrdersPaid != 1 || h.CapturedCents != 10474 || h.RefundedCents != 0 || h.NetCents != 10474 {
		t.Fatalf("the hour of the late payment: %s", js(h))
	}
	if h := r.Hours[2]; h.OrdersRefunded != 1 || h.RefundedCents != 10474 || h.CapturedCents != 0 || h.NetCents != -10474 {
		t.Fatalf("the hour of the refund: %s", js(h))
	}
	for _, z := range r.Zones {
		if z.Zone == "floor" && (z.Sold != 2 || z.SoldNow != 2) {
			t.Fatalf("arena's floor: %s", js(z))
		}
	}
	v, _ = s.Event(ctx(t), "club")
	if r := reporting.BuildReport(v); r.Totals.CapturedCents != 13500 || r.Totals.GrossCents != 12500 || r.Totals.TaxCents != 2083 ||
		r.Totals.Sold != 5 || r.Totals.NetCents != 13500 || r.OrganizerID != "org2" {
		t.Fatalf("club report (tax included in the prices): %s", js(r))
	}
}

func testRedelivery(t *testing.T, s reporting.Store) {
	recs := Sample()
	apply(t, s, recs[:5])
	// Again, and overlapping: only what is new takes effect.
	if a := apply(t, s, recs[:5]); a.Applied != 0 || a.Skipped != 5 {
		t.Fatalf("the same batch again: %+v, want all skipped", a)
	}
	if a := apply(t, s, recs[3:]); a.Applied != Counted(recs[5:]) || a.Skipped != 2 {
		t.Fatalf("an overlapping batch: %+v, want %d applied and 2 skipped", a, Counted(recs[5:]))
	}
	// The orders' partitions too: a batch of them again is skipped.
	orders := recs[9:]
	if a := apply(t, s, orders); a.Applied != 0 || a.Skipped != len(orders) {
		t.Fatalf("the order events again: %+v, want all %d skipped", a, len(orders))
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
	b := Body(Ev{ID: "same", Type: "seats.sold", EventID: "arena", Zones: map[string]int{"floor": 1}, Organizer: "org1"})
	paid := OrderBody(Ord{ID: "same-order-event", Type: "paid", Order: "o1", EventID: "arena", Organizer: "org1", Subtotal: 5000, Fees: 300})
	apply(t, s, append(Records(InventoryTopic, 0, 0, b), Records(EventsTopic, 0, 0, paid)...))
	// The bridge wrote the same domain events again at later offsets.
	if a := apply(t, s, append(Records(InventoryTopic, 0, 5, b), Records(EventsTopic, 0, 3, paid)...)); a.Duplicates != 2 || a.Applied != 0 {
		t.Fatalf("duplicate event ids: %+v", a)
	}
	Check(t, s, Expected(append(Records(InventoryTopic, 0, 0, b), Records(EventsTopic, 0, 0, paid)...)), "arena")
	inv, ev := reporting.Partition{Topic: InventoryTopic, Partition: 0}, reporting.Partition{Topic: EventsTopic, Partition: 0}
	got, _ := s.Offsets(ctx(t), []reporting.Partition{inv, ev})
	if got[inv] != 6 || got[ev] != 4 {
		t.Fatalf("the offsets did not move past the duplicates: %v", got)
	}
}

func testInvalidAndIgnored(t *testing.T, s reporting.Store) {
	other := cloudevents.Event{SpecVersion: "1.0", ID: "x1", Source: "/queue", Type: "ticketing.queue.joined", Time: T0}
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
			switch w % 3 {
			case 1:
				batch = recs[:4] // a prefix: the same start, fewer records
			case 2:
				batch = recs[9:] // the orders' partitions alone
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
	if applied != Counted(recs) {
		t.Fatalf("%d records applied in all, want %d", applied, Counted(recs))
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
	// The money of the range: arena's late payment and its refund, not
	// club's payment of the hour before.
	if len(got.Revenue) != len(want.Revenue) || len(got.Revenue) != 2 {
		t.Fatalf("revenue: got %s, want %s", js(got.Revenue), js(want.Revenue))
	}
	for i := range got.Revenue {
		g, w := got.Revenue[i], want.Revenue[i]
		if g.EventID != w.EventID || !g.Hour.Equal(w.Hour) || g.Revenue != w.Revenue {
			t.Fatalf("revenue %d: got %s, want %s", i, js(g), js(w))
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

// Order events alone: money per event and hour, an event the bridge wrote
// twice counted once, whatever the batches; an event known only by its
// orders has a report; the other order events change nothing.
func testOrderMoney(t *testing.T, s reporting.Store) {
	o := Ord{Order: "o-9", EventID: "gala", Organizer: "org9", Currency: "EUR", Subtotal: 20000, Fees: 800, Discount: 2000, Tax: 3133, TaxIncluded: true}
	body := func(typ string, d time.Duration) []byte {
		o := o
		o.Type, o.At = typ, T0.Add(d)
		return OrderBody(o)
	}
	paid, refunded := body("paid", 5*time.Minute), body("refunded", 26*time.Hour)
	recs := Records(EventsTopic, 3, 0, body("created", 0), body("payment_declined", time.Minute), paid, body("confirmed", 6*time.Minute),
		body("refunding", 26*time.Hour), refunded)
	if a := apply(t, s, recs[:3]); a.Applied != 1 || a.Ignored != 2 {
		t.Fatalf("applied %+v, want the payment applied, the rest ignored", a)
	}
	// The payment's event again, at a later offset (the bridge's retry),
	// in the batch with the rest.
	again := append(recs[3:5:5], Records(EventsTopic, 3, 5, paid)...)
	again = append(again, Records(EventsTopic, 3, 6, refunded)...)
	if a := apply(t, s, again); a.Applied != 1 || a.Duplicates != 1 || a.Ignored != 2 {
		t.Fatalf("applied %+v, want the refund applied and the payment a duplicate", a)
	}
	v, err := s.Event(ctx(t), "gala")
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Hours) != 0 || len(v.Levels) != 0 || len(v.Revenue) != 2 || v.Info.OrganizerID != "org9" || v.Info.Currency != "EUR" {
		t.Fatalf("gala: %s", js(v))
	}
	paidMoney := reporting.Revenue{OrdersPaid: 1, CapturedCents: 18800, GrossCents: 20000, FeesCents: 800, TaxCents: 3133, DiscountCents: 2000}
	if r := v.Revenue[0]; !r.Hour.Equal(T0) || r.Revenue != paidMoney {
		t.Fatalf("the payment's hour: %s, want %s", js(r), js(paidMoney))
	}
	if r := v.Revenue[1]; !r.Hour.Equal(T0.Add(26*time.Hour)) || r.Revenue != (reporting.Revenue{OrdersRefunded: 1, RefundedCents: 18800}) {
		t.Fatalf("the refund's hour: %s", js(r))
	}
	want := Expected(append(recs[:3:3], recs[5]))
	Check(t, s, want, "gala")
	day2, err := s.Hours(ctx(t), T0.Add(24*time.Hour), T0.Add(48*time.Hour))
	if err != nil || len(day2.Hours) != 0 || len(day2.Revenue) != 1 || day2.Events["gala"].Currency != "EUR" {
		t.Fatalf("the refund's day: %s, %v", js(day2), err)
	}
}
