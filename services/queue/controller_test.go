package queue

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

func edges(waiting ...int) []EdgeQueue {
	out := make([]EdgeQueue, len(waiting))
	for i, w := range waiting {
		out[i] = EdgeQueue{Edge: fmt.Sprintf("edge-%d", i), Waiting: w}
	}
	return out
}

// Spare is the room a decision had beyond the line.
func TestDecideSpare(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    Inputs
		spare int
	}{
		{"short line: room for 993 more", Inputs{SeatsLeft: 10_000, TicketsPerShopper: 1, TargetShoppers: 1000, Edges: edges(3, 0, 4)}, 993},
		{"bounded by the target: none", Inputs{SeatsLeft: 10_000, TicketsPerShopper: 2, TargetShoppers: 400, Edges: edges(1000, 3000)}, 0},
		{"bounded by seats: none", Inputs{SeatsLeft: 100, TicketsPerShopper: 2, ActiveShoppers: 20, TargetShoppers: 1000, Edges: edges(500)}, 0},
		{"empty line, room for 6", Inputs{SeatsLeft: 9, TargetShoppers: 1000}, 6},
		{"sold out: none", Inputs{TargetShoppers: 1000, Edges: edges(5)}, 0},
	} {
		d, err := Decide(ControllerConfig{}, tc.in)
		if err != nil || d.Spare != tc.spare {
			t.Fatalf("%s: spare %d (%v), want %d", tc.name, d.Spare, err, tc.spare)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		in        Inputs
		admit     int
		split     []int
		reachable int
		reachEdge []int
		soldOut   bool
	}{
		{
			name:  "opening: bounded by target shoppers, split 1:3",
			in:    Inputs{SeatsLeft: 10_000, TicketsPerShopper: 2, TargetShoppers: 400, Edges: edges(1000, 3000)},
			admit: 400, split: []int{100, 300},
			reachable: 5000, reachEdge: []int{2000, 4000}, // 1000 to spare beyond the 4000 waiting
		},
		{
			name:  "room only for the shoppers not yet active",
			in:    Inputs{SeatsLeft: 10_000, TicketsPerShopper: 2, ActiveShoppers: 390, TargetShoppers: 400, Edges: edges(1000, 3000)},
			admit: 10, split: []int{2, 8}, // 2.5 and 7.5: tie on remainder, larger queue wins
			reachable: 5000, reachEdge: []int{2000, 4000},
		},
		{
			name:  "more active than target: nobody",
			in:    Inputs{SeatsLeft: 10_000, TicketsPerShopper: 2, ActiveShoppers: 500, TargetShoppers: 400, Edges: edges(10, 10)},
			admit: 0, split: []int{0, 0},
			reachable: 5000, reachEdge: []int{4990, 4990},
		},
		{
			name:  "bounded by seats: ceil(1.25 × 100 / 2) = 63 − 20 active",
			in:    Inputs{SeatsLeft: 100, TicketsPerShopper: 2, ActiveShoppers: 20, TargetShoppers: 1000, Edges: edges(500, 300, 200)},
			admit: 43, split: []int{21, 13, 9}, // 21.5, 12.9, 8.6: the two left go to .9 and .6
			reachable: 50, reachEdge: []int{25, 15, 10},
		},
		{
			name:  "expiring holds count as seats; not sold out",
			in:    Inputs{SeatsLeft: 0, ExpiringHolds: 8, TicketsPerShopper: 2, TargetShoppers: 1000, Edges: edges(100)},
			admit: 5, split: []int{5},
			reachable: 4, reachEdge: []int{4},
		},
		{
			name:  "sold out: no seats, none returning",
			in:    Inputs{SeatsLeft: 0, ExpiringHolds: 0, TicketsPerShopper: 2, TargetShoppers: 1000, Edges: edges(100, 50)},
			admit: 0, split: []int{0, 0},
			reachEdge: []int{0, 0},
			soldOut:   true,
		},
		{
			name:  "bounded by those waiting",
			in:    Inputs{SeatsLeft: 10_000, TicketsPerShopper: 1, TargetShoppers: 1000, Edges: edges(3, 0, 4)},
			admit: 7, split: []int{3, 0, 4},
			reachable: 10_000, reachEdge: []int{9996, 9993, 9997}, // a newcomer at the empty edge too
		},
		{
			name:  "bounded by the per-decision cap",
			in:    Inputs{SeatsLeft: 1_000_000, TicketsPerShopper: 1, TargetShoppers: 100_000, Edges: edges(600_000, 400_000)},
			admit: 5000, split: []int{3000, 2000},
			reachable: 1_000_000, reachEdge: []int{600_000, 400_000},
		},
		{
			name:  "tickets per shopper unknown: default 2",
			in:    Inputs{SeatsLeft: 9, TargetShoppers: 1000, Edges: edges(100)},
			admit: 6, split: []int{6}, // ceil(1.25 × 9 / 2)
			reachable: 4, reachEdge: []int{4},
		},
		{
			name:  "no edges",
			in:    Inputs{SeatsLeft: 9, TargetShoppers: 1000},
			admit: 0, split: []int{},
			reachable: 4, reachEdge: []int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(ControllerConfig{}, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var split, reach []int
			for _, e := range d.Edges {
				split = append(split, e.Admit)
				reach = append(reach, e.Reachable)
			}
			if d.Admit != tt.admit || d.SoldOut != tt.soldOut || d.Reachable != tt.reachable ||
				!slices.Equal(split, tt.split) && len(tt.split) > 0 || !slices.Equal(reach, tt.reachEdge) && len(tt.reachEdge) > 0 {
				t.Fatalf("got admit %d split %v sold out %v reachable %d per edge %v\nwant admit %d split %v sold out %v reachable %d per edge %v",
					d.Admit, split, d.SoldOut, d.Reachable, reach, tt.admit, tt.split, tt.soldOut, tt.reachable, tt.reachEdge)
			}
			checkDecision(t, tt.in, d)
		})
	}
}

