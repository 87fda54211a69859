package queue

import (
	"math"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// RateConfig configures a RateEstimator. Zero fields take the defaults of
// Defaults.
type RateConfig struct {
	// HalfLife is how fast old observations fade: an observation's weight
	// halves every HalfLife of clock time. Default 30s.
	HalfLife time.Duration
	// MaxWait caps an estimate. Default 12h.
	MaxWait time.Duration
}

// Defaults fills zero fields.
func (c *RateConfig) Defaults() {
	if c.HalfLife == 0 {
		c.HalfLife = 30 * time.Second
	}
	if c.MaxWait == 0 {
		c.MaxWait = 12 * time.Hour
	}
}

// Validate checks the config after Defaults.
func (c *RateConfig) Validate() error {
	if c.HalfLife < time.Millisecond {
		return errs.Errorf("queue.rate_config", errs.Invalid, "half-life %v is below 1ms", c.HalfLife)
	}
	if c.MaxWait < time.Second {
		return errs.Errorf("queue.rate_config", errs.Invalid, "max wait %v is below 1s", c.MaxWait)
	}
	return nil
}

// RateEstimator tracks the recent admission rate as an exponentially
// weighted moving average over time and turns a position into an estimated
// wait. The clock is the caller's: every observation carries its time. Not
// safe for concurrent use; the edge's admission loop owns it.
type RateEstimator struct {
	tau     float64 // seconds: HalfLife / ln 2
	maxWait time.Duration
	rate    float64 // admissions per second
	last    time.Time
	pending int // admissions observed since last without time passing
	started bool
	primed  bool
}

// NewRateEstimator returns an estimator with no observations.
func NewRateEstimator(cfg RateConfig) (*RateEstimator, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &RateEstimator{tau: cfg.HalfLife.Seconds() / math.Ln2, maxWait: cfg.MaxWait}, nil
}

// Observe records that admitted tickets were let through at now (0 when a
// tick admitted nobody: that too is news, it pulls the rate down). The
// first observation only starts the clock; a rate needs an interval. The
// interval's rate, admitted / elapsed, enters the average with weight
// 1 − exp(−elapsed / tau), tau = HalfLife / ln 2, so irregular ticks are
// weighted by the time they cover. Observations at or before the previous
// one's time are added to the next interval.
func (e *RateEstimator) Observe(admitted int, now time.Time) {
	admitted = max(admitted, 0)
	if !e.started {
		e.started = true
		e.last = now
		return
	}
	dt := now.Sub(e.last).Seconds()
	if dt <= 0 {
		e.pending += admitted
		return
	}
	sample := float64(admitted+e.pending) / dt
	e.pending = 0
	e.last = now
	if !e.primed {
		e.rate = sample
		e.primed = true
		return
	}
	alpha := 1 - math.Exp(-dt/e.tau)
	e.rate += alpha * (sample - e.rate)
}

// Rate is the average admission rate per second; 0 before two
// observations.
func (e *RateEstimator) Rate() float64 { return e.rate }

// Wait estimates how long a user at position (1-based) waits: position /
// rate, capped at MaxWait. ok is false when there is no estimate: no rate
// observed yet, a rate of 0, or a position below 1.
func (e *RateEstimator) Wait(position int) (wait time.Duration, ok bool) {
	if position < 1 || !e.primed || e.rate <= 0 {
		return 0, false
	}
	secs := float64(position) / e.rate
	if secs >= e.maxWait.Seconds() {
		return e.maxWait, true
	}
	return time.Duration(secs * float64(time.Second)), true
}
