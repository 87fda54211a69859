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

	// Capacity, Held and Sold are each owned zone's seats (GA: quantity)
	// in the committed state (the snapshotter's shadow), by event,
	// partition and zone; an owner removes its series when it stops.
	Capacity, Held, Sold *prometheus.GaugeVec
	// StateChecks counts comparisons of the live state with the state
	// rebuilt from the log (the shadow); StateMismatches counts those that
	// differed, by check (checkCounts, checkShadowReplay,
	// checkRecoveryReplay).
	StateChecks     prometheus.Counter
	StateMismatches *prometheus.CounterVec
	// Acquired counts partitions this process took over, by who wrote the
	// partition's log before: previousNone, previousThisNode,
	// previousOtherNode (a failover or a hand-over).
	Acquired *prometheus.CounterVec
	// Known is how many partitions this process knows of and tries to own
	// (every partition of every event in the catalog): with every core
	// knowing all, max(known) - sum(owned) is the partitions nobody serves.
	Known prometheus.Gauge

	byType sync.Map // inventory.DecisionType → prometheus.Counter, off the label lookup
}

// Values of the check label of StateMismatches.
const (
	// checkCounts: a zone's held or sold count in the live state, taken
	// when a batch was closed, differs from the shadow's once it applied
	// that batch from the log.
	checkCounts = "counts"
	// checkShadowReplay: the shadow refused a committed decision.
	checkShadowReplay = "shadow_replay"
	// checkRecoveryReplay: the log did not replay onto the snapshot when
	// an owner recovered the partition.
	checkRecoveryReplay = "recovery_replay"
)

// Values of the previous label of Acquired.
const (
	previousNone      = "none"       // a new partition: no owner wrote its log before
	previousThisNode  = "this_node"  // this node owned it last (a restart, a lease lost and retaken)
	previousOtherNode = "other_node" // another node owned it last: a failover or a hand-over
)

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
	zoneLabels := []string{"event", "partition", "zone"}
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
		Capacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketing_inventory_capacity_seats", Help: "Seats (GA: places) of a zone of an owned partition."}, zoneLabels),
		Held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketing_inventory_held_seats", Help: "Seats held in a zone of an owned partition, in its committed (logged) state."}, zoneLabels),
		Sold: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketing_inventory_sold_seats", Help: "Seats sold in a zone of an owned partition, in its committed (logged) state; never above capacity."}, zoneLabels),
		StateChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ticketing_inventory_state_checks_total", Help: "Comparisons of an owner's live zone counts with the state rebuilt from its log (the snapshot shadow)."}),
		StateMismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_inventory_state_mismatches_total", Help: "Owner state found to differ from its log, by check: counts (live zone counts against the shadow's), shadow_replay (the shadow refused a logged decision), recovery_replay (the log did not replay onto the snapshot)."}, []string{"check"}),
		Acquired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketing_inventory_ownership_acquired_total", Help: "Partitions this process took over and recovered, by the previous owner: none, this_node, other_node (a failover or hand-over)."}, []string{"previous"}),
		Known: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ticketing_inventory_partitions_known", Help: "Partitions this process knows of and tries to own (every partition of every event in the catalog)."}),
	}
	// Counters an alert watches with increase() exist from the start, so
	// that the first event is an increase from 0.
	for _, c := range []string{checkCounts, checkShadowReplay, checkRecoveryReplay} {
		m.StateMismatches.WithLabelValues(c)
	}
	for _, p := range []string{previousNone, previousThisNode, previousOtherNode} {
		m.Acquired.WithLabelValues(p)
	}
	if reg != nil {
		reg.MustRegister(m.Decisions, m.Requests, m.BatchSize, m.WriteSeconds, m.Owned, m.Queue, m.RelayLag, m.ShadowLag, m.Snapshots,
			m.Capacity, m.Held, m.Sold, m.StateChecks, m.StateMismatches, m.Acquired, m.Known)
	}
	return m
}
