package owner

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/inventory"
)

// BenchmarkHold measures durable GA holds at one partition owner through
// NATS request/reply, many in flight (RunParallel with 256 goroutines per
// CPU), every log write synced.
func BenchmarkHold(b *testing.B) {
	e := newEnv(&testing.T{}, b.TempDir())
	defer e.close()
	stop := e.startBench(b)
	defer stop()
	var n atomic.Int64
	b.SetParallelism(256)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			_, err := e.client.Hold(ctx, "ev.0", inventory.HoldRequest{Zone: "ga", Quantity: 1,
				IdempotencyKey: fmt.Sprint("b", i), Fingerprint: "f"})
			if err != nil && !errs.Is(errs.Conflict, err) {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "holds/s")
}

func (e *env) startBench(b *testing.B) func() error {
	l := inventory.Layout{Zones: []inventory.ZoneDef{{ID: "ga", GA: true, Capacity: 1 << 30}}}
	ctx, cancel := context.WithCancel(context.Background())
	ls, err := leaseFor(ctx, e, "ev.0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	deps := Deps{NC: e.nc, JS: e.js, Streams: e.set, Secret: secret, Log: quiet, Metrics: e.metrics}
	go func() { done <- Run(ctx, Config{Node: "bench", LeaseTTL: leaseTTL}, deps, "ev.0", l, ls) }()
	if _, err := e.client.Availability(ctx, "ev.0"); err != nil {
		b.Fatal(err)
	}
	return func() error { cancel(); return <-done }
}
