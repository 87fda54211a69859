package reporting_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

var t0 = reportingtest.T0

func body(typ, event string, zones map[string]int, at time.Time) []byte {
	return reportingtest.Body(reportingtest.Ev{Type: typ, EventID: event, Zones: zones, Organizer: "org", At: at})
}

// order is an order event of event "e": 2 tickets at 50.00, a 3.00 fee,
// 10% tax added, 5.00 off (total 103.30).
func order(typ, id string, at time.Time) []byte {
	return reportingtest.OrderBody(reportingtest.Ord{Type: typ, Order: id, EventID: "e", Organizer: "org",
		Subtotal: 10000, Fees: 300, Tax: 830, Discount: 500, At: at})
}

// eventID is the CloudEvents id of a body.
func eventID(b []byte) string {
	e, err := reporting.Decode(b)
	if err != nil {
		panic(err)
	}
	return e.ID
}

func TestFold(t *testing.T) {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	p0 := reporting.Partition{Topic: "inv", Partition: 0} // one partition: the fold does not care which topic
	for _, tc := range []struct {
		name    string
		cursors map[reporting.Partition]reporting.Cursor
		recs    []reporting.Record
		hours   map[reporting.HourKey]reporting.Counters
		revenue map[reporting.RevenueKey]reporting.Revenue
		levels  map[reporting.ZoneKey]reporting.Level
		applied reporting.Applied
		next    int64
	}{
		{
			name:    "placed then sold",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, t0), body("seats.sold", "e", map[string]int{"a": 2}, t0.Add(time.Minute))),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 2, Sold: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 0, Sold: 2}},
			applied: reporting.Applied{Applied: 2}, next: 2,
		},
		{
			name:    "released and expired in other hours",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 3}, t0), body("hold.released", "e", map[string]int{"a": 1}, h(1)), body("hold.expired", "e", map[string]int{"a": 2}, h(2).Add(59*time.Minute))),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 3}, {EventID: "e", Zone: "a", Hour: h(1)}: {Released: 1}, {EventID: "e", Zone: "a", Hour: h(2)}: {Expired: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {}},
			applied: reporting.Applied{Applied: 3}, next: 3,
		},
		{
			name:    "a refund",
			recs:    reportingtest.Records("inv", 0, 5, body("sale.cancelled", "e", map[string]int{"a": 1}, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Cancelled: 1}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Sold: -1}},
			applied: reporting.Applied{Applied: 1}, next: 6,
		},
		{
			name:    "a sale over zones",
			recs:    reportingtest.Records("inv", 0, 0, body("seats.sold", "e", map[string]int{"a": 1, "b": 2}, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Sold: 1}, {EventID: "e", Zone: "b", Hour: h(0)}: {Sold: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: -1, Sold: 1}, {EventID: "e", Zone: "b"}: {Held: -2, Sold: 2}},
			applied: reporting.Applied{Applied: 1}, next: 1,
		},
		{
			name:    "records below the cursor are skipped",
			cursors: map[reporting.Partition]reporting.Cursor{p0: {Next: 1}},
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, t0), body("hold.placed", "e", map[string]int{"a": 5}, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 5}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 5}},
			applied: reporting.Applied{Applied: 1, Skipped: 1}, next: 2,
		},
		{
			name:    "a duplicate event id is applied once",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, t0), body("hold.placed", "e", map[string]int{"a": 2}, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 2}},
			applied: reporting.Applied{Applied: 1, Duplicates: 1}, next: 2,
		},
		{
			name: "an order paid, then refunded a day later: money per event and hour, no tickets",
			recs: reportingtest.Records("inv", 0, 0, order("created", "o1", t0), order("paid", "o1", t0.Add(time.Minute)),
				order("confirmed", "o1", t0.Add(2*time.Minute)), order("refunding", "o1", h(24)), order("refunded", "o1", h(24).Add(time.Second))),
			revenue: map[reporting.RevenueKey]reporting.Revenue{
				{EventID: "e", Hour: h(0)}:  reporting.Revenue{OrdersPaid: 1, CapturedCents: 10630, GrossCents: 10000, FeesCents: 300, TaxCents: 830, DiscountCents: 500},
				{EventID: "e", Hour: h(24)}: {OrdersRefunded: 1, RefundedCents: 10630},
			},
			applied: reporting.Applied{Applied: 2, Ignored: 3}, next: 5,
		},
		{
			name: "a late payment counts when paid",
			recs: reportingtest.Records("inv", 0, 0, order("expired", "o1", t0), reportingtest.OrderBody(reportingtest.Ord{Type: "paid", Order: "o1",
				EventID: "e", Organizer: "org", Subtotal: 10000, Fees: 300, Tax: 830, Discount: 500, Late: "refunded", At: h(3)})),
			revenue: map[reporting.RevenueKey]reporting.Revenue{{EventID: "e", Hour: h(3)}: reporting.Revenue{OrdersPaid: 1, CapturedCents: 10630, GrossCents: 10000, FeesCents: 300, TaxCents: 830, DiscountCents: 500}},
			applied: reporting.Applied{Applied: 1, Ignored: 1}, next: 2,
		},
		{
			name:    "an order event redelivered is counted once",
			recs:    reportingtest.Records("inv", 0, 0, order("paid", "o1", t0), order("paid", "o1", t0)),
			revenue: map[reporting.RevenueKey]reporting.Revenue{{EventID: "e", Hour: h(0)}: reporting.Revenue{OrdersPaid: 1, CapturedCents: 10630, GrossCents: 10000, FeesCents: 300, TaxCents: 830, DiscountCents: 500}},
			applied: reporting.Applied{Applied: 1, Duplicates: 1}, next: 2,
		},
		{
			name:    "an order event redelivered after the cursor remembered it",
			cursors: map[reporting.Partition]reporting.Cursor{p0: {Next: 7, Recent: []string{eventID(order("paid", "o1", t0))}}},
			recs:    reportingtest.Records("inv", 0, 7, order("paid", "o1", t0), order("paid", "o2", t0)),
			revenue: map[reporting.RevenueKey]reporting.Revenue{{EventID: "e", Hour: h(0)}: reporting.Revenue{OrdersPaid: 1, CapturedCents: 10630, GrossCents: 10000, FeesCents: 300, TaxCents: 830, DiscountCents: 500}},
			applied: reporting.Applied{Applied: 1, Duplicates: 1}, next: 9,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			given := fmt.Sprint(tc.cursors)
			f := reporting.Fold(tc.cursors, tc.recs)
			if f.Applied.Applied != tc.applied.Applied || f.Skipped != tc.applied.Skipped || f.Duplicates != tc.applied.Duplicates ||
				f.Ignored != tc.applied.Ignored || len(f.Invalid) != 0 {
				t.Fatalf("applied %+v, want %+v", f.Applied, tc.applied)
			}
			if len(f.Delta.Hours) != len(tc.hours) {
				t.Fatalf("hours %v, want %v", f.Delta.Hours, tc.hours)
			}
			for k, want := range tc.hours {
				if got := f.Delta.Hours[k]; got != want {
					t.Fatalf("hour %v: %+v, want %+v", k, got, want)
				}
			}
			if len(f.Delta.Revenue) != len(tc.revenue) {
				t.Fatalf("revenue %v, want %v", f.Delta.Revenue, tc.revenue)
			}
			for k, want := range tc.revenue {
				if got := f.Delta.Revenue[k]; got != want {
					t.Fatalf("revenue %v: %+v, want %+v", k, got, want)
				}
			}
			for k, want := range tc.levels {
				if got := f.Delta.Levels[k]; got != want {
					t.Fatalf("level %v: %+v, want %+v", k, got, want)
				}
			}
			if got := f.Cursors[p0].Next; got != tc.next {
				t.Fatalf("next offset %d, want %d", got, tc.next)
			}
			if fmt.Sprint(tc.cursors) != given {
				t.Fatal("Fold changed the cursors it was given")
			}
		})
	}
}

