package metricnames

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSelectors(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`up{job="core"} == 0`, []string{"up"}},
		{`sum(rate(ticketing_http_requests_total{route=~"/v1/holds/:id|x{1,2}",status=~'5..'}[5m])) or vector(0)`,
			[]string{"ticketing_http_requests_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(ticketing_http_request_seconds_bucket[$__rate_interval])))`,
			[]string{"ticketing_http_request_seconds_bucket"}},
		{"ticketing:checkout_error_ratio:rate1h > (14.4 * 0.001)\nand\nticketing:checkout_error_ratio:rate5m > (14.4 * 0.001)",
			[]string{"ticketing:checkout_error_ratio:rate1h", "ticketing:checkout_error_ratio:rate5m"}},
		{`max(ticketing_bridge_lag_seconds and on (job, instance) (ticketing_bridge_active == 1))`,
			[]string{"ticketing_bridge_active", "ticketing_bridge_lag_seconds"}},
		{`a / ignoring(zone) group_left(event) b unless on(event) c offset 5m`, []string{"a", "b", "c"}},
		{`sum without (instance) (x) by (y)`, []string{"x"}},
		{`predict_linear(disk[6h], 4 * 3600) < 0 and ratio < 1e-3 # a comment with a_name`, []string{"disk", "ratio"}},
		{`sum_over_time(x[30d:5m]) / count_over_time(y{a="b"}[${window}])`, []string{"x", "y"}},
		{`topk(5, ticketing_inventory_sold_seats{event="$event"})`, []string{"ticketing_inventory_sold_seats"}},
		{`ticketing:checkout_request_seconds:p99_rate5m > 0.5`, []string{"ticketing:checkout_request_seconds:p99_rate5m"}},
	} {
		got, err := Selectors(c.expr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Selectors(%q) = %q, %v; want %q", c.expr, got, err, c.want)
		}
	}
	if _, err := Selectors(`rate(x[5m)`); err == nil {
		t.Error("an unbalanced bracket is not an error")
	}
}

func TestDefined(t *testing.T) {
	dir := t.TempDir()
	src := `package m

import "github.com/prometheus/client_golang/prometheus"

const ns = "ticketing"

func metrics() {
	const sub = "bridge"
	_ = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total"})
	_ = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ticketing_queue_waiting"}, nil)
	_ = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketing_write_seconds"})
	_ = prometheus.NewDesc("ticketing_data_dir_size_bytes", "", nil, nil)
	_ = prometheus.NewGauge(prometheus.GaugeOpts{Name: unknown()})
}
`
	if err := os.WriteFile(filepath.Join(dir, "m.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Test files and hidden directories are not read.
	if err := os.WriteFile(filepath.Join(dir, "m_test.go"), []byte(`package m
import "github.com/prometheus/client_golang/prometheus"
var _ = prometheus.GaugeOpts{Name: "from_a_test"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, ".hidden"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".hidden", "h.go"), []byte(`package h
import "github.com/prometheus/client_golang/prometheus"
var _ = prometheus.GaugeOpts{Name: "hidden"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Defined(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"ticketing_bridge_events_total", "ticketing_data_dir_size_bytes", "ticketing_queue_waiting",
		"ticketing_write_seconds_bucket", "ticketing_write_seconds_count", "ticketing_write_seconds_sum"}
	if !slices.Equal(names, want) {
		t.Fatalf("Defined = %q, want %q", names, want)
	}
}

// TestDefinedInThisRepository: the metrics the alerts depend on are found
// in the repository's own sources.
func TestDefinedInThisRepository(t *testing.T) {
	got, err := Defined("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ticketing_http_requests_total", "ticketing_http_request_seconds_bucket",
		"ticketing_bridge_lag_seconds", "ticketing_inventory_sold_seats", "ticketing_queue_admitted_total",
		"ticketing_jetstream_storage_used_bytes"} {
		if !got[want] {
			t.Errorf("%s not found", want)
		}
	}
}