// checkDecision asserts the invariants every decision keeps.
func checkDecision(t testing.TB, in Inputs, d Decision) {
	t.Helper()
	if len(d.Edges) != len(in.Edges) {
		t.Fatalf("%d shares for %d edges", len(d.Edges), len(in.Edges))
	}
	sum, reach := 0, 0
	for i, e := range d.Edges {
		if e.Edge != in.Edges[i].Edge {
			t.Fatalf("share %d is for %q, want %q", i, e.Edge, in.Edges[i].Edge)
		}
		if e.Admit < 0 || e.Admit > in.Edges[i].Waiting {
			t.Fatalf("edge %s: admit %d of %d waiting", e.Edge, e.Admit, in.Edges[i].Waiting)
		}
		slack := max(0, d.Reachable-d.Waiting)
		if r := e.Reachable - slack; r < 0 || r > in.Edges[i].Waiting || slack > 0 && r != in.Edges[i].Waiting {
			t.Fatalf("edge %s: reachable %d for %d waiting, %d seats to spare", e.Edge, e.Reachable, in.Edges[i].Waiting, slack)
		}
		sum += e.Admit
		reach += e.Reachable - slack
	}
	if sum != d.Admit {
		t.Fatalf("split sums to %d, admit is %d", sum, d.Admit)
	}
	if d.Spare < 0 || d.Spare > 0 && d.Admit != d.Waiting {
		t.Fatalf("spare %d with %d admitted of %d waiting: only a decision bounded by the line has room to spare", d.Spare, d.Admit, d.Waiting)
	}
	if reach != min(d.Reachable, d.Waiting) {
		t.Fatalf("reachable split sums to %d, want min(%d, %d)", reach, d.Reachable, d.Waiting)
	}
	if d.Admit < 0 || d.Admit > d.Waiting {
		t.Fatalf("admit %d with %d waiting", d.Admit, d.Waiting)
	}
	if d.Admit > max(0, in.TargetShoppers-in.ActiveShoppers) {
		t.Fatalf("admit %d beyond target %d − active %d", d.Admit, in.TargetShoppers, in.ActiveShoppers)
	}
	soldOut := in.SeatsLeft == 0 && in.ExpiringHolds == 0
	if d.SoldOut != soldOut {
		t.Fatalf("sold out = %v with %d seats and %d expiring", d.SoldOut, in.SeatsLeft, in.ExpiringHolds)
	}
	if soldOut && d.Admit != 0 {
		t.Fatalf("admit %d when sold out", d.Admit)
	}
}

func TestDecideInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   Inputs
	}{
		{"negative seats", Inputs{SeatsLeft: -1, TargetShoppers: 1}},
		{"negative expiring", Inputs{ExpiringHolds: -1, TargetShoppers: 1}},
		{"negative active", Inputs{ActiveShoppers: -1, TargetShoppers: 1}},
		{"negative target", Inputs{TargetShoppers: -1}},
		{"huge count", Inputs{SeatsLeft: 1 << 50, TargetShoppers: 1}},
		{"negative tickets per shopper", Inputs{TicketsPerShopper: -2, TargetShoppers: 1}},
		{"tiny tickets per shopper", Inputs{TicketsPerShopper: 0.01, TargetShoppers: 1}},
		{"NaN tickets per shopper", Inputs{TicketsPerShopper: math.NaN(), TargetShoppers: 1}},
		{"infinite tickets per shopper", Inputs{TicketsPerShopper: math.Inf(1), TargetShoppers: 1}},
		{"negative queue", Inputs{TargetShoppers: 1, Edges: edges(3, -1)}},
		{"duplicate edge", Inputs{TargetShoppers: 1, Edges: []EdgeQueue{{"a", 1}, {"a", 2}}}},
		{"too many edges", Inputs{TargetShoppers: 1, Edges: edges(make([]int, 1025)...)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decide(ControllerConfig{}, tt.in); !errs.Is(errs.Invalid, err) {
				t.Fatalf("Decide = %v, want invalid", err)
			}
		})
	}
	if _, err := Decide(ControllerConfig{Overbook: 0.5}, Inputs{}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Decide with overbook 0.5: %v", err)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		total   int
		weights []int
		want    []int
	}{
		{10, []int{1, 1, 1}, []int{1, 1, 1}}, // clamped to the weights' sum
		{2, []int{1, 1, 1}, []int{1, 1, 0}},  // equal remainders: the earlier part
		{1, []int{1, 2}, []int{0, 1}},        // 1/3 vs 2/3
		{2, []int{2, 1, 1}, []int{1, 1, 0}},  // 1, .5, .5
		{3, []int{1, 1, 2}, []int{1, 1, 1}},  // .75, .75, 1.5: the two left go to the .75s
		{5, []int{0, 10, 0}, []int{0, 5, 0}},
		{7, []int{0, -3, 7}, []int{0, 0, 7}},
		{0, []int{4, 4}, []int{0, 0}},
		{-5, []int{4, 4}, []int{0, 0}},
		{4, nil, []int{}},
		{100, []int{333, 333, 334}, []int{33, 33, 34}},
		// Exact with products beyond 64 bits.
		{math.MaxInt, []int{math.MaxInt, 1}, []int{math.MaxInt - 1, 1}}, // remainders 1 and MaxInt
	}
	for _, tt := range tests {
		got := Split(tt.total, tt.weights)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Split(%d, %v) = %v, want %v", tt.total, tt.weights, got, tt.want)
		}
	}
}

func TestLikelySoldOut(t *testing.T) {
	tests := []struct {
		position int
		tps      float64
		seats    int
		want     bool
	}{
		{1, 2, 2, false},
		{1, 2, 1, true},
		{50, 2, 100, false},
		{51, 2, 100, true},
		{10, 1.5, 15, false},
		{11, 1.5, 15, true},
		{0, 2, 0, false}, // unknown position
		{1, 1, 0, true},
	}
	for _, tt := range tests {
		if got := LikelySoldOut(tt.position, tt.tps, tt.seats); got != tt.want {
			t.Errorf("LikelySoldOut(%d, %v, %d) = %v", tt.position, tt.tps, tt.seats, got)
		}
	}
}

