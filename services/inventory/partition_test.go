package inventory

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testLayout() Layout {
	l := Layout{Zones: []ZoneDef{{ID: "p1"}, {ID: "p2"}, {ID: "floor", GA: true, Capacity: 5}}}
	for r := 1; r <= 2; r++ {
		for n := 1; n <= 5; n++ {
			z := "p1"
			if r == 2 {
				z = "p2"
			}
			l.Seats = append(l.Seats, SeatDef{ID: fmt.Sprintf("a-%d-%d", r, n), Zone: z})
		}
	}
	return l
}

type ids struct{ n int }

func (g *ids) next() string { g.n++; return fmt.Sprintf("h%d", g.n) }

func newTestPartition(t *testing.T) (*Partition, *ids) {
	t.Helper()
	p, err := NewPartition("ev.0", testLayout(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return p, &ids{}
}

func seatsReq(key string, seats ...string) HoldRequest {
	return HoldRequest{Seats: seats, IdempotencyKey: key, Fingerprint: fmt.Sprint(seats)}
}

func gaReq(key string, q int) HoldRequest {
	return HoldRequest{Zone: "floor", Quantity: q, IdempotencyKey: key, Fingerprint: fmt.Sprint("floor", q)}
}

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("err = %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("reason = %q, want %q", errs.ReasonOf(err), reason)
	}
}

func TestHoldValidation(t *testing.T) {
	tests := []struct {
		name string
		req  HoldRequest
	}{
		{"nothing asked", HoldRequest{IdempotencyKey: "k"}},
		{"no key", HoldRequest{Seats: []string{"a-1-1"}}},
		{"seats and zone", HoldRequest{Seats: []string{"a-1-1"}, Zone: "floor", Quantity: 1, IdempotencyKey: "k"}},
		{"unknown seat", seatsReq("k", "zz-1-1")},
		{"duplicate seat", seatsReq("k", "a-1-1", "a-1-1")},
		{"too many seats", seatsReq("k", "a-1-1", "a-1-2", "a-1-3", "a-1-4", "a-1-5", "a-2-1", "a-2-2", "a-2-3", "a-2-4", "a-2-5", "a-9-9")},
		{"unknown zone", HoldRequest{Zone: "vip", Quantity: 1, IdempotencyKey: "k"}},
		{"reserved zone by quantity", HoldRequest{Zone: "p1", Quantity: 1, IdempotencyKey: "k"}},
		{"zero quantity", gaReq("k", 0)},
		{"quantity over limit", gaReq("k", 11)},
		{"negative quantity", gaReq("k", -1)},
		{"ttl too short", HoldRequest{Zone: "floor", Quantity: 1, TTLSeconds: 1, IdempotencyKey: "k"}},
		{"ttl too long", HoldRequest{Zone: "floor", Quantity: 1, TTLSeconds: 86400, IdempotencyKey: "k"}},
		{"negative ttl", HoldRequest{Zone: "floor", Quantity: 1, TTLSeconds: -5, IdempotencyKey: "k"}},
		// 18446744104 s overflows time.Duration and would wrap to 30 s.
		{"ttl that overflows", HoldRequest{Zone: "floor", Quantity: 1, TTLSeconds: 18446744104, IdempotencyKey: "k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, g := newTestPartition(t)
			_, err := p.Hold(t0, tt.req, g.next)
			wantKind(t, err, errs.Invalid, "")
			if p.HasPending() {
				t.Fatal("an invalid request recorded a decision")
			}
			if p.Availability().Zones[2].Held != 0 {
				t.Fatal("an invalid request changed the state")
			}
		})
	}
}

func TestHoldSeatsAllOrNothing(t *testing.T) {
	p, g := newTestPartition(t)
	h, err := p.Hold(t0, seatsReq("k1", "a-1-1", "a-1-2"), g.next)
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != Held || h.Quantity != 2 || !h.ExpiresAt.Equal(t0.Add(10*time.Minute)) || h.HoldID != "ev.0.h1" {
		t.Fatalf("hold = %+v", h)
	}
	_, err = p.Hold(t0, seatsReq("k2", "a-1-2", "a-1-3"), g.next)
	wantKind(t, err, errs.Conflict, ReasonSeatsUnavailable)
	a := p.Availability()
	if a.Seats["a-1-3"] != Free || a.Seats["a-1-2"] != Held || a.Seats["a-1-1"] != Held {
		t.Fatalf("seats = %v", a.Seats)
	}
	if a.Zones[0].Held != 2 || a.Zones[0].Capacity != 5 {
		t.Fatalf("zone p1 = %+v", a.Zones[0])
	}
	ds := p.TakeDecisions()
	if len(ds) != 2 || ds[0].Type != HoldPlaced || ds[1].Type != HoldRejected {
		t.Fatalf("decisions = %v", ds)
	}
}

func TestHoldGA(t *testing.T) {
	p, g := newTestPartition(t)
	if _, err := p.Hold(t0, gaReq("k1", 3), g.next); err != nil {
		t.Fatal(err)
	}
	_, err := p.Hold(t0, gaReq("k2", 3), g.next)
	wantKind(t, err, errs.Conflict, ReasonInsufficient)
	if _, err := p.Hold(t0, gaReq("k3", 2), g.next); err != nil {
		t.Fatal(err)
	}
	_, err = p.Hold(t0, gaReq("k4", 1), g.next)
	wantKind(t, err, errs.Conflict, ReasonSoldOut)
	z := p.Availability().Zones[2]
	if z.Held != 5 || z.Sold != 0 || z.Capacity != 5 {
		t.Fatalf("floor = %+v", z)
	}
}

func TestIdempotency(t *testing.T) {
	p, g := newTestPartition(t)
	first, err := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Hold(t0.Add(time.Second), seatsReq("k1", "a-1-1"), g.next)
	if err != nil || !reflect.DeepEqual(first, again) {
		t.Fatalf("replay = %+v, %v; want %+v", again, err, first)
	}
	other := seatsReq("k1", "a-1-2")
	_, err = p.Hold(t0, other, g.next)
	wantKind(t, err, errs.Mismatch, "")

	// A refusal replays as the same refusal, even when the seat is free again.
	_, err = p.Hold(t0, seatsReq("k2", "a-1-1"), g.next)
	wantKind(t, err, errs.Conflict, ReasonSeatsUnavailable)
	if _, err := p.Release(t0, first.HoldID); err != nil {
		t.Fatal(err)
	}
	_, err = p.Hold(t0, seatsReq("k2", "a-1-1"), g.next)
	wantKind(t, err, errs.Conflict, ReasonSeatsUnavailable)

	// The first answer replays after the hold was released.
	again, err = p.Hold(t0, seatsReq("k1", "a-1-1"), g.next)
	if err != nil || again.HoldID != first.HoldID || again.Status != Held {
		t.Fatalf("replay after release = %+v, %v", again, err)
	}
	if n := len(p.TakeDecisions()); n != 3 {
		t.Fatalf("%d decisions, want 3 (placed, rejected, released)", n)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	p, g := newTestPartition(t)
	var durable uint64
	p.SetBatch(1, func() uint64 { return durable })
	if _, err := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next); err != nil {
		t.Fatal(err)
	}
	_, err := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next)
	wantKind(t, err, errs.InFlight, "")
	durable = 1
	if _, err := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next); err != nil {
		t.Fatalf("after commit: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	type step struct {
		op     string // hold, release, confirm, cancel, at
		arg    string
		d      time.Duration // time offset from t0
		kind   errs.Kind
		reason string
		status Status
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"release frees, twice is the same answer", []step{
			{op: "hold", arg: "a-1-1"},
			{op: "release", status: Released},
			{op: "release", status: Released},
			{op: "confirm", kind: errs.Conflict, reason: ReasonHoldReleased},
			{op: "seat", arg: "a-1-1", status: Free},
		}},
		{"confirm sells, twice is the same answer", []step{
			{op: "hold", arg: "a-1-1"},
			{op: "confirm", status: Sold},
			{op: "confirm", status: Sold},
			{op: "release", kind: errs.Conflict, reason: ReasonHoldSold},
			{op: "seat", arg: "a-1-1", status: Sold},
		}},
		{"confirm after expiry is refused", []step{
			{op: "hold", arg: "a-1-1"},
			{op: "confirm", d: 10*time.Minute + time.Nanosecond, kind: errs.Conflict, reason: ReasonHoldExpired},
			{op: "seat", arg: "a-1-1", status: Free},
		}},
		{"confirm at the last moment succeeds", []step{
			{op: "hold", arg: "a-1-1"},
			{op: "confirm", d: 10*time.Minute - time.Nanosecond, status: Sold},
		}},
		{"cancel a sale frees the seat", []step{
			{op: "hold", arg: "a-1-1"},
			{op: "cancel", kind: errs.Conflict, reason: ReasonNotSold},
			{op: "confirm", status: Sold},
			{op: "cancel", status: Cancelled},
			{op: "cancel", status: Cancelled},
			{op: "seat", arg: "a-1-1", status: Free},
			{op: "confirm", kind: errs.Conflict, reason: ReasonSaleCancelled},
		}},
		{"unknown hold", []step{
			{op: "release", arg: "ev.0.nope", kind: errs.NotFound},
			{op: "confirm", arg: "ev.0.nope", kind: errs.NotFound},
			{op: "cancel", arg: "ev.0.nope", kind: errs.NotFound},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, g := newTestPartition(t)
			var id string
			for i, s := range tt.steps {
				now := t0.Add(s.d)
				target := id
				if s.arg != "" && s.op != "hold" && s.op != "seat" {
					target = s.arg
				}
				var h Hold
				var err error
				switch s.op {
				case "hold":
					h, err = p.Hold(now, seatsReq(fmt.Sprint("k", i), s.arg), g.next)
					id = h.HoldID
					s.status = Held
				case "release":
					h, err = p.Release(now, target)
				case "confirm":
					h, err = p.Confirm(now, ConfirmRequest{HoldID: target, OrderID: "o1"})
				case "cancel":
					h, err = p.CancelSale(now, ConfirmRequest{HoldID: target})
				case "seat":
					if got := p.Availability().Seats[s.arg]; got != s.status {
						t.Fatalf("step %d: seat %s is %v, want %v", i, s.arg, got, s.status)
					}
					continue
				}
				if s.kind != errs.Other {
					wantKind(t, err, s.kind, s.reason)
					continue
				}
				if err != nil {
					t.Fatalf("step %d %s: %v", i, s.op, err)
				}
				if h.Status != s.status {
					t.Fatalf("step %d %s: status %v, want %v", i, s.op, h.Status, s.status)
				}
			}
		})
	}
}

