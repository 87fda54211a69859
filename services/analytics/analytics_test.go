package analytics_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
)

var onSale = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

// body encodes an event of type typ with data.
func body(id, typ string, data any) []byte {
	b, err := cloudevents.Encode(&cloudevents.Event{SpecVersion: "1.0", ID: id, Source: "/t", Type: typ, Time: onSale}, data)
	if err != nil {
		panic(err)
	}
	return b
}

func ev(t *testing.T, typ string, at time.Duration, data map[string]any) *analytics.Event {
	t.Helper()
	d := map[string]any{"event_id": "arena", "at": onSale.Add(at)}
	for k, v := range data {
		d[k] = v
	}
	e, err := analytics.Decode(body("x", typ, d))
	if err != nil {
		t.Fatal(err)
	}
	return &e
}

func TestFold(t *testing.T) {
	inv := map[string]any{"event_capacity": 4, "on_sale_at": onSale}
	seats := func(n int) map[string]any {
		m := map[string]any{"event_capacity": 4, "on_sale_at": onSale}
		s := make([]string, n)
		for i := range s {
			s[i] = "A-1-" + string(rune('1'+i))
		}
		m["seats"] = s
		return m
	}
	for _, tc := range []struct {
		name   string
		events func(t *testing.T) []*analytics.Event
		check  func(t *testing.T, f analytics.Funnel)
	}{
		{"empty ratios are null", func(t *testing.T) []*analytics.Event { return nil }, func(t *testing.T, f analytics.Funnel) {
			if f.Conversion.AdmittedPerJoined != nil || f.TimeToSellOut != nil || f.SoldOutAt != nil {
				t.Fatalf("%+v", f)
			}
		}},
		{"queue conversion", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{
				ev(t, analytics.TypeQueueJoined, 0, map[string]any{"session": "s1"}),
				ev(t, analytics.TypeQueueJoined, 0, map[string]any{"session": "s2"}),
				ev(t, analytics.TypeQueueJoined, 0, map[string]any{"session": "s3"}),
				ev(t, analytics.TypeQueueJoined, 0, map[string]any{"session": "s4"}),
				ev(t, analytics.TypeQueueAdmitted, time.Second, map[string]any{"session": "s1"}),
				ev(t, analytics.TypeHoldPlaced, 2*time.Second, seats(2)),
				ev(t, analytics.TypeSeatsSold, 3*time.Second, seats(2)),
			}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.Joined != 4 || f.Admitted != 1 || *f.Conversion.AdmittedPerJoined != 0.25 ||
				*f.Conversion.SoldPerHeldTickets != 1 || *f.Conversion.SoldPerJoined != 0.25 || f.Orders != 1 {
				t.Fatalf("%+v", f)
			}
		}},
		{"GA quantity and zones count tickets", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{
				ev(t, analytics.TypeHoldPlaced, 0, map[string]any{"zone": "floor", "quantity": 3}),
				ev(t, analytics.TypeSeatsSold, time.Second, map[string]any{"zones": map[string]int{"floor": 2, "balcony": 1}}),
			}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.HeldTickets != 3 || f.SoldTickets != 3 || f.HoldsPlaced != 1 {
				t.Fatalf("%+v", f)
			}
		}},
		{"sell-out, refund, sell-out stays the first moment", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{
				ev(t, analytics.TypeHoldPlaced, time.Minute, seats(2)),
				ev(t, analytics.TypeSeatsSold, 2*time.Minute, seats(2)),
				ev(t, analytics.TypeHoldPlaced, 3*time.Minute, seats(2)),
				ev(t, analytics.TypeSeatsSold, 4*time.Minute, seats(2)),
				ev(t, analytics.TypeSaleCancelled, 5*time.Minute, seats(1)),
				ev(t, analytics.TypeHoldPlaced, 6*time.Minute, seats(1)),
				ev(t, analytics.TypeSeatsSold, 7*time.Minute, seats(1)),
			}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.SoldOutAt == nil || !f.SoldOutAt.Equal(onSale.Add(4*time.Minute)) || *f.TimeToSellOut != 4*time.Minute ||
				*f.TimeToSellOutSeconds != 240 || f.SoldTickets != 4 || f.CancelledTickets != 1 || f.Orders != 2 {
				t.Fatalf("%+v", f)
			}
		}},
		{"not sold out until net sold reaches capacity", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{
				ev(t, analytics.TypeSeatsSold, time.Minute, seats(3)),
				ev(t, analytics.TypeSaleCancelled, 2*time.Minute, seats(1)),
				ev(t, analytics.TypeSeatsSold, 3*time.Minute, seats(1)),
				ev(t, analytics.TypeHoldReleased, 4*time.Minute, inv),
			}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.SoldOutAt != nil || f.TimeToSellOut != nil || f.SoldTickets != 3 {
				t.Fatalf("%+v", f)
			}
		}},
		{"no on-sale time: sold out without a duration", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{ev(t, analytics.TypeSeatsSold, time.Minute, map[string]any{"quantity": 2, "event_capacity": 2})}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.SoldOutAt == nil || f.TimeToSellOut != nil || f.OnSaleAt != nil {
				t.Fatalf("%+v", f)
			}
		}},
		{"peak holds per minute", func(t *testing.T) []*analytics.Event {
			var evs []*analytics.Event
			for _, at := range []time.Duration{0, 10 * time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second, 5 * time.Minute} {
				evs = append(evs, ev(t, analytics.TypeHoldPlaced, at, seats(1)))
			}
			return evs
		}, func(t *testing.T, f analytics.Funnel) {
			if f.PeakHoldsPerMinute != 3 || !f.PeakMinute.Equal(onSale) || f.HoldsPlaced != 6 {
				t.Fatalf("%+v", f)
			}
		}},
		{"a late hold outside the window does not raise the peak", func(t *testing.T) []*analytics.Event {
			return []*analytics.Event{
				ev(t, analytics.TypeHoldPlaced, 2*time.Hour, seats(1)),
				ev(t, analytics.TypeHoldPlaced, 0, seats(1)),
				ev(t, analytics.TypeHoldPlaced, 0, seats(1)),
			}
		}, func(t *testing.T, f analytics.Funnel) {
			if f.PeakHoldsPerMinute != 1 || f.HoldsPlaced != 3 {
				t.Fatalf("%+v", f)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &analytics.State{EventID: "arena"}
			for _, e := range tc.events(t) {
				s.Apply(e)
			}
			// The state survives its JSON encoding unchanged.
			b, _ := json.Marshal(s)
			var back analytics.State
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			b2, _ := json.Marshal(&back)
			if string(b) != string(b2) {
				t.Fatalf("state changed through JSON:\n%s\n%s", b, b2)
			}
			tc.check(t, back.Funnel())
		})
	}
}

