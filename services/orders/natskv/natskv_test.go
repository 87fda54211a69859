package natskv_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/services/orders/natskv"
	"github.com/ticketing/ticketing/services/orders/orderstest"
)

// open starts a JetStream server with an EVENTS stream, a store and its
// outbox relay.
func open(t *testing.T) orderstest.Fixture {
	_, nc, js := nodetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	s, err := natskv.Open(ctx, js, nc, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	relay := &outbox.Relay{KV: s.Bucket(), JS: js, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; s.Close() })
	return orderstest.Fixture{Store: s, Published: func(t *testing.T) []string {
		t.Helper()
		c, err := events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events.order.>"}})
		if err != nil {
			t.Fatal(err)
		}
		info, err := events.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for range info.State.Msgs {
			m, err := c.Next(jetstream.FetchMaxWait(time.Second))
			if err != nil {
				break
			}
			ids = append(ids, m.Headers().Get("Nats-Msg-Id"))
		}
		return ids
	}}
}

func TestContract(t *testing.T) { orderstest.Run(t, open) }
