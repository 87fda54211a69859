package queue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

func join(t *testing.T, f *fixture, s string) Status {
	t.Helper()
	st, _, err := f.m.Join(context.Background(), testEvent, s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func status(t *testing.T, f *fixture, s string) Status {
	t.Helper()
	st, err := f.m.Status(context.Background(), testEvent, s)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Before the sale users are in the pre-queue; the seed in a decision draws
// it, the pre-queue goes to the core, and the order is the draw's.
func TestPreQueueDrawAndAdmission(t *testing.T) {
	f := newFixture(t, time.Minute, nil)
	const n = 20
	for i := range n {
		st := join(t, f, session(i))
		if st.State != "pre_queue" || st.Position != 0 || st.EstimatedWaitSeconds != nil {
			t.Fatalf("join before the sale: %+v", st)
		}
	}
	if _, created, _ := f.m.Join(context.Background(), testEvent, session(3)); created {
		t.Fatal("a rejoin is not a new ticket")
	}
	f.clk.add(time.Minute)
	f.core.decide(t, Decision{Seed: f.core.seed, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 0, Reachable: n}}})
	<-f.core.lastChunk
	f.core.mu.Lock()
	var sent []queue.TicketID
	for _, c := range f.core.chunks {
		sent = append(sent, c.Tickets...)
	}
	f.core.mu.Unlock()
	if len(sent) != n {
		t.Fatalf("the core got %d pre-queue tickets, want %d", len(sent), n)
	}
	// Positions follow the draw over the pre-queue.
	order := queue.Draw(f.core.seed, sent)
	r, _ := f.m.Room(context.Background(), testEvent)
	for i := range n {
		st := status(t, f, session(i))
		pos := -1
		for p, tk := range order {
			if tk == r.q.TicketFor(session(i)) {
				pos = p + 1
			}
		}
		if st.State != "queued" || st.Position != pos || st.Ahead != pos-1 || st.LikelySoldOut {
			t.Fatalf("session %d: %+v, want position %d", i, st, pos)
		}
	}
	// Admission: the first three in draw order, each with a token bound to
	// the event and its ticket.
	f.clk.add(time.Second)
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 3, Reachable: 10}}})
	v := f.adm.verifier(t)
	admitted := 0
	for i := range n {
		st := status(t, f, session(i))
		tk := r.q.TicketFor(session(i))
		switch {
		case tk == order[0] || tk == order[1] || tk == order[2]:
			admitted++
			if st.State != "admitted" || st.Token == "" || st.TokenExpiresAt == nil {
				t.Fatalf("admitted session: %+v", st)
			}
			if _, err := v.Verify(st.Token, testEvent, tk.String(), f.clk.now()); err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if _, err := v.Verify(st.Token, testEvent, order[5].String(), f.clk.now()); err == nil {
				t.Fatal("token verifies for another ticket")
			}
			if again := status(t, f, session(i)); again.Token != st.Token {
				t.Fatal("the token is not cached")
			}
		default:
			if st.State != "queued" || st.Position < 1 || st.Position > n-3 {
				t.Fatalf("waiting session: %+v", st)
			}
			if st.LikelySoldOut != (st.Position > 10) {
				t.Fatalf("likely sold out %v at position %d (reachable 10)", st.LikelySoldOut, st.Position)
			}
		}
	}
	if admitted != 3 || f.adm.issued.Load() != 3 {
		t.Fatalf("admitted %d, tokens issued %d", admitted, f.adm.issued.Load())
	}
}

// After the start: first come first served, and a wait estimate from the
// admission rate.
func TestFIFOAndEstimate(t *testing.T) {
	f := newFixture(t, -time.Minute, nil)
	// The core's decisions arrive every second; no pre-queue to draw.
	f.core.decide(t, Decision{Seed: f.core.seed, Edges: []queue.EdgeAdmit{{Edge: "edge-t"}}})
	for i := range 10 {
		if st := join(t, f, session(i)); st.State != "queued" || st.Position != i+1 {
			t.Fatalf("join %d: %+v", i, st)
		}
	}
	for range 3 {
		f.clk.add(time.Second)
		f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 2, Reachable: 100}}})
	}
	st := status(t, f, session(9))
	// 6 admitted at 2 a second: position 4 waits about 2 s.
	if st.State != "queued" || st.Position != 4 || st.EstimatedWaitSeconds == nil || *st.EstimatedWaitSeconds != 2 {
		t.Fatalf("status: %+v", st)
	}
	if st := status(t, f, session(0)); st.State != "admitted" {
		t.Fatalf("first come is not first served: %+v", st)
	}
}

