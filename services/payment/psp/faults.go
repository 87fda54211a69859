package psp

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Faults is the failure injection in force. Rates are probabilities in
// [0, 1]; whether a request or a delivery meets a fault is a hash of Seed,
// the fault and the request's idempotency key (without one: its operation
// and how many such requests the server has seen), so the same requests
// meet the same faults. A zero Faults injects nothing.
//
// Request faults (ErrorBefore, ErrorAfter, Timeout, Slow) apply to the
// /v1 API only, and only to Ops when Ops is set. An answer replayed from
// the idempotency store meets none of them: it is the stored answer.
type Faults struct {
	Seed int64 `json:"seed"`
	// Ops limits the request faults to these operations (create, confirm,
	// capture, cancel, retrieve, refund, retrieve_refund); empty: all.
	Ops []string `json:"ops,omitempty"`
	// ErrorBefore answers 500 api_error without doing anything.
	ErrorBefore float64 `json:"error_before,omitempty"`
	// ErrorAfter does the operation, stores its effect, then answers 500
	// api_error: the effect happened, the answer is lost.
	ErrorAfter float64 `json:"error_after,omitempty"`
	// Timeout does the operation, then holds the answer until the client
	// gives up (closes the connection) or TimeoutHold passes.
	Timeout     float64  `json:"timeout,omitempty"`
	TimeoutHold Duration `json:"timeout_hold,omitempty"`
	// Slow waits SlowLatency before doing the operation (less when the
	// client gives up first; the operation is done anyway).
	Slow        float64  `json:"slow,omitempty"`
	SlowLatency Duration `json:"slow_latency,omitempty"`
	// WebhookDuplicate delivers an event once more after its first
	// acknowledged delivery.
	WebhookDuplicate float64 `json:"webhook_duplicate,omitempty"`
	// WebhookReorder holds an event back until the endpoint's next event
	// has gone first (or WebhookReorderWindow has passed).
	WebhookReorder       float64  `json:"webhook_reorder,omitempty"`
	WebhookReorderWindow Duration `json:"webhook_reorder_window,omitempty"`
	// WebhookDelay postpones an event's first delivery by
	// WebhookDelayBy.
	WebhookDelay   float64  `json:"webhook_delay,omitempty"`
	WebhookDelayBy Duration `json:"webhook_delay_by,omitempty"`
}

// The durations a fault's rate brings when it has none.
const (
	DefaultTimeoutHold          = time.Minute
	DefaultSlowLatency          = 2 * time.Second
	DefaultWebhookReorderWindow = 2 * time.Second
	DefaultWebhookDelayBy       = 5 * time.Second
)

// maxFaultDuration bounds every duration of Faults.
const maxFaultDuration = time.Hour

// Ops are the operations of the API, as Faults.Ops and the metrics name
// them.
var Ops = []string{"create", "confirm", "capture", "cancel", "retrieve", "refund", "retrieve_refund"}

func (f *Faults) defaults() {
	set := func(d *Duration, def time.Duration) {
		if *d == 0 {
			*d = Duration(def)
		}
	}
	set(&f.TimeoutHold, DefaultTimeoutHold)
	set(&f.SlowLatency, DefaultSlowLatency)
	set(&f.WebhookReorderWindow, DefaultWebhookReorderWindow)
	set(&f.WebhookDelayBy, DefaultWebhookDelayBy)
}

// Validate checks the rates, durations and operations.
func (f Faults) Validate() error {
	var problems []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"error_before", f.ErrorBefore}, {"error_after", f.ErrorAfter}, {"timeout", f.Timeout}, {"slow", f.Slow},
		{"webhook_duplicate", f.WebhookDuplicate}, {"webhook_reorder", f.WebhookReorder}, {"webhook_delay", f.WebhookDelay}} {
		if !(r.v >= 0 && r.v <= 1) {
			problems = append(problems, fmt.Errorf("fault %s: rate %v is not in [0, 1]", r.name, r.v))
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"timeout_hold", f.TimeoutHold}, {"slow_latency", f.SlowLatency},
		{"webhook_reorder_window", f.WebhookReorderWindow}, {"webhook_delay_by", f.WebhookDelayBy}} {
		if d.v < 0 || time.Duration(d.v) > maxFaultDuration {
			problems = append(problems, fmt.Errorf("fault %s: %v is not in [0, %v]", d.name, time.Duration(d.v), maxFaultDuration))
		}
	}
	for _, op := range f.Ops {
		if !slices.Contains(Ops, op) {
			problems = append(problems, fmt.Errorf("fault ops: unknown operation %q (want one of %v)", op, Ops))
		}
	}
	return errors.Join(problems...)
}

// DecodeFaults reads a Faults from JSON as POST /_sim/faults takes it:
// unknown fields are refused, and so is anything after the object.
// Durations are Go duration strings ("1.5s"). The result has its defaults
// and is valid.
func DecodeFaults(r io.Reader) (Faults, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f Faults
	if err := dec.Decode(&f); err != nil {
		return Faults{}, fmt.Errorf("faults: %w", err)
	}
	if dec.More() {
		return Faults{}, errors.New("faults: trailing data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return Faults{}, errors.New("faults: trailing data after the object")
	}
	f.defaults()
	if err := f.Validate(); err != nil {
		return Faults{}, err
	}
	return f, nil
}

// Duration is a time.Duration that JSON spells as a Go duration string.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration is a string such as \"1.5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// faultSet is the faults in force and the counters that key the
// requests without an idempotency key.
type faultSet struct {
	cur      atomic.Pointer[Faults]
	mu       sync.Mutex
	requests map[string]uint64 // operation → requests without a key seen
}

func newFaultSet(f Faults) *faultSet {
	fs := &faultSet{requests: map[string]uint64{}}
	fs.cur.Store(&f)
	return fs
}

func (fs *faultSet) get() *Faults { return fs.cur.Load() }

func (fs *faultSet) set(f Faults) { fs.cur.Store(&f) }

// requestKey is the key of a request's fault draws: its idempotency key,
// or its operation and its rank among the keyless requests of that
// operation.
func (fs *faultSet) requestKey(op, idemKey string) string {
	if idemKey != "" {
		return "key:" + idemKey
	}
	fs.mu.Lock()
	n := fs.requests[op]
	fs.requests[op] = n + 1
	fs.mu.Unlock()
	return op + "#" + strconv.FormatUint(n, 10)
}

// appliesTo reports whether the request faults cover op.
func (f *Faults) appliesTo(op string) bool {
	return len(f.Ops) == 0 || slices.Contains(f.Ops, op)
}

// hit draws whether the fault named kind, of the given rate, meets the
// thing named key.
func (f *Faults) hit(kind string, rate float64, key string) bool {
	if rate <= 0 {
		return false
	}
	if rate >= 1 {
		return true
	}
	return draw(f.Seed, kind, key) < rate
}

// draw is a uniform number in [0, 1) fixed by seed, kind and key.
func draw(seed int64, kind, key string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	// splitmix64's finaliser: FNV's low bits are poor.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
