package owner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	t       *testing.T
	node    *node.Node
	nc      *nats.Conn
	apart   [3]*nats.Conn // the owner's relay, log and snapshot connections, as core wires them
	js      jetstream.JetStream
	set     *streams.Set
	metrics *Metrics
	client  *natsapi.Client
}

func newEnv(t *testing.T, dir string) *env {
	t.Helper()
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{Name: "core-t", DataDir: dir, ClientAddr: "-", LeafAddr: "127.0.0.1:0"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := n.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	set, err := streams.Ensure(ctx, js, streams.Config{LeaseTTL: leaseTTL})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, node: n, nc: nc, js: js, set: set, metrics: NewMetrics(nil),
		client: &natsapi.Client{NC: nc, Timeout: 5 * time.Second}}
	t.Cleanup(e.close)
	for i := range e.apart {
		if e.apart[i], err = n.Connect(fmt.Sprint("test-", i)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *env) close() {
	e.nc.Close()
	for _, nc := range e.apart {
		if nc != nil {
			nc.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.node.Shutdown(ctx)
}

func layout() inventory.Layout {
	l := inventory.Layout{Zones: []inventory.ZoneDef{{ID: "std"}, {ID: "ga", GA: true, Capacity: 100}}}
	for i := 1; i <= 50; i++ {
		l.Seats = append(l.Seats, inventory.SeatDef{ID: fmt.Sprintf("s-%d", i), Zone: "std"})
	}
	return l
}

var secret = []byte("test-secret")

const leaseTTL = 2 * time.Second

func leaseFor(ctx context.Context, e *env, key string) (*lease.Lease, error) {
	return lease.Acquire(ctx, e.set.Leases, key, "test", leaseTTL)
}

// start runs an owner of partition "ev.0" as node name until the returned
// stop is called; stop returns Run's error.
func (e *env) start(name string, cfg Config) (stop func() error) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := leaseFor(ctx, e, "ev.0")
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Node = name
	cfg.LeaseTTL = leaseTTL
	deps := Deps{NC: e.nc, RelayNC: e.apart[0], LogNC: e.apart[1], SnapshotNC: e.apart[2],
		JS: e.js, Streams: e.set, Secret: secret, Log: quiet, Metrics: e.metrics}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, deps, "ev.0", layout(), l) }()
	e.waitServing()
	return func() error { cancel(); return <-done }
}

func (e *env) waitServing() {
	e.t.Helper()
	if _, err := e.client.Availability(context.Background(), "ev.0"); err != nil {
		e.t.Fatalf("owner not serving: %v", err)
	}
}

func hold(key string, seats ...string) inventory.HoldRequest {
	return inventory.HoldRequest{Seats: seats, IdempotencyKey: key, Fingerprint: fmt.Sprint(seats)}
}

func TestServeRecoverAndEvents(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, dir)
	// Never purge the log, so that it can be replayed without a snapshot.
	noPurge := Config{EventsFlushLag: time.Hour}
	stop := e.start("a", noPurge)
	ctx := context.Background()

	h, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1", "s-2"))
	if err != nil {
		t.Fatal(err)
	}
	if h.HoldToken == "" || !inventory.CheckHoldToken(secret, h.HoldID, h.HoldToken) {
		t.Fatalf("hold token %q does not check", h.HoldToken)
	}
	// A read between writes makes a batch that writes nothing; recovery
	// must still see the log's records as contiguous.
	if _, err := e.client.Availability(ctx, "ev.0"); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Hold(ctx, "ev.0", hold("k2", "s-2"))
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != inventory.ReasonSeatsUnavailable {
		t.Fatalf("second hold: %v", err)
	}
	if _, err := e.client.Get(ctx, inventory.HoldRef{HoldID: h.HoldID, Token: "wrong"}); !errs.Is(errs.Forbidden, err) {
		t.Fatalf("get with a wrong token: %v", err)
	}
	ga, err := e.client.Hold(ctx, "ev.0", inventory.HoldRequest{Zone: "ga", Quantity: 4, IdempotencyKey: "k3", Fingerprint: "ga4"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Confirm(ctx, inventory.ConfirmRequest{HoldID: ga.HoldID, OrderID: "o1"}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	// As after a crash before any snapshot: recover from the log alone.
	if err := e.set.Snapshots.Delete(ctx, "ev.0"); err != nil {
		t.Fatal(err)
	}

	// A new owner recovers everything the first one acknowledged.
	stop = e.start("b", noPurge)
	a, err := e.client.Availability(ctx, "ev.0")
	if err != nil {
		t.Fatal(err)
	}
	if a.Seats["s-1"] != inventory.Held || a.Seats["s-2"] != inventory.Held || a.Seats["s-3"] != inventory.Free {
		t.Fatalf("seats after recovery: s-1 %v s-2 %v s-3 %v", a.Seats["s-1"], a.Seats["s-2"], a.Seats["s-3"])
	}
	if z := a.Zones[1]; z.Sold != 4 || z.Held != 0 {
		t.Fatalf("ga after recovery: %+v", z)
	}
	again, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1", "s-2"))
	if err != nil || again.HoldID != h.HoldID || again.HoldToken != h.HoldToken {
		t.Fatalf("idempotent replay after recovery = %+v, %v", again, err)
	}
	if _, err := e.client.Release(ctx, inventory.HoldRef{HoldID: h.HoldID, Token: h.HoldToken}); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Every domain event is on EVENTS once, in log order.
	want := []string{"hold.placed", "hold.placed", "seats.sold", "hold.released"}
	got := readEvents(t, e, len(want))
	for i, w := range want {
		if got[i] != inventory.EventTypePrefix+w {
			t.Fatalf("events = %v, want %v", got, want)
		}
	}
}

// readEvents returns the types of the events on EVENTS, in order, and fails
// unless there are n, each once. The relay writes batches.
func readEvents(t *testing.T, e *env, n int) []string {
	t.Helper()
	ctx := context.Background()
	info, err := e.set.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	ids := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := e.set.Events.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if ct := m.Header.Get(cloudevents.HeaderContentType); ct != cloudevents.BatchContentType {
			t.Fatalf("message %d: content type %q", seq, ct)
		}
		els, err := cloudevents.SplitBatch(m.Data)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		for _, el := range els {
			if ids[string(el.Attrs.ID)] {
				t.Fatalf("event %s twice", el.Attrs.ID)
			}
			ids[string(el.Attrs.ID)] = true
			types = append(types, string(el.Attrs.Type))
		}
	}
	if len(types) != n {
		t.Fatalf("EVENTS holds %d events, want %d: %v", len(types), n, types)
	}
	return types
}

// TestFence shows that an owner that lost its lease cannot write: a newer
// owner's epoch record makes the old owner's next write fail, and its
// callers are told to retry rather than given an answer that is not durable.
func TestFence(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ctx := context.Background()
	old := e.start("old", Config{})
	if _, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1")); err != nil {
		t.Fatal(err)
	}
	// A newer owner takes over while the old one still runs (as after a long
	// pause): it writes its epoch record without the old owner noticing.
	newer := &Owner{cfg: Config{Node: "newer", WriteTimeout: time.Second}, deps: Deps{JS: e.js, Streams: e.set, Metrics: e.metrics},
		key: "ev.0", logSubj: streams.InventoryLogSubject("ev.0"), fenceSubj: streams.InventoryFenceSubject("ev.0"), lease: &lease.Lease{}}
	if err := newer.writeFence(ctx); err != nil {
		t.Fatal(err)
	}
	// The old owner decides the next hold but cannot log it.
	noRetry := &natsapi.Client{NC: e.nc, Timeout: time.Second, AttemptTimeout: time.Second}
	_, err := noRetry.Hold(ctx, "ev.0", hold("k2", "s-2"))
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("hold on a fenced owner: %v, want unavailable", err)
	}
	if err := old(); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced owner stopped with %v, want ErrFenced", err)
	}
	// Nothing the fenced owner decided after the fence is in the log.
	var decided []string
	err = newer.readLog(ctx, 1, lastSeqOf(t, newer), func(_ uint64, r *record) error {
		for _, d := range r.D {
			if d.Type == inventory.HoldPlaced {
				decided = append(decided, d.Seats...)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(decided) != 1 || decided[0] != "s-1" {
		t.Fatalf("log holds placements for %v, want only s-1", decided)
	}
}

func lastSeqOf(t *testing.T, o *Owner) uint64 {
	s, err := o.lastLogSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSnapshotBoundsRecovery checks that after snapshots the log is purged
// and a new owner replays only the tail.
func TestSnapshotBoundsRecovery(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ctx := context.Background()
	stop := e.start("a", Config{SnapshotEvery: 20, SnapshotIdle: 200 * time.Millisecond})
	for i := 0; i < 200; i++ {
		h, err := e.client.Hold(ctx, "ev.0", hold(fmt.Sprint("k", i), fmt.Sprint("s-", 1+i%50)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.Release(ctx, inventory.HoldRef{HoldID: h.HoldID, Token: h.HoldToken}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until a snapshot covers the log and the log before it is gone.
	eventually.Nil(t, 10*time.Second, func() error {
		info, err := e.set.Inventory.Info(ctx)
		if err == nil && info.State.Msgs >= 50 {
			err = fmt.Errorf("log still holds %d records", info.State.Msgs)
		}
		return err
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	stop = e.start("b", Config{})
	defer stop()
	again, err := e.client.Hold(ctx, "ev.0", hold("k7", "s-8"))
	if err != nil || again.Status != inventory.Held {
		t.Fatalf("replay after snapshot recovery: %+v %v", again, err)
	}
	a, _ := e.client.Availability(ctx, "ev.0")
	for id, s := range a.Seats {
		if s != inventory.Free {
			t.Fatalf("seat %s is %v after recovery; all were released", id, s)
		}
	}
}

func TestConcurrentHoldsNoOversell(t *testing.T) {
	for _, inflight := range []int{1, 4} { // one log write at a time, or pipelined
		t.Run(fmt.Sprint("inflight", inflight), func(t *testing.T) { concurrentHolds(t, inflight) })
	}
}

func concurrentHolds(t *testing.T, inflight int) {
	e := newEnv(t, t.TempDir())
	stop := e.start("a", Config{MaxInflight: inflight})
	defer stop()
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string]string{}
	gaSold := 0
	for i := 0; i < 400; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			var r inventory.HoldRequest
			if i%2 == 0 {
				r = hold(fmt.Sprint("c", i), fmt.Sprint("s-", 1+i%50), fmt.Sprint("s-", 1+(i/2)%50))
				if r.Seats[0] == r.Seats[1] {
					r.Seats = r.Seats[:1]
				}
			} else {
				r = inventory.HoldRequest{Zone: "ga", Quantity: 1 + i%3, IdempotencyKey: fmt.Sprint("c", i), Fingerprint: "x"}
			}
			h, err := e.client.Hold(ctx, "ev.0", r)
			if errs.Is(errs.Conflict, err) {
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range h.Seats {
				if prev, ok := won[s]; ok {
					t.Errorf("seat %s held by %s and %s", s, prev, h.HoldID)
				}
				won[s] = h.HoldID
			}
			gaSold += len(h.Seats) * 0
			if h.Zone == "ga" {
				gaSold += h.Quantity
			}
		}(i)
	}
	wg.Wait()
	if gaSold > 100 {
		t.Fatalf("GA holds total %d > capacity 100", gaSold)
	}
	a, _ := e.client.Availability(ctx, "ev.0")
	if a.Zones[1].Held != gaSold {
		t.Fatalf("GA held %d, acknowledged %d", a.Zones[1].Held, gaSold)
	}
	for s, id := range won {
		if a.Seats[s] != inventory.Held {
			t.Fatalf("seat %s acknowledged to %s is %v", s, id, a.Seats[s])
		}
	}
}

// TestRecoverySkipsRecordsAfterGap: with writes pipelined, a record can land
// after an earlier one failed. Its calls were never answered (answers go out
// in order), so recovery must not apply it.
func TestRecoverySkipsRecordsAfterGap(t *testing.T) {
	e := newEnv(t, t.TempDir())
	ctx := context.Background()
	stop := e.start("a", Config{})
	if _, err := e.client.Hold(ctx, "ev.0", hold("k1", "s-1")); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The last record of that epoch, and a forged one two generations on.
	m, err := e.set.Inventory.GetLastMsgForSubject(ctx, streams.InventoryLogSubject("ev.0"))
	if err != nil {
		t.Fatal(err)
	}
	var last record
	if err := json.Unmarshal(m.Data, &last); err != nil {
		t.Fatal(err)
	}
	orphan := record{Owner: last.Owner, Epoch: last.Epoch, Gen: last.Gen + 2, D: []*inventory.Decision{{
		Type: inventory.HoldPlaced, At: time.Now().UnixNano(), Hold: "ev.0.orphan", Seats: []string{"s-5"}, Qty: 1,
		Expires: time.Now().Add(time.Hour).UnixNano(), Key: inventory.IdemKey{1}, FP: "x"}}}
	b, _ := json.Marshal(orphan)
	if _, err := e.js.Publish(ctx, streams.InventoryLogSubject("ev.0"), b); err != nil {
		t.Fatal(err)
	}
	stop = e.start("b", Config{})
	defer stop()
	a, err := e.client.Availability(ctx, "ev.0")
	if err != nil {
		t.Fatal(err)
	}
	if a.Seats["s-1"] != inventory.Held || a.Seats["s-5"] != inventory.Free {
		t.Fatalf("s-1 %v (want held), s-5 %v (want free: its record followed a gap)", a.Seats["s-1"], a.Seats["s-5"])
	}
}

// TestAvailabilityExpiring: the owner answers, per zone, the held seats
// and GA quantity whose hold expires within the asked horizon; a plain
// request (the edge's) gets none, a bad horizon is refused.
func TestAvailabilityExpiring(t *testing.T) {
	e := newEnv(t, t.TempDir())
	stop := e.start("a", Config{})
	defer func() { _ = stop() }()
	ctx := context.Background()
	for _, r := range []inventory.HoldRequest{
		{Seats: []string{"s-1", "s-2"}, TTLSeconds: 60, IdempotencyKey: "a", Fingerprint: "a"},
		{Seats: []string{"s-3"}, TTLSeconds: 600, IdempotencyKey: "b", Fingerprint: "b"},
		{Zone: "ga", Quantity: 4, TTLSeconds: 90, IdempotencyKey: "c", Fingerprint: "c"},
		{Zone: "ga", Quantity: 3, TTLSeconds: 1200, IdempotencyKey: "d", Fingerprint: "d"},
	} {
		if _, err := e.client.Hold(ctx, "ev.0", r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		within       time.Duration
		seats, gaQty int
	}{{0, 0, 0}, {30 * time.Second, 0, 0}, {2 * time.Minute, 2, 4}, {15 * time.Minute, 3, 4}, {time.Hour, 3, 7}} {
		a, err := e.client.AvailabilityExpiring(ctx, "ev.0", c.within)
		if err != nil {
			t.Fatal(err)
		}
		if a.Zones[0].Expiring != c.seats || a.Zones[1].Expiring != c.gaQty || a.Zones[0].Held != 3 || a.Zones[1].Held != 7 {
			t.Fatalf("within %v: %+v, want %d seats and %d GA", c.within, a.Zones, c.seats, c.gaQty)
		}
	}
	if a, err := e.client.Availability(ctx, "ev.0"); err != nil || a.Zones[0].Expiring != 0 || a.Zones[1].Expiring != 0 {
		t.Fatalf("plain availability: %+v %v", a.Zones, err)
	}
	if _, err := e.client.AvailabilityExpiring(ctx, "ev.0", -time.Second); !errs.Is(errs.Invalid, err) {
		t.Fatalf("negative horizon: %v", err)
	}
}
