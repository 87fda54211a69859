// Package fraudtest is the contract suite for fraud.Counters: every
// implementation runs Run in its tests (as watermill runs one pub/sub suite
// against every backend), so that they all count the same. The expected
// values come from fraud.SlidingCount, the definition of the arithmetic.
//
// Counters take the instant with each call, so the suite needs no clock:
// it passes instants around a fixed date, the same for every
// implementation, and checks exact values.
package fraudtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
)

// Setup tells the suite how to get the counters under test.
type Setup struct {
	// New returns the counters under test. They may be shared between
	// calls: the suite uses fresh keys in every test.
	New func(t *testing.T) fraud.Counters
}

// T0 is the suite's reference instant: the start of a minute, an hour and
// a day.
var T0 = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)

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

type env struct {
	t      *testing.T
	c      fraud.Counters
	prefix string
}

func newEnv(t *testing.T, s Setup) *env {
	return &env{t: t, c: s.New(t), prefix: UniqueKey(t) + ":"}
}

func (e *env) key(name string) string { return e.prefix + name }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func (e *env) add(key string, w time.Duration, at time.Time) int64 {
	e.t.Helper()
	n, err := e.c.Add(ctx(e.t), key, w, at)
	if err != nil {
		e.t.Fatalf("Add(%q, %v, %v): %v", key, w, at, err)
	}
	return n
}

func (e *env) count(key string, w time.Duration, at time.Time) int64 {
	e.t.Helper()
	n, err := e.c.Count(ctx(e.t), key, w, at)
	if err != nil {
		e.t.Fatalf("Count(%q, %v, %v): %v", key, w, at, err)
	}
	return n
}

func (e *env) wantCount(key string, w time.Duration, at time.Time, want int64) {
	e.t.Helper()
	if got := e.count(key, w, at); got != want {
		e.t.Errorf("Count(%s, %v) at T0%+v = %d, want %d", key[len(e.prefix):], w, at.Sub(T0), got, want)
	}
}

// Run runs the contract suite.
func Run(t *testing.T, s Setup) {
	t.Run("CountsInABucket", func(t *testing.T) { t.Parallel(); testBucket(t, newEnv(t, s)) })
	t.Run("Slides", func(t *testing.T) { t.Parallel(); testSlides(t, newEnv(t, s)) })
	t.Run("GapForgets", func(t *testing.T) { t.Parallel(); testGap(t, newEnv(t, s)) })
	t.Run("EarlierInstant", func(t *testing.T) { t.Parallel(); testEarlier(t, newEnv(t, s)) })
	t.Run("OtherWindow", func(t *testing.T) { t.Parallel(); testOtherWindow(t, newEnv(t, s)) })
	t.Run("Reset", func(t *testing.T) { t.Parallel(); testReset(t, newEnv(t, s)) })
	t.Run("KeysAreIndependent", func(t *testing.T) { t.Parallel(); testKeys(t, newEnv(t, s)) })
	t.Run("Do", func(t *testing.T) { t.Parallel(); testDo(t, newEnv(t, s)) })
	t.Run("MatchesTheModel", func(t *testing.T) { t.Parallel(); testModel(t, newEnv(t, s)) })
	t.Run("Invalid", func(t *testing.T) { t.Parallel(); testInvalid(t, newEnv(t, s)) })
	t.Run("CancelledContext", func(t *testing.T) { t.Parallel(); testCancelled(t, newEnv(t, s)) })
	t.Run("ConcurrentAdds", func(t *testing.T) { t.Parallel(); testConcurrent(t, newEnv(t, s)) })
}

// Within one bucket each Add returns the count with it, and Count reads
// it without changing it.
func testBucket(t *testing.T, e *env) {
	k, w := e.key("k"), time.Minute
	e.wantCount(k, w, T0, 0)
	for i := int64(1); i <= 5; i++ {
		if got := e.add(k, w, T0.Add(time.Duration(i)*time.Second)); got != i {
			t.Fatalf("Add #%d returned %d", i, got)
		}
	}
	e.wantCount(k, w, T0.Add(59*time.Second), 5)
	e.wantCount(k, w, T0.Add(59*time.Second), 5)
}

// In the next bucket the previous one's events weigh by the part of the
// window that still overlaps it, rounded up; two buckets on, nothing.
func testSlides(t *testing.T, e *env) {
	k, w := e.key("k"), time.Minute
	for range 10 {
		e.add(k, w, T0.Add(30*time.Second))
	}
	e.wantCount(k, w, T0.Add(w), 10)                            // e = 0: whole weight
	e.wantCount(k, w, T0.Add(w+15*time.Second), 8)              // ⌈10 × 45/60⌉ = ⌈7.5⌉
	e.wantCount(k, w, T0.Add(w+30*time.Second), 5)              // exactly 5
	e.wantCount(k, w, T0.Add(2*w-time.Millisecond), 1)          // ⌈10 × 1/60000⌉
	e.wantCount(k, w, T0.Add(2*w), 0)                           // two buckets on
	if got := e.add(k, w, T0.Add(w+45*time.Second)); got != 4 { // 1 + ⌈10 × 15/60⌉ = 1 + 3
		t.Fatalf("Add in the next bucket returned %d, want 4", got)
	}
	e.wantCount(k, w, T0.Add(2*w+30*time.Second), 1) // ⌈1 × 30/60⌉; the 10 are gone
}

