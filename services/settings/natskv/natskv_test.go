package natskv_test

import (
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/settings"
	"github.com/ticketing/ticketing/services/settings/natskv"
)

func entry(v string) []byte {
	return (&settings.Entry{Value: json.RawMessage(v), By: "t", At: time.Now()}).Encode()
}

// The store's writes are compare-and-set: a create of an existing key, an
// update or a delete from a stale revision are conflicts; a deletion
// reports its revision; concurrent writers through the service all land,
// one event each.
func TestStoreCompareAndSet(t *testing.T) {
	ctx := t.Context()
	_, nc, js := nodetest.Start(t)
	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st := &natskv.Store{KV: set.Settings, JS: js, NC: nc}
	const key = "setting.edge.holds.rate"
	r1, err := st.Put(ctx, key, entry(`5`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, key, entry(`6`), 0); !errs.Is(errs.Conflict, err) {
		t.Fatalf("create of an existing key: %v", err)
	}
	r2, err := st.Put(ctx, key, entry(`6`), r1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, key, entry(`7`), r1); !errs.Is(errs.Conflict, err) {
		t.Fatalf("update from a stale revision: %v", err)
	}
	if _, err := st.Delete(ctx, key, r1); !errs.Is(errs.Conflict, err) {
		t.Fatalf("delete from a stale revision: %v", err)
	}
	r3, err := st.Delete(ctx, key, r2)
	if err != nil || r3 <= r2 {
		t.Fatalf("delete: %d %v", r3, err)
	}
	if _, err := st.Get(ctx, key); !errs.Is(errs.NotFound, err) {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := st.Put(ctx, key, entry(`8`), 0); err != nil {
		t.Fatalf("create after delete: %v", err)
	}

	aud := &natskv.Auditor{JS: js, Events: set.Events, Prefix: jsnames.EventsSubjPx, Source: "/t"}
	svc := &settings.Service{Store: st, Auditor: aud}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := svc.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsBurst, Value: json.RawMessage(json.Number(string(rune('1' + i)))), By: "t"})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	info, err := set.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 8 {
		t.Fatalf("%d events for 8 concurrent changes", info.State.Msgs)
	}
	cur, err := st.Get(ctx, "setting.edge.holds.burst")
	if err != nil {
		t.Fatal(err)
	}
	// The current revision is audited. Concurrent changes publish their
	// events concurrently, so the subject's last event may be of an
	// earlier revision (LastAudited then reports that one, and a
	// reconciliation publishes the current one again: the same event id).
	subject := natskv.Subject(jsnames.EventsSubjPx, "setting.edge.holds.burst")
	oc, err := set.Events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := oc.Fetch(8, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	audited := map[uint64]bool{}
	for m := range batch.Messages() {
		rev, _ := strconv.ParseUint(m.Headers().Get(natskv.HeaderRevision), 10, 64)
		audited[rev] = true
	}
	last, err := aud.LastAudited(ctx, "setting.edge.holds.burst")
	if err != nil || !audited[last] || !audited[cur.Revision] || len(audited) != 8 {
		t.Fatalf("audited revisions %v, last %d %v, current %d", audited, last, err, cur.Revision)
	}
}
