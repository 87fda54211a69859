package kafkarunner_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	"github.com/ticketing/ticketing/services/analytics/kafkarunner"
	"github.com/ticketing/ticketing/services/analytics/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func embedded(t *testing.T) []string {
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e.Brokers()
}

func fileStores(t *testing.T) func(t *testing.T) analytics.Store {
	path := filepath.Join(t.TempDir(), "analytics.json")
	return func(t *testing.T) analytics.Store {
		s, err := filestore.Open(filestore.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func pgStores(t *testing.T) func(t *testing.T) analytics.Store {
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T) analytics.Store { return postgres.New(pool) }
}

func TestExactlyOnceEmbeddedFile(t *testing.T)     { exactlyOnce(t, embedded(t), fileStores(t)) }
func TestExactlyOnceEmbeddedPostgres(t *testing.T) { exactlyOnce(t, embedded(t), pgStores(t)) }
func TestExactlyOnceKafkaPostgres(t *testing.T) {
	exactlyOnce(t, testservers.KafkaBrokers(t), pgStores(t))
}

// dying commits its crashAt-th batch and then dies before the consumer
// hears of it: the batch is delivered again, and must count once.
type dying struct {
	analytics.Store
	mu      sync.Mutex
	calls   int
	crashAt int
	dead    chan struct{}
	stop    context.CancelFunc
}

func (d *dying) Apply(ctx context.Context, in []analytics.Input) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.dead:
		return 0, errors.New("dead")
	default:
	}
	d.calls++
	n, err := d.Store.Apply(ctx, in)
	if err != nil || d.calls < d.crashAt {
		return n, err
	}
	close(d.dead)
	d.stop()
	return 0, errors.New("killed after committing the batch")
}

func body(i int, typ string, data map[string]any) []byte {
	b, err := cloudevents.Encode(&cloudevents.Event{SpecVersion: "1.0", ID: fmt.Sprintf("e-%d", i), Source: "/t", Type: typ,
		Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)}, data)
	if err != nil {
		panic(err)
	}
	return b
}

func exactlyOnce(t *testing.T, brokers []string, open func(t *testing.T) analytics.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	topic := "analytics-test-" + hex.EncodeToString(rb[:])
	client := kafka.ClientConfig{Brokers: brokers, ClientID: "analytics-test"}
	adm, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, kafka.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.DeleteTopics(context.Background(), topic) })
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(context.Background())

	// Three events; per event 100 joins, 100 holds of 2 tickets, and
	// records the funnel does not count.
	const per = 100
	var recs []*kafka.Record
	for i := range 3 * per {
		id := fmt.Sprintf("event-%d", i%3)
		recs = append(recs,
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, analytics.TypeQueueJoined, map[string]any{"event_id": id, "session": "s"})},
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, analytics.TypeHoldPlaced, map[string]any{"event_id": id, "quantity": 2})},
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, "ticketing.orders.placed", map[string]any{"event_id": id})},
		)
	}
	recs = append(recs, &kafka.Record{Topic: topic, Key: []byte("event-0"), Value: []byte("garbage")})
	if err := prod.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	cfg := kafkarunner.Config{Logger: quiet, RetryBackoff: 10 * time.Millisecond,
		Consumer: kafka.ConsumerConfig{Client: client, Group: topic, Topics: []string{topic}, MaxPollRecords: 50}}
	rctx, stop := context.WithCancel(ctx)
	first := &dying{Store: open(t), crashAt: 3, dead: make(chan struct{}), stop: stop}
	r1, err := kafkarunner.New(first, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Run(rctx); err != nil {
		t.Fatal(err)
	}
	_ = r1.Close(ctx)
	select {
	case <-first.dead:
	default:
		t.Fatal("the first runner stopped before it died")
	}

	store := open(t)
	r2, err := kafkarunner.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop = context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r2.Run(rctx) }()
	// Wait until every partition's offset is past its last record.
	want := map[analytics.Position]int64{}
	for _, r := range recs {
		p := analytics.Position{Topic: topic, Partition: r.Partition}
		want[p] = max(want[p], r.Offset+1)
	}
	ps := make([]analytics.Position, 0, len(want))
	for p := range want {
		ps = append(ps, p)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for {
		got, err := store.Offsets(ctx, ps)
		if err != nil {
			t.Fatal(err)
		}
		caught := true
		for p, n := range want {
			caught = caught && got[p] == n
		}
		if caught {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("offsets %v, want %v", got, want)
		case <-tick.C:
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = r2.Close(ctx)
	for e := range 3 {
		f, err := store.Funnel(ctx, fmt.Sprintf("event-%d", e))
		if err != nil {
			t.Fatal(err)
		}
		if f.Joined != per || f.HoldsPlaced != per || f.HeldTickets != 2*per {
			t.Errorf("event-%d: %+v", e, f)
		}
	}
	if _, err := store.Funnel(ctx, "event-3"); !errs.Is(errs.NotFound, err) {
		t.Errorf("event-3: %v", err)
	}
}
