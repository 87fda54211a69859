package queue

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

var onSale = time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)

func newTestQueue(t testing.TB, mod func(*Config)) *Queue {
	t.Helper()
	cfg := Config{EventID: "ev-1", OnSale: onSale, TicketKey: fixedSeed("ticket-key", 0)}
	if mod != nil {
		mod(&cfg)
	}
	q, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func mustJoin(t testing.TB, q *Queue, session string, now time.Time) Status {
	t.Helper()
	s, err := q.Join(session, now)
	if err != nil {
		t.Fatalf("Join(%s): %v", session, err)
	}
	return s
}

func mustStatus(t testing.TB, q *Queue, session string) Status {
	t.Helper()
	s, err := q.SessionStatus(session)
	if err != nil {
		t.Fatalf("SessionStatus(%s): %v", session, err)
	}
	return s
}

func wantStatus(t testing.TB, got Status, state State, position int) {
	t.Helper()
	if got.State != state || got.Position != position {
		t.Fatalf("status = %s at %d, want %s at %d", got.State, got.Position, state, position)
	}
	if position > 0 && got.Ahead != position-1 {
		t.Fatalf("ahead = %d at position %d", got.Ahead, position)
	}
}

func TestPreQueueDrawThenFIFO(t *testing.T) {
	seed := fixedSeed("sale", 0)
	q := newTestQueue(t, func(c *Config) { c.Commitment = Commitment(seed) })
	before := onSale.Add(-time.Minute)

	var pre []TicketID
	for i := range 5 {
		s := mustJoin(t, q, fmt.Sprintf("pre-%d", i), before.Add(time.Duration(i)*time.Second))
		wantStatus(t, s, PreQueue, 0)
		pre = append(pre, s.Ticket)
	}
	if _, err := q.Admit(1, before); errs.ReasonOf(err) != "not_started" {
		t.Fatalf("Admit before the sale: %v", err)
	}

	// The sale starts; the pre-queue closes and goes to the core.
	if got := q.ClosePreQueue(); !slices.Equal(got, pre) {
		t.Fatalf("ClosePreQueue = %v, want %v", got, pre)
	}
	// A join at the start, before the seed arrives, goes behind the whole
	// pre-queue: its place is known already.
	wantStatus(t, mustJoin(t, q, "post-0", onSale), Queued, 6)
	// Even with a clock that says it is still before the sale.
	wantStatus(t, mustJoin(t, q, "post-1", before), Queued, 7)
	wantStatus(t, mustStatus(t, q, "pre-0"), PreQueue, 0)
	if _, err := q.Admit(1, onSale); !errs.Is(errs.Unavailable, err) || errs.ReasonOf(err) != "draw_pending" {
		t.Fatalf("Admit before the draw: %v", err)
	}

	if err := q.ApplyDraw(NewSeed()); !errs.Is(errs.Invalid, err) {
		t.Fatalf("ApplyDraw with a seed that breaks the commitment: %v", err)
	}
	if err := q.ApplyDraw(seed); err != nil {
		t.Fatal(err)
	}
	order := Draw(seed, pre)
	for i, id := range order {
		s, err := q.Status(id)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, s, Queued, i+1)
	}
	wantStatus(t, mustJoin(t, q, "post-2", onSale.Add(time.Second)), Queued, 8)

	got, err := q.Admit(6, onSale.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(order), q.TicketFor("post-0"))
	if !slices.Equal(got, want) {
		t.Fatalf("admitted %v, want the draw order then FIFO %v", got, want)
	}
	wantStatus(t, mustStatus(t, q, "post-1"), Queued, 1)
	wantStatus(t, mustStatus(t, q, "post-2"), Queued, 2)
	wantStatus(t, mustStatus(t, q, "post-0"), Admitted, 0)

	// Admitting more than wait admits those who wait.
	got, err = q.Admit(10, onSale.Add(3*time.Second))
	if err != nil || len(got) != 2 {
		t.Fatalf("Admit(10) = %v, %v; want the last 2", got, err)
	}
	if got, err := q.Admit(1, onSale.Add(3*time.Second)); err != nil || len(got) != 0 {
		t.Fatalf("Admit on an empty line = %v, %v", got, err)
	}
	if s := q.Stats(); s.Tickets != 8 || s.Waiting != 0 || s.Admitted != 8 || s.PreQueue != 5 || !s.Drawn {
		t.Fatalf("stats %+v", s)
	}

	// The same seed again is a no-op (a retried message); another is refused.
	if err := q.ApplyDraw(seed); err != nil {
		t.Fatalf("ApplyDraw again with the same seed: %v", err)
	}
	q2 := newTestQueue(t, nil)
	mustJoin(t, q2, "a", before)
	if err := q2.ApplyDraw(fixedSeed("x", 1)); err != nil {
		t.Fatal(err)
	}
	if err := q2.ApplyDraw(fixedSeed("x", 2)); !errs.Is(errs.Conflict, err) {
		t.Fatalf("ApplyDraw with another seed after a draw: %v", err)
	}
}

