package kafkarunner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/kafkarunner"
	"github.com/ticketing/ticketing/services/reporting/natskv"
	"github.com/ticketing/ticketing/services/reporting/postgres"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestExactlyOncePostgresKafka: real Kafka and real PostgreSQL.
func TestExactlyOncePostgresKafka(t *testing.T) {
	brokers := testservers.KafkaBrokers(t)
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, brokers, postgres.New(pool))
}

// TestExactlyOnceEmbedded: kfake and the JetStream KV store of `ticketing dev`.
func TestExactlyOnceEmbedded(t *testing.T) {
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	_, _, js := nodetest.Start(t)
	s, err := natskv.Open(context.Background(), js, natskv.Config{Bucket: "reporting-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, e.Brokers(), s)
}

// faulty fails some Apply calls: the 3rd without writing anything (a
// transaction rolled back), the 5th after writing the first half of the
// batch (a process that died after one commit of two, or before it could
// acknowledge its commit).
type faulty struct {
	reporting.Store
	calls atomic.Int64
}

var errInjected = errors.New("injected failure")

func (f *faulty) Apply(ctx context.Context, recs []reporting.Record) (reporting.Applied, error) {
	switch f.calls.Add(1) {
	case 3:
		return reporting.Applied{}, errInjected
	case 5:
		if _, err := f.Store.Apply(ctx, recs[:len(recs)/2]); err != nil {
			return reporting.Applied{}, err
		}
		return reporting.Applied{}, errInjected
	}
	return f.Store.Apply(ctx, recs)
}

// killing is a store whose writes stop when kill is called: a process
// killed mid-batch, whose last transaction never commits.
// killing dies, failing every Apply, once it has applied after records: a
// process killed halfway, at a point that does not depend on how fast the
// test notices.
type killing struct {
	reporting.Store
	after   int
	mu      sync.Mutex
	applied int
}

func (k *killing) dead() bool { k.mu.Lock(); defer k.mu.Unlock(); return k.applied >= k.after }

func (k *killing) Apply(ctx context.Context, recs []reporting.Record) (reporting.Applied, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.applied >= k.after {
		return reporting.Applied{}, errors.New("killed")
	}
	a, err := k.Store.Apply(ctx, recs)
	if err == nil {
		k.applied += len(recs)
	}
	return a, err
}

func exactlyOnce(t *testing.T, brokers []string, store reporting.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := kafka.ClientConfig{Brokers: brokers, ClientID: "reporting-test"}
	topic := fmt.Sprintf("reporting.test.%d", time.Now().UnixNano())
	admin, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.EnsureTopics(ctx, kafka.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.DeleteTopics(context.Background(), topic) })
	p, err := kafka.NewProducer(kafka.ProducerConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()

	// A random stream over five events, with a duplicate of an event id and
	// an undecodable record.
	rnd := rand.New(rand.NewPCG(1, 2))
	types := []string{"hold.placed", "hold.released", "hold.expired", "seats.sold", "sale.cancelled"}
	var krs []*kafka.Record
	for i := range 400 {
		ev := fmt.Sprintf("event-%d", rnd.IntN(5))
		n := 1 + rnd.IntN(4)
		body := reportingtest.Body(reportingtest.Ev{ID: fmt.Sprintf("id-%d", i), Type: types[rnd.IntN(len(types))], EventID: ev,
			Zones: map[string]int{fmt.Sprintf("z%d", rnd.IntN(3)): n}, Amount: int64(n) * 2500, Organizer: "org-" + ev,
			At: reportingtest.T0.Add(time.Duration(i) * 37 * time.Second)})
		krs = append(krs, &kafka.Record{Topic: topic, Key: []byte(ev), Value: body})
		if i == 100 {
			krs = append(krs, &kafka.Record{Topic: topic, Key: []byte(ev), Value: body}) // the bridge wrote it twice
			krs = append(krs, &kafka.Record{Topic: topic, Key: []byte(ev), Value: []byte("garbage")})
		}
	}
	if err := p.Produce(ctx, krs...); err != nil {
		t.Fatal(err)
	}
	var all []reporting.Record
	end := map[reporting.Partition]int64{}
	for part := range int32(3) {
		for _, kr := range krs {
			if kr.Partition == part {
				all = append(all, reporting.Record{Topic: topic, Partition: part, Offset: kr.Offset, Value: kr.Value})
				end[reporting.Partition{Topic: topic, Partition: part}] = kr.Offset + 1
			}
		}
	}
	want := reportingtest.Expected(all)

	cfg := kafkarunner.Config{
		Consumer: kafka.ConsumerConfig{Client: client, Group: topic, Topics: []string{topic}, MaxPollRecords: 25,
			SessionTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond, RebalanceTimeout: 10 * time.Second},
		RetryBackoff: 10 * time.Millisecond, Logger: quiet,
	}
	applied := func() int64 {
		parts := make([]reporting.Partition, 0, len(end))
		for p := range end {
			parts = append(parts, p)
		}
		got, err := store.Offsets(ctx, parts)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, o := range got {
			n += o
		}
		return n
	}
	var total int64
	for _, o := range end {
		total += o
	}

	// The first process fails batches now and then and is killed halfway.
	k := &killing{Store: &faulty{Store: store}, after: int(total / 2)}
	r1, err := kafkarunner.New(k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { done1 <- r1.Run(ctx1) }()
	waitFor(ctx, t, "the first process to die halfway", k.dead)
	stop1()
	if err := <-done1; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if applied() >= total {
		t.Fatalf("the first process applied everything before it was killed; the test shows nothing")
	}

	// A second process resumes from the store.
	r2, err := kafkarunner.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, stop2 := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(ctx2) }()
	waitFor(ctx, t, "every record to be applied", func() bool { return applied() >= total })
	stop2()
	if err := <-done2; err != nil {
		t.Fatalf("run: %v", err)
	}
	if err := r2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	events := make([]string, 0, len(want.Events))
	for id := range want.Events {
		events = append(events, id)
	}
	reportingtest.Check(t, store, want, events...)
	svc := reporting.Service{Store: store}
	var sold int64
	for _, id := range events {
		r, err := svc.EventReport(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sold += r.Totals.Sold
	}
	if sold == 0 {
		t.Fatal("no sale in the stream: the test shows little")
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