// A hold that ended is sold again by a reclaiming confirm when its seats
// are free, and refused when any is taken.
func TestReclaim(t *testing.T) {
	p, g := newTestPartition(t)
	h, err := p.Hold(t0, seatsReq("a", "a-1-1", "a-1-2"), g.next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Release(t0, h.HoldID); err != nil {
		t.Fatal(err)
	}
	_, err = p.Confirm(t0, ConfirmRequest{HoldID: h.HoldID, OrderID: "o1"})
	wantKind(t, err, errs.Conflict, ReasonHoldReleased)
	sold, err := p.Confirm(t0, ConfirmRequest{HoldID: h.HoldID, OrderID: "o1", Reclaim: true})
	if err != nil || sold.Status != Sold || sold.OrderID != "o1" {
		t.Fatalf("reclaim of free seats: %+v %v", sold, err)
	}
	if _, err := p.Hold(t0, seatsReq("b", "a-1-2"), g.next); !errs.Is(errs.Conflict, err) {
		t.Fatalf("a reclaimed seat was held again: %v", err)
	}
	// Again: the sale answers again.
	if again, err := p.Confirm(t0, ConfirmRequest{HoldID: h.HoldID, OrderID: "o1", Reclaim: true}); err != nil || again.Status != Sold {
		t.Fatalf("reclaim again: %+v %v", again, err)
	}

	// Expired, and one of its seats taken since: refused, nothing changes.
	h2, err := p.Hold(t0, seatsReq("c", "a-2-1", "a-2-2"), g.next)
	if err != nil {
		t.Fatal(err)
	}
	later := h2.ExpiresAt.Add(time.Second)
	if _, err := p.Hold(later, seatsReq("d", "a-2-2"), g.next); err != nil {
		t.Fatal(err)
	}
	_, err = p.Confirm(later, ConfirmRequest{HoldID: h2.HoldID, OrderID: "o2", Reclaim: true})
	wantKind(t, err, errs.Conflict, ReasonSeatsUnavailable)
	if got, _ := p.Get(h2.HoldID); got.Status != Expired {
		t.Fatalf("a refused reclaim changed the hold: %s", got.Status)
	}

	// GA: by quantity.
	ga, err := p.Hold(t0, gaReq("e", 3), g.next)
	if err != nil {
		t.Fatal(err)
	}
	p.Release(t0, ga.HoldID)
	if _, err := p.Hold(t0, gaReq("f", 3), g.next); err != nil {
		t.Fatal(err)
	}
	_, err = p.Confirm(t0, ConfirmRequest{HoldID: ga.HoldID, Reclaim: true})
	wantKind(t, err, errs.Conflict, ReasonSeatsUnavailable)
	checkInvariants(t, p)
}

func TestExpiry(t *testing.T) {
	p, g := newTestPartition(t)
	a, _ := p.Hold(t0, HoldRequest{Zone: "floor", Quantity: 2, TTLSeconds: 60, IdempotencyKey: "a", Fingerprint: "a"}, g.next)
	b, _ := p.Hold(t0, HoldRequest{Zone: "floor", Quantity: 3, TTLSeconds: 120, IdempotencyKey: "b", Fingerprint: "b"}, g.next)
	if next, ok := p.NextExpiry(); !ok || !next.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next expiry = %v %v", next, ok)
	}
	p.TakeDecisions()
	if n := p.Expire(t0.Add(59 * time.Second)); n != 0 {
		t.Fatalf("expired %d early", n)
	}
	if n := p.Expire(t0.Add(time.Minute)); n != 1 {
		t.Fatalf("expired %d at the first deadline, want 1", n)
	}
	ds := p.TakeDecisions()
	if len(ds) != 1 || ds[0].Type != HoldExpired || ds[0].Hold != a.HoldID {
		t.Fatalf("decisions = %+v", ds)
	}
	if h, _ := p.Get(a.HoldID); h.Status != Expired {
		t.Fatalf("a is %v", h.Status)
	}
	if z := p.Availability().Zones[2]; z.Held != 3 {
		t.Fatalf("held = %d, want 3", z.Held)
	}
	// A hold whose time has come is expired by the next command, even before
	// the timer: its inventory is free for the new hold.
	if _, err := p.Hold(t0.Add(2*time.Minute), gaReq("c", 5), g.next); err != nil {
		t.Fatalf("hold after b's expiry: %v", err)
	}
	if h, _ := p.Get(b.HoldID); h.Status != Expired {
		t.Fatalf("b is %v", h.Status)
	}
}

