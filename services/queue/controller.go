package queue

import (
	"math"
	"math/bits"
	"sort"

	"github.com/ticketing/ticketing/internal/errs"
)

// ControllerConfig tunes Decide. Zero fields take the defaults of Defaults.
type ControllerConfig struct {
	// DefaultTicketsPerShopper stands in for Inputs.TicketsPerShopper while
	// no average has been observed (it is 0). Default 2.
	DefaultTicketsPerShopper float64
	// Overbook lets a little more than the seats left can serve through:
	// the seat bound on active shoppers is ceil(Overbook × seats available /
	// tickets per shopper). Above 1 it keeps the tail of a sale moving when
	// some admitted shoppers buy nothing; 1 admits no more shoppers than the
	// seats can serve. Default 1.25.
	Overbook float64
	// MaxAdmitPerDecision caps one decision, to spread a large opening over
	// several ticks. Default 5,000.
	MaxAdmitPerDecision int
	// MaxEdges bounds Inputs.Edges. Default 1,024.
	MaxEdges int
}

// Defaults fills zero fields.
func (c *ControllerConfig) Defaults() {
	if c.DefaultTicketsPerShopper == 0 {
		c.DefaultTicketsPerShopper = 2
	}
	if c.Overbook == 0 {
		c.Overbook = 1.25
	}
	if c.MaxAdmitPerDecision == 0 {
		c.MaxAdmitPerDecision = 5_000
	}
	if c.MaxEdges == 0 {
		c.MaxEdges = 1_024
	}
}

// Validate checks the config after Defaults.
func (c *ControllerConfig) Validate() error {
	const op = "queue.controller_config"
	switch {
	case !(c.DefaultTicketsPerShopper >= 1 && c.DefaultTicketsPerShopper <= maxTicketsPerShopper):
		return errs.Errorf(op, errs.Invalid, "default tickets per shopper %v is outside 1..%d", c.DefaultTicketsPerShopper, maxTicketsPerShopper)
	case !(c.Overbook >= 1 && c.Overbook <= 10):
		return errs.Errorf(op, errs.Invalid, "overbook %v is outside 1..10", c.Overbook)
	case c.MaxAdmitPerDecision < 1:
		return errs.Errorf(op, errs.Invalid, "max admit per decision %d is below 1", c.MaxAdmitPerDecision)
	case c.MaxEdges < 1:
		return errs.Errorf(op, errs.Invalid, "max edges %d is below 1", c.MaxEdges)
	}
	return nil
}

const (
	minTicketsPerShopper = 0.1 // an average over shoppers who buy nothing may be below 1
	maxTicketsPerShopper = 100
	maxCount             = 1 << 40 // bound on every count input, far above any real one
)

// EdgeQueue is one edge's queue length, as reported to the core.
type EdgeQueue struct {
	Edge    string `json:"edge"`
	Waiting int    `json:"waiting"`
}

// Inputs is what the core knows about one event when it decides.
type Inputs struct {
	// SeatsLeft: neither sold nor held.
	SeatsLeft int `json:"seats_left"`
	// ExpiringHolds: seats held now whose hold expires within the next
	// decision window; they are likely to return.
	ExpiringHolds int `json:"expiring_holds"`
	// TicketsPerShopper: the average number of seats a shopper takes,
	// 0.1..100; 0 means not known yet (ControllerConfig.DefaultTicketsPerShopper).
	TicketsPerShopper float64 `json:"tickets_per_shopper"`
	// ActiveShoppers: admitted and not yet done (no order placed, admission
	// not expired), over all edges.
	ActiveShoppers int `json:"active_shoppers"`
	// TargetShoppers: how many shoppers may be active at once.
	TargetShoppers int `json:"target_shoppers"`
	// Edges: every edge's queue length. Edge names must be distinct.
	Edges []EdgeQueue `json:"edges"`
}

// EdgeAdmit is one edge's share of a decision.
type EdgeAdmit struct {
	Edge string `json:"edge"`
	// Admit is how many this edge lets through now.
	Admit int `json:"admit"`
	// Reachable is the last local position (1-based) on this edge that can
	// still expect a seat: a waiting user whose position is above it is
	// "likely sold out for you". When fewer wait than Decision.Reachable,
	// it is this edge's line plus the seats to spare (Decision.Reachable −
	// Decision.Waiting), so that users who join after the decision are not
	// told the event is sold out; otherwise it is this edge's proportional
	// share of Decision.Reachable, since the split advances every edge at
	// the same fraction of its line.
	Reachable int `json:"reachable"`
}

// Decision is how many to admit now, and where.
type Decision struct {
	// Admit is the total to let through now; the sum of Edges[i].Admit.
	Admit int `json:"admit"`
	// Edges is the split, in the order of Inputs.Edges.
	Edges []EdgeAdmit `json:"edges"`
	// SoldOut: no seats left and none about to return; Admit is 0 and every
	// edge should mark its queue sold out.
	SoldOut bool `json:"sold_out"`
	// Reachable is how many people at the front of the combined waiting
	// line can still expect seats: floor(seats available / tickets per
	// shopper), seats available being SeatsLeft + ExpiringHolds.
	Reachable int `json:"reachable"`
	// Waiting is the total waiting over all edges.
	Waiting int `json:"waiting"`
	// Spare is how many more this decision could have admitted had they
	// been waiting: the line, not the seats or the shopper target, was
	// the bound. Users who join now can expect to be let through at the
	// next decision (edges tell them so instead of an estimate from a
	// rate that only measured a short line).
	Spare int `json:"spare"`
}

