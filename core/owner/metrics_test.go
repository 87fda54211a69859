package owner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/inventory"
)

// value reads a gauge or counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// series counts the series a collector holds.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

// slogTo logs text to w; concurrent writes are the caller's care.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// zone is what the owner reports of one zone of ev.0.
func (e *env) zone(t *testing.T, z string) (capacity, held, sold float64) {
	t.Helper()
	return value(t, e.metrics.Capacity.WithLabelValues("ev", "ev.0", z)),
		value(t, e.metrics.Held.WithLabelValues("ev", "ev.0", z)),
		value(t, e.metrics.Sold.WithLabelValues("ev", "ev.0", z))
}

func (e *env) mismatches(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, c := range []string{checkCounts, checkShadowReplay, checkRecoveryReplay} {
		out[c] = value(t, e.metrics.StateMismatches.WithLabelValues(c))
	}
	return out
}

// fastTicks makes the snapshotter tick every 50 ms (its tick is a quarter of
// EventsFlushLag), so that checks and gauges follow quickly.
var fastTicks = Config{EventsFlushLag: 200 * time.Millisecond}

// TestZoneGaugesAndOwnership: an owner reports each zone's capacity, held
// and sold seats of its committed state, removes them when it stops, and
// counts each acquisition by the previous owner.
func TestZoneGaugesAndOwnership(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ctx := context.Background()
	stop := e.start("a", fastTicks)
	if got := value(t, e.metrics.Acquired.WithLabelValues(previousNone)); got != 1 {
		t.Fatalf("acquired{previous=none} = %v after the first owner, want 1", got)
	}
	h, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1", "s-2"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Confirm(ctx, inventory.ConfirmRequest{HoldID: h.HoldID, OrderID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Hold(ctx, "ev.0", inventory.HoldRequest{Zone: "ga", Quantity: 3, IdempotencyKey: "k2", Fingerprint: "x"}); err != nil {
		t.Fatal(err)
	}
	want := func(z string, capacity, held, sold float64) func() bool {
		return func() bool {
			c, h, s := e.zone(t, z)
			return c == capacity && h == held && s == sold
		}
	}
	eventually.True(t, 0, "std: capacity 50, held 0, sold 2", want("std", 50, 0, 2))
	eventually.True(t, 0, "ga: capacity 100, held 3, sold 0", want("ga", 100, 3, 0))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*prometheus.GaugeVec{"capacity": e.metrics.Capacity, "held": e.metrics.Held, "sold": e.metrics.Sold} {
		if n := series(g); n != 0 {
			t.Errorf("%s: %d series after the owner stopped, want none", name, n)
		}
	}

	// Another node takes over: it recovers the same counts.
	stop = e.start("b", fastTicks)
	eventually.True(t, 0, "std sold 2 after the takeover", want("std", 50, 0, 2))
	eventually.True(t, 0, "ga held 3 after the takeover", want("ga", 100, 3, 0))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	stop = e.start("b", fastTicks)
	defer func() { _ = stop() }()
	for p, n := range map[string]float64{previousNone: 1, previousOtherNode: 1, previousThisNode: 1} {
		if got := value(t, e.metrics.Acquired.WithLabelValues(p)); got != n {
			t.Errorf("acquired{previous=%s} = %v, want %v", p, got, n)
		}
	}
	if m := e.mismatches(t); m[checkCounts]+m[checkShadowReplay]+m[checkRecoveryReplay] != 0 {
		t.Errorf("state mismatches %v, want none", m)
	}
}

// TestStateChecksUnderLoad: while holds and releases from many clients are
// group-committed, the live counts taken at batch boundaries always equal
// the shadow's (the log's) after the same batch.
func TestStateChecksUnderLoad(t *testing.T) {
	e := newEnv(t, t.TempDir())
	stop := e.start("a", fastTicks)
	defer func() { _ = stop() }()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ops atomic.Int64
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				r := inventory.HoldRequest{Zone: "ga", Quantity: 1 + i%3, IdempotencyKey: fmt.Sprint(w, "-", i), Fingerprint: "x"}
				if w%2 == 0 {
					r = hold(fmt.Sprint(w, "-", i), fmt.Sprint("s-", 1+(w*7+i)%50))
				}
				h, err := e.client.Hold(ctx, "ev.0", r)
				if errs.Is(errs.Conflict, err) || ctx.Err() != nil {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 != 0 { // keep some, release the rest
					if _, err := e.client.Release(ctx, inventory.HoldRef{HoldID: h.HoldID, Token: h.HoldToken}); err != nil && ctx.Err() == nil {
						t.Error(err)
						return
					}
				}
				ops.Add(1)
			}
		}()
	}
	eventually.True(t, 20*time.Second, "20 state checks under load", func() bool {
		return value(t, e.metrics.StateChecks) >= 20
	})
	cancel()
	wg.Wait()
	if m := e.mismatches(t); m[checkCounts] != 0 || m[checkShadowReplay] != 0 {
		t.Fatalf("state mismatches %v after %v checks and %d holds", m, value(t, e.metrics.StateChecks), ops.Load())
	}
	t.Logf("%v checks, %d holds", value(t, e.metrics.StateChecks), ops.Load())
}