// Two edges, one core: the pre-queue is drawn over the union, admissions
// are split by queue length, and each edge admits in the draw's order. The
// part of each edge's line admitted stays equal up to rounding, and
// the admitted set is always close to a prefix of the global draw: where a
// user joined does not change their chance.
func TestCrossEdgeSplit(t *testing.T) {
	seed := fixedSeed("cross-edge", 0)
	key := fixedSeed("ticket-key", 9) // shared by both edges
	before := onSale.Add(-time.Minute)
	sizes := []int{1000, 3000}
	qs := make([]*Queue, len(sizes))
	var union []TicketID
	for e, n := range sizes {
		qs[e] = newTestQueue(t, func(c *Config) { c.TicketKey = key; c.Commitment = Commitment(seed) })
		for i := range n {
			mustJoin(t, qs[e], fmt.Sprintf("edge%d-user%d", e, i), before)
		}
		// The same session at both edges has one ticket: the union counts it once.
		mustJoin(t, qs[e], "roams-between-edges", before)
	}
	for _, q := range qs {
		union = append(union, q.ClosePreQueue()...)
	}
	slices.SortFunc(union, func(a, b TicketID) int { return cmpIDs(a, b) })
	union = slices.Compact(union)
	if len(union) != 4001 {
		t.Fatalf("union of %d tickets, want 4001", len(union))
	}
	global := Draw(seed, union)
	rank := make(map[TicketID]int, len(global))
	for i, id := range global {
		rank[id] = i
	}
	for _, q := range qs {
		if err := q.ApplyDraw(seed); err != nil {
			t.Fatal(err)
		}
	}

	admitted := make([]int, len(qs))
	maxDrift := 0.0
	defer func() { t.Logf("largest drift from the exact share: %.2f users", maxDrift) }()
	for round := 0; ; round++ {
		in := Inputs{SeatsLeft: 1_000_000, TicketsPerShopper: 1, TargetShoppers: 137}
		for e, q := range qs {
			in.Edges = append(in.Edges, EdgeQueue{Edge: fmt.Sprint(e), Waiting: q.Stats().Waiting})
		}
		d, err := Decide(ControllerConfig{}, in)
		if err != nil {
			t.Fatal(err)
		}
		checkDecision(t, in, d)
		if d.Admit == 0 {
			break
		}
		worst := 0
		for e, q := range qs {
			ids, err := q.Admit(d.Edges[e].Admit, onSale)
			if err != nil {
				t.Fatal(err)
			}
			admitted[e] += len(ids)
			for _, id := range ids {
				worst = max(worst, rank[id])
			}
		}
		total := admitted[0] + admitted[1]
		// Edge 0's admissions against its exact share of the total: the
		// rounding of successive splits drifts a little (the remainders
		// repeat round after round) but corrects itself, since the edge
		// behind keeps a larger share of what waits.
		drift := math.Abs(float64(admitted[0]) - float64(total)*float64(sizes[0]+1)/float64(sizes[0]+sizes[1]+2))
		maxDrift = max(maxDrift, drift)
		if drift > 10 { // 1% of the smaller line
			t.Fatalf("round %d: edge 0 admitted %d of %d, %.1f from its share", round, admitted[0], total, drift)
		}
		// Nobody far behind in the global draw got in ahead of the crowd:
		// a proportional split of a random order admits nearly a prefix.
		if worst > total+total/4+50 {
			t.Fatalf("round %d: %d admitted, but one of them was %d in the global draw", round, total, worst)
		}
	}
	if admitted[0]+admitted[1] != 4002 { // the roaming session is in both edges' lines
		t.Fatalf("admitted %v in total", admitted)
	}
}

func cmpIDs(a, b TicketID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