// Decide is the admission controller: a pure function of the inputs.
//
//	available  = SeatsLeft + ExpiringHolds
//	sold out   = available == 0                  (admit 0)
//	seatRoom   = ceil(Overbook × available / tps) − ActiveShoppers
//	shopRoom   = TargetShoppers − ActiveShoppers
//	Admit      = max(0, min(seatRoom, shopRoom, total waiting, MaxAdmitPerDecision))
//	Reachable  = floor(available / tps)
//
// Admit is split across edges in proportion to their queue lengths by the
// largest remainder method (Split), so every edge's line advances at the
// same rate relative to its length and a user's chance does not depend on
// the edge they joined. Errors: errs.Invalid for bad inputs (negative
// counts, non-finite or out-of-range tickets per shopper, duplicate or too
// many edges).
func Decide(cfg ControllerConfig, in Inputs) (Decision, error) {
	const op = "queue.decide"
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return Decision{}, err
	}
	tps := in.TicketsPerShopper
	if tps == 0 {
		tps = cfg.DefaultTicketsPerShopper
	}
	switch {
	case !(tps >= minTicketsPerShopper && tps <= maxTicketsPerShopper):
		return Decision{}, errs.Errorf(op, errs.Invalid, "tickets per shopper %v is outside %v..%d", in.TicketsPerShopper, minTicketsPerShopper, maxTicketsPerShopper)
	case !countOK(in.SeatsLeft), !countOK(in.ExpiringHolds), !countOK(in.ActiveShoppers), !countOK(in.TargetShoppers):
		return Decision{}, errs.E(op, errs.Invalid, "seat and shopper counts must be between 0 and 2^40")
	case len(in.Edges) > cfg.MaxEdges:
		return Decision{}, errs.Errorf(op, errs.Invalid, "%d edges is more than %d", len(in.Edges), cfg.MaxEdges)
	}
	waiting := make([]int, len(in.Edges))
	seen := make(map[string]struct{}, len(in.Edges))
	total := 0
	for i, e := range in.Edges {
		if !countOK(e.Waiting) {
			return Decision{}, errs.Errorf(op, errs.Invalid, "edge %q: waiting must be between 0 and 2^40", e.Edge)
		}
		if _, dup := seen[e.Edge]; dup {
			return Decision{}, errs.Errorf(op, errs.Invalid, "edge %q is listed twice", e.Edge)
		}
		seen[e.Edge] = struct{}{}
		waiting[i] = e.Waiting
		total += e.Waiting
	}

	available := in.SeatsLeft + in.ExpiringHolds
	d := Decision{Waiting: total, Edges: make([]EdgeAdmit, len(in.Edges))}
	for i, e := range in.Edges {
		d.Edges[i].Edge = e.Edge
	}
	if available == 0 {
		d.SoldOut = true
		return d, nil
	}
	d.Reachable = int(math.Floor(float64(available) / tps))
	seatRoom := int(math.Ceil(cfg.Overbook*float64(available)/tps)) - in.ActiveShoppers
	shopRoom := in.TargetShoppers - in.ActiveShoppers
	d.Admit = max(0, min(seatRoom, shopRoom, total, cfg.MaxAdmitPerDecision))
	d.Spare = max(0, min(seatRoom, shopRoom, cfg.MaxAdmitPerDecision)-d.Admit)

	admit := Split(d.Admit, waiting)
	reach := Split(min(d.Reachable, total), waiting)
	// Seats for more than are waiting: whoever joins next, at any edge,
	// can expect one too, so every edge's reach runs past its line by the
	// slack (optimistic: newcomers at several edges share it).
	slack := max(0, d.Reachable-total)
	for i := range d.Edges {
		d.Edges[i].Admit = admit[i]
		d.Edges[i].Reachable = reach[i] + slack
	}
	return d, nil
}

func countOK(n int) bool { return n >= 0 && n <= maxCount }

// Split divides total among parts in proportion to weights by the largest
// remainder (Hamilton) method: each part first gets floor(total × w / W);
// the units left over go one each to the parts with the largest remainders
// (total × w mod W), ties to the larger weight, then to the earlier part.
// When 0 ≤ total ≤ W the result sums to total and no part exceeds its
// weight; total is clamped to [0, W] otherwise. Negative weights count as
// 0. Arithmetic is exact (128-bit products).
func Split(total int, weights []int) []int {
	out := make([]int, len(weights))
	var sum uint64
	for _, w := range weights {
		if w > 0 {
			sum += uint64(w)
		}
	}
	if total <= 0 || sum == 0 {
		return out
	}
	t := min(uint64(total), sum)
	rem := make([]uint64, len(weights))
	var given uint64
	for i, w := range weights {
		if w <= 0 {
			continue
		}
		hi, lo := bits.Mul64(t, uint64(w))
		q, r := bits.Div64(hi, lo, sum) // hi < sum since t ≤ sum
		out[i] = int(q)
		rem[i] = r
		given += q
	}
	left := t - given // < number of parts with a non-zero remainder
	if left == 0 {
		return out
	}
	order := make([]int, 0, len(weights))
	for i, w := range weights {
		if w > 0 && rem[i] > 0 {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		i, j := order[a], order[b]
		if rem[i] != rem[j] {
			return rem[i] > rem[j]
		}
		return weights[i] > weights[j]
	})
	for _, i := range order[:left] {
		out[i]++
	}
	return out
}

// LikelySoldOut reports whether a user at the given position (1-based) in
// the combined waiting line is unlikely to get a seat: the seats wanted by
// everyone up to and including them (position × tickets per shopper) exceed
// the seats available (seats left plus holds about to expire). A position
// below 1 (unknown) is never flagged.
func LikelySoldOut(position int, ticketsPerShopper float64, seatsAvailable int) bool {
	if position < 1 {
		return false
	}
	return float64(position)*ticketsPerShopper > float64(seatsAvailable)
}
