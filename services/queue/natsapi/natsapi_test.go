package natsapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/queue"
)

// TestWire pins the JSON of the shared spec's wire protocol.
func TestWire(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	seed := make([]byte, queue.SeedSize)
	seed[0] = 0xab
	tk := queue.TicketID{0x01}
	for _, c := range []struct {
		v    any
		want string
	}{
		{Config{EventID: "e", TicketKey: []byte{1, 2, 3}, Commitment: "c", OnSaleAt: at},
			`{"event_id":"e","ticket_key":"AQID","commitment":"c","on_sale_at":"2026-03-01T10:00:00Z","sold_out":false}`},
		{Config{EventID: "e", Seed: seed[:2], SoldOut: true, OnSaleAt: at},
			`{"event_id":"e","ticket_key":null,"commitment":"","on_sale_at":"2026-03-01T10:00:00Z","seed":"ab00","sold_out":true}`},
		{Report{Edge: "x", EventID: "e", Waiting: 3, PreQueue: 2, Admitted: 1, Joined: 6, At: at},
			`{"edge":"x","event_id":"e","waiting":3,"pre_queue":2,"admitted":1,"joined":6,"at":"2026-03-01T10:00:00Z"}`},
		{Decision{EventID: "e", Seq: 7, At: at, Reachable: 5, Waiting: 9, Rate: 1.5, Edges: []queue.EdgeAdmit{{Edge: "x", Admit: 2, Reachable: 3}}},
			`{"event_id":"e","seq":7,"at":"2026-03-01T10:00:00Z","sold_out":false,"reachable":5,"waiting":9,"rate":1.5,"edges":[{"edge":"x","admit":2,"reachable":3}]}`},
		{PreQueueChunk{EventID: "e", Edge: "x", Tickets: []queue.TicketID{tk}, Last: true},
			`{"event_id":"e","edge":"x","tickets":["01000000000000000000000000000000"],"last":true}`},
		{DrawRecord{EventID: "e", Commitment: "c", OnSaleAt: at},
			`{"event_id":"e","commitment":"c","on_sale_at":"2026-03-01T10:00:00Z","complete":false,"offset":0,"total":0}`},
		{DrawRecord{EventID: "e", Commitment: "c", OnSaleAt: at, Seed: seed[:1], Tickets: []queue.TicketID{tk}, Complete: true, Offset: 3, Total: 4},
			`{"event_id":"e","commitment":"c","on_sale_at":"2026-03-01T10:00:00Z","seed":"ab","tickets":["01000000000000000000000000000000"],"complete":true,"offset":3,"total":4}`},
		{DrawRequest{EventID: "e"}, `{"event_id":"e"}`},
		{DrawRequest{EventID: "e", Offset: 10, Limit: 5}, `{"event_id":"e","offset":10,"limit":5}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.v, b, c.want)
		}
	}
	var h Hex
	if err := json.Unmarshal([]byte(`"AB00"`), &h); err != nil || h[0] != 0xab {
		t.Fatalf("hex: %x %v", h, err)
	}
	if err := json.Unmarshal([]byte(`"zz"`), &h); err == nil {
		t.Fatal("bad hex accepted")
	}
}

func TestDrawRecordVerify(t *testing.T) {
	seed := queue.NewSeed()
	var ts []queue.TicketID
	for i := range 20 {
		ts = append(ts, queue.TicketFor([]byte("k"), strings.Repeat("s", i+1)))
	}
	r := DrawRecord{Commitment: queue.Commitment(seed), Seed: seed, Tickets: queue.Draw(seed, ts), Total: len(ts)}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	page := r
	page.Tickets, page.Offset = r.Tickets[5:10], 5
	if page.Verify() == nil {
		t.Fatal("a page verified as the whole record")
	}
	r.Tickets[0], r.Tickets[1] = r.Tickets[1], r.Tickets[0]
	if r.Verify() == nil {
		t.Fatal("out of order accepted")
	}
	r.Tickets[0], r.Tickets[1] = r.Tickets[1], r.Tickets[0]
	r.Seed = queue.NewSeed()
	if r.Verify() == nil {
		t.Fatal("another seed accepted")
	}
}

func TestDrawRequestNormalize(t *testing.T) {
	for _, c := range []struct {
		in, want DrawRequest
		bad      bool
	}{
		{in: DrawRequest{}, want: DrawRequest{Limit: MaxDrawLimit}},
		{in: DrawRequest{Offset: 7, Limit: 3}, want: DrawRequest{Offset: 7, Limit: 3}},
		{in: DrawRequest{Limit: MaxDrawLimit + 1}, want: DrawRequest{Limit: MaxDrawLimit}},
		{in: DrawRequest{Offset: -1}, bad: true},
		{in: DrawRequest{Limit: -1}, bad: true},
	} {
		r := c.in
		err := r.Normalize()
		if (err != nil) != c.bad || (!c.bad && r != c.want) {
			t.Errorf("%+v: %+v %v", c.in, r, err)
		}
	}
}
