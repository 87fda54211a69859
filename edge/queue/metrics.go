package queue

import "github.com/prometheus/client_golang/prometheus"

// metrics of the waiting room, registered with the edge's registry.
type metrics struct {
	waiting      *prometheus.GaugeVec     // event
	admitting    *prometheus.GaugeVec     // event: 1 once the sale started, while not sold out
	admitted     *prometheus.CounterVec   // event
	joins        *prometheus.CounterVec   // event
	rate         *prometheus.GaugeVec     // event
	estimate     *prometheus.HistogramVec // event: wait estimated at join
	actual       *prometheus.HistogramVec // event: wait from join (or the sale's start) to admission
	tokens       *prometheus.CounterVec   // outcome
	sockets      prometheus.Gauge
	pushes       *prometheus.CounterVec // outcome
	decisions    *prometheus.CounterVec // event
	pushSeconds  prometheus.Histogram
	prequeueSent *prometheus.CounterVec // event
	// TLS sockets' readable turns (tlsread.go): with whole records, and
	// without (a reader waited for the rest of one).
	tlsWhole, tlsPartial prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	waitBuckets := []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}
	m := &metrics{
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ticketing_queue_waiting",
			Help: "Users waiting in this edge's queue (pre-queue included), by event."}, []string{"event"}),
		admitting: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ticketing_queue_admitting",
			Help: "1 while this edge's queue admits users (the sale has started, the pre-queue is drawn, and it is not sold out), 0 otherwise; by event."}, []string{"event"}),
		admitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_admitted_total",
			Help: "Users admitted at this edge, by event (rate() is the admission rate)."}, []string{"event"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_joins_total",
			Help: "New tickets joined at this edge, by event."}, []string{"event"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ticketing_queue_admission_rate",
			Help: "This edge's smoothed admission rate per second (the wait estimates' basis), by event."}, []string{"event"}),
		estimate: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketing_queue_wait_estimate_seconds",
			Help: "Wait estimated for a user when they joined (joins with an estimate only).", Buckets: waitBuckets}, []string{"event"}),
		actual: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketing_queue_wait_seconds",
			Help: "Actual wait at admission: from the join, or the sale's start for the pre-queue, to admission.", Buckets: waitBuckets}, []string{"event"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_tokens_fetched_total",
			Help: "Admission tokens fetched from the core for admitted users, by outcome."}, []string{"outcome"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ticketing_queue_websockets",
			Help: "Waiting-room WebSocket connections open."}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_pushes_total",
			Help: "Status messages pushed over WebSockets, by outcome (sent, failed)."}, []string{"outcome"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_decisions_total",
			Help: "Admission decisions received from the core, by event."}, []string{"event"}),
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketing_queue_push_round_seconds",
			Help: "Time to push one round of status messages to every socket of a room.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		prequeueSent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_prequeue_sent_total",
			Help: "Pre-queue tickets sent to the core after the draw, by event."}, []string{"event"}),
	}
	tlsReads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_queue_tls_reads_total",
		Help: "Times a TLS (wss://) waiting-room socket was read, by outcome: whole (records handled), partial (the rest of a record did not come in time; kept for the next turn)."}, []string{"outcome"})
	m.tlsWhole, m.tlsPartial = tlsReads.WithLabelValues("whole"), tlsReads.WithLabelValues("partial")
	if reg != nil {
		reg.MustRegister(m.waiting, m.admitting, m.admitted, m.joins, m.rate, m.estimate, m.actual, m.tokens, m.sockets, m.pushes,
			m.decisions, m.pushSeconds, m.prequeueSent, tlsReads)
	}
	return m
}
