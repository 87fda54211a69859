package natskv_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/orders/natskv"
	"github.com/ticketing/ticketing/services/orders/orderstest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// rig is a JetStream server with an EVENTS stream.
type rig struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	events jetstream.Stream
}

func newRig(t *testing.T) rig {
	_, nc, js := nodetest.Start(t)
	events, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return rig{nc: nc, js: js, events: events}
}

func (r rig) open(t *testing.T) *natskv.Store {
	t.Helper()
	s, err := natskv.Open(context.Background(), r.js, r.nc, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// relay runs a relay of s until the test ends or stop is called.
func relay(t *testing.T, s *natskv.Store) (r *natskv.Relay, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	r = &natskv.Relay{Store: s, Log: quiet}
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return r, stop
}

// published is the event ids of the order events in EVENTS, in stream
// order.
func (r rig) published(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, m := range r.messages(t) {
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
	}
	return ids
}

// messages are the order events in EVENTS, in stream order (read one by
// one: no consumer is left behind by a test that polls).
func (r rig) messages(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	info, err := r.events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.events.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(m.Subject, orders.SubjectPrefix) {
			msgs = append(msgs, m)
		}
	}
	return msgs
}

// open starts a JetStream server with an EVENTS stream, a store and its
// outbox relay.
func open(t *testing.T) orderstest.Fixture {
	r := newRig(t)
	s := r.open(t)
	relay(t, s)
	return orderstest.Fixture{Store: s, Published: r.published}
}

func TestContract(t *testing.T) { orderstest.Run(t, open) }

func newOrder(account, event string, tickets int) orders.Order {
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orders.Order{
		ID: orders.NewID(), Account: account, Event: event, Channel: "web",
		Holds:   []orders.Hold{{Partition: event + ".0", ID: "h_" + orders.NewID(), Zone: "ga", Quantity: tickets, ExpiresAt: now.Add(10 * time.Minute)}},
		QuoteID: "q_test", Lines: []orders.Line{{Kind: "ticket", Ref: "ga", Description: "GA", Quantity: tickets, Unit: 5000, Amount: 5000 * int64(tickets)}},
		Amounts: orders.Amounts{Currency: "USD", Subtotal: 5000 * int64(tickets), Total: 5000 * int64(tickets)},
	}
	if err := o.Start(now); err != nil {
		panic(err)
	}
	return o
}

// Transitions that leave the order counting write its key alone; those
// that claim or release write the claims and the count with it.
func TestSingleKeyTransitions(t *testing.T) {
	r := newRig(t)
	s := r.open(t)
	ctx := context.Background()
	st, err := r.js.Stream(ctx, "KV_orders")
	if err != nil {
		t.Fatal(err)
	}
	last := func() uint64 {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	o, _, err := s.Create(ctx, newOrder("acct-1", "ev-1", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		to     orders.State
		writes uint64
	}{{orders.RequiresAction, 1}, {orders.AwaitingPayment, 1}, {orders.Expired, 3}, {orders.Paid, 3}, {orders.Confirmed, 1}} {
		before := last()
		got, err := s.Update(ctx, o.ID, func(o *orders.Order) error { return o.Move(step.to, "test", time.Now()) })
		if err != nil {
			t.Fatal(err)
		}
		if after := last(); after-before != step.writes || got.Version != after {
			t.Fatalf("to %s: %d writes, version %d, last sequence %d; want %d writes", step.to, after-before, got.Version, after, step.writes)
		}
	}
}

// Every transition's events reach EVENTS once, in order, also when the
// relay starts only after the order was written again and again (each
// revision carries what the ones it replaced carried), and a relay
// started again publishes nothing again.
func TestRelayStartsLate(t *testing.T) {
	r := newRig(t)
	s := r.open(t)
	ctx := context.Background()
	var ids []string
	for range 3 {
		o, _, err := s.Create(ctx, newOrder("acct-1", "ev-1", 1), 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
		for _, to := range []orders.State{orders.RequiresAction, orders.AwaitingPayment, orders.Paid, orders.Confirmed} {
			if _, err := s.Update(ctx, o.ID, func(o *orders.Order) error { return o.Move(to, "test", time.Now()) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"created", "requires_action", "awaiting_payment", "paid", "confirmed"}
	rel, stop := relay(t, s)
	eventually.True(t, 15*time.Second, "every event published", func() bool { return len(r.published(t)) >= 3*len(want) })
	stop()
	if got := r.published(t); len(got) != 3*len(want) {
		t.Fatalf("%d events published, want %d", len(got), 3*len(want))
	}
	per := map[string][]string{}
	for _, m := range r.messages(t) {
		subject := m.Header.Get(cloudevents.HeaderSubject)
		per[subject] = append(per[subject], strings.TrimPrefix(m.Header.Get(cloudevents.HeaderType), orders.EventTypePrefix))
	}
	for _, id := range ids {
		if !slices.Equal(per[id], want) {
			t.Fatalf("order %s: events %v, want %v", id, per[id], want)
		}
	}
	// The relay recorded how far it got: another publishes nothing.
	again, stop := relay(t, s)
	o, _, err := s.Create(ctx, newOrder("acct-1", "ev-1", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 15*time.Second, "the new order's event published", func() bool { return len(r.published(t)) == 3*len(want)+1 })
	stop()
	if rel.Relayed() < uint64(3*len(want)) || again.Relayed() != 1 {
		t.Fatalf("the first relay published %d, the second %d (want 1: %s's)", rel.Relayed(), again.Relayed(), o.ID)
	}
}

// A write made once the relay published what the order carried carries
// its own events only.
func TestCarriesOnlyWhatIsNotRelayed(t *testing.T) {
	r := newRig(t)
	s := r.open(t)
	ctx := context.Background()
	carried := func(id string) int {
		e, err := s.Bucket().Get(ctx, "o."+id)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Outbox []outbox.Entry `json:"outbox"`
		}
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			t.Fatal(err)
		}
		return len(v.Outbox)
	}
	move := func(id string, to orders.State) {
		if _, err := s.Update(ctx, id, func(o *orders.Order) error { return o.Move(to, "test", time.Now()) }); err != nil {
			t.Fatal(err)
		}
	}
	o, _, err := s.Create(ctx, newOrder("acct-1", "ev-1", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	move(o.ID, orders.RequiresAction)
	if n := carried(o.ID); n != 2 {
		t.Fatalf("without a relay the second revision carries %d entries, want 2", n)
	}
	relay(t, s)
	eventually.True(t, 15*time.Second, "two events published", func() bool { return len(r.published(t)) == 2 })
	move(o.ID, orders.Paid)
	if n := carried(o.ID); n != 1 {
		t.Fatalf("after the relay the revision carries %d entries, want 1", n)
	}
	// A store of another node learns the relay's progress from the
	// bucket.
	other := r.open(t)
	eventually.True(t, 15*time.Second, "three events published", func() bool { return len(r.published(t)) == 3 })
	eventually.Nil(t, 15*time.Second, func() error {
		if _, err := other.Update(ctx, o.ID, func(o *orders.Order) error { o.Payment.Attempts++; return nil }); err != nil {
			return err
		}
		if n := carried(o.ID); n != 0 {
			return fmt.Errorf("the other store carried %d entries", n)
		}
		return nil
	})
}

// A bucket written by the earlier version: its outbox entries
// (out.<event id>) are published and purged, its due entries (due.<id>)
// are taken over by the orders they name.
func TestEarlierBucket(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, natskv.Config{}.KeyValueConfig())
	if err != nil {
		t.Fatal(err)
	}
	due := newOrder("acct-1", "ev-1", 1)
	due.NextAt = time.Now().Add(-time.Second).UTC()
	done := newOrder("acct-1", "ev-1", 1)
	done.NextAt = time.Time{}
	events := due.Events()
	for _, o := range []orders.Order{due, done} {
		o.Version = 0
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "o."+o.ID, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "due."+due.ID, strconv.AppendInt(nil, due.NextAt.UnixNano(), 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "due."+done.ID, nil); err != nil {
		t.Fatal(err)
	}
	ce := orders.CloudEvent(events[0], "/orders")
	entry, err := outbox.NewEntry(orders.Subject(due.ID), &ce, events[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	eb, _ := json.Marshal(entry)
	if _, err := kv.Put(ctx, "out."+events[0].ID, eb); err != nil {
		t.Fatal(err)
	}

	s := r.open(t)
	ids, err := s.Due(ctx, time.Now(), 10)
	if err != nil || !slices.Equal(ids, []string{due.ID}) {
		t.Fatalf("due %v (%v), want [%s]", ids, err, due.ID)
	}
	if keys, err := kv.ListKeysFiltered(ctx, "due.>"); err == nil {
		for k := range keys.Keys() {
			t.Errorf("due entry %s left", k)
		}
	}
	// A transition after the earlier event: both in EVENTS, in order.
	if _, err := s.Update(ctx, due.ID, func(o *orders.Order) error { return o.Move(orders.Cancelled, "test", time.Now()) }); err != nil {
		t.Fatal(err)
	}
	relay(t, s)
	eventually.True(t, 15*time.Second, "both events published", func() bool { return len(r.published(t)) == 2 })
	if got := r.published(t); got[0] != events[0].ID {
		t.Fatalf("published %v, the earlier event %s first", got, events[0].ID)
	}
	eventually.True(t, 15*time.Second, "the earlier outbox purged", func() bool {
		_, err := kv.Get(ctx, "out."+events[0].ID)
		return err != nil
	})
	// Updates of the order keep it out of the due list once nothing is
	// owed.
	if _, err := s.Update(ctx, due.ID, func(o *orders.Order) error {
		o.Todo, o.NextAt = nil, time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 15*time.Second, "nothing due", func() bool {
		ids, err := s.Due(ctx, time.Now().Add(time.Hour), 10)
		return err == nil && len(ids) == 0
	})
}

// BenchmarkPurchase measures the store's writes of a purchase from
// parallel callers, with a relay publishing the events into EVENTS as the
// saga's leader does: the create, a payment attempt, paid, and confirmed,
// and the payment's events applied again (no-op updates).
func BenchmarkPurchase(b *testing.B) {
	_, nc, js := nodetest.Start(b)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	s, err := natskv.Open(ctx, js, nc, natskv.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = (&natskv.Relay{Store: s, Log: quiet}).Run(rctx) }()
	defer func() { cancel(); <-done }()
	var n atomic.Int64
	steps := []func(o *orders.Order) error{
		func(o *orders.Order) error { o.Payment.Attempts++; return nil },
		func(o *orders.Order) error { return o.Move(orders.Paid, "payment_succeeded", time.Now()) },
		func(o *orders.Order) error {
			o.Done(orders.StepConfirm, time.Now())
			return o.Move(orders.Confirmed, "seats_sold", time.Now())
		},
		func(o *orders.Order) error { return nil },
		func(o *orders.Order) error { return nil },
	}
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			o := newOrder(fmt.Sprintf("acct-%d", i%5000), fmt.Sprintf("ev-%d", i%7), 2)
			if _, _, err := s.Create(ctx, o, 8); err != nil && errs.ReasonOf(err) != orders.ReasonPurchaseLimit {
				b.Error(err)
				return
			}
			for _, step := range steps {
				if _, err := s.Update(ctx, o.ID, step); err != nil && !errs.Is(errs.NotFound, err) {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "purchases/s")
}
