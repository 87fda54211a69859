package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/orders/natskv"
)

// The orders' JetStream store across a SIGKILL of the core: writers (this
// process, as a checkout on another node would) write orders through the
// core's JetStream while the core's saga leader relays their events, and
// the core is killed under them. Every write the store acknowledged has
// its events in EVENTS afterwards, each once, in the order of the order's
// transitions; a write whose answer the kill took may be there or not,
// and nothing after it (its writer stops on that order).
func TestOrderEventsSurviveACoreKill(t *testing.T) {
	c := newCores(t, 1)[0]
	c.start()
	c.waitReady(60 * time.Second)
	nc := c.conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := natskv.Open(ctx, js, nc, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Each order's acknowledged events (types), and whether its last write
	// is in doubt.
	type history struct {
		acked []string
		doubt string
	}
	var (
		mu     sync.Mutex
		hist   = map[string]*history{}
		writes atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	write := func(h *history, kind string, f func() error) bool {
		err := f()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			h.doubt = kind
			return false
		}
		h.acked = append(h.acked, kind)
		writes.Add(1)
		return true
	}
	run := run1()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := orderFor(fmt.Sprintf("kill-%s-%d", run, w), i)
				h := &history{}
				mu.Lock()
				hist[o.ID] = h
				mu.Unlock()
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				if !write(h, "created", func() error { _, _, err := s.Create(wctx, o, 0); return err }) {
					wcancel()
					continue
				}
				steps := []struct {
					kind string
					fn   func(*orders.Order) error
				}{
					{"requires_action", func(o *orders.Order) error { return o.Move(orders.RequiresAction, "test", time.Now()) }},
					{"awaiting_payment", func(o *orders.Order) error { return o.Move(orders.AwaitingPayment, "test", time.Now()) }},
					{"payment_declined", func(o *orders.Order) error { o.Note("payment_declined", "test", time.Now()); return nil }},
					{"requires_action", func(o *orders.Order) error { return o.Move(orders.RequiresAction, "test", time.Now()) }},
					{"cancelled", func(o *orders.Order) error { return o.Move(orders.Cancelled, "test", time.Now()) }},
				}
				for _, st := range steps {
					if !write(h, st.kind, func() error { _, err := s.Update(wctx, o.ID, st.fn); return err }) {
						break
					}
				}
				wcancel()
			}
		}()
	}
	// Kill the core with writes in flight, start it again, write on.
	eventually.True(t, time.Minute, "writes before the kill", func() bool { return writes.Load() > 300 })
	c.kill9()
	c.start()
	c.waitReady(60 * time.Second)
	after := writes.Load()
	eventually.True(t, time.Minute, "writes after the restart", func() bool { return writes.Load() > after+300 })
	close(stop)
	wg.Wait()

	// EVENTS, read until every acknowledged event is there.
	st, err := js.Stream(ctx, jsnames.Events)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string][]string
	eventually.Nil(t, 2*time.Minute, func() error {
		got = map[string][]string{}
		ids := map[string]bool{}
		cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{orders.SubjectPrefix + ">"}})
		if err != nil {
			return err
		}
		for {
			m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
			if errors.Is(err, nats.ErrTimeout) {
				break
			}
			if err != nil {
				return err
			}
			id := m.Headers().Get(cloudevents.HeaderID)
			if ids[id] {
				return fmt.Errorf("event %s twice in EVENTS", id)
			}
			ids[id] = true
			order := strings.TrimPrefix(m.Subject(), orders.SubjectPrefix)
			got[order] = append(got[order], strings.TrimPrefix(m.Headers().Get(cloudevents.HeaderType), orders.EventTypePrefix))
		}
		mu.Lock()
		defer mu.Unlock()
		for id, h := range hist {
			if len(got[id]) < len(h.acked) {
				return fmt.Errorf("order %s: %v in EVENTS, %v acknowledged", id, got[id], h.acked)
			}
		}
		return nil
	})
	doubts := 0
	for id, h := range hist {
		e := got[id]
		want := h.acked
		if h.doubt != "" {
			doubts++
			if len(e) == len(want)+1 {
				want = append(slices.Clone(want), h.doubt)
			}
		}
		if !slices.Equal(e, want) {
			t.Errorf("order %s: EVENTS has %v, acknowledged %v (in doubt: %q)", id, e, h.acked, h.doubt)
		}
	}
	t.Logf("%d orders, %d acknowledged writes, %d in doubt", len(hist), writes.Load(), doubts)
}

// run1 names a run (order ids of its own).
func run1() string { return fmt.Sprint(time.Now().UnixNano()) }

// orderFor is a started order of account with one GA hold that lasts an
// hour (the core's saga has nothing to do with it before it ends).
func orderFor(account string, i int) orders.Order {
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orders.Order{
		ID: orders.NewID(), Account: account, Event: "ev-kill", Channel: "web",
		Holds:   []orders.Hold{{Partition: "ev-kill.0", ID: fmt.Sprintf("h-%s-%d", account, i), Zone: "ga", Quantity: 1, ExpiresAt: now.Add(time.Hour)}},
		QuoteID: "q_test", Lines: []orders.Line{{Kind: "ticket", Ref: "ga", Description: "GA", Quantity: 1, Unit: 5000, Amount: 5000}},
		Amounts: orders.Amounts{Currency: "USD", Subtotal: 5000, Total: 5000},
	}
	if err := o.Start(now); err != nil {
		panic(err)
	}
	return o
}