func TestForgetAfterRetention(t *testing.T) {
	p, g := newTestPartition(t)
	h, _ := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next)
	p.Release(t0, h.HoldID)
	day := 24*time.Hour + time.Second
	// Any later decision forgets what is older than the retention.
	if _, err := p.Hold(t0.Add(day), seatsReq("k2", "a-1-2"), g.next); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(h.HoldID); !errs.Is(errs.NotFound, err) {
		t.Fatalf("ended hold still known after retention: %v", err)
	}
	again, err := p.Hold(t0.Add(day), seatsReq("k1", "a-1-1"), g.next)
	if err != nil || again.HoldID == h.HoldID {
		t.Fatalf("key not forgotten: %+v %v", again, err)
	}
}

// TestRandomReplay drives random commands and checks after each one that the
// invariants hold, and at the end that replaying the log from scratch, and a
// snapshot taken midway plus the rest of the log, both give the same state.
func TestRandomReplay(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			l := testLayout()
			lim := DefaultLimits()
			if seed > 20 {
				// A short retention: keys and ended holds are forgotten
				// during the run, and their records reused.
				lim.IdempotencyTTL = 15 * time.Minute
			}
			p, err := NewPartition("ev.0", l, lim)
			if err != nil {
				t.Fatal(err)
			}
			g := &ids{}
			var log []*Decision
			var snap []byte
			var snapAt int
			var holds []string
			now := t0
			for i := 0; i < 400; i++ {
				now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
				switch rng.IntN(6) {
				case 0, 1:
					n := 1 + rng.IntN(3)
					var seats []string
					seen := map[string]bool{}
					for len(seats) < n {
						s := l.Seats[rng.IntN(len(l.Seats))].ID
						if !seen[s] {
							seen[s] = true
							seats = append(seats, s)
						}
					}
					r := seatsReq(fmt.Sprint("k", rng.IntN(300)), seats...)
					r.TTLSeconds = 30 + rng.IntN(200)
					if h, err := p.Hold(now, r, g.next); err == nil {
						holds = append(holds, h.HoldID)
					}
				case 2:
					r := gaReq(fmt.Sprint("g", rng.IntN(300)), 1+rng.IntN(3))
					r.TTLSeconds = 30 + rng.IntN(200)
					if h, err := p.Hold(now, r, g.next); err == nil {
						holds = append(holds, h.HoldID)
					}
				case 3:
					if len(holds) > 0 {
						p.Release(now, holds[rng.IntN(len(holds))])
					}
				case 4:
					if len(holds) > 0 {
						p.Confirm(now, ConfirmRequest{HoldID: holds[rng.IntN(len(holds))], Reclaim: rng.IntN(2) == 0})
					}
				case 5:
					if len(holds) > 0 {
						p.CancelSale(now, ConfirmRequest{HoldID: holds[rng.IntN(len(holds))]})
					}
				}
				log = append(log, p.TakeDecisions()...)
				checkInvariants(t, p)
				if i == 200 {
					b, err := json.Marshal(p.Snapshot())
					if err != nil {
						t.Fatal(err)
					}
					bin, _ := p.Snapshot().MarshalBinary()
					if direct, _, err := p.MarshalSnapshotPaced(nil); err != nil || string(direct) != string(bin) {
						t.Fatalf("the partition's own snapshot encoding differs (%v)", err)
					}
					snap, snapAt = b, len(log)
				}
			}
			// Replay through JSON, as the log does.
			replayed, _ := NewPartition("ev.0", l, lim)
			for _, d := range roundTrip(t, log) {
				if err := replayed.Apply(d); err != nil {
					t.Fatal(err)
				}
			}
			assertSameState(t, p, replayed)

			// The snapshot, through JSON and through the binary codec.
			var js Snapshot
			if err := json.Unmarshal(snap, &js); err != nil {
				t.Fatal(err)
			}
			bin, err := js.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var bs Snapshot
			if err := bs.UnmarshalBinary(bin); err != nil {
				t.Fatal(err)
			}
			for _, s := range []*Snapshot{&js, &bs} {
				restored, err := Restore(l, lim, s)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range roundTrip(t, log[snapAt:]) {
					if err := restored.Apply(d); err != nil {
						t.Fatal(err)
					}
				}
				assertSameState(t, p, restored)
			}
		})
	}
}