func TestFIFOAfterStart(t *testing.T) {
	q := newTestQueue(t, nil)
	const n = 100
	for i := range n {
		wantStatus(t, mustJoin(t, q, fmt.Sprintf("s-%d", i), onSale.Add(time.Duration(i)*time.Millisecond)), Queued, i+1)
	}
	var admitted []TicketID
	for len(admitted) < n {
		got, err := q.Admit(7, onSale.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		admitted = append(admitted, got...)
	}
	for i, id := range admitted {
		if id != q.TicketFor(fmt.Sprintf("s-%d", i)) {
			t.Fatalf("admission %d is not the %dth to join", i, i)
		}
	}
}

func TestRejoinKeepsPlace(t *testing.T) {
	q := newTestQueue(t, nil)
	before := onSale.Add(-time.Hour)
	first := mustJoin(t, q, "early", before)
	for i := range 3 {
		mustJoin(t, q, fmt.Sprintf("s-%d", i), onSale.Add(time.Second))
	}
	// Rejoining after the sale started does not move a pre-queue ticket
	// to the back.
	again := mustJoin(t, q, "early", onSale.Add(time.Minute))
	if again.Ticket != first.Ticket || again.State != PreQueue {
		t.Fatalf("rejoin = %+v, first join %+v", again, first)
	}
	if err := q.ApplyDraw(fixedSeed("rejoin", 0)); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, mustJoin(t, q, "early", onSale.Add(time.Minute)), Queued, 1)
	wantStatus(t, mustJoin(t, q, "s-1", onSale.Add(time.Minute)), Queued, 3)
	if _, err := q.Admit(2, onSale.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, mustJoin(t, q, "s-0", onSale.Add(time.Minute)), Admitted, 0)
	wantStatus(t, mustJoin(t, q, "s-1", onSale.Add(time.Minute)), Queued, 1)
	if got := q.Stats().Tickets; got != 4 {
		t.Fatalf("%d tickets after rejoins, want 4", got)
	}
	if _, err := q.SessionStatus("never-joined"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("status of a session that never joined: %v", err)
	}
	if _, err := q.Status(TicketID{1}); !errs.Is(errs.NotFound, err) {
		t.Fatalf("status of an unknown ticket: %v", err)
	}
}

func TestSoldOutPropagation(t *testing.T) {
	q := newTestQueue(t, nil)
	const n = 1000
	for i := range n {
		mustJoin(t, q, fmt.Sprintf("s-%d", i), onSale)
	}
	if _, err := q.Admit(10, onSale); err != nil {
		t.Fatal(err)
	}
	v := q.Version()
	q.MarkSoldOut()
	if q.Version() == v {
		t.Fatal("sold out did not change the version: broadcasters would not push it")
	}
	for i := range n {
		s := mustStatus(t, q, fmt.Sprintf("s-%d", i))
		switch {
		case i < 10 && s.State != Admitted:
			t.Fatalf("admitted s-%d is %s after sold out", i, s.State)
		case i >= 10 && s.State != SoldOut:
			t.Fatalf("waiting s-%d is %s after sold out", i, s.State)
		}
	}
	// A newcomer learns it too.
	if s := mustJoin(t, q, "late", onSale.Add(time.Hour)); s.State != SoldOut {
		t.Fatalf("late join is %s", s.State)
	}
	if _, err := q.Admit(1, onSale); !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != "sold_out" {
		t.Fatalf("Admit when sold out: %v", err)
	}
	// Seats return: everyone is back in place.
	q.Resume()
	wantStatus(t, mustStatus(t, q, "s-10"), Queued, 1)
	wantStatus(t, mustStatus(t, q, "late"), Queued, n-10+1)
	got, err := q.Admit(1, onSale)
	if err != nil || len(got) != 1 || got[0] != q.TicketFor("s-10") {
		t.Fatalf("Admit after resume = %v, %v", got, err)
	}
	// Idempotent.
	v = q.Version()
	q.Resume()
	if q.Version() != v {
		t.Fatal("a second Resume changed the version")
	}
}

