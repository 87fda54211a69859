package natsevents_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/fraud/memory"
	"github.com/ticketing/ticketing/services/fraud/natsevents"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// An engine's decisions reach EVENTS as CloudEvents on events.fraud.<action>,
// with the decision as data, the id as Nats-Msg-Id (a repeat is stored
// once), and no address in them.
func TestDecisionsReachEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, nc, js := nodetest.Start(t)
	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsevents.New(nc, natsevents.Config{Source: "/core/t/fraud", Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	counters, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// A publisher that also keeps what it passes on, to publish one twice.
	var sent []fraud.Event
	keep := publisherFunc(func(ctx context.Context, ev fraud.Event) error {
		sent = append(sent, ev)
		return pub.Publish(ctx, ev)
	})
	e, err := fraud.New(fraud.Config{}, counters, keep)
	if err != nil {
		t.Fatal(err)
	}
	signals := []fraud.Signals{
		{Action: fraud.ActionSignIn, AccountID: "alice", Address: netip.MustParseAddr("198.51.100.20"), Device: "alice-phone"},
		{Action: fraud.ActionSignUp, Address: netip.MustParseAddr("2001:db8::7"), JoinGuard: fraud.JoinGuardLimited},
		{Action: fraud.ActionPurchase, AccountID: "bob", AccountAge: time.Hour},
	}
	var decisions []fraud.Decision
	for _, s := range signals {
		d, err := e.Decide(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		decisions = append(decisions, d)
	}
	if err := pub.Publish(ctx, sent[0]); err != nil { // a retry: stored once
		t.Fatal(err)
	}
	pub.Close(ctx)
	if st := pub.Stats(); st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := pub.Publish(ctx, sent[0]); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("Publish after Close: %v", err)
	}

	info, err := set.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("%d events in the stream, want 3", info.State.Msgs)
	}
	c, err := set.Events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	wantSubjects := []string{"events.fraud.signin", "events.fraud.signup", "events.fraud.purchase"}
	wantCE := []string{"account:alice", "network:2001:db8::/64", "account:bob"}
	for i := range 3 {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cloudevents.Unmarshal(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		h := m.Headers()
		if m.Subject() != wantSubjects[i] || ev.Type != fraud.TypeDecided || ev.Source != "/core/t/fraud" ||
			ev.Subject != wantCE[i] || ev.PartitionKey != wantCE[i] || ev.ID != sent[i].ID ||
			h.Get(nats.MsgIdHdr) != ev.ID || h.Get(cloudevents.HeaderType) != fraud.TypeDecided || h.Get(cloudevents.HeaderSubject) != wantCE[i] {
			t.Fatalf("message %s %v: event %+v", m.Subject(), h, ev)
		}
		var data fraud.Event
		if err := json.Unmarshal(ev.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.Outcome != decisions[i].Outcome || data.Score != decisions[i].Score || data.Action != signals[i].Action || data.At.IsZero() {
			t.Fatalf("data %s for decision %+v", ev.Data, decisions[i])
		}
		for _, secret := range []string{"198.51.100.20", "2001:db8::7", "alice-phone"} {
			if strings.Contains(string(m.Data()), secret) {
				t.Fatalf("event %s holds %s", m.Data(), secret)
			}
		}
	}
	if !strings.HasPrefix(wantSubjects[0], jsnames.EventsSubjPx) {
		t.Fatal("subjects outside EVENTS")
	}
}

// A full buffer drops and says so, without blocking.
func TestFullBufferDrops(t *testing.T) {
	_, nc, _ := nodetest.Start(t) // no EVENTS stream: nothing is acknowledged
	pub, err := natsevents.New(nc, natsevents.Config{Source: "/t", Buffer: 1, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pub.Close(ctx)
	}()
	ev := fraud.Event{ID: "x", Action: fraud.ActionSignIn, Outcome: fraud.OutcomeAllow, At: time.Now()}
	var dropped int
	for range 1000 {
		if err := pub.Publish(context.Background(), ev); errs.Is(errs.Unavailable, err) {
			dropped++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if dropped == 0 || pub.Stats().Dropped != int64(dropped) {
		t.Fatalf("dropped %d, stats %+v", dropped, pub.Stats())
	}
}

func TestConfig(t *testing.T) {
	_, nc, _ := nodetest.Start(t)
	for _, cfg := range []natsevents.Config{{}, {Source: "/t", Buffer: -1}} {
		if _, err := natsevents.New(nc, cfg); !errs.Is(errs.Invalid, err) {
			t.Errorf("New(%+v): %v, want kind %v", cfg, err, errs.Invalid)
		}
	}
}

type publisherFunc func(context.Context, fraud.Event) error

func (f publisherFunc) Publish(ctx context.Context, ev fraud.Event) error { return f(ctx, ev) }