// A gap of more than one bucket forgets everything.
func testGap(t *testing.T, e *env) {
	k, w := e.key("k"), time.Second
	for range 3 {
		e.add(k, w, T0)
	}
	if got := e.add(k, w, T0.Add(5*time.Second)); got != 1 {
		t.Fatalf("Add after a gap returned %d, want 1", got)
	}
}

// An instant before the key's current bucket counts in that bucket, as at
// its start.
func testEarlier(t *testing.T, e *env) {
	k, w := e.key("k"), time.Minute
	e.add(k, w, T0.Add(-30*time.Second)) // bucket -1
	e.add(k, w, T0.Add(10*time.Second))  // bucket 0: the first is now previous
	if got := e.add(k, w, T0.Add(-50*time.Second)); got != 3 {
		t.Fatalf("Add at an earlier bucket returned %d, want 3 (2 current + 1 previous at weight 1)", got)
	}
	e.wantCount(k, w, T0.Add(-2*time.Minute), 3)
	e.wantCount(k, w, T0.Add(30*time.Second), 3) // 2 + ⌈1 × 30/60⌉
}

// A key is used with one window: another starts it afresh (Add) or reads
// nothing (Count).
func testOtherWindow(t *testing.T, e *env) {
	k := e.key("k")
	for range 3 {
		e.add(k, time.Minute, T0)
	}
	e.wantCount(k, time.Hour, T0, 0)
	if got := e.add(k, time.Hour, T0); got != 1 {
		t.Fatalf("Add with another window returned %d, want 1", got)
	}
	e.wantCount(k, time.Minute, T0, 0)
	e.wantCount(k, time.Hour, T0, 1)
}

func testReset(t *testing.T, e *env) {
	k, w := e.key("k"), time.Hour
	e.add(k, w, T0)
	e.add(k, w, T0)
	if err := e.c.Reset(ctx(t), k); err != nil {
		t.Fatal(err)
	}
	e.wantCount(k, w, T0, 0)
	if err := e.c.Reset(ctx(t), e.key("never")); err != nil {
		t.Fatalf("Reset of a key never used: %v", err)
	}
	if got := e.add(k, w, T0); got != 1 {
		t.Fatalf("Add after Reset returned %d", got)
	}
}

func testKeys(t *testing.T, e *env) {
	w := time.Minute
	for i := range 5 {
		for range i + 1 {
			e.add(e.key(strconv.Itoa(i)), w, T0)
		}
	}
	for i := range 5 {
		e.wantCount(e.key(strconv.Itoa(i)), w, T0, int64(i+1))
	}
}

// Do runs each op as Add or Count would, in order.
func testDo(t *testing.T, e *env) {
	a, b := e.key("a"), e.key("b")
	e.add(a, time.Minute, T0)
	ops := []fraud.Op{
		{Key: a, Window: time.Minute, Add: true},
		{Key: b, Window: time.Hour},
		{Key: b, Window: time.Hour, Add: true},
		{Key: a, Window: time.Minute},
		{Key: e.key("c"), Window: time.Second, Add: true},
	}
	if err := e.c.Do(ctx(t), T0.Add(time.Second), ops); err != nil {
		t.Fatal(err)
	}
	got := make([]int64, len(ops))
	for i := range ops {
		got[i] = ops[i].Result
	}
	if want := []int64{2, 0, 1, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("Do results %v, want %v", got, want)
	}
	if err := e.c.Do(ctx(t), T0, nil); err != nil {
		t.Fatalf("Do with no ops: %v", err)
	}
}

// A random walk of Adds and Counts on a few keys counts as
// fraud.SlidingCount says. This is what holds a store's own arithmetic
// (Redis's Lua) to the definition. Time moves forward by up to two thirds
// of a window a step, and one op in four is at an instant up to half a
// window earlier (callers whose clocks are a little apart), unless that
// would cross the key's expiry: which clock expires a key is the store's.
// Windows are a second or more, so that a store expiring keys on real
// time does not do so within the test.
func testModel(t *testing.T, e *env) {
	seed := uint64(time.Now().UnixNano())
	r := mrand.New(mrand.NewPCG(seed, 1))
	windows := []time.Duration{time.Second, 7 * time.Second, 1001 * time.Millisecond, 90 * time.Second, time.Hour, 24 * time.Hour}
	type model struct {
		st fraud.SlidingCount
		w  time.Duration
	}
	models := make([]model, 6)
	for i := range models {
		models[i].w = windows[r.IntN(len(windows))]
	}
	at := T0.Add(time.Duration(r.Int64N(int64(time.Hour))))
	for step := range 400 {
		i := r.IntN(len(models))
		m := &models[i]
		if r.IntN(20) == 0 { // sometimes use the key with another window
			m.w = windows[r.IntN(len(windows))]
		}
		w := m.w.Milliseconds()
		at = at.Add(time.Duration(r.Int64N(int64(2*m.w)/3 + 1))).Truncate(time.Millisecond)
		tms := at.UnixMilli()
		if r.IntN(4) == 0 {
			early := tms - r.Int64N(w/2+1)
			if m.st.Window == 0 || (early < m.st.ExpiresAt()) == (tms < m.st.ExpiresAt()) {
				tms = early
			}
		}
		k := e.key("m" + strconv.Itoa(i))
		var got int64
		if r.IntN(3) > 0 {
			got = e.add(k, m.w, time.UnixMilli(tms))
			m.st.Add(w, tms)
		} else {
			got = e.count(k, m.w, time.UnixMilli(tms))
		}
		if want := m.st.Count(w, tms); got != want {
			t.Fatalf("seed %d, step %d: key %d window %v at %v: count %d, model %d (%+v)", seed, step, i, m.w, time.UnixMilli(tms).UTC(), got, want, m.st)
		}
	}
}

