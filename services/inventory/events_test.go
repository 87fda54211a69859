package inventory

import (
	"testing"
	"time"
)

func TestEventsOf(t *testing.T) {
	onSale := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	l := Layout{
		Seats: []SeatDef{{ID: "a-1", Zone: "premium"}, {ID: "a-2", Zone: "premium"}, {ID: "b-1", Zone: "value"}},
		Zones: []ZoneDef{{ID: "premium", PriceCents: 18900, Currency: "USD"}, {ID: "value", PriceCents: 4900, Currency: "USD"},
			{ID: "floor", GA: true, Capacity: 100, PriceCents: 7900, Currency: "USD"}},
		Event: EventFacts{OrganizerID: "org-1", OnSaleAt: onSale, Capacity: 1000},
	}
	ev := NewEvents("arena.1", l)
	at := time.Date(2026, 1, 15, 10, 5, 0, 0, time.UTC).UnixNano()
	cases := []struct {
		name   string
		d      Decision
		typ    string
		zones  map[string]int
		amount int64
		ok     bool
	}{
		{"seats over two zones", Decision{Type: SeatsSold, At: at, Hold: "arena.1.h", Seats: []string{"a-1", "a-2", "b-1"}},
			"ticketing.inventory.seats.sold", map[string]int{"premium": 2, "value": 1}, 2*18900 + 4900, true},
		{"GA quantity", Decision{Type: HoldPlaced, At: at, Hold: "arena.1.g", Zone: "floor", Qty: 3, Expires: at + int64(time.Minute)},
			"ticketing.inventory.hold.placed", map[string]int{"floor": 3}, 3 * 7900, true},
		{"refund", Decision{Type: SaleCancelled, At: at, Hold: "arena.1.h", Seats: []string{"b-1"}},
			"ticketing.inventory.sale.cancelled", map[string]int{"value": 1}, 4900, true},
		{"rejection is no event", Decision{Type: HoldRejected, At: at}, "", nil, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ, data, ok := ev.Of(&c.d)
			if ok != c.ok || typ != c.typ {
				t.Fatalf("Of = %q, %v; want %q, %v", typ, ok, c.typ, c.ok)
			}
			if !ok {
				return
			}
			if data.EventID != "arena" || data.Partition != "arena.1" || data.OrganizerID != "org-1" || data.EventCapacity != 1000 ||
				data.OnSaleAt == nil || !data.OnSaleAt.Equal(onSale) || data.Currency != "USD" {
				t.Fatalf("event facts: %+v", data)
			}
			if data.AmountCents != c.amount || len(data.Zones) != len(c.zones) {
				t.Fatalf("amount %d zones %v; want %d %v", data.AmountCents, data.Zones, c.amount, c.zones)
			}
			var sum int64
			for z, n := range c.zones {
				if data.Zones[z] != n {
					t.Fatalf("zones %v; want %v", data.Zones, c.zones)
				}
				sum += data.ZoneAmounts[z]
			}
			if sum != c.amount || len(data.ZoneAmounts) != len(c.zones) {
				t.Fatalf("zone amounts %v do not add up to %d", data.ZoneAmounts, c.amount)
			}
			if (c.d.Type == HoldPlaced) != (data.ExpiresAt != nil) {
				t.Fatalf("expires_at %v on %s", data.ExpiresAt, c.d.Type)
			}
		})
	}
}
