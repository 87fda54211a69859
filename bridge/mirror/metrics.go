package mirror

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the bridge's Prometheus metrics.
type Metrics struct {
	Active        prometheus.Gauge
	Events        prometheus.Counter
	Transactions  *prometheus.CounterVec
	Recoveries    prometheus.Counter
	Checkpoint    prometheus.Gauge
	LagEvents     prometheus.Gauge
	LagSeconds    prometheus.Gauge
	StreamGaps    prometheus.Counter
	BatchEvents   prometheus.Histogram
	CommitSeconds prometheus.Histogram
}

// NewMetrics creates the metrics and registers them with reg, if not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "ticketing", "bridge"
	m := &Metrics{
		Active: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "active",
			Help: "1 while this instance holds the lease and mirrors."}),
		Events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "Events committed to Kafka."}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transactions_total",
			Help: "Kafka transactions, by result (committed, failed)."}, []string{"result"}),
		Recoveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "recoveries_total",
			Help: "Times mirroring (re)started from the checkpoint in Kafka."}),
		Checkpoint: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "checkpoint_sequence",
			Help: "Stream sequence of the last event committed to Kafka."}),
		LagEvents: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_events",
			Help: "Events in the stream not yet committed to Kafka."}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_seconds",
			Help: "Age of the oldest event not yet committed to Kafka (0 when none)."}),
		StreamGaps: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "stream_gap_events_total",
			Help: "Events removed from the stream (retention, purge) before the bridge mirrored them."}),
		BatchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_events",
			Help: "Events per Kafka transaction.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "transaction_seconds",
			Help: "Time to produce and commit one transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.Active, m.Events, m.Transactions, m.Recoveries, m.Checkpoint, m.LagEvents, m.LagSeconds,
			m.StreamGaps, m.BatchEvents, m.CommitSeconds)
	}
	return m
}
