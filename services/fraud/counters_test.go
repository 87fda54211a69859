package fraud_test

import (
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/fraud"
)

// The arithmetic at its bounds: a saturated bucket, the longest window,
// the weight of the previous bucket at the edges of the current one.
func TestSlidingCount(t *testing.T) {
	w := fraud.MaxWindow.Milliseconds()
	st := fraud.SlidingCount{Window: w, Bucket: 10, Curr: fraud.MaxCount, Prev: fraud.MaxCount}
	st.Add(w, 10*w+5)
	if st.Curr != fraud.MaxCount {
		t.Fatalf("a saturated bucket went to %d", st.Curr)
	}
	if got := st.Count(w, 10*w); got != 2*fraud.MaxCount {
		t.Fatalf("count at the bucket's start %d, want %d", got, 2*fraud.MaxCount)
	}
	if got := st.Count(w, 11*w-1); got != fraud.MaxCount+1 {
		t.Fatalf("count at the bucket's last instant %d, want %d (the previous bucket rounds up to 1)", got, fraud.MaxCount+1)
	}
	if got := st.Count(w, 11*w); got != fraud.MaxCount {
		t.Fatalf("count in the next bucket %d, want %d", got, fraud.MaxCount)
	}
	if got := st.Count(w, st.ExpiresAt()); got != 0 {
		t.Fatalf("count at ExpiresAt %d", got)
	}
	if got := st.Count(w-1, 10*w); got != 0 {
		t.Fatalf("count with another window %d", got)
	}
	var zero fraud.SlidingCount
	if got := zero.Count(1000, 5000); got != 0 {
		t.Fatalf("count of nothing %d", got)
	}
}

func TestClearedAfter(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		w    time.Duration
		at   time.Duration
		want time.Duration
	}{
		{time.Minute, 0, 2 * time.Minute},
		{time.Minute, 15 * time.Second, 105 * time.Second},
		{time.Minute, 59*time.Second + 999*time.Millisecond, 60*time.Second + time.Millisecond},
		{15 * time.Minute, 14 * time.Minute, 16 * time.Minute},
	} {
		if got := fraud.ClearedAfter(c.w, t0.Add(c.at)); got != c.want {
			t.Errorf("ClearedAfter(%v, T0+%v) = %v, want %v", c.w, c.at, got, c.want)
		}
		// Something counted at that instant counts until then, and not after.
		var st fraud.SlidingCount
		w, at := c.w.Milliseconds(), t0.Add(c.at).UnixMilli()
		st.Add(w, at)
		end := at + c.want.Milliseconds()
		if st.Count(w, end-1) == 0 || st.Count(w, end) != 0 {
			t.Errorf("window %v at T0+%v: counted %d just before %v and %d at it", c.w, c.at, st.Count(w, end-1), c.want, st.Count(w, end))
		}
	}
}
