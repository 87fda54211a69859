package loadgen

import (
	"testing"
	"time"
)

// TestWindows: latencies are grouped by scheduled start, operations that
// never ran are left out, and each window's quantiles are its own.
func TestWindows(t *testing.T) {
	// 1,000 operations a millisecond apart: four windows of 250. In the
	// third, one operation in ten takes 40 ms; the last 50 never ran.
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = 2 * time.Millisecond
		if i >= 500 && i < 750 && i%10 == 0 {
			lat[i] = 40 * time.Millisecond
		}
		if i >= 950 {
			lat[i] = -1
		}
	}
	lat[100] = 9 * time.Millisecond
	got := windows(lat, time.Millisecond, 250*time.Millisecond)
	want := []Window{
		{StartMs: 0, Ops: 250, P50ms: 2, P99ms: 2, MaxMs: 9},
		{StartMs: 250, Ops: 250, P50ms: 2, P99ms: 2, MaxMs: 2},
		{StartMs: 500, Ops: 250, P50ms: 2, P99ms: 40, MaxMs: 40},
		{StartMs: 750, Ops: 200, P50ms: 2, P99ms: 2, MaxMs: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("%d windows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("window %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if w := windows([]time.Duration{-1, -1}, time.Millisecond, time.Second); len(w) != 0 {
		t.Fatalf("windows of nothing: %+v", w)
	}
}
