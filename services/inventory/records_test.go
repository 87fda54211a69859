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
				rs.setText(i, [nFields]string{fID: id, fFP: "fp"}, []int32{int32(step), -1})
				if !rs.index(i) {
					t.Fatalf("%s indexed twice", id)
				}
				want[id] = i
				// A second record with the same id is refused.
				j := rs.alloc()
				*rs.at(j) = rec{kind: recHold}
				rs.setText(j, [nFields]string{fID: id}, nil)
				if rs.index(j) {
					t.Fatalf("a second %s was indexed", id)
				}
				rs.release(j)
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
			if rs.field(r, fID) != id || rs.field(r, fFP) != "fp" || r.seatCount() != 2 || rs.seat(r, 1) != -1 {
				t.Fatalf("record %d: %q %q %d", i, rs.field(r, fID), rs.field(r, fFP), rs.seat(r, 0))
			}
		}
	}
}

// TestRecordsText stores, replaces and frees record text at random, with
// texts that stay for good among many that go: the arena drops emptied
// chunks and moves the text out of chunks left less than a quarter full,
// so it never holds much more than four times its live text; every record
// keeps its text, and views taken before a move stay valid.
func TestRecordsText(t *testing.T) {
	rs := newRecords()
	rng := rand.New(rand.NewPCG(7, 7))
	want := map[int32]string{}
	var goers []int32            // records to release at random; the others stay
	views := map[string]string{} // a view taken earlier → what it said
	maxHeld := 0
	for step := range 200_000 {
		if rs.text.held > 4*rs.text.livesz+4*arenaChunk {
			t.Fatalf("step %d: arena holds %d bytes for %d live", step, rs.text.held, rs.text.livesz)
		}
		if len(goers) > 0 && rng.IntN(2) == 0 {
			k := rng.IntN(len(goers))
			i := goers[k]
			goers[k] = goers[len(goers)-1]
			goers = goers[:len(goers)-1]
			rs.release(i)
			delete(want, i)
			continue
		}
		i := rs.alloc()
		r := rs.at(i)
		*r = rec{kind: recHold}
		big := ""
		if rng.IntN(1000) == 0 {
			big = string(make([]byte, arenaChunk+rng.IntN(1000)))
		}
		id := fmt.Sprint("hold-", step, big)
		rs.setText(i, [nFields]string{fID: id, fHolder: fmt.Sprint("holder", rng.IntN(100))}, []int32{int32(step)})
		if rng.IntN(2) == 0 { // a confirmation, now and then a second
			rs.setOrder(i, "order-"+id)
			if rng.IntN(4) == 0 {
				rs.setOrder(i, "order2-"+id)
			}
		}
		want[i] = id
		if rng.IntN(20) > 0 {
			goers = append(goers, i)
		}
		if len(views) < 1000 && rng.IntN(100) == 0 {
			views[rs.field(r, fID)] = id
		}
		maxHeld = max(maxHeld, rs.text.held)
	}
	for i, id := range want {
		r := rs.at(i)
		if o := rs.order(r); rs.field(r, fID) != id || rs.field(r, fHolder)[:6] != "holder" || r.seatCount() != 1 ||
			(o != "" && o != "order-"+id && o != "order2-"+id) {
			t.Fatalf("record %d: %q", i, rs.field(r, fID))
		}
	}
	for v, id := range views {
		if v != id {
			t.Fatalf("a view changed: %q, was %q", v, id)
		}
	}
	live := 0
	rs.each(func(_ int32, r *rec) { live += int(r.txt.n + r.ord.n) })
	if live != rs.text.livesz {
		t.Fatalf("arena counts %d live bytes, records have %d", rs.text.livesz, live)
	}
	if rs.text.held > 4*rs.text.livesz+4*arenaChunk || rs.evacuated == 0 {
		t.Fatalf("arena holds %d bytes for %d live after %d evacuations", rs.text.held, rs.text.livesz, rs.evacuated)
	}
	t.Logf("%d records, %d live bytes, %d held (at most %d), %d chunks evacuated", len(want), rs.text.livesz, rs.text.held, maxHeld, rs.evacuated)
}
