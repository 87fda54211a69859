// Package analyticstest is the contract suite of analytics.Store, run
// against the embedded file store and the PostgreSQL store.
package analyticstest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/analytics"
)

// Harness is one store under test.
type Harness struct {
	Store analytics.Store
	// Reopen returns a new store on the same storage, as after a restart.
	Reopen func(t *testing.T) analytics.Store
}

// Run runs the suite; newHarness returns an empty store for each subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"ApplyAndRead", testApplyAndRead},
		{"RedeliverySkipped", testRedeliverySkipped},
		{"NotFound", testNotFound},
		{"Reopen", testReopen},
		{"ConcurrentOwners", testConcurrentOwners},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newHarness(t)) })
	}
}

// Ctx is a context for one test.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	inv   = analytics.Position{Topic: "ticketing.inventory", Partition: 1}
	queue = analytics.Position{Topic: "ticketing.events", Partition: 4}
	at    = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
)

// Hold returns an input: a hold of n GA tickets on event id.
func Hold(p analytics.Position, offset int64, id string, n int64) analytics.Input {
	return analytics.Input{Pos: p, Offset: offset, Event: &analytics.Event{ID: fmt.Sprint(offset), Type: analytics.TypeHoldPlaced,
		Data: analytics.EventData{EventID: id, Zone: "floor", Quantity: n, At: at, EventCapacity: 10, OnSaleAt: &at}}}
}

func join(p analytics.Position, offset int64, id string) analytics.Input {
	return analytics.Input{Pos: p, Offset: offset, Event: &analytics.Event{Type: analytics.TypeQueueJoined,
		Data: analytics.EventData{EventID: id, Session: "s", At: at}}}
}

func mustApply(t *testing.T, s analytics.Store, in []analytics.Input, want int) {
	t.Helper()
	n, err := s.Apply(Ctx(t), in)
	if err != nil || n != want {
		t.Fatalf("apply: %d, %v; want %d", n, err, want)
	}
}

func funnel(t *testing.T, s analytics.Store, id string) analytics.Funnel {
	t.Helper()
	f, err := s.Funnel(Ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testApplyAndRead(t *testing.T, h Harness) {
	s := h.Store
	mustApply(t, s, []analytics.Input{
		Hold(inv, 0, "arena", 2), {Pos: inv, Offset: 1}, Hold(inv, 2, "club", 1),
		join(queue, 7, "arena"), join(queue, 8, "arena"),
	}, 5)
	f := funnel(t, s, "arena")
	if f.HoldsPlaced != 1 || f.HeldTickets != 2 || f.Joined != 2 || f.Capacity != 10 || !f.OnSaleAt.Equal(at) || f.PeakHoldsPerMinute != 1 {
		t.Fatalf("%+v", f)
	}
	if f := funnel(t, s, "club"); f.HeldTickets != 1 {
		t.Fatalf("%+v", f)
	}
	off, err := s.Offsets(Ctx(t), []analytics.Position{inv, queue, {Topic: "x", Partition: 0}})
	if err != nil || len(off) != 2 || off[inv] != 3 || off[queue] != 9 {
		t.Fatalf("offsets %v, %v", off, err)
	}
}

func testRedeliverySkipped(t *testing.T, h Harness) {
	s := h.Store
	batch := []analytics.Input{Hold(inv, 0, "arena", 1), Hold(inv, 1, "arena", 1), Hold(inv, 2, "arena", 1)}
	mustApply(t, s, batch[:2], 2)
	mustApply(t, s, batch, 1)
	mustApply(t, s, batch, 0)
	if f := funnel(t, s, "arena"); f.HoldsPlaced != 3 || f.HeldTickets != 3 {
		t.Fatalf("%+v", f)
	}
}

func testNotFound(t *testing.T, h Harness) {
	if _, err := h.Store.Funnel(Ctx(t), "nothing"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("%v, want not found", err)
	}
}

func testReopen(t *testing.T, h Harness) {
	mustApply(t, h.Store, []analytics.Input{Hold(inv, 0, "arena", 4)}, 1)
	s := h.Reopen(t)
	if f := funnel(t, s, "arena"); f.HeldTickets != 4 {
		t.Fatalf("%+v", f)
	}
	mustApply(t, s, []analytics.Input{Hold(inv, 0, "arena", 4), Hold(inv, 1, "arena", 1)}, 1)
	if f := funnel(t, s, "arena"); f.HeldTickets != 5 {
		t.Fatalf("%+v", f)
	}
}

// Two consumers that both believe they own a partition apply the same
// batches: each record counts once.
func testConcurrentOwners(t *testing.T, h Harness) {
	s := h.Store
	const batches, per = 10, 20
	var wg sync.WaitGroup
	errc := make(chan error, 2*batches)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				var in []analytics.Input
				for i := range per {
					in = append(in, Hold(inv, int64(b*per+i), "arena", 1))
				}
				if _, err := s.Apply(Ctx(t), in); err != nil && !errs.Is(errs.Unavailable, err) && !errs.Is(errs.Conflict, err) {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if f := funnel(t, s, "arena"); f.HoldsPlaced != batches*per {
		t.Fatalf("holds placed %d, want %d", f.HoldsPlaced, batches*per)
	}
}
