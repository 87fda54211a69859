// Package ratelimittest is the contract suite for ratelimit.Limiter: every
// implementation runs Run in its tests (as watermill runs one pub/sub suite
// against every backend), so that they all behave the same.
//
// Time: an implementation that can read a manual clock gets one and the
// suite checks exact values. One that cannot (Redis reads the server's
// clock) runs on real time, and then the suite only asserts what a slow,
// loaded machine cannot break: counts within a burst under limits far slower
// than the test, upper bounds on what was allowed in the time that really
// passed, and that a denied key is allowed again after the RetryAfter it was
// told (polling with a deadline; never a timing assertion).
package ratelimittest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
)

// Setup tells the suite how to get the limiter under test.
type Setup struct {
	// New returns the limiter under test. When clock is not nil the
	// limiter must read the time from clock.Now. Limiters may be shared
	// between calls: the suite uses fresh keys in every test.
	New func(t *testing.T, clock *ManualClock) ratelimit.Limiter
	// ManualClock says whether New honours a manual clock; if false New
	// is always called with a nil clock and the suite runs on real time.
	ManualClock bool
}

// ManualClock is a clock that moves only when told to.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock standing at a fixed, arbitrary instant.
func NewManualClock() *ManualClock {
	return &ManualClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now reads the clock.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one test's limiter, clock (nil on real time) and key space.
type env struct {
	t      *testing.T
	l      ratelimit.Limiter
	clock  *ManualClock
	prefix string
}

func newEnv(t *testing.T, s Setup) *env {
	e := &env{t: t, prefix: UniqueKey(t) + ":"}
	if s.ManualClock {
		e.clock = NewManualClock()
	}
	e.l = s.New(t, e.clock)
	return e
}

// UniqueKey returns a key that no other test, and no other run of this
// test, uses.
func UniqueKey(t testing.TB) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	if len(name) > 100 {
		name = name[len(name)-100:]
	}
	return name + ":" + hex.EncodeToString(b)
}

func (e *env) key(name string) string { return e.prefix + name }

func (e *env) allowN(key string, limit ratelimit.Limit, n int) ratelimit.Decision {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := e.l.AllowN(ctx, key, limit, n)
	if err != nil {
		e.t.Fatalf("AllowN(%q, %+v, %d): %v", key, limit, n, err)
	}
	if d.Limit != limit.Burst {
		e.t.Errorf("Decision.Limit = %d, want the burst %d", d.Limit, limit.Burst)
	}
	if d.Remaining < 0 || d.Remaining > limit.Burst {
		e.t.Errorf("Decision.Remaining = %d, want 0..%d", d.Remaining, limit.Burst)
	}
	if d.Allowed && d.RetryAfter != 0 {
		e.t.Errorf("allowed with RetryAfter %v, want 0", d.RetryAfter)
	}
	if !d.Allowed && d.RetryAfter <= 0 {
		e.t.Errorf("denied with RetryAfter %v, want > 0", d.RetryAfter)
	}
	return d
}

// within checks that got is want, on a manual clock, or in (want-slack,
// want] on real time: time can only have passed since the value was set.
func (e *env) within(what string, got, want, slack time.Duration) {
	e.t.Helper()
	if e.clock != nil {
		if got != want {
			e.t.Errorf("%s = %v, want %v", what, got, want)
		}
		return
	}
	if got <= want-slack || got > want {
		e.t.Errorf("%s = %v, want in (%v, %v]", what, got, want-slack, want)
	}
}

// slack is how much real time a test's decisions may be apart, however
// loaded the machine: limits on real time are chosen much slower than that.
const slack = time.Minute

// Run runs the contract suite.
func Run(t *testing.T, s Setup) {
	t.Run("Burst", func(t *testing.T) { t.Parallel(); testBurst(t, newEnv(t, s)) })
	t.Run("Cost", func(t *testing.T) { t.Parallel(); testCost(t, newEnv(t, s)) })
	t.Run("KeysAreIndependent", func(t *testing.T) { t.Parallel(); testKeys(t, newEnv(t, s)) })
	t.Run("AllowedAgainAfterRetryAfter", func(t *testing.T) { t.Parallel(); testRetryAfter(t, newEnv(t, s)) })
	t.Run("FullQuotaAfterResetAfter", func(t *testing.T) { t.Parallel(); testResetAfter(t, newEnv(t, s)) })
	t.Run("Invalid", func(t *testing.T) { t.Parallel(); testInvalid(t, newEnv(t, s)) })
	t.Run("CancelledContext", func(t *testing.T) { t.Parallel(); testCancelled(t, newEnv(t, s)) })
	t.Run("ConcurrentBurst", func(t *testing.T) { t.Parallel(); testConcurrentBurst(t, newEnv(t, s)) })
	t.Run("ConcurrentRate", func(t *testing.T) { t.Parallel(); testConcurrentRate(t, newEnv(t, s)) })
}

