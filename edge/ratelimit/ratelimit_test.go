package ratelimit_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
)

func TestInterval(t *testing.T) {
	for _, c := range []struct {
		l    ratelimit.Limit
		want time.Duration
	}{
		{ratelimit.PerSecond(10, 1), 100 * time.Millisecond},
		{ratelimit.PerSecond(3, 1), 333334 * time.Microsecond}, // rounded up
		{ratelimit.PerMinute(1, 1), time.Minute},
		{ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1}, time.Microsecond},
	} {
		if got := c.l.Interval(); got != c.want {
			t.Errorf("%+v.Interval() = %v, want %v", c.l, got, c.want)
		}
	}
}

// TestGCRA walks the algorithm through a burst, a denial and the refill on
// a clock it controls.
func TestGCRA(t *testing.T) {
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 3} // one every 100ms
	ms := time.Millisecond
	var tat time.Duration
	steps := []struct {
		now                 time.Duration
		n                   int
		allowed             bool
		remaining           int
		retryAfter, resetAf time.Duration
	}{
		{0, 1, true, 2, 0, 100 * ms},
		{0, 1, true, 1, 0, 200 * ms},
		{0, 2, false, 1, 100 * ms, 200 * ms},
		{10 * ms, 1, true, 0, 0, 290 * ms},
		{10 * ms, 1, false, 0, 90 * ms, 290 * ms},
		{100 * ms, 1, true, 0, 0, 300 * ms},
		{1000 * ms, 3, true, 0, 0, 300 * ms}, // idle long enough: full burst
	}
	for i, s := range steps {
		var d ratelimit.Decision
		d, tat = ratelimit.GCRA(1000*time.Hour+s.now, tat, l, s.n)
		want := ratelimit.Decision{Allowed: s.allowed, Limit: 3, Remaining: s.remaining, RetryAfter: s.retryAfter, ResetAfter: s.resetAf}
		if d != want {
			t.Fatalf("step %d: %+v, want %+v", i, d, want)
		}
	}
}

func TestHeaders(t *testing.T) {
	allowed := ratelimit.Decision{Allowed: true, Limit: 10, Remaining: 7, ResetAfter: 1500 * time.Millisecond}
	denied := ratelimit.Decision{Limit: 10, Remaining: 0, RetryAfter: 200 * time.Millisecond, ResetAfter: 5 * time.Second}
	cases := []struct {
		d    ratelimit.Decision
		want map[string]string
	}{
		{allowed, map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "7", "RateLimit-Reset": "2", "Retry-After": ""}},
		{denied, map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "0", "RateLimit-Reset": "5", "Retry-After": "1"}},
	}
	for _, c := range cases {
		h := c.d.Header()
		for k, v := range c.want {
			if got := h.Get(k); got != v {
				t.Errorf("%+v: %s = %q, want %q", c.d, k, got, v)
			}
		}

		if err := c.d.Err("test"); (err == nil) != c.d.Allowed || (err != nil && !errs.Is(errs.TooMany, err)) {
			t.Errorf("%+v: Err() = %v, want nil when allowed, else a TooMany error", c.d, err)
		}
	}
	if got := ratelimit.PolicyHeader(ratelimit.PerMinute(60, 10)); got != "10;w=10" {
		t.Errorf("PolicyHeader = %q", got)
	}
}
