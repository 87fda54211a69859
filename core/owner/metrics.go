package owner

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/services/inventory"
)

// Metrics are the owners' Prometheus metrics; one set serves every owner of a
// process.
type Metrics struct {
	Decisions    *prometheus.CounterVec // by type
	Requests     *prometheus.CounterVec // by op and outcome kind
	BatchSize    prometheus.Histogram   // decisions per log write
	WriteSeconds prometheus.Histogram   // latency of one log write
	Owned        prometheus.Gauge       // partitions owned
	Queue        prometheus.Gauge       // commands waiting, summed over owners
	RelayLag     *prometheus.GaugeVec   // log records committed but not yet relayed, by partition
	ShadowLag    *prometheus.GaugeVec   // committed batches the snapshotter has not applied yet, by partition
	Snapshots    prometheus.Counter

	byType sync.Map // inventory.DecisionType → prometheus.Counter, off the label lookup
}

// decision is the Decisions counter of one type.
func (m *Metrics) decision(t inventory.DecisionType) prometheus.Counter {
	if c, ok := m.byType.Load(t); ok {
		return c.(prometheus.Counter)
	}
	c := m.Decisions.WithLabelValues(string(t))
	m.byType.Store(t, c)
	return c
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_inventory_decisions_total", Help: "Decisions made by partition owners, by type."}, []string{"type"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_inventory_requests_total", Help: "Requests answered by partition owners, by operation and outcome."}, []string{"op", "outcome"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ticketing_inventory_batch_decisions", Help: "Decisions per group-committed log write.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		WriteSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ticketing_inventory_write_seconds", Help: "Latency of one durable log write.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		Owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ticketing_inventory_partitions_owned", Help: "Partitions this process owns."}),
		Queue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ticketing_inventory_queue_length", Help: "Commands waiting for partition owners."}),
		RelayLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketing_inventory_relay_lag_records", Help: "Committed log records whose domain events are not yet confirmed on the EVENTS stream."}, []string{"partition"}),
		ShadowLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketing_inventory_shadow_lag_batches", Help: "Committed batches the snapshotter has not yet applied to its shadow (it does not while it writes a snapshot); commits wait when " + strconv.Itoa(committedBacklog) + " do."}, []string{"partition"}),
		Snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ticketing_inventory_snapshots_total", Help: "Partition snapshots written."}),
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.Requests, m.BatchSize, m.WriteSeconds, m.Owned, m.Queue, m.RelayLag, m.ShadowLag, m.Snapshots)
	}
	return m
}
