package inventory

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRecordsIDCollisions indexes, finds and unindexes holds whose ids all
// hash alike (a chain), in random order, against a plain map.
func TestRecordsIDCollisions(t *testing.T) {
	for _, buckets := range []uint64{1, 3, 1 << 62} {
		rs := newRecords()
		rs.hashOf = func(s string) uint64 { return uint64(len(s)+int(s[len(s)-1])) % buckets }
		rng := rand.New(rand.NewPCG(buckets, 2))
		want := map[string]int32{}
		for step := range 3000 {
			id := fmt.Sprint("h", rng.IntN(200))
			if i, ok := want[id]; ok && rng.IntN(2) == 0 {
				rs.unindex(i)
				rs.release(i)
				delete(want, id)
			} else if !ok {
				i := rs.alloc()
				r := rs.at(i)
				*r = rec{kind: recHold}
				r.setText([nFields]string{fID: id, fFP: "fp"}, []int32{int32(step), -1})
				rs.index(i)
				want[id] = i
			}
			for id, i := range want {
				if got, ok := rs.byID(id); !ok || got != i {
					t.Fatalf("buckets %d step %d: %s at %d, found %d %v", buckets, step, id, i, got, ok)
				}
			}
			if _, ok := rs.byID("nope"); ok {
				t.Fatal("found an id never indexed")
			}
		}
		for id, i := range want {
			r := rs.at(i)
			if r.field(fID) != id || r.field(fFP) != "fp" || r.seatCount() != 2 || r.seat(1) != -1 {
				t.Fatalf("record %d: %q %q %v", i, r.field(fID), r.field(fFP), r.seatIdxs())
			}
		}
	}
}
