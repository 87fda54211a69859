package coord

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/queue"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestConfig(t *testing.T) {
	var c Config
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Tick != time.Second || c.ShopperWindow != 10*time.Minute || c.TargetShoppers != 2000 || c.ReportMaxAge() != 3*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	for name, f := range map[string]func(*Config){
		"tick":   func(c *Config) { c.Tick = time.Millisecond },
		"window": func(c *Config) { c.ShopperWindow = time.Millisecond * 500; c.Tick = time.Second },
		"target": func(c *Config) { c.TargetShoppers = -1 },
		"rate":   func(c *Config) { c.RateWindow = time.Hour },
	} {
		c := Config{}
		c.Defaults()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestTickLifecycle(t *testing.T) {
	cfg := Config{TargetShoppers: 10, ShopperWindow: 10 * time.Second, RateWindow: 5 * time.Second}
	cfg.Defaults()
	onSale := t0.Add(2 * time.Second)
	edges := []queue.EdgeQueue{{Edge: "a", Waiting: 30}, {Edge: "b", Waiting: 10}}
	var s State
	type step struct {
		at                        time.Duration
		seats                     int
		admit                     int
		revealed, soldOut, urgent bool
		active                    int
	}
	for i, st := range []step{
		{at: 0, seats: 100, admit: 0},                                              // before the sale: nobody
		{at: time.Second, seats: 100, admit: 0},                                    // still before
		{at: 2 * time.Second, seats: 100, admit: 10, revealed: true, urgent: true}, // on sale: reveal, target 10
		{at: 3 * time.Second, seats: 100, admit: 0, revealed: true, active: 10},    // target reached
		{at: 4 * time.Second, seats: 0, admit: 0, revealed: true, soldOut: true, urgent: true, active: 10},
		{at: 5 * time.Second, seats: 0, admit: 0, revealed: true, soldOut: true, active: 10},
		{at: 13 * time.Second, seats: 50, admit: 10, revealed: true, urgent: true}, // window passed, seats back: resume
	} {
		active := s.ActiveShoppers(cfg, t0.Add(st.at))
		r, err := s.Tick(cfg, Inputs{Now: t0.Add(st.at), OnSaleAt: onSale, SeatsLeft: st.seats, Edges: edges})
		if err != nil {
			t.Fatal(err)
		}
		if r.Decision.Admit != st.admit || r.Revealed != st.revealed || r.Decision.SoldOut != st.soldOut || r.Urgent != st.urgent || active != st.active {
			t.Fatalf("step %d: %+v active %d, want %+v", i, r, active, st)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("step %d: seq %d", i, r.Seq)
		}
		if st.admit == 10 && (r.Decision.Edges[0].Admit != 8 || r.Decision.Edges[1].Admit != 2) {
			t.Fatalf("step %d: split %+v, want 8 and 2 (after 30:10, largest remainder)", i, r.Decision.Edges)
		}
	}
	if got := s.Rate(cfg, t0.Add(13*time.Second)); got != 2 {
		t.Fatalf("rate %v, want 10 admitted over a 5s window = 2/s", got)
	}
	if len(s.Admits) != 1 {
		t.Fatalf("admissions outside the shopper window kept: %+v", s.Admits)
	}
}

// A controller ticking faster than the edges report keeps their reports
// for three of them.
func TestReportMaxAgeOutlastsTheEdgesReports(t *testing.T) {
	c := Config{Tick: 250 * time.Millisecond}
	c.Defaults()
	if got := c.ReportMaxAge(); got != MinReportAge {
		t.Fatalf("report max age at a 250ms tick: %v, want %v", got, MinReportAge)
	}
	c = Config{Tick: 2 * time.Second}
	c.Defaults()
	if got := c.ReportMaxAge(); got != 6*time.Second {
		t.Fatalf("report max age at a 2s tick: %v, want 6s", got)
	}
}

func TestReports(t *testing.T) {
	var r Reports
	r.Put(Report{Edge: "b", Waiting: 5, At: t0})
	r.Put(Report{Edge: "a", Waiting: 7, At: t0.Add(-5 * time.Second)})
	r.Put(Report{Edge: "c", Waiting: -3, At: t0})
	r.Put(Report{Edge: "b", Waiting: 9, At: t0.Add(time.Second)})
	got := r.Fresh(t0.Add(time.Second), 3*time.Second)
	want := []queue.EdgeQueue{{Edge: "b", Waiting: 9}, {Edge: "c", Waiting: 0}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("fresh %+v, want %+v", got, want)
	}
	if got := r.Fresh(t0.Add(time.Hour), 3*time.Second); len(got) != 0 {
		t.Fatalf("stale reports kept: %+v", got)
	}
}

func TestDrawTickets(t *testing.T) {
	seed := queue.NewSeed()
	a := []queue.TicketID{queue.TicketFor([]byte("k"), "1"), queue.TicketFor([]byte("k"), "2")}
	b := []queue.TicketID{queue.TicketFor([]byte("k"), "3"), a[0]}
	got := DrawTickets(seed, a, b, b)
	want := queue.Draw(seed, []queue.TicketID{a[0], a[1], b[0]})
	if len(got) != 3 {
		t.Fatalf("union of %d, want 3", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestDrawComplete(t *testing.T) {
	on := t0
	done := map[string]bool{"a": true}
	for _, c := range []struct {
		now      time.Time
		expected []string
		want     bool
	}{
		{t0.Add(-time.Second), []string{"a"}, false},
		{t0, []string{"a"}, true},
		{t0, []string{"a", "b"}, false},
		{t0, nil, false},
		{t0.Add(time.Minute), []string{"a", "b"}, true},
	} {
		if got := DrawComplete(c.now, on, time.Minute, c.expected, done); got != c.want {
			t.Errorf("%v %v: %v, want %v", c.now.Sub(t0), c.expected, got, c.want)
		}
	}
	if !ValidEdge("edge-eu_1") || ValidEdge("a.b") || ValidEdge("") {
		t.Fatal("ValidEdge")
	}
}