func TestFoldSkipsAppliedOffsets(t *testing.T) {
	p := analytics.Position{Topic: "ticketing.inventory", Partition: 2}
	q := analytics.Position{Topic: "ticketing.events", Partition: 0}
	held := ev(t, analytics.TypeHoldPlaced, 0, map[string]any{"quantity": 1})
	joined := ev(t, analytics.TypeQueueJoined, 0, nil)
	inputs := []analytics.Input{
		{Pos: p, Offset: 4, Event: held}, {Pos: p, Offset: 5, Event: held}, {Pos: p, Offset: 6},
		{Pos: q, Offset: 0, Event: joined},
	}
	states := map[string]*analytics.State{}
	changed, moved, applied := analytics.Fold(map[analytics.Position]int64{p: 5}, states, inputs)
	if applied != 3 || moved[p] != 7 || moved[q] != 1 || len(changed) != 1 {
		t.Fatalf("applied %d, moved %v, changed %v", applied, moved, changed)
	}
	if f := states["arena"].Funnel(); f.HoldsPlaced != 1 || f.Joined != 1 {
		t.Fatalf("%+v", f)
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
		kind errs.Kind
	}{
		{"not json", []byte("{"), errs.Invalid},
		{"other type", body("x", "ticketing.orders.placed", map[string]any{"event_id": "a"}), errs.NotFound},
		{"no event id", body("x", analytics.TypeHoldPlaced, map[string]any{"quantity": 1}), errs.Invalid},
		{"negative quantity", body("x", analytics.TypeHoldPlaced, map[string]any{"event_id": "a", "quantity": -1}), errs.Invalid},
		{"negative zone", body("x", analytics.TypeSeatsSold, map[string]any{"event_id": "a", "zones": map[string]int{"z": -2}}), errs.Invalid},
		{"data not an object", body("x", analytics.TypeSeatsSold, []int{1}), errs.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := analytics.Decode(tc.body); !errs.Is(tc.kind, err) {
				t.Fatalf("%v, want kind %v", err, tc.kind)
			}
		})
	}
	e, err := analytics.Decode(body("x", analytics.TypeQueueJoined, map[string]any{"event_id": "a", "session": "s"}))
	if err != nil || !e.Data.At.Equal(onSale) || e.Data.Session != "s" {
		t.Fatalf("%+v, %v", e, err)
	}
}

// FuzzDecode: Decode never panics; what it accepts folds without panicking
// into a state whose counts are not negative and whose JSON round-trips.
func FuzzDecode(f *testing.F) {
	f.Add(body("x", analytics.TypeHoldPlaced, map[string]any{"event_id": "a", "seats": []string{"A-1"}, "at": onSale}))
	f.Add(body("x", analytics.TypeSeatsSold, map[string]any{"event_id": "a", "zones": map[string]int{"z": 2}, "event_capacity": 2, "on_sale_at": onSale}))
	f.Add(body("x", analytics.TypeQueueJoined, map[string]any{"event_id": "a", "session": "s"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := analytics.Decode(b)
		if err != nil {
			return
		}
		s := &analytics.State{EventID: e.Data.EventID}
		s.Apply(&e)
		s.Apply(&e)
		fn := s.Funnel()
		if fn.HoldsPlaced < 0 || fn.HeldTickets < 0 || s.SoldTickets < 0 || s.CancelledTickets < 0 || fn.PeakHoldsPerMinute < 0 {
			t.Fatalf("negative count: %+v", fn)
		}
		if _, err := json.Marshal(fn); err != nil {
			t.Fatal(err)
		}
	})
}