// slow is a limit far slower than any test: 10 an hour, burst 5; one unit
// comes back every 6 minutes.
var slow = ratelimit.Limit{Rate: 10, Period: time.Hour, Burst: 5}

func testBurst(t *testing.T, e *env) {
	key := e.key("k")
	iv := slow.Interval()
	for i := range slow.Burst {
		d := e.allowN(key, slow, 1)
		if !d.Allowed {
			t.Fatalf("request %d of a burst of %d denied: %+v", i+1, slow.Burst, d)
		}
		if want := slow.Burst - 1 - i; d.Remaining != want {
			t.Errorf("request %d: Remaining = %d, want %d", i+1, d.Remaining, want)
		}
		e.within("ResetAfter", d.ResetAfter, time.Duration(i+1)*iv, slack)
	}
	for range 3 {
		d := e.allowN(key, slow, 1)
		if d.Allowed {
			t.Fatalf("request past the burst allowed: %+v", d)
		}
		if d.Remaining != 0 {
			t.Errorf("denied: Remaining = %d, want 0", d.Remaining)
		}
		e.within("RetryAfter", d.RetryAfter, iv, slack)
		e.within("ResetAfter", d.ResetAfter, time.Duration(slow.Burst)*iv, slack)
	}
}

func testCost(t *testing.T, e *env) {
	key := e.key("k")
	l := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 10}
	if d := e.allowN(key, l, 4); !d.Allowed || d.Remaining != 6 {
		t.Fatalf("AllowN(4) on a fresh key: %+v, want allowed with 6 remaining", d)
	}
	d := e.allowN(key, l, 7)
	if d.Allowed || d.Remaining != 6 {
		t.Fatalf("AllowN(7) with 6 remaining: %+v, want denied with 6 remaining", d)
	}
	// One more unit is needed: it comes back one interval after the first
	// request.
	e.within("RetryAfter", d.RetryAfter, l.Interval(), slack)
	if d := e.allowN(key, l, 6); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("AllowN(6) with 6 remaining: %+v, want allowed with 0 remaining", d)
	}
	if d := e.allowN(key, l, 1); d.Allowed {
		t.Fatalf("AllowN(1) with 0 remaining allowed: %+v", d)
	}
}

func testKeys(t *testing.T, e *env) {
	a, b := e.key("a"), e.key("b")
	for range slow.Burst {
		e.allowN(a, slow, 1)
	}
	if d := e.allowN(a, slow, 1); d.Allowed {
		t.Fatalf("key a past its burst allowed")
	}
	if d := e.allowN(b, slow, 1); !d.Allowed || d.Remaining != slow.Burst-1 {
		t.Fatalf("key b after key a spent its burst: %+v, want allowed with %d remaining", d, slow.Burst-1)
	}
}