func TestJoinErrors(t *testing.T) {
	q := newTestQueue(t, func(c *Config) { c.MaxTickets = 2 })
	tests := []struct {
		session string
		kind    errs.Kind
	}{
		{"", errs.Invalid},
		{string(make([]byte, MaxSessionLen+1)), errs.Invalid},
	}
	for _, tt := range tests {
		if _, err := q.Join(tt.session, onSale); !errs.Is(tt.kind, err) {
			t.Errorf("Join(%d-byte session) = %v, want %s", len(tt.session), err, tt.kind)
		}
	}
	mustJoin(t, q, "a", onSale)
	mustJoin(t, q, "b", onSale)
	if _, err := q.Join("c", onSale); !errs.Is(errs.Unavailable, err) || errs.ReasonOf(err) != "queue_full" {
		t.Fatalf("join beyond MaxTickets: %v", err)
	}
	mustJoin(t, q, "a", onSale) // a rejoin still works when full
	if _, err := q.Admit(-1, onSale); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Admit(-1): %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	key := fixedSeed("k", 0)
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"minimal", Config{EventID: "e", OnSale: onSale}, true},
		{"full", Config{EventID: "e", OnSale: onSale, TicketKey: key, Commitment: Commitment(key), MaxTickets: 10, Capacity: 10}, true},
		{"no event", Config{OnSale: onSale}, false},
		{"no on-sale", Config{EventID: "e"}, false},
		{"short key", Config{EventID: "e", OnSale: onSale, TicketKey: key[:16]}, false},
		{"bad commitment", Config{EventID: "e", OnSale: onSale, Commitment: "abc"}, false},
		{"negative max", Config{EventID: "e", OnSale: onSale, MaxTickets: -1}, false},
		{"capacity above max", Config{EventID: "e", OnSale: onSale, MaxTickets: 5, Capacity: 6}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if tt.ok != (err == nil) {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errs.Is(errs.Invalid, err) {
				t.Fatalf("error kind %s, want invalid", errs.KindOf(err))
			}
		})
	}
}

func TestTicketIDs(t *testing.T) {
	k1, k2 := fixedSeed("k", 1), fixedSeed("k", 2)
	a := TicketFor(k1, "session-a")
	if a != TicketFor(k1, "session-a") {
		t.Fatal("the same session got two ids")
	}
	if a == TicketFor(k1, "session-b") || a == TicketFor(k2, "session-a") {
		t.Fatal("ids collide across sessions or keys")
	}
	p, err := ParseTicketID(a.String())
	if err != nil || p != a {
		t.Fatalf("ParseTicketID(String()) = %v, %v", p, err)
	}
	var u TicketID
	txt, _ := a.MarshalText()
	if err := u.UnmarshalText(txt); err != nil || u != a {
		t.Fatalf("text round trip = %v, %v", u, err)
	}
	for _, bad := range []string{"", "abc", a.String() + "0", "zz" + a.String()[2:]} {
		if _, err := ParseTicketID(bad); !errs.Is(errs.Invalid, err) {
			t.Errorf("ParseTicketID(%q) = %v", bad, err)
		}
	}
}

