package lease_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/lease"
)

// Of two nodes leading one lease, one works at a time; when it stops, the
// other takes over.
func TestLead(t *testing.T) {
	_, _, js := nodetest.Start(t)
	const ttl = 2 * time.Second
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "leases", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var working, overlaps atomic.Int64
	var worked [2]atomic.Bool
	ctxs := [2]context.Context{}
	cancels := [2]context.CancelFunc{}
	done := [2]chan struct{}{}
	for i := range 2 {
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			lease.Lead(ctxs[i], kv, "saga", []string{"a", "b"}[i], ttl, quiet, func(ctx context.Context, l *lease.Lease) {
				if working.Add(1) > 1 {
					overlaps.Add(1)
				}
				worked[i].Store(true)
				<-ctx.Done()
				working.Add(-1)
			})
		}()
	}
	defer func() {
		for i := range 2 {
			cancels[i]()
			<-done[i]
		}
	}()
	eventually.True(t, 10*time.Second, "a leader working", func() bool { return working.Load() == 1 })
	first := 0
	if worked[1].Load() {
		first = 1
	}
	cancels[first]()
	<-done[first]
	eventually.True(t, 10*time.Second, "the other node taking over", func() bool { return worked[1-first].Load() && working.Load() == 1 })
	if overlaps.Load() != 0 {
		t.Fatalf("%d overlapping leaders", overlaps.Load())
	}
}
