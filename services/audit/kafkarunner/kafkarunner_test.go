package kafkarunner_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/audittest"
	"github.com/ticketing/ticketing/services/audit/filelog"
	"github.com/ticketing/ticketing/services/audit/kafkarunner"
	"github.com/ticketing/ticketing/services/audit/postgres"
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

func fileStores(t *testing.T) func(t *testing.T) audit.Store {
	dir := t.TempDir()
	return func(t *testing.T) audit.Store {
		s, err := filelog.Open(filelog.Config{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
}

func pgStores(t *testing.T) func(t *testing.T) audit.Store {
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	return func(t *testing.T) audit.Store { return postgres.New(pool) }
}

func TestExactlyOnceEmbeddedFile(t *testing.T) {
	exactlyOnce(t, embedded(t), fileStores(t))
}

func TestExactlyOnceEmbeddedPostgres(t *testing.T) {
	exactlyOnce(t, embedded(t), pgStores(t))
}

func TestExactlyOnceKafkaPostgres(t *testing.T) {
	exactlyOnce(t, testservers.KafkaBrokers(t), pgStores(t))
}

// crashing is a store that, on its crashAt-th Append, appends only the
// first half of the batch and then fails, as a process killed midway
// through writing a batch would leave it (the file store can really be
// left so; the PostgreSQL store's transaction would have kept nothing,
// which is the easier case). It then cancels the runner.
type crashing struct {
	audit.Store
	mu      sync.Mutex
	calls   int
	crashAt int
	crashed chan struct{}
	stop    context.CancelFunc
}

var errKilled = errors.New("killed mid-batch")

func (c *crashing) Append(ctx context.Context, recs []audit.Record) (audit.AppendResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	select {
	case <-c.crashed:
		return audit.AppendResult{}, errKilled // dead
	default:
	}
	if c.calls < c.crashAt || len(recs) < 2 {
		return c.Store.Append(ctx, recs)
	}
	if _, err := c.Store.Append(ctx, recs[:len(recs)/2]); err != nil {
		return audit.AppendResult{}, err
	}
	close(c.crashed)
	c.stop()
	return audit.AppendResult{}, errKilled
}

func exactlyOnce(t *testing.T, brokers []string, open func(t *testing.T) audit.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var b [4]byte
	_, _ = rand.Read(b[:])
	topic := "audit-test-" + hex.EncodeToString(b[:])
	client := kafka.ClientConfig{Brokers: brokers, ClientID: "audit-test"}
	adm, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, kafka.TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = adm.DeleteTopics(context.Background(), topic) })

	// 300 events over 3 partitions, then one produced again (as the bridge
	// may after a crash).
	prod, err := kafka.NewProducer(kafka.ProducerConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close(context.Background())
	const n = 300
	recs := make([]*kafka.Record, 0, n+1)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for i := range n {
		key := fmt.Sprintf("event-%d", i%7)
		recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(key),
			Value: audittest.Body(fmt.Sprintf("ev-%d", i), "ticketing.inventory.hold.placed", at.Add(time.Duration(i)*time.Millisecond))})
	}
	recs = append(recs, &kafka.Record{Topic: topic, Key: []byte("event-3"), Value: recs[3].Value})
	if err := prod.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	perChain := map[audit.Chain]int{}
	for _, r := range recs[:n] {
		perChain[audit.Chain{Topic: topic, Partition: r.Partition}]++
	}

	cfg := kafkarunner.Config{Logger: quiet, RetryBackoff: 10 * time.Millisecond,
		Consumer: kafka.ConsumerConfig{Client: client, Group: topic, Topics: []string{topic}, MaxPollRecords: 40}}

	// First runner: killed halfway through its third batch.
	rctx, stop := context.WithCancel(ctx)
	first := &crashing{Store: open(t), crashAt: 3, crashed: make(chan struct{}), stop: stop}
	r1, err := kafkarunner.New(first, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Run(rctx); err != nil {
		t.Fatal(err)
	}
	_ = r1.Close(ctx)
	select {
	case <-first.crashed:
	default:
		t.Fatal("the first runner stopped before it was killed")
	}

	// Second runner, on a store opened again: resumes from the chains'
	// heads and ends with every event once.
	store := open(t)
	r2, err := kafkarunner.New(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop = context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r2.Run(rctx) }()
	count := func() int {
		total := 0
		for c := range perChain {
			total += len(audittest.All(t, store, c))
		}
		return total
	}
	tick := time.NewTicker(20 * time.Millisecond)
	for count() < n {
		select {
		case <-ctx.Done():
			t.Fatalf("only %d of %d events in the log", count(), n)
		case <-tick.C:
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = r2.Close(ctx)

	seen := map[string]bool{}
	for c, want := range perChain {
		entries := audittest.All(t, store, c)
		if len(entries) != want {
			t.Errorf("chain %s: %d entries, want %d", c, len(entries), want)
		}
		for i, e := range entries {
			if seen[e.EventID] {
				t.Errorf("event %s twice in the log", e.EventID)
			}
			seen[e.EventID] = true
			if i > 0 && e.Offset <= entries[i-1].Offset {
				t.Errorf("chain %s: offsets out of order", c)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events in the log, want %d", len(seen), n)
	}
	audittest.MustVerify(t, store)
}
