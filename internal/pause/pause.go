// Package pause paces background loops: retries, polls and schedules wait
// a while or until their context ends. It is never a way to wait for a
// condition.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx is done; it reports whether the whole d passed
// (false: ctx is done).
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Duty paces CPU-bound background work (snapshot encoding) so that it takes
// at most about Work/(Work+Rest) of a core: Step, called often, rests for
// Rest once Work has passed since the last rest. The scheduler gives a busy
// goroutine its processor for up to 10 ms at a time; on a machine with few
// cores, a long burst of background work halves the capacity of the hot
// path for its whole length and its latency jumps.
type Duty struct {
	Work, Rest time.Duration
	ctx        context.Context
	since      time.Time
	rests      int
}

// NewDuty starts a duty cycle; rests end early when ctx is done.
func NewDuty(ctx context.Context, work, rest time.Duration) *Duty {
	return &Duty{Work: work, Rest: rest, ctx: ctx, since: time.Now()}
}

// Step rests if the work since the last rest has reached Work.
func (d *Duty) Step() {
	if time.Since(d.since) < d.Work {
		return
	}
	For(d.ctx, d.Rest)
	d.rests++
	d.since = time.Now()
}