func TestConcurrentJoins(t *testing.T) {
	q := newTestQueue(t, nil)
	const workers, sessions = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range sessions {
				// Every worker joins every session: rejoins race with joins.
				if _, err := q.Join(fmt.Sprintf("s-%d", (i+w*37)%sessions), onSale); err != nil {
					t.Error(err)
					return
				}
				if w == 0 && i%50 == 0 {
					if _, err := q.Admit(3, onSale); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	st := q.Stats()
	if st.Tickets != sessions || st.Admitted+st.Waiting != sessions {
		t.Fatalf("stats %+v: want %d distinct tickets", st, sessions)
	}
	seen := map[int]bool{}
	for i := range sessions {
		s := mustStatus(t, q, fmt.Sprintf("s-%d", i))
		if s.State == Queued {
			if seen[s.Position] {
				t.Fatalf("two tickets at position %d", s.Position)
			}
			seen[s.Position] = true
		}
	}
	if len(seen) != st.Waiting {
		t.Fatalf("%d distinct positions for %d waiting", len(seen), st.Waiting)
	}
}

// heapPerUser joins n users to a fresh queue and returns the live heap it
// grew by, per user. Session ids are not kept by the queue.
func heapPerUser(tb testing.TB, n, capacity int) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	q := newTestQueue(tb, func(c *Config) { c.Capacity = capacity; c.MaxTickets = max(n, 1) })
	buf := make([]byte, 0, 32)
	for i := range n {
		buf = fmt.Appendf(buf[:0], "session-%d", i)
		if _, err := q.Join(string(buf), onSale); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(q)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// The edge holds up to a million waiting users; a queue that started
// keeping a session string or a pointer per user would blow this bound.
func TestMemoryPerUser(t *testing.T) {
	const n = 200_000
	grown := heapPerUser(t, n, 0)
	prealloc := heapPerUser(t, n, n)
	t.Logf("%.1f bytes/user growing, %.1f bytes/user preallocated (%d users)", grown, prealloc, n)
	if grown > 128 || prealloc > 80 {
		t.Fatalf("%.1f bytes/user growing, %.1f preallocated: want ≤ 128 and ≤ 80", grown, prealloc)
	}
}

// JoinTicket is Join by ticket: replaying the tickets of Joins, with their
// times, the draw and the admissions into a fresh queue gives every ticket
// the same status.
func TestJoinTicketReplaysJoin(t *testing.T) {
	q := newTestQueue(t, nil)
	r := newTestQueue(t, nil)
	seed := fixedSeed("seed", 1)
	type op struct {
		ticket TicketID
		at     time.Time
		draw   bool
		admit  int
	}
	var ops []op
	join := func(s string, at time.Time) {
		st := mustJoin(t, q, s, at)
		ops = append(ops, op{ticket: st.Ticket, at: at})
	}
	for i := range 30 {
		join(fmt.Sprint("pre-", i), onSale.Add(-time.Duration(30-i)*time.Second))
	}
	if err := q.ApplyDraw(seed); err != nil {
		t.Fatal(err)
	}
	ops = append(ops, op{draw: true})
	for i := range 10 {
		join(fmt.Sprint("post-", i), onSale.Add(time.Duration(i)*time.Second))
	}
	ts, err := q.Admit(7, onSale.Add(time.Minute))
	if err != nil || len(ts) != 7 {
		t.Fatalf("admit: %d, %v", len(ts), err)
	}
	ops = append(ops, op{admit: 7, at: onSale.Add(time.Minute)})
	join("late", onSale.Add(2*time.Minute))

	for _, o := range ops {
		switch {
		case o.draw:
			if err := r.ApplyDraw(seed); err != nil {
				t.Fatal(err)
			}
		case o.admit > 0:
			if ts, err := r.Admit(o.admit, o.at); err != nil || len(ts) != o.admit {
				t.Fatalf("replayed admit: %d, %v", len(ts), err)
			}
		default:
			if _, created, err := r.JoinTicket(o.ticket, o.at); err != nil || !created {
				t.Fatalf("JoinTicket: created %v, %v", created, err)
			}
		}
	}
	if _, created, err := r.JoinTicket(ops[0].ticket, onSale.Add(time.Hour)); err != nil || created {
		t.Fatalf("JoinTicket again: created %v, %v", created, err)
	}
	for _, s := range []string{"pre-0", "pre-17", "pre-29", "post-0", "post-9", "late"} {
		a, b := mustStatus(t, q, s), mustStatus(t, r, s)
		if a.State != b.State || a.Position != b.Position || a.Waiting != b.Waiting {
			t.Fatalf("%s: replayed %+v, original %+v", s, b, a)
		}
	}
	if a, b := q.Stats(), r.Stats(); a.Tickets != b.Tickets || a.Admitted != b.Admitted || a.PreQueue != b.PreQueue {
		t.Fatalf("stats: replayed %+v, original %+v", b, a)
	}
}
