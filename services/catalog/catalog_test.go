package catalog

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

func venue() Venue {
	return Venue{ID: "hall", Name: "Hall", City: "Town",
		Zones: []Zone{
			{ID: "front", Name: "Front", Kind: Reserved, PriceCents: 100, Currency: "USD"},
			{ID: "back", Name: "Back", Kind: Reserved, PriceCents: 50, Currency: "USD"},
			{ID: "floor", Name: "Floor", Kind: GA, Capacity: 100, PriceCents: 30, Currency: "USD"},
		},
		Sections: []Section{
			{ID: "a", Name: "A", Rows: []Row{{ID: "1", Seats: 3, Zone: "front"}, {ID: "2", Seats: 2, Zone: "back"}}},
			{ID: "b", Name: "B", Rows: []Row{{ID: "1", Seats: 4, Zone: "back"}}},
		}}
}

func event() Event {
	return Event{ID: "show", Name: "Show", VenueID: "hall",
		OnSaleAt: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), StartsAt: time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)}
}

func TestVenueValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Venue)
	}{
		{"bad id", func(v *Venue) { v.ID = "Hall!" }},
		{"no name", func(v *Venue) { v.Name = "" }},
		{"no zones", func(v *Venue) { v.Zones = nil }},
		{"zone twice", func(v *Venue) { v.Zones = append(v.Zones, v.Zones[0]) }},
		{"bad currency", func(v *Venue) { v.Zones[0].Currency = "US" }},
		{"negative price", func(v *Venue) { v.Zones[0].PriceCents = -1 }},
		{"GA without capacity", func(v *Venue) { v.Zones[2].Capacity = 0 }},
		{"reserved with capacity", func(v *Venue) { v.Zones[0].Capacity = 5 }},
		{"unknown kind", func(v *Venue) { v.Zones[0].Kind = "vip" }},
		{"section twice", func(v *Venue) { v.Sections[1].ID = "a" }},
		{"row twice", func(v *Venue) { v.Sections[0].Rows[1].ID = "1" }},
		{"row in GA zone", func(v *Venue) { v.Sections[0].Rows[0].Zone = "floor" }},
		{"row in unknown zone", func(v *Venue) { v.Sections[0].Rows[0].Zone = "nope" }},
		{"no seats in a row", func(v *Venue) { v.Sections[0].Rows[0].Seats = 0 }},
		{"too many seats in a row", func(v *Venue) { v.Sections[0].Rows[0].Seats = MaxSeatsPerRow + 1 }},
		{"bad row id", func(v *Venue) { v.Sections[0].Rows[0].ID = "a-b" }},
		{"section without rows", func(v *Venue) { v.Sections[0].Rows = nil }},
	}
	good := venue()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid venue refused: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := venue()
			tt.change(&v)
			if err := v.Validate(); !errs.Is(errs.Invalid, err) {
				t.Fatalf("got %v, want invalid", err)
			}
		})
	}
}

func TestEventValidate(t *testing.T) {
	v := venue()
	tests := []struct {
		name   string
		change func(*Event)
		ok     bool
	}{
		{"one partition", func(*Event) {}, true},
		{"split by section", func(e *Event) {
			e.Partitions = []PartitionSpec{{Sections: []string{"a"}, GAZones: []string{"floor"}}, {Sections: []string{"b"}}}
		}, true},
		{"on sale after start", func(e *Event) { e.OnSaleAt = e.StartsAt.Add(time.Hour) }, false},
		{"no times", func(e *Event) { e.OnSaleAt = time.Time{} }, false},
		{"other venue", func(e *Event) { e.VenueID = "elsewhere" }, false},
		{"section in two partitions", func(e *Event) {
			e.Partitions = []PartitionSpec{{Sections: []string{"a", "b"}, GAZones: []string{"floor"}}, {Sections: []string{"b"}}}
		}, false},
		{"section in none", func(e *Event) { e.Partitions = []PartitionSpec{{Sections: []string{"a"}, GAZones: []string{"floor"}}} }, false},
		{"GA zone in none", func(e *Event) { e.Partitions = []PartitionSpec{{Sections: []string{"a", "b"}}} }, false},
		{"unknown section", func(e *Event) {
			e.Partitions = []PartitionSpec{{Sections: []string{"a", "b", "z"}, GAZones: []string{"floor"}}}
		}, false},
		{"empty partition", func(e *Event) {
			e.Partitions = []PartitionSpec{{Sections: []string{"a", "b"}, GAZones: []string{"floor"}}, {}}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := event()
			tt.change(&e)
			err := e.Validate(&v)
			if tt.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errs.Is(errs.Invalid, err) {
				t.Fatalf("kind %v", errs.KindOf(err))
			}
		})
	}
}

func TestLayoutsAndRouter(t *testing.T) {
	v := venue()
	e := event()
	e.Partitions = []PartitionSpec{{Sections: []string{"a"}, GAZones: []string{"floor"}}, {Sections: []string{"b"}}}
	ls := e.Layouts(&v)
	if len(ls) != 2 || len(ls[0].Seats) != 5 || len(ls[1].Seats) != 4 || len(ls[0].GAZones) != 1 || len(ls[1].GAZones) != 0 {
		t.Fatalf("layouts %+v", ls)
	}
	inv := ls[0].Inventory()
	if len(inv.Seats) != 5 || len(inv.Zones) != 3 || inv.Zones[2].Capacity != 100 || !inv.Zones[2].GA {
		t.Fatalf("inventory layout %+v", inv)
	}
	if got := v.Capacity(); got != 9+100 {
		t.Fatalf("capacity %d", got)
	}
	r := NewRouter(&e, &v)
	if p, err := r.SeatsPartition([]string{"b-1-1", "b-1-4"}); err != nil || p != 1 {
		t.Fatalf("seats of b: %d %v", p, err)
	}
	if _, err := r.SeatsPartition([]string{"a-1-1", "b-1-1"}); errs.ReasonOf(err) != "cross_partition" {
		t.Fatalf("seats across partitions: %v", err)
	}
	if _, err := r.SeatsPartition([]string{"a-9-9"}); errs.ReasonOf(err) != "unknown_seat" {
		t.Fatalf("unknown seat: %v", err)
	}
	if p, err := r.ZonePartition("floor"); err != nil || p != 0 {
		t.Fatalf("floor: %d %v", p, err)
	}
	if _, err := r.ZonePartition("front"); errs.ReasonOf(err) != "unknown_zone" {
		t.Fatalf("a reserved zone routed as GA: %v", err)
	}
}

func TestSeatZone(t *testing.T) {
	v := Venue{ID: "v", Name: "V", Zones: []Zone{{ID: "a", Name: "A", Kind: Reserved, Currency: "USD"}, {ID: "b", Name: "B", Kind: Reserved, Currency: "USD"}},
		Sections: []Section{{ID: "upper-east", Rows: []Row{{ID: "A", Seats: 3, Zone: "a"}, {ID: "B2", Seats: 2, Zone: "b"}}}}}
	for id, want := range map[string]string{"upper-east-A-1": "a", "upper-east-A-3": "a", "upper-east-B2-2": "b",
		"upper-east-A-4": "", "upper-east-C-1": "", "upper-A-1": "", "A-1": "", "upper-east-A-x": "", "upper-east-A-0": "", "": ""} {
		got, ok := v.SeatZone(id)
		if got != want || ok != (want != "") {
			t.Errorf("SeatZone(%q) = %q %v, want %q", id, got, ok, want)
		}
	}
}
