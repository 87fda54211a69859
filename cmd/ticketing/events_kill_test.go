package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/jsnames"
)

// An event EVENTS acknowledged survives a SIGKILL of its core: publishers
// forget what is acknowledged (the orders' outbox relays delete the
// entries, the payment service publishes once), and the bridge's
// checkpoint is a stream sequence, which a lost tail would give to the
// next events. Events are published as fast as the core takes them, and
// the core is killed the moment the last is acknowledged.
func TestEventsSurviveACoreKill(t *testing.T) {
	c := newCores(t, 1)[0]
	c.start()
	c.waitReady(60 * time.Second)
	nc := c.conn()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 5000
	run := time.Now().UnixNano()
	var acks []jetstream.PubAckFuture
	for i := range n {
		m := nats.NewMsg(fmt.Sprintf("%stest.%d", jsnames.EventsSubjPx, i))
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("kill-%d-%d", run, i))
		m.Data = []byte(`{"n":` + fmt.Sprint(i) + `}`)
		f, err := js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, f)
	}
	var last uint64
	for _, f := range acks {
		select {
		case a := <-f.Ok():
			last = max(last, a.Sequence)
		case err := <-f.Err():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	c.kill9()
	c.start()
	c.waitReady(60 * time.Second)
	nc = c.conn()
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, jsnames.Events)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(jsnames.EventsSubjPx+"test.>"))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Msgs; got != n || info.State.LastSeq < last {
		t.Fatalf("after the kill EVENTS holds %d of the %d acknowledged events (last sequence %d, acknowledged up to %d)",
			got, n, info.State.LastSeq, last)
	}
}
