package queue

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"
)

// FuzzDecide checks the controller's invariants on any inputs: the split
// sums to the total admitted, no edge gets more than it has waiting, sold
// out admits nobody, and bad inputs are refused rather than mis-decided.
// queues is read as big-endian uint32 queue lengths, one per edge.
func FuzzDecide(f *testing.F) {
	f.Add(int64(10_000), int64(0), 2.0, int64(0), int64(400), []byte{0, 0, 3, 232, 0, 0, 11, 184})
	f.Add(int64(0), int64(0), 2.0, int64(5), int64(400), []byte{0, 0, 0, 100, 0, 0, 0, 50})
	f.Add(int64(0), int64(7), 1.5, int64(3), int64(10), []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	f.Add(int64(100), int64(20), 0.0, int64(1000), int64(500), []byte{})
	f.Fuzz(func(t *testing.T, seats, expiring int64, tps float64, active, target int64, queues []byte) {
		in := Inputs{
			SeatsLeft: int(seats), ExpiringHolds: int(expiring), TicketsPerShopper: tps,
			ActiveShoppers: int(active), TargetShoppers: int(target),
		}
		for i := 0; i+4 <= len(queues) && len(in.Edges) < 64; i += 4 {
			in.Edges = append(in.Edges, EdgeQueue{Edge: fmt.Sprint(i), Waiting: int(binary.BigEndian.Uint32(queues[i:]))})
		}
		d, err := Decide(ControllerConfig{}, in)
		if err != nil {
			return // refused: the property is that accepted inputs decide well
		}
		checkDecision(t, in, d)
	})
}

// FuzzSplit checks Split on any total and weights: it never gives a part
// more than its weight, and sums to the total clamped to [0, sum of
// weights]. weights is read as big-endian uint16s.
func FuzzSplit(f *testing.F) {
	f.Add(10, []byte{0, 1, 0, 1, 0, 1})
	f.Add(7, []byte{0, 3, 0, 0, 0, 4})
	f.Add(-3, []byte{1, 0})
	f.Add(1<<40, []byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, total int, raw []byte) {
		var weights []int
		sum := 0
		for i := 0; i+2 <= len(raw); i += 2 {
			w := int(binary.BigEndian.Uint16(raw[i:]))
			weights = append(weights, w)
			sum += w
		}
		got := Split(total, weights)
		if len(got) != len(weights) {
			t.Fatalf("%d parts for %d weights", len(got), len(weights))
		}
		s := 0
		for i, g := range got {
			if g < 0 || g > weights[i] {
				t.Fatalf("part %d: %d of weight %d", i, g, weights[i])
			}
			s += g
		}
		if want := min(max(total, 0), sum); s != want {
			t.Fatalf("Split(%d, %v) sums to %d, want %d", total, weights, s, want)
		}
	})
}

// FuzzDraw checks that the draw is a permutation, reproducible, and blind
// to the order the tickets are listed in. ids is read as 16-byte tickets.
func FuzzDraw(f *testing.F) {
	f.Add([]byte("seed"), make([]byte, 48))
	f.Add([]byte{}, []byte("0123456789abcdef0123456789abcdeg"))
	f.Fuzz(func(t *testing.T, seed, raw []byte) {
		var ids []TicketID
		for i := 0; i+TicketIDSize <= len(raw); i += TicketIDSize {
			ids = append(ids, TicketID(raw[i:i+TicketIDSize]))
		}
		got := Draw(seed, ids)
		if !slices.Equal(sortedIDs(got), sortedIDs(ids)) {
			t.Fatal("not a permutation")
		}
		rev := slices.Clone(ids)
		slices.Reverse(rev)
		if !slices.Equal(got, Draw(seed, rev)) {
			t.Fatal("the order depends on the input's order")
		}
	})
}

// FuzzQueue runs any sequence of operations on a queue and checks that
// positions of the waiting form 1..Waiting without gaps, that admitted and
// waiting add up to the tickets, and that no operation panics. Each byte is
// one operation: its low 3 bits pick it, the rest is its argument.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{0, 8, 16, 3, 4, 1, 9, 2, 5, 1, 6, 2})
	f.Add([]byte{1, 1, 1, 2, 0, 3, 4, 0, 5, 7})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 200 {
			ops = ops[:200]
		}
		seed := fixedSeed("fuzz", 0)
		q := newTestQueue(t, func(c *Config) { c.MaxTickets = 64 })
		now := onSale.Add(-10 * time.Second)
		for _, op := range ops {
			arg := int(op >> 3)
			switch op & 7 {
			case 0, 1: // join, before or after the sale as the clock says
				_, _ = q.Join(fmt.Sprintf("s-%d", arg), now)
			case 2:
				now = now.Add(time.Duration(arg) * time.Second)
			case 3:
				_, _ = q.Admit(arg%8, now)
			case 4:
				_ = q.ApplyDraw(seed)
			case 5:
				q.MarkSoldOut()
			case 6:
				q.Resume()
			case 7:
				q.ClosePreQueue()
			}
		}
		st := q.Stats()
		if st.Admitted+st.Waiting != st.Tickets {
			t.Fatalf("stats %+v do not add up", st)
		}
		positions := map[int]bool{}
		states := map[State]int{}
		for i := range 32 {
			s, err := q.SessionStatus(fmt.Sprintf("s-%d", i))
			if err != nil {
				continue
			}
			states[s.State]++
			if s.Position > 0 {
				if positions[s.Position] || s.Position > st.Waiting {
					t.Fatalf("position %d repeated or beyond %d waiting", s.Position, st.Waiting)
				}
				positions[s.Position] = true
			}
			if st.SoldOut && s.State != Admitted && s.State != SoldOut {
				t.Fatalf("state %s while sold out", s.State)
			}
		}
		if states[Admitted] != st.Admitted {
			t.Fatalf("%d admitted states, stats say %d", states[Admitted], st.Admitted)
		}
		// Every waiting ticket has a place, except the pre-queue before its draw.
		known := st.Waiting
		if !st.Drawn {
			known -= st.PreQueue
		}
		if len(positions) != known {
			t.Fatalf("%d positions for %d waiting (stats %+v)", len(positions), known, st)
		}
	})
}