// A line shorter than the controller's room: a newcomer is told the wait
// until the next decision (a report, then the core's interval between
// decisions), not position over a rate that only measured the short line.
func TestEstimateWithRoomToSpare(t *testing.T) {
	f := newFixture(t, -time.Minute, func(c *Config) { c.ReportEvery = time.Second })
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	f.core.decide(t, Decision{Seed: f.core.seed, At: at, Edges: []queue.EdgeAdmit{{Edge: "edge-t"}}})
	join(t, f, session(0))
	f.clk.add(time.Minute)
	// Slow admissions so far (one a minute), but room for 50 more: the
	// line was the bound. The core decides every 3 s.
	f.core.decide(t, Decision{At: at.Add(3 * time.Second), Spare: 50, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 1, Reachable: 100}}})
	st := join(t, f, session(1))
	const want = 4 // a report every second, then a decision 3 s later
	if st.Position != 1 || st.EstimatedWaitSeconds == nil || *st.EstimatedWaitSeconds != want {
		t.Fatalf("newcomer with room to spare: %+v, want an estimate of %d s", st, want)
	}
}

// Sold out: every waiting user reads sold_out at once; admitted users stay
// admitted; seats coming back resume everyone in their place.
func TestSoldOutAndResume(t *testing.T) {
	f := newFixture(t, -time.Minute, nil)
	f.core.decide(t, Decision{Seed: f.core.seed})
	for i := range 5 {
		join(t, f, session(i))
	}
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 1, Reachable: 4}}})
	f.core.decide(t, Decision{SoldOut: true, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 3}}})
	if st := status(t, f, session(0)); st.State != "admitted" {
		t.Fatalf("admitted before the sell-out: %+v", st)
	}
	for i := 1; i < 5; i++ {
		if st := status(t, f, session(i)); st.State != "sold_out" || !st.LikelySoldOut {
			t.Fatalf("waiting at sell-out: %+v", st)
		}
	}
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Reachable: 4}}})
	for i := 1; i < 5; i++ {
		if st := status(t, f, session(i)); st.State != "queued" || st.Position != i {
			t.Fatalf("after resume: %+v", st)
		}
	}
}

// Decisions out of order (a lower seq) are ignored; another edge's share
// is not this edge's.
func TestDecisionOrderAndShares(t *testing.T) {
	f := newFixture(t, -time.Minute, nil)
	f.core.decide(t, Decision{Seed: f.core.seed})
	for i := range 5 {
		join(t, f, session(i))
	}
	r, _ := f.m.Room(context.Background(), testEvent)
	r.apply(Decision{EventID: testEvent, Seq: 1, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 5}}})
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-other", Admit: 5}}})
	if st := r.q.Stats(); st.Admitted != 0 {
		t.Fatalf("admitted %d from a stale decision or another edge's share", st.Admitted)
	}
}

func TestUnknownEventAndSessions(t *testing.T) {
	f := newFixture(t, time.Minute, nil)
	if _, _, err := f.m.Join(context.Background(), "other", "s"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("join of a queue-off event: %v", err)
	}
	if _, err := f.m.Status(context.Background(), testEvent, "never-joined"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("status of a stranger: %v", err)
	}
	if _, ok := f.m.TicketFor(testEvent, "s1"); !ok {
		t.Fatal("TicketFor of a queue-on event")
	}
	if _, ok := f.m.TicketFor("other", "s1"); ok {
		t.Fatal("TicketFor of a queue-off event")
	}
	if f.core.configs.Load() > 4 {
		t.Fatalf("the room's config was fetched %d times", f.core.configs.Load())
	}
}

// The broadcaster's encoder writes what encoding/json writes.
func TestStatusJSON(t *testing.T) {
	secs := int64(42)
	exp := time.Date(2026, 6, 1, 10, 10, 0, 123, time.UTC)
	for _, s := range []Status{
		{Type: "status", EventID: "finals", State: "pre_queue", OnSaleAt: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)},
		{Type: "status", EventID: "a-b", State: "queued", Position: 12, Ahead: 11, EstimatedWaitSeconds: &secs, LikelySoldOut: true,
			OnSaleAt: time.Date(2026, 6, 1, 10, 0, 0, 5, time.FixedZone("x", 3600))},
		{Type: "status", EventID: "finals", State: "admitted", Token: "eyJh.eyJi.c2ln_-", TokenExpiresAt: &exp},
		{Type: "status", EventID: "q\"<>&\\\x01", State: "sold_out"},
	} {
		want, _ := json.Marshal(s)
		if got := s.appendJSON(nil); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// TestAdmittingGauge: ticketing_queue_admitting is 1 only between the draw
// and a sell-out (and again after a resume), so that an alert can tell a
// stalled line from one that waits for the sale or for seats.
func TestAdmittingGauge(t *testing.T) {
	f := newFixture(t, time.Minute, nil)
	r, err := f.m.Room(context.Background(), testEvent)
	if err != nil {
		t.Fatal(err)
	}
	gauge := f.m.metrics.admitting.WithLabelValues(testEvent)
	check := func(when string, want float64) {
		t.Helper()
		r.report()
		var d dto.Metric
		if err := gauge.Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetGauge().GetValue(); got != want {
			t.Fatalf("%s: admitting %v, want %v", when, got, want)
		}
	}
	join(t, f, session(0))
	check("before the sale (pre-queue)", 0)
	f.clk.add(time.Minute)
	f.core.decide(t, Decision{Seed: f.core.seed})
	<-f.core.lastChunk
	check("after the draw", 1)
	f.core.decide(t, Decision{SoldOut: true})
	check("sold out", 0)
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Reachable: 4}}})
	check("resumed", 1)
}
