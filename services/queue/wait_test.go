package queue

import (
	"math"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

func TestRateEstimator(t *testing.T) {
	t0 := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)
	type obs struct {
		at       time.Duration // since t0
		admitted int
	}
	tests := []struct {
		name     string
		cfg      RateConfig
		obs      []obs
		rate     float64
		position int
		wait     time.Duration
		ok       bool
	}{
		{name: "nothing observed", position: 10},
		{name: "one observation is no interval", obs: []obs{{0, 50}}, position: 10},
		{
			name: "steady 10 a second",
			obs:  []obs{{0, 0}, {time.Second, 10}, {2 * time.Second, 10}, {3 * time.Second, 10}},
			rate: 10, position: 100, wait: 10 * time.Second, ok: true,
		},
		{
			name: "one half-life of nothing halves the rate",
			cfg:  RateConfig{HalfLife: 10 * time.Second},
			obs:  []obs{{0, 0}, {time.Second, 20}, {11 * time.Second, 0}},
			rate: 10, position: 10, wait: time.Second, ok: true,
		},
		{
			name: "irregular ticks weigh by the time they cover",
			cfg:  RateConfig{HalfLife: 10 * time.Second},
			obs:  []obs{{0, 0}, {time.Second, 20}, {6 * time.Second, 0}, {11 * time.Second, 0}},
			rate: 10, position: 10, wait: time.Second, ok: true,
		},
		{
			name: "observations at the same instant join the next interval",
			obs:  []obs{{0, 0}, {0, 5}, {0, 5}, {2 * time.Second, 10}},
			rate: 10, position: 5, wait: 500 * time.Millisecond, ok: true,
		},
		{
			name: "a clock going back is no interval",
			obs:  []obs{{0, 0}, {-time.Second, 4}, {2 * time.Second, 16}},
			rate: 10, position: 1, wait: 100 * time.Millisecond, ok: true,
		},
		{
			name: "capped at MaxWait",
			cfg:  RateConfig{MaxWait: time.Hour},
			obs:  []obs{{0, 0}, {time.Second, 1}},
			rate: 1, position: 1_000_000, wait: time.Hour, ok: true,
		},
		{
			name: "admission stopped from the start: no estimate",
			obs:  []obs{{0, 0}, {time.Second, 0}},
			rate: 0, position: 1,
		},
		{
			name: "position unknown",
			obs:  []obs{{0, 0}, {time.Second, 10}},
			rate: 10, position: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewRateEstimator(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range tt.obs {
				e.Observe(o.admitted, t0.Add(o.at))
			}
			if math.Abs(e.Rate()-tt.rate) > 1e-9 {
				t.Fatalf("rate %v, want %v", e.Rate(), tt.rate)
			}
			wait, ok := e.Wait(tt.position)
			if ok != tt.ok || (wait-tt.wait).Abs() > time.Microsecond {
				t.Fatalf("Wait(%d) = %v, %v; want %v, %v", tt.position, wait, ok, tt.wait, tt.ok)
			}
		})
	}
}

// The average follows a change of rate: after a few half-lives at the new
// rate it is close to it.
func TestRateEstimatorFollowsChange(t *testing.T) {
	e, err := NewRateEstimator(RateConfig{HalfLife: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 5, 1, 10, 0, 0, 0, time.UTC)
	e.Observe(0, now)
	for range 60 { // 100 a second for a minute
		now = now.Add(time.Second)
		e.Observe(100, now)
	}
	for range 25 { // then 20 a second: five half-lives
		now = now.Add(time.Second)
		e.Observe(20, now)
	}
	// 80 × 2⁻⁵ = 2.5 above 20.
	if r := e.Rate(); math.Abs(r-22.5) > 0.01 {
		t.Fatalf("rate %.3f after five half-lives at 20, want 22.5", r)
	}
}

func TestRateConfigValidate(t *testing.T) {
	for _, c := range []RateConfig{{HalfLife: time.Microsecond}, {HalfLife: -time.Second}, {MaxWait: time.Millisecond}} {
		if _, err := NewRateEstimator(c); !errs.Is(errs.Invalid, err) {
			t.Errorf("NewRateEstimator(%+v) = %v, want invalid", c, err)
		}
	}
}