// TestCheckCountsFindsDivergence: counts that differ from the shadow's are
// a mismatch; equal ones are a check that passed.
func TestCheckCountsFindsDivergence(t *testing.T) {
	shadow, err := inventory.NewPartition("ev.0", layout(), inventory.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := shadow.Apply(&inventory.Decision{Type: inventory.HoldPlaced, At: now.UnixNano(), Hold: "ev.0.h1",
		Seats: []string{"s-1"}, Qty: 1, Expires: now.Add(time.Hour).UnixNano(), Key: inventory.IdemKey{1}, FP: "x"}); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	o := &Owner{deps: Deps{Metrics: NewMetrics(nil)}, log: slogTo(&logged)}
	same := shadow.ZoneCounts(nil)
	o.checkCounts(committed{seq: 7, counts: same}, shadow, nil)
	if c, m := value(t, o.deps.Metrics.StateChecks), value(t, o.deps.Metrics.StateMismatches.WithLabelValues(checkCounts)); c != 1 || m != 0 {
		t.Fatalf("equal counts: checks %v mismatches %v, want 1 and 0", c, m)
	}
	oversold := shadow.ZoneCounts(nil)
	oversold[0].Held, oversold[0].Sold = 0, 51 // the live state sold more than the log holds
	o.checkCounts(committed{seq: 8, counts: oversold}, shadow, nil)
	if c, m := value(t, o.deps.Metrics.StateChecks), value(t, o.deps.Metrics.StateMismatches.WithLabelValues(checkCounts)); c != 2 || m != 1 {
		t.Fatalf("differing counts: checks %v mismatches %v, want 2 and 1", c, m)
	}
	for _, want := range []string{"log_seq=8", "zone=std", "live_sold=51", "logged_sold=0", "logged_held=1"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("the mismatch's log line %q does not say %s", logged.String(), want)
		}
	}
}

// TestRecoveryReplayMismatch: a log record that does not replay onto the
// snapshot stops recovery and counts a recovery_replay mismatch.
func TestRecoveryReplayMismatch(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ctx := context.Background()
	stop := e.start("a", Config{})
	if _, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1")); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	m, err := e.set.Inventory.GetLastMsgForSubject(ctx, streams.InventoryLogSubject("ev.0"))
	if err != nil {
		t.Fatal(err)
	}
	var last record
	if err := json.Unmarshal(m.Data, &last); err != nil {
		t.Fatal(err)
	}
	// The next record of that epoch releases a hold that never was.
	bad := record{Owner: last.Owner, Epoch: last.Epoch, Gen: last.Gen + 1, D: []*inventory.Decision{{
		Type: inventory.HoldReleased, At: time.Now().UnixNano(), Hold: "ev.0.never"}}}
	b, _ := json.Marshal(bad)
	if _, err := e.js.Publish(ctx, streams.InventoryLogSubject("ev.0"), b); err != nil {
		t.Fatal(err)
	}
	l, err := leaseFor(ctx, e, "ev.0")
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{NC: e.nc, JS: e.js, Streams: e.set, Secret: secret, Log: quiet, Metrics: e.metrics}
	err = Run(ctx, Config{Node: "b", LeaseTTL: leaseTTL}, deps, "ev.0", layout(), l)
	if err == nil || !strings.Contains(err.Error(), "recover") {
		t.Fatalf("Run over a log that does not replay: %v, want a recovery error", err)
	}
	if got := e.mismatches(t); got[checkRecoveryReplay] != 1 || got[checkCounts] != 0 {
		t.Fatalf("mismatches %v, want one recovery_replay", got)
	}
}
