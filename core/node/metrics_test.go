package node_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/eventually"
)

// gauges gathers reg into name → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	return out
}

// TestStorageCollector: the node reports JetStream's storage and its data
// directory's file system, and the storage used grows with what a stream
// holds.
func TestStorageCollector(t *testing.T) {
	n, _, js := nodetest.Start(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Collector())
	before := gauges(t, reg)
	want := []string{"ticketing_jetstream_storage_used_bytes", "ticketing_jetstream_storage_reserved_bytes",
		"ticketing_jetstream_storage_max_bytes", "ticketing_jetstream_memory_used_bytes", "ticketing_jetstream_memory_max_bytes"}
	if runtime.GOOS == "linux" {
		want = append(want, "ticketing_data_dir_available_bytes", "ticketing_data_dir_size_bytes")
	}
	for _, name := range want {
		if _, ok := before[name]; !ok {
			t.Errorf("no %s (got %v)", name, before)
		}
	}
	if before["ticketing_jetstream_storage_max_bytes"] <= 0 {
		t.Errorf("storage max %v, want the limit nats-server runs under", before["ticketing_jetstream_storage_max_bytes"])
	}
	if runtime.GOOS == "linux" {
		if a, s := before["ticketing_data_dir_available_bytes"], before["ticketing_data_dir_size_bytes"]; a <= 0 || s < a {
			t.Errorf("data dir: available %v of %v", a, s)
		}
	}

	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill"}, Storage: jetstream.FileStorage,
		MaxBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 64<<10)
	for range 32 { // 2 MiB
		if _, err := js.Publish(ctx, "fill", payload); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 0, "2 MiB more storage used, 64 MiB reserved", func() bool {
		g := gauges(t, reg)
		return g["ticketing_jetstream_storage_used_bytes"]-before["ticketing_jetstream_storage_used_bytes"] >= 2<<20 &&
			g["ticketing_jetstream_storage_reserved_bytes"]-before["ticketing_jetstream_storage_reserved_bytes"] == 64<<20
	})
}
