package reporting_test

import (
	"context"
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

func body(typ, event string, zones map[string]int, amount int64, at time.Time) []byte {
	return reportingtest.Body(reportingtest.Ev{Type: typ, EventID: event, Zones: zones, Amount: amount, Organizer: "org", At: at})
}

func TestFold(t *testing.T) {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	p0 := reporting.Partition{Topic: "inv", Partition: 0}
	for _, tc := range []struct {
		name    string
		cursors map[reporting.Partition]reporting.Cursor
		recs    []reporting.Record
		hours   map[reporting.HourKey]reporting.Counters
		levels  map[reporting.ZoneKey]reporting.Level
		applied reporting.Applied
		next    int64
	}{
		{
			name:    "placed then sold",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, 200, t0), body("seats.sold", "e", map[string]int{"a": 2}, 200, t0.Add(time.Minute))),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 2, Sold: 2, GrossCents: 200}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 0, Sold: 2}},
			applied: reporting.Applied{Applied: 2}, next: 2,
		},
		{
			name:    "released and expired in other hours",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 3}, 300, t0), body("hold.released", "e", map[string]int{"a": 1}, 100, h(1)), body("hold.expired", "e", map[string]int{"a": 2}, 200, h(2).Add(59*time.Minute))),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 3}, {EventID: "e", Zone: "a", Hour: h(1)}: {Released: 1}, {EventID: "e", Zone: "a", Hour: h(2)}: {Expired: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {}},
			applied: reporting.Applied{Applied: 3}, next: 3,
		},
		{
			name:    "a refund",
			recs:    reportingtest.Records("inv", 0, 5, body("sale.cancelled", "e", map[string]int{"a": 1}, 150, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Cancelled: 1, RefundedCents: 150}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Sold: -1}},
			applied: reporting.Applied{Applied: 1}, next: 6,
		},
		{
			name:    "an amount split over zones by tickets, exactly",
			recs:    reportingtest.Records("inv", 0, 0, body("seats.sold", "e", map[string]int{"a": 1, "b": 2}, 100, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Sold: 1, GrossCents: 33}, {EventID: "e", Zone: "b", Hour: h(0)}: {Sold: 2, GrossCents: 67}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: -1, Sold: 1}, {EventID: "e", Zone: "b"}: {Held: -2, Sold: 2}},
			applied: reporting.Applied{Applied: 1}, next: 1,
		},
		{
			name:    "records below the cursor are skipped",
			cursors: map[reporting.Partition]reporting.Cursor{p0: {Next: 1}},
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, 0, t0), body("hold.placed", "e", map[string]int{"a": 5}, 0, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 5}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 5}},
			applied: reporting.Applied{Applied: 1, Skipped: 1}, next: 2,
		},
		{
			name:    "a duplicate event id is applied once",
			recs:    reportingtest.Records("inv", 0, 0, body("hold.placed", "e", map[string]int{"a": 2}, 0, t0), body("hold.placed", "e", map[string]int{"a": 2}, 0, t0)),
			hours:   map[reporting.HourKey]reporting.Counters{{EventID: "e", Zone: "a", Hour: h(0)}: {Held: 2}},
			levels:  map[reporting.ZoneKey]reporting.Level{{EventID: "e", Zone: "a"}: {Held: 2}},
			applied: reporting.Applied{Applied: 1, Duplicates: 1}, next: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := reporting.Fold(tc.cursors, tc.recs)
			if f.Applied.Applied != tc.applied.Applied || f.Skipped != tc.applied.Skipped || f.Duplicates != tc.applied.Duplicates || len(f.Invalid) != 0 {
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
			for k, want := range tc.levels {
				if got := f.Delta.Levels[k]; got != want {
					t.Fatalf("level %v: %+v, want %+v", k, got, want)
				}
			}
			if got := f.Cursors[p0].Next; got != tc.next {
				t.Fatalf("next offset %d, want %d", got, tc.next)
			}
			if tc.cursors != nil && len(tc.cursors[p0].Recent) != 0 {
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
		"no tickets":      strings.Replace(ga, `"zone":"ga","quantity":3`, `"zone":"ga"`, 1),
		"negative amount": strings.Replace(ga, `"quantity":3`, `"quantity":3,"amount_cents":-1`, 1),
		"bad currency":    strings.Replace(ga, `"quantity":3`, `"quantity":3,"currency":"usd"`, 1),
		"zero tickets":    strings.Replace(ga, `"zone":"ga","quantity":3`, `"zones":{"a":0}`, 1),
		"bad organizer":   strings.Replace(ga, `"quantity":3`, `"quantity":3,"organizer_id":"../x"`, 1),
		"no data":         strings.Replace(ga, `"data":`, `"other":`, 1),
	} {
		if _, err := reporting.Decode([]byte(b)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	// Per-zone amounts, when they add up, are taken as they are: a sale of
	// one premium and two value seats is not split by tickets.
	mixed := strings.Replace(ga, `"zone":"ga","quantity":3`,
		`"zones":{"premium":1,"value":2},"amount_cents":28700,"zone_amount_cents":{"premium":18900,"value":9800}`, 1)
	if e, err := reporting.Decode([]byte(mixed)); err != nil || len(e.Tickets) != 2 ||
		e.Tickets[0] != (reporting.ZoneTickets{Zone: "premium", Tickets: 1, AmountCents: 18900}) ||
		e.Tickets[1] != (reporting.ZoneTickets{Zone: "value", Tickets: 2, AmountCents: 9800}) {
		t.Fatalf("zone amounts: %+v, %v", e, err)
	}
	// Amounts that do not add up fall back to the split by tickets.
	wrong := strings.Replace(mixed, `"value":9800`, `"value":1`, 1)
	if e, err := reporting.Decode([]byte(wrong)); err != nil || e.Tickets[0].AmountCents+e.Tickets[1].AmountCents != 28700 {
		t.Fatalf("zone amounts that do not add up: %+v, %v", e, err)
	}
	other := strings.Replace(ga, "ticketing.inventory.hold.placed", "ticketing.inventory.hold.rejected", 1)
	if _, err := reporting.Decode([]byte(other)); err != reporting.ErrNotInventory {
		t.Fatalf("a rejected hold: %v, want ErrNotInventory", err)
	}
}

// FuzzDecode: any body decodes to a valid event or an error, never a
// panic; a decoded event has tickets whose amounts sum to the amount.
func FuzzDecode(f *testing.F) {
	f.Add(body("seats.sold", "e", map[string]int{"a": 1, "b": 2}, 100, t0))
	f.Add(body("hold.placed", "arena-concert", map[string]int{"floor": 7}, 1e12, t0))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := reporting.Decode(b)
		if err != nil {
			return
		}
		var tickets, amount int64
		for _, z := range e.Tickets {
			if z.Tickets <= 0 || z.AmountCents < 0 {
				t.Fatalf("zone %+v", z)
			}
			tickets += z.Tickets
			amount += z.AmountCents
		}
		if tickets == 0 || amount != e.Data.AmountCents {
			t.Fatalf("tickets %d, amounts sum to %d, amount %d", tickets, amount, e.Data.AmountCents)
		}
		a := reporting.NewAggregates()
		a.Add(e)
		if _, ok := a.View(e.Data.EventID); !ok {
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
	want := "date,organizer,event,zone,currency,tickets_sold,tickets_cancelled,gross_cents,refunded_cents,net_cents\n" +
		"2026-05-04,org1,arena,balcony,USD,1,1,10000,5000,5000\n" +
		"2026-05-04,org1,arena,floor,USD,2,0,20000,0,20000\n"
	if string(got) != want {
		t.Fatalf("org1's CSV:\n%s\nwant\n%s", got, want)
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