func roundTrip(t *testing.T, ds []*Decision) []*Decision {
	b, err := json.Marshal(ds)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Decision
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkInvariants(t *testing.T, p *Partition) {
	t.Helper()
	inUse := 0
	p.recs.each(func(i int32, h *rec) {
		inUse++
		if !h.byID && !h.byKey {
			t.Fatalf("record %d (%s) is reachable from nowhere", i, p.recs.field(h, fID))
		}
		if h.byKey && p.idem[h.key] != i {
			t.Fatalf("record %d is not its key's", i)
		}
	})
	if free := int(p.recs.n) - len(p.recs.free); inUse != free {
		t.Fatalf("%d records in use, %d not free", inUse, free)
	}
	owner := map[int32]string{}
	p.recs.each(func(i int32, h *rec) {
		if h.kind != recHold || !h.byID || (h.status != Held && h.status != Sold) {
			return
		}
		id := p.recs.field(h, fID)
		for j := range h.seatCount() {
			si := p.recs.seat(h, j)
			if prev, ok := owner[si]; ok {
				t.Fatalf("seat %s in holds %s and %s", p.seatIDs[si], prev, id)
			}
			owner[si] = id
			if p.seats[si].hold != i+1 {
				t.Fatalf("seat %s does not point at its hold %s", p.seatIDs[si], id)
			}
		}
	})
	for _, z := range p.Availability().Zones {
		if z.Held < 0 || z.Sold < 0 || z.Held+z.Sold > z.Capacity {
			t.Fatalf("zone %s: held %d + sold %d > capacity %d", z.ID, z.Held, z.Sold, z.Capacity)
		}
	}
}

func assertSameState(t *testing.T, want, got *Partition) {
	t.Helper()
	if !reflect.DeepEqual(want.Availability(), got.Availability()) {
		t.Fatalf("availability differs:\nwant %+v\ngot  %+v", want.Availability(), got.Availability())
	}
	holdIDs := func(p *Partition) (ids []string) {
		p.recs.each(func(_ int32, h *rec) {
			if h.kind == recHold && h.byID {
				ids = append(ids, p.recs.field(h, fID))
			}
		})
		return ids
	}
	wantIDs, gotIDs := holdIDs(want), holdIDs(got)
	for _, id := range wantIDs {
		a, _ := want.Get(id)
		b, err := got.Get(id)
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("hold %s: want %+v, got %+v (%v)", id, a, b, err)
		}
	}
	if len(wantIDs) != len(gotIDs) || len(want.idem) != len(got.idem) {
		t.Fatalf("holds %d/%d, keys %d/%d", len(wantIDs), len(gotIDs), len(want.idem), len(got.idem))
	}
	for k, i := range want.idem {
		j, ok := got.idem[k]
		if !ok || !reflect.DeepEqual(want.decisionOf(want.recs.at(i)), got.decisionOf(got.recs.at(j))) {
			t.Fatalf("key %v differs", k)
		}
	}
	wn, wok := want.NextExpiry()
	gn, gok := got.NextExpiry()
	if wok != gok || !wn.Equal(gn) {
		t.Fatalf("next expiry %v/%v", wn, gn)
	}
}