// testRetryAfter spends a burst, then checks that denied requests consume
// nothing and that the key is allowed again once the reported RetryAfter
// has passed.
func testRetryAfter(t *testing.T, e *env) {
	key := e.key("k")
	l := ratelimit.Limit{Rate: 5, Period: time.Second, Burst: 2} // one every 200ms
	for range l.Burst {
		if d := e.allowN(key, l, 1); !d.Allowed {
			t.Fatalf("burst request denied: %+v", d)
		}
	}
	d := e.allowN(key, l, 1)
	if d.Allowed {
		t.Fatalf("request past the burst allowed: %+v", d)
	}
	if d.RetryAfter > l.Interval() {
		t.Fatalf("RetryAfter %v is longer than one interval %v", d.RetryAfter, l.Interval())
	}
	if e.clock != nil {
		// Denied requests change nothing, however many.
		for range 10 {
			if again := e.allowN(key, l, 1); again.Allowed || again.RetryAfter != d.RetryAfter {
				t.Fatalf("repeated denied request: %+v, want denied with RetryAfter %v", again, d.RetryAfter)
			}
		}
		e.clock.Advance(d.RetryAfter - time.Microsecond)
		if early := e.allowN(key, l, 1); early.Allowed || early.RetryAfter != time.Microsecond {
			t.Fatalf("1µs before RetryAfter: %+v, want denied with RetryAfter 1µs", early)
		}
		e.clock.Advance(time.Microsecond)
		if after := e.allowN(key, l, 1); !after.Allowed || after.Remaining != 0 {
			t.Fatalf("at RetryAfter: %+v, want allowed with 0 remaining", after)
		}
		return
	}
	// Real time: wait what we were told, then poll (denied polls consume
	// nothing) until allowed or a generous deadline.
	waitFor(t, d.RetryAfter)
	deadline := time.Now().Add(20 * time.Second)
	polls := 0
	for {
		polls++
		d := e.allowN(key, l, 1)
		if d.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still denied %d polls after waiting RetryAfter: %+v", polls, d)
		}
		waitFor(t, min(d.RetryAfter, 50*time.Millisecond))
	}
	if polls > 1 {
		t.Logf("allowed after %d polls", polls)
	}
}

// testResetAfter checks that after ResetAfter a key is back to its full
// burst.
func testResetAfter(t *testing.T, e *env) {
	key := e.key("k")
	l := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 3} // one every 100ms
	var last ratelimit.Decision
	for range l.Burst {
		last = e.allowN(key, l, 1)
	}
	if last.Remaining != 0 {
		t.Fatalf("after the burst: Remaining = %d", last.Remaining)
	}
	if e.clock != nil {
		e.clock.Advance(last.ResetAfter)
	} else {
		waitFor(t, last.ResetAfter)
	}
	d := e.allowN(key, l, l.Burst)
	if !d.Allowed {
		t.Fatalf("a whole burst after ResetAfter denied: %+v", d)
	}
	e.within("ResetAfter of a whole burst", d.ResetAfter, time.Duration(l.Burst)*l.Interval(), 100*time.Millisecond)
}

func testInvalid(t *testing.T, e *env) {
	ok := ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 5}
	cases := []struct {
		name  string
		key   string
		limit ratelimit.Limit
		n     int
	}{
		{"empty key", "", ok, 1},
		{"key too long", strings.Repeat("k", ratelimit.MaxKeyLen+1), ok, 1},
		{"zero rate", e.key("k"), ratelimit.Limit{Rate: 0, Period: time.Second, Burst: 1}, 1},
		{"negative rate", e.key("k"), ratelimit.Limit{Rate: -1, Period: time.Second, Burst: 1}, 1},
		{"zero period", e.key("k"), ratelimit.Limit{Rate: 1, Burst: 1}, 1},
		{"period too long", e.key("k"), ratelimit.Limit{Rate: 1, Period: ratelimit.MaxPeriod + 1, Burst: 1}, 1},
		{"zero burst", e.key("k"), ratelimit.Limit{Rate: 1, Period: time.Second}, 1},
		{"burst too large", e.key("k"), ratelimit.Limit{Rate: 1, Period: time.Second, Burst: ratelimit.MaxBurst + 1}, 1},
		{"rate too fast", e.key("k"), ratelimit.Limit{Rate: 2_000_000, Period: time.Second, Burst: 1}, 1},
		{"window too long", e.key("k"), ratelimit.Limit{Rate: 1, Period: ratelimit.MaxPeriod, Burst: 100}, 1},
		{"zero cost", e.key("k"), ok, 0},
		{"negative cost", e.key("k"), ok, -1},
		{"cost above burst", e.key("k"), ok, ok.Burst + 1},
	}
	for _, c := range cases {
		_, err := e.l.AllowN(context.Background(), c.key, c.limit, c.n)
		if !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: err = %v, want kind %v", c.name, err, errs.Invalid)
		}
	}
	// Nothing was counted by the invalid requests with a valid key.
	if d := e.allowN(e.key("k"), ok, ok.Burst); !d.Allowed {
		t.Errorf("key used only in invalid requests has lost quota: %+v", d)
	}
}

