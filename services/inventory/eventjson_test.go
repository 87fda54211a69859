package inventory

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
)

// randomEventData makes event data with every field set or not, odd
// strings included.
func randomEventData(r *rand.Rand) *EventData {
	str := func() string {
		return []string{"", "arena", "s-101-A-1", `q"uote`, "<&>", "é", "\u2028", "\xff"}[r.IntN(8)]
	}
	tm := func() time.Time {
		return time.Unix(r.Int64N(4_000_000_000), r.Int64N(1e9)).UTC()
	}
	d := &EventData{EventID: str(), Partition: str(), HoldID: str(), Zone: str(), Holder: str(), OrderID: str(),
		Currency: str(), OrganizerID: str(), At: tm(), AmountCents: r.Int64N(1e9) - 1e8, Quantity: r.IntN(3) - 1,
		EventCapacity: r.IntN(3) * 1000}
	for range r.IntN(3) {
		d.Seats = append(d.Seats, str())
	}
	if r.IntN(2) == 0 {
		t := tm()
		d.ExpiresAt = &t
	}
	if r.IntN(2) == 0 {
		t := tm()
		d.OnSaleAt = &t
	}
	if n := r.IntN(4); n > 0 {
		d.Zones, d.ZoneAmounts = map[string]int{}, map[string]int64{}
		for range n {
			z := str()
			d.Zones[z] = r.IntN(10)
			d.ZoneAmounts[z] = r.Int64N(1e6)
		}
	}
	return d
}

// AppendJSON writes exactly what encoding/json writes, and so does the
// CloudEvents envelope around it.
func TestEventDataJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		d := randomEventData(r)
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.AppendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("case %d: AppendJSON\n%s\nencoding/json\n%s\n(%v)", i, got, want, err)
		}
		ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "p.0:1:2", Source: "/inventory/p.0",
			Type: "ticketing.inventory.hold.placed", Subject: d.HoldID, Time: d.At, DataContentType: "application/json",
			PartitionKey: d.EventID}
		fast, err := cloudevents.Encode(&ev, d)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := cloudevents.Encode(&ev, json.RawMessage(want))
		if err != nil || !bytes.Equal(fast, slow) {
			t.Fatalf("case %d: envelope\n%s\nencoding/json\n%s\n(%v)", i, fast, slow, err)
		}
	}
	var none *EventData
	if b, err := none.AppendJSON(nil); err != nil || string(b) != "null" {
		t.Fatalf("nil: %s %v", b, err)
	}
}

func BenchmarkEventDataJSON(b *testing.B) {
	now := time.Now().UTC()
	exp := now.Add(10 * time.Minute)
	d := &EventData{EventID: "arena-concert", Partition: "arena-concert.0", HoldID: "arena-concert.0:h:0123456789abcdef",
		Seats: []string{"101-A-1", "101-A-2"}, Holder: "anon", ExpiresAt: &exp, At: now,
		Zones: map[string]int{"premium": 2}, AmountCents: 37800, Currency: "USD", ZoneAmounts: map[string]int64{"premium": 37800},
		OrganizerID: "echoes-live", EventCapacity: 4000, OnSaleAt: &now}
	ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "p.0:1:2", Source: "/inventory/p.0",
		Type: "ticketing.inventory.hold.placed", Time: time.Now(), DataContentType: "application/json", PartitionKey: "p"}
	b.Run("appender", func(b *testing.B) {
		for b.Loop() {
			_, _ = cloudevents.Encode(&ev, d)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		plain := *d
		for b.Loop() {
			_, _ = cloudevents.Encode(&ev, struct{ EventData }{plain})
		}
	})
}