// TestAvailabilityWithin: the expiring counts walked off the expiry heap
// match a count over every live hold, for seats and GA quantities, after
// releases, sales and expiries, at several horizons.
func TestAvailabilityWithin(t *testing.T) {
	l := Layout{Zones: []ZoneDef{{ID: "r"}, {ID: "ga", GA: true, Capacity: 2000}}}
	for n := range 300 {
		l.Seats = append(l.Seats, SeatDef{ID: fmt.Sprintf("s-%d", n), Zone: "r"})
	}
	p, err := NewPartition("ev.0", l, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	g := &ids{}
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	var live []string
	for i := range 400 {
		now = now.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		ttl := 30 + rng.IntN(1770)
		var r HoldRequest
		if rng.IntN(2) == 0 {
			r = HoldRequest{Zone: "ga", Quantity: 1 + rng.IntN(10)}
		} else {
			for range 1 + rng.IntN(4) {
				r.Seats = append(r.Seats, fmt.Sprintf("s-%d", rng.IntN(300)))
			}
		}
		r.TTLSeconds, r.IdempotencyKey, r.Fingerprint = ttl, fmt.Sprint("k", i), fmt.Sprint(i)
		h, err := p.Hold(now, r, g.next)
		if err != nil {
			continue // seats taken or repeated: fine
		}
		live = append(live, h.HoldID)
		switch rng.IntN(6) {
		case 0:
			_, _ = p.Release(now, h.HoldID)
		case 1:
			_, _ = p.Confirm(now, ConfirmRequest{HoldID: h.HoldID, OrderID: "o"})
		}
	}
	if len(live) < 100 {
		t.Fatalf("only %d holds placed", len(live))
	}
	for step := range 4 {
		now = now.Add(time.Duration(step) * 5 * time.Minute)
		p.Expire(now)
		for _, w := range []time.Duration{0, time.Millisecond, 30 * time.Second, 3 * time.Minute, 12 * time.Minute, time.Hour} {
			a := p.AvailabilityWithin(now, w)
			want := map[string]int{}
			if w > 0 {
				until := now.Add(w).UnixNano()
				p.recs.each(func(_ int32, h *rec) {
					if h.kind != recHold || !h.byID || h.status != Held || h.expires > until {
						return
					}
					if h.zone >= 0 {
						want["ga"] += int(h.qty)
					} else {
						want["r"] += h.seatCount()
					}
				})
			}
			for _, z := range a.Zones {
				if z.Expiring != want[z.ID] || z.Expiring > z.Held {
					t.Fatalf("step %d within %v: zone %s expiring %d (held %d), want %d", step, w, z.ID, z.Expiring, z.Held, want[z.ID])
				}
			}
			if w == time.Hour && step == 0 && want["ga"]+want["r"] == 0 {
				t.Fatal("nothing held within an hour: the test tests nothing")
			}
		}
	}
	// The plain answer's JSON is as before.
	b, _ := json.Marshal(ZoneCount{ID: "r", Capacity: 3, Held: 1})
	if string(b) != `{"id":"r","ga":false,"capacity":3,"held":1,"sold":0}` {
		t.Fatalf("plain zone count JSON: %s", b)
	}
	for _, c := range []struct {
		ms int64
		ok bool
	}{{0, true}, {1500, true}, {-1, false}, {MaxExpiringWithin.Milliseconds() + 1, false}} {
		d, err := AvailabilityRequest{ExpiringWithinMS: c.ms}.Within()
		if (err == nil) != c.ok || (c.ok && d != time.Duration(c.ms)*time.Millisecond) {
			t.Errorf("within %d ms: %v %v", c.ms, d, err)
		}
	}
}

// TestApplyRefusesCorruptLog: a logged decision that does not fit the state
// is refused and changes nothing (no record, no text, no counts).
func TestApplyRefusesCorruptLog(t *testing.T) {
	p, g := newTestPartition(t)
	h, err := p.Hold(t0, seatsReq("k1", "a-1-1"), g.next)
	if err != nil {
		t.Fatal(err)
	}
	p.TakeDecisions()
	placed := func(id string, seats []string, zone string, qty int) *Decision {
		return &Decision{Type: HoldPlaced, At: t0.UnixNano(), Hold: id, Seats: seats, Zone: zone, Qty: qty,
			Expires: t0.Add(time.Minute).UnixNano(), Key: HashIdempotencyKey(id), FP: "x"}
	}
	for name, d := range map[string]*Decision{
		"same hold id":       placed(h.HoldID, []string{"a-1-2"}, "", 1),
		"taken seat":         placed("ev.0.x1", []string{"a-1-1"}, "", 1),
		"seat listed twice":  placed("ev.0.x2", []string{"a-1-3", "a-1-3"}, "", 2),
		"quantity not seats": placed("ev.0.x3", []string{"a-1-3"}, "", 2),
		"unknown seat":       placed("ev.0.x4", []string{"nope"}, "", 1),
		"zero quantity":      placed("ev.0.x5", nil, "floor", 0),
		"negative quantity":  placed("ev.0.x6", nil, "floor", -3),
		"zone short":         placed("ev.0.x7", nil, "floor", 6),
		"unknown zone":       placed("ev.0.x8", nil, "nope", 1),
		"reserved zone":      placed("ev.0.x9", nil, "p1", 1),
		"release unknown":    {Type: HoldReleased, At: t0.UnixNano(), Hold: "ev.0.none"},
		"cancel a held hold": {Type: SaleCancelled, At: t0.UnixNano(), Hold: h.HoldID},
	} {
		before, recs, live := p.Availability(), int(p.recs.n)-len(p.recs.free), p.recs.text.livesz
		if err := p.Apply(d); err == nil {
			t.Fatalf("%s: applied", name)
		}
		if !reflect.DeepEqual(before, p.Availability()) || int(p.recs.n)-len(p.recs.free) != recs || p.recs.text.livesz != live {
			t.Fatalf("%s: a refused decision changed the state", name)
		}
	}
	checkInvariants(t, p)
}
