package mirror_test

import (
	"testing"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
)

// BenchmarkMirror mirrors b.N events of 1 KiB from EVENTS into the embedded
// broker (in memory) and reports events a second: the whole hot path of the
// bridge (read, map, transaction, checkpoint, acknowledgement). `ticketing
// bench bridge` measures the same next to its same-run ceilings.
// Sub-benchmarks: one event a message, and messages of 1 to 24 events in
// turn (CloudEvents batches, as inventory owners relay group commits).
func BenchmarkMirror(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
	}{{"plain", 1}, {"batches", 24}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := testCtx(b)
			_, nc, js := core(b)
			e := embedded(b, kafka.EmbeddedConfig{})
			p := &publisher{js: js, batch: c.batch}
			p.publish(ctx, b, b.N, 1000)
			cfg := config("bench", e.Brokers())
			cfg.MaxBatch = 0 // the default
			b.SetBytes(1024)
			b.ResetTimer()
			br, _ := run(b, cfg, nc)
			eventually.True(b, wait, "mirrored", func() bool { return br.Stats().Checkpoint == p.seq() })
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