func testCancelled(t *testing.T, e *env) {
	key := e.key("k")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range slow.Burst + 1 {
		_, err := e.l.Allow(ctx, key, slow)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Allow with a cancelled context: err = %v, want one wrapping context.Canceled", err)
		}
	}
	if d := e.allowN(key, slow, slow.Burst); !d.Allowed {
		t.Fatalf("requests with a cancelled context were counted: %+v", d)
	}
}

// run has workers goroutines call Allow on one key, each `calls` times or,
// if calls is 0, until `d` of real time has passed; tick (if not nil) is
// called before each call. It returns how many calls were made and allowed,
// and the real time from before the first call to after the last answer.
func (e *env) run(key string, l ratelimit.Limit, workers, calls int, d time.Duration, tick func()) (made, allowed int64, elapsed time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := make(chan struct{})
	var t0 time.Time
	for range workers {
		wg.Go(func() {
			<-start
			for i := 0; calls == 0 || i < calls; i++ {
				if calls == 0 && time.Since(t0) >= d {
					return
				}
				if tick != nil {
					tick()
				}
				dec, err := e.l.Allow(ctx, key, l)
				if err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				atomic.AddInt64(&made, 1)
				if dec.Allowed {
					atomic.AddInt64(&allowed, 1)
				}
			}
		})
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	elapsed = time.Since(t0)
	if p := failed.Load(); p != nil {
		e.t.Fatalf("concurrent Allow: %v", *p)
	}
	return made, allowed, elapsed
}

// testConcurrentBurst: many callers at once on one key under a limit that
// does not refill during the test get exactly the burst, no more.
func testConcurrentBurst(t *testing.T, e *env) {
	l := ratelimit.Limit{Rate: 1, Period: time.Hour, Burst: 20}
	_, allowed, _ := e.run(e.key("k"), l, 8, 25, 0, nil)
	if allowed != int64(l.Burst) {
		t.Fatalf("8 callers × 25 requests at a burst of %d: %d allowed, want exactly the burst", l.Burst, allowed)
	}
}

// testConcurrentRate: many callers on one key under a limit that refills
// during the test are never allowed more than burst + rate × elapsed.
func testConcurrentRate(t *testing.T, e *env) {
	l := ratelimit.Limit{Rate: 200, Period: time.Second, Burst: 10} // one every 5ms
	const workers = 4
	var made, allowed int64
	var elapsed time.Duration
	if e.clock != nil {
		// Each call first moves the clock 1ms, so the limit refills while
		// the callers race.
		const calls = 150
		made, allowed, _ = e.run(e.key("k"), l, workers, calls, 0, func() { e.clock.Advance(time.Millisecond) })
		elapsed = workers * calls * time.Millisecond
	} else {
		made, allowed, elapsed = e.run(e.key("k"), l, workers, 0, 300*time.Millisecond, nil)
	}
	bound := int64(l.Burst) + int64(elapsed/l.Interval()) + 1
	t.Logf("%d of %d allowed in %v (bound %d)", allowed, made, elapsed, bound)
	if allowed > bound {
		t.Fatalf("%d allowed in %v, more than burst %d + %d/%v × elapsed = %d", allowed, elapsed, l.Burst, l.Rate, l.Period, bound)
	}
	if allowed < int64(l.Burst) {
		t.Fatalf("%d allowed, fewer than the burst %d", allowed, l.Burst)
	}
}

// waitFor waits for d to pass: the limiter said when to come back, so this
// waits for a known time, not for a condition.
func waitFor(t *testing.T, d time.Duration) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.Context().Done():
		t.Fatal("test ended while waiting")
	}
}

// Bench measures Allow on one limiter: "one-key", every goroutine on the
// same key (the contended worst case), and "many-keys", goroutines spread
// over 10,000 keys (the normal case at an edge).
func Bench(b *testing.B, l ratelimit.Limiter) {
	limit := ratelimit.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1000}
	prefix := UniqueKey(b) + ":"
	b.Run("one-key", func(b *testing.B) {
		key := prefix + "one"
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := l.Allow(ctx, key, limit); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("many-keys", func(b *testing.B) {
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = prefix + strconv.Itoa(i)
		}
		var next atomic.Uint64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := next.Add(7919)
			for pb.Next() {
				i++
				if _, err := l.Allow(ctx, keys[i%uint64(len(keys))], limit); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
