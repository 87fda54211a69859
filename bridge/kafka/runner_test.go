package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
)

// closingFeed is a store that closes for good after its first batch.
type closingFeed struct{ batches atomic.Int64 }

func (*closingFeed) Record(_ kafka.TopicPartition, _ int64, value []byte) []byte { return value }

func (*closingFeed) Offsets(context.Context, []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
	return nil, nil
}

func (f *closingFeed) Apply(context.Context, [][]byte) error {
	if f.batches.Add(1) == 1 {
		return nil
	}
	return fmt.Errorf("the store is closed: %w", fs.ErrClosed)
}

// TestRunnerStopsOnStoreClosedForGood: a batch that fails because the
// store is closed for good ends Run with that error, where any other
// failure is retried: a consumer that can never apply again must not
// live on as if it could.
func TestRunnerStopsOnStoreClosedForGood(t *testing.T) {
	ctx := testCtx(t)
	e := startEmbedded(t, kafka.EmbeddedConfig{})
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	a, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.EnsureTopics(ctx, kafka.TopicSpec{Name: "closing", Partitions: 1, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	for i := range 2 {
		if err := p.Produce(ctx, &kafka.Record{Topic: "closing", Value: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	f := &closingFeed{}
	r, err := kafka.NewRunner(kafka.RunnerConfig{RetryBackoff: 10 * time.Millisecond,
		Consumer: kafka.ConsumerConfig{Client: client, Group: "closing", Topics: []string{"closing"}, MaxPollRecords: 1}}, kafka.Feed[kafka.TopicPartition, []byte](f))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	if err := r.Run(ctx); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("run: %v, want the store's fs.ErrClosed", err)
	}
	if n := f.batches.Load(); n != 2 {
		t.Fatalf("%d batches, want 2: run returned at the first closed one", n)
	}
}