func TestDecodeFallbacksAndLimits(t *testing.T) {
	ga := `{"specversion":"1.0","id":"1","source":"/i","type":"ticketing.inventory.hold.placed","time":"2026-05-04T10:00:00Z",
		"data":{"event_id":"e","zone":"ga","quantity":3,"at":"2026-05-04T10:00:00Z"}}`
	e, err := reporting.Decode([]byte(ga))
	if err != nil || len(e.Tickets) != 1 || e.Tickets[0] != (reporting.ZoneTickets{Zone: "ga", Tickets: 3}) {
		t.Fatalf("GA without zones: %+v, %v", e, err)
	}
	seats := strings.Replace(ga, `"zone":"ga","quantity":3`, `"seats":["A-1","A-2"]`, 1)
	if e, err := reporting.Decode([]byte(seats)); err != nil || e.Tickets[0] != (reporting.ZoneTickets{Zone: reporting.UnzonedZone, Tickets: 2}) {
		t.Fatalf("seats without zones: %+v, %v", e, err)
	}
	for name, b := range map[string]string{
		"no tickets":    strings.Replace(ga, `"zone":"ga","quantity":3`, `"zone":"ga"`, 1),
		"bad currency":  strings.Replace(ga, `"quantity":3`, `"quantity":3,"currency":"usd"`, 1),
		"zero tickets":  strings.Replace(ga, `"zone":"ga","quantity":3`, `"zones":{"a":0}`, 1),
		"bad organizer": strings.Replace(ga, `"quantity":3`, `"quantity":3,"organizer_id":"../x"`, 1),
		"no data":       strings.Replace(ga, `"data":`, `"other":`, 1),
	} {
		if _, err := reporting.Decode([]byte(b)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	// The face value inventory events carry is not read: a negative one
	// is no reason to drop the tickets.
	if _, err := reporting.Decode([]byte(strings.Replace(ga, `"quantity":3`, `"quantity":3,"amount_cents":-1`, 1))); err != nil {
		t.Fatalf("an inventory event with a negative face value: %v", err)
	}
	other := strings.Replace(ga, "ticketing.inventory.hold.placed", "ticketing.inventory.hold.rejected", 1)
	if _, err := reporting.Decode([]byte(other)); err != reporting.ErrNotCounted {
		t.Fatalf("a rejected hold: %v, want ErrNotCounted", err)
	}
}

// Order events as services/orders writes them (reportingtest.OrderBody
// encodes an orders.Summary with orders.CloudEvent): what reporting reads
// of them, and what it refuses.
func TestDecodeOrderEvents(t *testing.T) {
	at := t0.Add(90*time.Minute + 1234567*time.Nanosecond)
	b := reportingtest.OrderBody(reportingtest.Ord{ID: "evt_1", Type: "paid", Order: "o_abc", EventID: "arena-concert", Organizer: "org",
		Currency: "EUR", Subtotal: 20000, Fees: 800, Tax: 3333, TaxIncluded: true, Discount: 2000, Late: "reheld", At: at})
	e, err := reporting.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := reporting.OrderData{Order: "o_abc", Event: "arena-concert", Organizer: "org", Captured: 18800,
		Amounts: reporting.OrderAmounts{Currency: "EUR", Subtotal: 20000, Fees: 800, Tax: 3333, Discount: 2000, Total: 18800}}
	if e.ID != "evt_1" || e.Kind != reporting.OrderPaid || e.Order != want || e.EventID() != "arena-concert" ||
		!e.At.Equal(at.Truncate(time.Microsecond)) || len(e.Tickets) != 0 {
		t.Fatalf("decoded %+v", e)
	}
	for _, typ := range []string{"created", "requires_action", "confirmed", "fulfilled", "refunding", "expired", "cancelled", "payment_failed", "payment_declined"} {
		if _, err := reporting.Decode(reportingtest.OrderBody(reportingtest.Ord{Type: typ, Order: "o", EventID: "e"})); err != reporting.ErrNotCounted {
			t.Errorf("ticketing.order.%s: %v, want ErrNotCounted", typ, err)
		}
	}
	if _, err := reporting.Decode(reportingtest.PaymentBody("o", "succeeded", t0)); err != reporting.ErrNotCounted {
		t.Errorf("a payment event: %v, want ErrNotCounted", err)
	}
	s := string(b)
	for name, bad := range map[string]string{
		"no event":          strings.Replace(s, `"event":"arena-concert"`, `"event":""`, 1),
		"no order":          strings.Replace(s, `"order":"o_abc"`, `"order":""`, 1),
		"lower currency":    strings.Replace(s, `"currency":"EUR"`, `"currency":"eur"`, 1),
		"no currency":       strings.Replace(s, `"currency":"EUR"`, `"currency":""`, 1),
		"negative captured": strings.Replace(s, `"captured":18800`, `"captured":-1`, 1),
		"huge subtotal":     strings.Replace(s, `"subtotal":20000`, `"subtotal":10000000000001`, 1),
		"negative discount": strings.Replace(s, `"discount":2000`, `"discount":-2000`, 1),
		"bad organizer":     strings.Replace(s, `"organizer":"org"`, `"organizer":"a/b"`, 1),
		"amounts a string":  strings.Replace(s, `"subtotal":20000`, `"subtotal":"20000"`, 1),
		"no time":           strings.Replace(s, `"time":"`, `"time_":"`, 1),
	} {
		if bad == s {
			t.Fatalf("%s: the replacement changed nothing", name)
		}
		if _, err := reporting.Decode([]byte(bad)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// FuzzDecode: any body decodes to a valid event or an error, never a
// panic; a decoded inventory event has tickets, a decoded order event
// amounts within the limits, and either folds into a report of its event.
func FuzzDecode(f *testing.F) {
	f.Add(body("seats.sold", "e", map[string]int{"a": 1, "b": 2}, t0))
	f.Add(body("hold.placed", "arena-concert", map[string]int{"floor": 7}, t0))
	f.Add(order("paid", "o_1", t0))
	f.Add(order("refunded", "o_1", t0))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := reporting.Decode(b)
		if err != nil {
			return
		}
		if e.Kind.IsOrder() {
			o := e.Order
			for _, v := range []int64{o.Amounts.Subtotal, o.Amounts.Fees, o.Amounts.Tax, o.Amounts.Discount, o.Amounts.Total, o.Captured, o.Refunded} {
				if v < 0 || v > reporting.MaxAmountCents {
					t.Fatalf("order amounts %+v", o)
				}
			}
		} else {
			var tickets int64
			for _, z := range e.Tickets {
				if z.Tickets <= 0 {
					t.Fatalf("zone %+v", z)
				}
				tickets += z.Tickets
			}
			if tickets == 0 {
				t.Fatal("an inventory event without tickets")
			}
		}
		a := reporting.NewAggregates()
		a.Add(e)
		if _, ok := a.View(e.EventID()); !ok {
			t.Fatal("a decoded event folds to nothing")
		}
	})
}

func TestExportDay(t *testing.T) {
	store := &memStore{agg: reportingtest.Expected(reportingtest.Sample())}
	svc := reporting.Service{Store: store}
	dir := t.TempDir()
	names, err := svc.ExportDay(context.Background(), t0.Add(5*time.Hour), reporting.DirSink{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "finance-2026-05-04-org1.csv,finance-2026-05-04-org2.csv" {
		t.Fatalf("files %v", names)
	}
	got, err := os.ReadFile(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	// Tickets from arena's inventory events; money from its orders: one
	// paid, one paid late and refunded.
	want := "date,organizer,event,currency,tickets_sold,tickets_cancelled,orders_paid,orders_refunded," +
		"captured_cents,gross_cents,fees_cents,tax_cents,discount_cents,refunded_cents,net_cents\n" +
		"2026-05-04,org1,arena,USD,3,1,2,1,45203,40000,2000,4203,1000,10474,34729\n"
	if string(got) != want {
		t.Fatalf("org1's CSV:\n%s\nwant\n%s", got, want)
	}
	got, _ = os.ReadFile(filepath.Join(dir, names[1]))
	if want := "2026-05-04,org2,club,USD,5,0,1,0,13500,12500,1000,2083,0,0,13500\n"; !strings.HasSuffix(string(got), want) {
		t.Fatalf("org2's CSV:\n%s\nwant its row\n%s", got, want)
	}
	// A day with a refund only: the row has the refund and a negative net.
	later := reportingtest.Expected(reportingtest.Records(reportingtest.EventsTopic, 0, 0,
		order("paid", "o1", t0), order("refunded", "o1", t0.Add(48*time.Hour))))
	rows := reporting.FinanceRows(t0.Add(48*time.Hour), later.HoursIn(t0.Add(48*time.Hour), t0.Add(72*time.Hour)))
	if len(rows["org"]) != 1 || rows["org"][0].OrdersRefunded != 1 || rows["org"][0].NetCents() != -10630 || rows["org"][0].Sold != 0 {
		t.Fatalf("the refund's day: %+v", rows)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("directory holds %d entries (temporary files left?)", len(entries))
	}
	if err := (reporting.DirSink{Dir: dir}).Put(context.Background(), "../escape.csv", nil); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a path as a name: %v", err)
	}
}

// memStore answers queries from aggregates, for the domain's tests.
type memStore struct{ agg *reporting.Aggregates }

func (m *memStore) Offsets(context.Context, []reporting.Partition) (map[reporting.Partition]int64, error) {
	return nil, nil
}

func (m *memStore) Apply(context.Context, []reporting.Record) (reporting.Applied, error) {
	return reporting.Applied{}, nil
}

func (m *memStore) Event(_ context.Context, id string) (reporting.EventView, error) {
	v, ok := m.agg.View(id)
	if !ok {
		return v, errs.E("mem", errs.NotFound)
	}
	return v, nil
}

func (m *memStore) Hours(_ context.Context, from, to time.Time) (reporting.HoursView, error) {
	return m.agg.HoursIn(from, to), nil
}

// An event's inventory events sit on one partition, its orders' on others:
// a store applies them in any interleaving, and the event's facts come out
// the same: the inventory's latest, even where a later order said
// otherwise.
func TestFactsDoNotDependOnTheOrderOfPartitions(t *testing.T) {
	inv := reportingtest.Records(reportingtest.InventoryTopic, 0, 0,
		body("hold.placed", "e", map[string]int{"a": 1}, t0),
		body("hold.placed", "e", map[string]int{"a": 3}, t0.Add(2*time.Hour))) // capacity 300, later
	orders := reportingtest.Records(reportingtest.EventsTopic, 0, 0,
		reportingtest.OrderBody(reportingtest.Ord{Type: "paid", Order: "o1", EventID: "e", Currency: "EUR", At: t0.Add(time.Hour)}),
		reportingtest.OrderBody(reportingtest.Ord{Type: "paid", Order: "o2", EventID: "e", Organizer: "org-2", At: t0.Add(3 * time.Hour)}))
	want := reporting.EventInfo{EventID: "e", OrganizerID: "org", Currency: "USD", Capacity: 300, OnSaleAt: t0.Add(-24 * time.Hour), LastAt: t0.Add(2 * time.Hour)}
	for name, batches := range map[string][][]reporting.Record{
		"inventory first": {inv, orders},
		"orders first":    {orders, inv},
		"interleaved":     {inv[:1], orders[:1], inv[1:], orders[1:]},
		"one by one back": {orders[1:], inv[1:], orders[:1], inv[:1]},
	} {
		a := reporting.NewAggregates()
		for _, b := range batches {
			a.Merge(reporting.Fold(nil, b).Delta)
		}
		if got := a.Events["e"]; got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	// An event known only by its orders has their facts (the last applied
	// one's).
	a := reportingtest.Expected(orders)
	if got := a.Events["e"]; got.OrganizerID != "org-2" || got.Currency != "USD" || !got.LastAt.IsZero() {
		t.Errorf("facts from orders only: %+v", got)
	}
}
