// Package coord is the core's side of the waiting room without transport
// or storage: the per-event controller state that turns inventory and the
// edges' reports into decisions tick after tick (State.Tick), the table of
// the edges' latest reports (Reports), the window of recent admissions that
// gives the active shoppers and the admission rate, and the assembly of the
// public draw record from the edges' pre-queue chunks (DrawTickets). The
// core runtime (core/queue) wires it to NATS and a key-value store.
package coord

import (
	"sort"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

// Config tunes the controller. Zero fields take the defaults of Defaults.
type Config struct {
	// Tick is how often the controller decides. Default 1s; at least 10ms.
	Tick time.Duration
	// ShopperWindow: admissions within it count as active shoppers.
	// Default 10m (about an admission token's life).
	ShopperWindow time.Duration
	// TargetShoppers is how many admitted shoppers may be active at once
	// per event. Default 2,000.
	TargetShoppers int
	// RateWindow is what the published admission rate averages over.
	// Default 30s, or the shopper window when that is shorter.
	RateWindow time.Duration
	// ReportTicks: an edge's report older than this many ticks (and than
	// MinReportAge) is dropped (the edge is gone or cut off). Default 3.
	ReportTicks int
	// ExpiringWithin is the decision window over which holds about to
	// expire count as seats coming back (queue.Inputs.ExpiringHolds): the
	// holds whose expiry is at most this far ahead. Default 3 ticks; at
	// least a tick, at most an hour.
	ExpiringWithin time.Duration
	// Decide tunes queue.Decide.
	Decide queue.ControllerConfig
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.ShopperWindow == 0 {
		c.ShopperWindow = 10 * time.Minute
	}
	if c.TargetShoppers == 0 {
		c.TargetShoppers = 2_000
	}
	if c.RateWindow == 0 {
		c.RateWindow = min(30*time.Second, c.ShopperWindow)
	}
	if c.ReportTicks == 0 {
		c.ReportTicks = 3
	}
	if c.ExpiringWithin == 0 {
		c.ExpiringWithin = 3 * c.Tick
	}
	c.Decide.Defaults()
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "queue.coord.config"
	switch {
	case c.Tick < 10*time.Millisecond:
		return errs.Errorf(op, errs.Invalid, "tick %v is below 10ms", c.Tick)
	case c.ShopperWindow < c.Tick:
		return errs.Errorf(op, errs.Invalid, "shopper window %v is shorter than a tick", c.ShopperWindow)
	case c.TargetShoppers < 1:
		return errs.Errorf(op, errs.Invalid, "target shoppers %d is below 1", c.TargetShoppers)
	case c.RateWindow < c.Tick || c.RateWindow > c.ShopperWindow:
		return errs.Errorf(op, errs.Invalid, "rate window %v is not within [tick, shopper window]", c.RateWindow)
	case c.ReportTicks < 1:
		return errs.Errorf(op, errs.Invalid, "report ticks %d is below 1", c.ReportTicks)
	case c.ExpiringWithin < c.Tick || c.ExpiringWithin > time.Hour:
		return errs.Errorf(op, errs.Invalid, "expiring within %v is not within [tick, 1h]", c.ExpiringWithin)
	}
	return c.Decide.Validate()
}

// MinReportAge is the least ReportMaxAge: three of an edge's reports
// (sent every second, edge/queue's ReportEvery), so a controller that
// ticks faster than the edges report does not drop a live edge's line
// between two reports.
const MinReportAge = 3 * time.Second

// ReportMaxAge is how old a report may be and still count: ReportTicks
// ticks, at least MinReportAge.
func (c *Config) ReportMaxAge() time.Duration {
	return max(time.Duration(c.ReportTicks)*c.Tick, MinReportAge)
}

// Admission is the number admitted by the decisions of one second.
type Admission struct {
	At int64 `json:"t"` // Unix seconds
	N  int   `json:"n"`
}

// State is one event's controller state, kept durably between ticks so
// that another core node taking the controller over continues it: the
// decision sequence, the sold-out flag and the recent admissions.
type State struct {
	Seq      uint64      `json:"seq"`
	SoldOut  bool        `json:"sold_out"`
	Revealed bool        `json:"revealed"`
	Admits   []Admission `json:"admits,omitempty"` // by second, ascending, non-zero
}

// Inputs are what the core gathered for one event's tick.
type Inputs struct {
	Now      time.Time
	OnSaleAt time.Time
	// SeatsLeft and ExpiringHolds as in queue.Inputs.
	SeatsLeft     int
	ExpiringHolds int
	// Edges: the fresh reports (Reports.Fresh).
	Edges []queue.EdgeQueue
}

// Result is one tick's outcome.
type Result struct {
	Decision queue.Decision
	// Seq of this decision.
	Seq uint64
	// Rate: admissions per second over the rate window, this tick's
	// included.
	Rate float64
	// Revealed: the on-sale time has come; the seed goes out with the
	// decision.
	Revealed bool
	// Urgent: the seed was revealed, the event sold out or resumed at this
	// tick; edges must hear it at once.
	Urgent bool
}

// ActiveShoppers sums the admissions within the shopper window before now.
func (s *State) ActiveShoppers(cfg Config, now time.Time) int {
	return s.sumSince(now.Add(-cfg.ShopperWindow))
}

// Rate is the admissions per second over the rate window before now.
func (s *State) Rate(cfg Config, now time.Time) float64 {
	return float64(s.sumSince(now.Add(-cfg.RateWindow))) / cfg.RateWindow.Seconds()
}

func (s *State) sumSince(since time.Time) int {
	from := since.Unix()
	n := 0
	for i := len(s.Admits) - 1; i >= 0 && s.Admits[i].At > from; i-- {
		n += s.Admits[i].N
	}
	return n
}

func (s *State) record(now time.Time, n int, window time.Duration) {
	sec := now.Unix()
	if n > 0 {
		if k := len(s.Admits); k > 0 && s.Admits[k-1].At >= sec {
			s.Admits[k-1].N += n
		} else {
			s.Admits = append(s.Admits, Admission{At: sec, N: n})
		}
	}
	cut := now.Add(-window).Unix()
	i := sort.Search(len(s.Admits), func(i int) bool { return s.Admits[i].At > cut })
	if i > 0 {
		s.Admits = append(s.Admits[:0], s.Admits[i:]...)
	}
}

// Tick decides for one event and advances the state: before the on-sale
// time nobody is admitted; from it on the seed is revealed and queue.Decide
// admits within the target and the seats left. The caller stores the new
// state (durably, before publishing) and publishes the decision.
func (s *State) Tick(cfg Config, in Inputs) (Result, error) {
	cfg.Defaults()
	active := s.ActiveShoppers(cfg, in.Now)
	target := cfg.TargetShoppers
	open := !in.Now.Before(in.OnSaleAt)
	if !open {
		target = 0 // no admissions before the sale
	}
	d, err := queue.Decide(cfg.Decide, queue.Inputs{
		SeatsLeft: in.SeatsLeft, ExpiringHolds: in.ExpiringHolds,
		ActiveShoppers: active, TargetShoppers: target, Edges: in.Edges,
	})
	if err != nil {
		return Result{}, err
	}
	r := Result{Decision: d, Revealed: open}
	r.Urgent = (open && !s.Revealed) || d.SoldOut != s.SoldOut
	s.Revealed, s.SoldOut = open, d.SoldOut
	s.Seq++
	r.Seq = s.Seq
	s.record(in.Now, d.Admit, cfg.ShopperWindow)
	r.Rate = s.Rate(cfg, in.Now)
	return r, nil
}

// Report is one edge's latest report as the controller keeps it.
type Report struct {
	Edge    string
	Waiting int
	At      time.Time // when the core received it
}

// Reports is the table of the edges' latest reports for one event. Not
// safe for concurrent use.
type Reports struct {
	byEdge map[string]Report
}

// Put records a report, replacing the edge's previous one.
func (r *Reports) Put(rep Report) {
	if r.byEdge == nil {
		r.byEdge = map[string]Report{}
	}
	r.byEdge[rep.Edge] = rep
}

// Fresh lists the edges whose latest report is no older than maxAge at
// now, by edge name, and forgets the others.
func (r *Reports) Fresh(now time.Time, maxAge time.Duration) []queue.EdgeQueue {
	out := make([]queue.EdgeQueue, 0, len(r.byEdge))
	for name, rep := range r.byEdge {
		if now.Sub(rep.At) > maxAge {
			delete(r.byEdge, name)
			continue
		}
		out = append(out, queue.EdgeQueue{Edge: name, Waiting: max(0, rep.Waiting)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Edge < out[j].Edge })
	return out
}

// DrawTickets is the public list of the draw: the union of the edges'
// pre-queue tickets (a ticket sent by several edges, or twice, counts
// once) in draw order under seed.
func DrawTickets(seed []byte, chunks ...[]queue.TicketID) []queue.TicketID {
	seen := map[queue.TicketID]struct{}{}
	var all []queue.TicketID
	for _, c := range chunks {
		for _, t := range c {
			if _, dup := seen[t]; !dup {
				seen[t] = struct{}{}
				all = append(all, t)
			}
		}
	}
	return queue.Draw(seed, all)
}

// DrawComplete says whether the draw record is final at now: the on-sale
// time has passed and every expected edge (those reporting around the
// on-sale time and those that sent chunks) sent its last chunk, or the
// collection window after the on-sale time is over.
func DrawComplete(now, onSaleAt time.Time, collect time.Duration, expected []string, done map[string]bool) bool {
	if now.Before(onSaleAt) {
		return false
	}
	if !now.Before(onSaleAt.Add(collect)) {
		return true
	}
	if len(expected) == 0 {
		return false
	}
	for _, e := range expected {
		if !done[e] {
			return false
		}
	}
	return true
}
