package fraud

import (
	"context"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Bounds on counter keys, windows and counts. They keep every
// implementation's arithmetic exact in 64-bit integers (and in the doubles
// of Redis's Lua) and keys small.
const (
	MaxKeyLen = 256 // bytes
	MinWindow = time.Millisecond
	MaxWindow = 400 * 24 * time.Hour
	// MaxCount is where a key's bucket count saturates: adding to a bucket
	// that holds MaxCount leaves it at MaxCount.
	MaxCount = 1 << 24
)

// Counters counts events per key in a sliding window, approximated with
// two fixed buckets, the way Cloudflare's and Redis's documented rate
// limiters do. The semantics below are exact, and the same in every
// implementation (services/fraud/fraudtest checks them against
// SlidingCount, which is their definition):
//
// Instants and windows are whole milliseconds (instants since the Unix
// epoch, truncated; windows must be whole milliseconds). For window w the
// time line is cut into buckets [i·w, (i+1)·w). A key holds its window, the
// index b of its current bucket, that bucket's count and the previous
// bucket's. The count of a key at instant t, in bucket i with e = t − i·w
// elapsed in it, is
//
//	current + ⌈previous × (w − e) / w⌉
//
// so an event counts fully while its bucket is the current one, then with
// a weight falling linearly over the next bucket, and not at all two
// buckets on: the count is at least the events of the current bucket and
// at most those of the last two. Rounding up means an event is never
// forgotten before its bucket's successor has ended. An instant before the
// key's current bucket (clocks of several callers a little apart) is taken
// as the start of that bucket. A key is used with one window; adding with
// another window starts the key afresh, and counting with another window
// reads 0. A key whose count has fallen to 0 holds nothing and vanishes
// (at the end of bucket b+1), so memory holds only recently active keys.
// Which clock expires a key is the implementation's (the latest instant
// it was given, or the store's own clock counting from the Add's
// instant): an instant earlier than one at which the key had expired may
// find it gone.
//
// The caller passes now: counters hold no clock, so that all the callers
// sharing a store agree on buckets as far as their clocks agree, and tests
// move time by passing it.
//
// Implementations are safe for concurrent use; concurrent Adds to a key
// are applied one after the other (each sees the others' increments).
// Every method fails with errs.Invalid for an empty key or one longer
// than MaxKeyLen, a window outside [MinWindow, MaxWindow] or not whole
// milliseconds, or an instant before the Unix epoch; with errs.Unavailable
// when the store cannot be reached or ctx is done. If ctx is done before
// the call nothing was done; if it ends while a remote call is in flight,
// an Add may or may not have been counted.
type Counters interface {
	// Add counts one event for key at now and returns the key's count
	// after it, this event included.
	Add(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error)
	// Count returns the key's count at now without changing it.
	Count(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error)
	// Reset forgets the key.
	Reset(ctx context.Context, key string) error
	// Do runs ops at now, each as Add (op.Add) or Count would alone, and
	// sets each op's Result: one round trip for a remote store. The ops
	// are not atomic as a whole. Ops are checked first: if one is
	// invalid, none is run. On errs.Unavailable some Adds may have been
	// counted.
	Do(ctx context.Context, now time.Time, ops []Op) error
}

// Op is one operation of Counters.Do.
type Op struct {
	Key    string
	Window time.Duration
	// Add counts an event; otherwise the op only reads.
	Add bool
	// Result is set by Do: the key's count (after the Add).
	Result int64
}

// CheckKey checks a counter key and window; implementations call it so
// that they all reject the same requests the same way.
func CheckKey(op, key string, window time.Duration) error {
	switch {
	case key == "" || len(key) > MaxKeyLen:
		return errs.Errorf(op, errs.Invalid, "key must be 1-%d bytes, got %d", MaxKeyLen, len(key))
	case window < MinWindow || window > MaxWindow || window%time.Millisecond != 0:
		return errs.Errorf(op, errs.Invalid, "window must be whole milliseconds in [%v, %v], got %v", MinWindow, MaxWindow, window)
	}
	return nil
}

// CheckRequest checks ctx, the instant and every op of a request (a
// single Add or Count is one op).
func CheckRequest(ctx context.Context, op string, now time.Time, ops ...Op) error {
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, "request cancelled", err)
	}
	if now.UnixMilli() < 0 {
		return errs.Errorf(op, errs.Invalid, "instant %v is before the Unix epoch", now)
	}
	for i := range ops {
		if err := CheckKey(op, ops[i].Key, ops[i].Window); err != nil {
			return err
		}
	}
	return nil
}

// SlidingCount is one key's state, and the definition of the Counters
// arithmetic: implementations keep these four numbers per key and call
// Add and Count (or, in Redis's Lua, do what Add does).
type SlidingCount struct {
	Window int64 // milliseconds; 0: nothing counted yet
	Bucket int64 // index of the current bucket: it starts at Bucket × Window
	Curr   int64 // events of the current bucket
	Prev   int64 // events of the bucket before it
}

// Add counts one event at t (milliseconds since the epoch) in window w
// (milliseconds).
func (s *SlidingCount) Add(w, t int64) {
	i := t / w
	switch {
	case s.Window != w || i > s.Bucket+1:
		*s = SlidingCount{Window: w, Bucket: i}
	case i == s.Bucket+1:
		s.Bucket, s.Prev, s.Curr = i, s.Curr, 0
	}
	if s.Curr < MaxCount {
		s.Curr++
	}
}

// Count is the count at t in window w.
func (s *SlidingCount) Count(w, t int64) int64 {
	if s.Window != w {
		return 0
	}
	i := t / w
	cur, prev, e := s.Curr, s.Prev, t-i*w
	switch {
	case i < s.Bucket:
		e = 0
	case i == s.Bucket+1:
		cur, prev = 0, s.Curr
	case i > s.Bucket+1:
		return 0
	}
	return cur + (prev*(w-e)+w-1)/w
}

// ExpiresAt is the instant (milliseconds) from which the count is 0 at
// any later instant, unless more events are added: the end of the bucket
// after the current one.
func (s *SlidingCount) ExpiresAt() int64 { return (s.Bucket + 2) * s.Window }

// ClearedAfter is how long after now anything counted up to now in window
// is surely out of the count: the end of the bucket after now's. The
// engine answers a denial with it as the Retry-After (an upper bound).
func ClearedAfter(window time.Duration, now time.Time) time.Duration {
	w, t := window.Milliseconds(), now.UnixMilli()
	if w <= 0 || t < 0 {
		return window
	}
	return time.Duration((t/w+2)*w-t) * time.Millisecond
}
