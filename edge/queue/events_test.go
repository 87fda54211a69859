package queue

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/queue"
)

// Queue events reach the EVENTS stream as CloudEvents the analytics funnel
// counts, once per ticket and type.
func TestJetStreamEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	p, err := NewJetStreamEvents(nc, "", "edge-t", 16, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	a, b := queue.TicketFor(queue.NewTicketKey(), "a"), queue.TicketFor(queue.NewTicketKey(), "b")
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	p.QueueEvent(TypeQueueJoined, "finals", a, at)
	p.QueueEvent(TypeQueueJoined, "finals", a, at.Add(time.Second)) // the same ticket again (another edge, a retry)
	p.QueueEvent(TypeQueueJoined, "finals", b, at)
	p.QueueEvent(TypeQueueAdmitted, "finals", a, at.Add(time.Minute))
	p.Close(ctx)
	if p.Dropped() != 0 || p.Failed() != 0 {
		t.Fatalf("dropped %d, failed %d", p.Dropped(), p.Failed())
	}
	s, err := js.Stream(ctx, jsnames.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("%d events in the stream, want 3", info.State.Msgs)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for range 3 {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cloudevents.Unmarshal(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		var d analytics.EventData
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.EventID != "finals" || len(d.Session) != 32 || d.At.IsZero() {
			t.Fatalf("data %s: %v", ev.Data, err)
		}
		if m.Subject() != "events.queue.finals" || m.Headers().Get(cloudevents.HeaderType) != ev.Type || !analytics.Counted(ev.Type) {
			t.Fatalf("event %s %v", m.Subject(), m.Headers())
		}
		types[ev.Type]++
	}
	if types[TypeQueueJoined] != 2 || types[TypeQueueAdmitted] != 1 {
		t.Fatalf("types %v", types)
	}
}