func testInvalid(t *testing.T, e *env) {
	k := e.key("k")
	long := strings.Repeat("x", fraud.MaxKeyLen+1)
	cases := []struct {
		name string
		key  string
		w    time.Duration
		at   time.Time
	}{
		{"empty key", "", time.Minute, T0},
		{"long key", long, time.Minute, T0},
		{"zero window", k, 0, T0},
		{"sub-millisecond window", k, time.Microsecond, T0},
		{"fractional window", k, time.Second + time.Microsecond, T0},
		{"long window", k, fraud.MaxWindow + time.Millisecond, T0},
		{"before the epoch", k, time.Minute, time.Unix(-1, 0)},
	}
	for _, c := range cases {
		if _, err := e.c.Add(ctx(t), c.key, c.w, c.at); !errs.Is(errs.Invalid, err) {
			t.Errorf("Add with %s: %v, want kind %v", c.name, err, errs.Invalid)
		}
		if _, err := e.c.Count(ctx(t), c.key, c.w, c.at); !errs.Is(errs.Invalid, err) {
			t.Errorf("Count with %s: %v, want kind %v", c.name, err, errs.Invalid)
		}
	}
	for _, key := range []string{"", long} {
		if err := e.c.Reset(ctx(t), key); !errs.Is(errs.Invalid, err) {
			t.Errorf("Reset(%d bytes): %v, want kind %v", len(key), err, errs.Invalid)
		}
	}
	// One invalid op: none is run.
	ops := []fraud.Op{{Key: k, Window: time.Minute, Add: true}, {Key: "", Window: time.Minute, Add: true}}
	if err := e.c.Do(ctx(t), T0, ops); !errs.Is(errs.Invalid, err) {
		t.Errorf("Do with an invalid op: %v, want kind %v", err, errs.Invalid)
	}
	e.wantCount(k, time.Minute, T0, 0)
	// The bounds themselves are valid.
	if _, err := e.c.Add(ctx(t), e.key(strings.Repeat("y", fraud.MaxKeyLen-len(e.prefix))), fraud.MaxWindow, T0); err != nil {
		t.Errorf("Add with the longest key and window: %v", err)
	}
	if _, err := e.c.Add(ctx(t), k, fraud.MinWindow, T0); err != nil {
		t.Errorf("Add with the shortest window: %v", err)
	}
}

// A cancelled context is errs.Unavailable and counts nothing.
func testCancelled(t *testing.T, e *env) {
	k, w := e.key("k"), time.Minute
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.c.Add(c, k, w, T0); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Add: %v, want kind %v", err, errs.Unavailable)
	}
	if _, err := e.c.Count(c, k, w, T0); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Count: %v, want kind %v", err, errs.Unavailable)
	}
	if err := e.c.Do(c, T0, []fraud.Op{{Key: k, Window: w, Add: true}}); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Do: %v, want kind %v", err, errs.Unavailable)
	}
	if err := e.c.Reset(c, k); !errs.Is(errs.Unavailable, err) {
		t.Errorf("Reset: %v, want kind %v", err, errs.Unavailable)
	}
	e.wantCount(k, w, T0, 0)
}

// Concurrent Adds on one key are applied one after the other: each
// returns a different count, and together they return 1…n.
func testConcurrent(t *testing.T, e *env) {
	k, w := e.key("k"), time.Hour
	const workers, each = 8, 50
	var mu sync.Mutex
	var seen []int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := e.c.Add(context.Background(), k, w, T0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen = append(seen, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(seen)
	for i, n := range seen {
		if n != int64(i+1) {
			t.Fatalf("concurrent Adds returned %v…, want 1…%d", seen[:min(len(seen), i+3)], workers*each)
		}
	}
	e.wantCount(k, w, T0, workers*each)
}

// Bench measures Add on a spread of keys, in parallel.
func Bench(b *testing.B, c fraud.Counters) {
	prefix := UniqueKey(b) + ":"
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n, _ := rand.Int(rand.Reader, big.NewInt(1024))
		i := int(n.Int64())
		at := T0
		for pb.Next() {
			i = (i + 1) & 1023
			if _, err := c.Add(context.Background(), keys[i], time.Minute, at); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
