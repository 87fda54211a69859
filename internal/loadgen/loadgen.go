// Package loadgen drives an operation at a system and measures it: a closed
// loop (N workers, each starting its next operation when the last one
// ends) for peak throughput, and an open loop (operations started on a fixed
// schedule) for latency at a given rate, measured from each operation's
// scheduled start so that a stalled system is not flattered (no coordinated
// omission).
package loadgen

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation. worker is in [0, workers) for closed loops, i counts
// operations. Errors are counted; ErrSkip results are counted apart.
type Op func(ctx context.Context, worker int, i int64) (Outcome, error)

// Outcome classifies a successful operation.
type Outcome uint8

const (
	OK       Outcome = iota // the operation did what was asked
	Rejected                // a correct refusal, e.g. a hold on a taken seat
)

// Result is what a run measured.
type Result struct {
	Name     string        `json:"name"`
	Ops      int64         `json:"ops"`
	OK       int64         `json:"ok"`
	Rejected int64         `json:"rejected"`
	Errors   int64         `json:"errors"`
	Elapsed  time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	PerSec   float64       `json:"per_sec"`
	P50ms    float64       `json:"p50_ms"`
	P99ms    float64       `json:"p99_ms"`
	P999ms   float64       `json:"p999_ms"`
	MaxMs    float64       `json:"max_ms"`
	// FirstErr is the first error seen, for the report.
	FirstErr string `json:"first_error,omitempty"`
	// Windows are the latencies of consecutive stretches of the run
	// (WindowLen each, by scheduled start; open loops only): where a
	// run's tail comes from, and how much of the time a target holds.
	Windows []Window `json:"windows,omitempty"`
}

// WindowLen is the length of a Result's windows.
const WindowLen = 250 * time.Millisecond

// Window is the latency of the operations scheduled in one stretch.
type Window struct {
	StartMs float64 `json:"start_ms"`
	Ops     int     `json:"ops"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// quantile is the p-quantile of sorted latencies, in milliseconds.
func quantile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return float64(sorted[max(i, 0)]) / float64(time.Millisecond)
}

// windows groups latencies by the window of their scheduled start
// (operation i starts at i×interval); a negative latency marks an
// operation that never ran.
func windows(lat []time.Duration, interval, w time.Duration) []Window {
	var out []Window
	var cur []time.Duration
	flush := func(k int) {
		if len(cur) == 0 {
			return
		}
		slices.Sort(cur)
		out = append(out, Window{StartMs: float64(time.Duration(k)*w) / float64(time.Millisecond), Ops: len(cur),
			P50ms: quantile(cur, 0.5), P99ms: quantile(cur, 0.99), MaxMs: quantile(cur, 1)})
		cur = cur[:0]
	}
	k := 0
	for i, l := range lat {
		if wk := int(time.Duration(i) * interval / w); wk != k {
			flush(k)
			k = wk
		}
		if l >= 0 {
			cur = append(cur, l)
		}
	}
	flush(k)
	return out
}

type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	ok, rej  atomic.Int64
	errs     atomic.Int64
	firstErr atomic.Value
}

func (r *recorder) add(l []time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, l...)
	r.mu.Unlock()
}

func (r *recorder) count(o Outcome, err error) {
	switch {
	case err != nil:
		r.errs.Add(1)
		r.firstErr.CompareAndSwap(nil, err.Error())
	case o == Rejected:
		r.rej.Add(1)
	default:
		r.ok.Add(1)
	}
}

func (r *recorder) result(name string, elapsed time.Duration) Result {
	slices.Sort(r.lat)
	q := func(p float64) float64 { return quantile(r.lat, p) }
	res := Result{Name: name, Ops: int64(len(r.lat)), OK: r.ok.Load(), Rejected: r.rej.Load(), Errors: r.errs.Load(),
		Elapsed: elapsed, Seconds: elapsed.Seconds(), P50ms: q(0.50), P99ms: q(0.99), P999ms: q(0.999), MaxMs: q(1)}
	res.PerSec = float64(res.Ops) / elapsed.Seconds()
	if v, ok := r.firstErr.Load().(string); ok {
		res.FirstErr = v
	}
	return res
}

// Closed runs op from workers goroutines for d (or until ctx is done) and
// reports throughput and latency. progress, if not nil, is called about
// every 100ms with the fraction done.
func Closed(ctx context.Context, name string, workers int, d time.Duration, op Op, progress func(float64)) Result {
	var r recorder
	var seq atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	stopProgress := startProgress(ctx, d, progress)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				i := seq.Add(1)
				t := time.Now()
				o, err := op(context.WithoutCancel(ctx), w, i)
				lat = append(lat, time.Since(t))
				r.count(o, err)
			}
			r.add(lat)
		}()
	}
	wg.Wait()
	stopProgress()
	return r.result(name, time.Since(start))
}

// Open starts op rate times a second for d, with at most maxInFlight
// operations at once (beyond that an operation waits, and its wait counts in
// its latency). Every millisecond it starts the operations that have fallen
// due, each timed from its own due time.
func Open(ctx context.Context, name string, rate float64, d time.Duration, maxInFlight int, op Op, progress func(float64)) Result {
	var r recorder
	sem := make(chan struct{}, maxInFlight)
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(d.Seconds() * rate)
	stopProgress := startProgress(ctx, d, progress)
	start := time.Now()
	var wg sync.WaitGroup
	lat := make([]time.Duration, total) // by operation; each goroutine writes its own
	for i := range lat {
		lat[i] = -1
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := int64(0); i < total && ctx.Err() == nil; {
		due := min(int64(time.Since(start)/interval)+1, total)
		for ; i < due; i++ {
			at := start.Add(time.Duration(i) * interval)
			sem <- struct{}{}
			wg.Add(1)
			go func(i int64) {
				defer wg.Done()
				o, err := op(ctx, int(i), i)
				l := time.Since(at)
				<-sem
				r.count(o, err)
				lat[i] = l
			}(i)
		}
		<-tick.C
	}
	wg.Wait()
	stopProgress()
	elapsed := time.Since(start)
	win := windows(lat, interval, WindowLen)
	ran := slices.DeleteFunc(lat, func(l time.Duration) bool { return l < 0 })
	r.add(ran)
	res := r.result(name, elapsed)
	res.Windows = win
	return res
}

func startProgress(ctx context.Context, d time.Duration, progress func(float64)) func() {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		start := time.Now()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				progress(1)
				return
			case <-t.C:
				progress(min(float64(time.Since(start))/float64(d), 1))
			}
		}
	}()
	return func() { close(done); <-stopped }
}
