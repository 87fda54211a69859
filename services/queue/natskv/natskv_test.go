package natskv_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
	"github.com/ticketing/ticketing/services/queue/coord"
	"github.com/ticketing/ticketing/services/queue/natskv"
)

func tickets(prefix string, n int) []queue.TicketID {
	out := make([]queue.TicketID, n)
	for i := range out {
		out[i] = queue.TicketFor([]byte("key"), prefix+strconv.Itoa(i))
	}
	return out
}

// TestDrawCut: two stores on one bucket stand for two core nodes. Chunks
// stored before the close are in what either reads with the cut; a chunk
// offered after it is refused by both, a repeat of an included chunk is
// accepted (it keeps its place), and the close is one cut wherever made.
func TestDrawCut(t *testing.T) {
	ctx := context.Background()
	_, _, js := nodetest.Start(t)
	kv, err := js.CreateKeyValue(ctx, natskv.KeyValueConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &natskv.Store{KV: kv}, &natskv.Store{KV: kv}
	var _ coord.Store = a

	x, y := tickets("x", 5), tickets("y", 3)
	if err := a.AddPreQueue(ctx, "ev", "edge-a", x, true); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPreQueue(ctx, "ev", "edge-b", y[:2], false); err != nil {
		t.Fatal(err)
	}
	if cut, err := b.DrawCut(ctx, "ev"); err != nil || cut != 0 {
		t.Fatalf("cut before the close: %d %v", cut, err)
	}
	cut, err := a.CloseDraw(ctx, "ev")
	if err != nil || cut == 0 {
		t.Fatalf("close: %d %v", cut, err)
	}
	if again, err := b.CloseDraw(ctx, "ev"); err != nil || again != cut {
		t.Fatalf("second close on the other node: %d %v, want %d", again, err, cut)
	}
	for _, s := range []*natskv.Store{a, b} {
		if err := s.AddPreQueue(ctx, "ev", "edge-b", y[2:], true); !errs.Is(errs.Conflict, err) {
			t.Fatalf("late chunk: %v, want conflict", err)
		}
		if err := s.AddPreQueue(ctx, "ev", "edge-c", nil, true); !errs.Is(errs.Conflict, err) {
			t.Fatalf("late last marker: %v, want conflict", err)
		}
	}
	if err := b.AddPreQueue(ctx, "ev", "edge-a", x, true); err != nil {
		t.Fatalf("a repeat of a chunk in the record: %v", err)
	}
	// A chunk whose write raced the close and landed after it (as if
	// stored between another node's check and its write): not read with
	// the cut (its writer, seeing the cut after its write, refused it).
	z := tickets("z", 1)
	if _, err := kv.Create(ctx, "pq.ev.edge-z.000000000000000000000000", z[0][:]); err != nil {
		t.Fatal(err)
	}
	if pq, err := a.PreQueue(ctx, "ev", 0); err != nil || len(pq.Chunks) != 3 {
		t.Fatalf("without the cut: %d chunks, %v", len(pq.Chunks), err)
	}
	for _, s := range []*natskv.Store{a, b} {
		pq, err := s.PreQueue(ctx, "ev", cut)
		if err != nil {
			t.Fatal(err)
		}
		got := coord.DrawTickets(make([]byte, 32), pq.Chunks...)
		want := coord.DrawTickets(make([]byte, 32), x, y[:2])
		if len(got) != len(want) || len(pq.Chunks) != 2 {
			t.Fatalf("chunks before the cut: %d tickets in %d chunks, want %d in 2", len(got), len(pq.Chunks), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("ticket %d differs", i)
			}
		}
	}
	// Another event is unaffected.
	if err := b.AddPreQueue(ctx, "other", "edge-a", y, true); err != nil {
		t.Fatal(err)
	}
}

// TestDrawPages: a list longer than a stored page is read back in any
// window, the first save wins, and a missing list says so.
func TestDrawPages(t *testing.T) {
	ctx := context.Background()
	_, _, js := nodetest.Start(t)
	kv, err := js.CreateKeyValue(ctx, natskv.KeyValueConfig(1))
	if err != nil {
		t.Fatal(err)
	}
	s := &natskv.Store{KV: kv}
	if _, _, ok, err := s.DrawPage(ctx, "ev", 0, 10); ok || err != nil {
		t.Fatalf("no list: %v %v", ok, err)
	}
	all := tickets("t", 2*natskv.PageTickets+123)
	if err := s.SaveDraw(ctx, "ev", all); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveDraw(ctx, "ev", all[:5]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ off, limit int }{
		{0, 10}, {natskv.PageTickets - 3, 10}, {2*natskv.PageTickets - 1, 200}, {len(all) - 1, 10},
		{len(all), 10}, {len(all) + 5, 10}, {0, len(all)}, {17, 0},
	} {
		page, total, ok, err := s.DrawPage(ctx, "ev", c.off, c.limit)
		if err != nil || !ok || total != len(all) {
			t.Fatalf("%+v: total %d ok %v err %v", c, total, ok, err)
		}
		lo, hi := min(c.off, len(all)), min(c.off+c.limit, len(all))
		want := all[lo:hi]
		if len(page) != len(want) {
			t.Fatalf("%+v: %d tickets, want %d", c, len(page), len(want))
		}
		for i := range want {
			if page[i] != want[i] {
				t.Fatalf("%+v: ticket %d differs", c, i)
			}
		}
	}
	if err := s.SaveDraw(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if page, total, ok, err := s.DrawPage(ctx, "empty", 0, 10); err != nil || !ok || total != 0 || len(page) != 0 {
		t.Fatalf("empty list: %v %d %v %v", page, total, ok, err)
	}
}
