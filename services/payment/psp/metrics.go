package psp

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The outcomes of a request, as ticketing_psp_requests_total labels them.
const (
	outcomeOK       = "ok"          // 2xx, 3xx
	outcomeDeclined = "declined"    // 402: a card error
	outcomeRefused  = "refused"     // another 4xx
	outcomeReplayed = "replayed"    // a stored answer
	outcomeFault    = "fault_error" // an injected 500
	outcomeTimeout  = "fault_timeout"
	outcomeError    = "error" // a real 5xx
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	deliveries *prometheus.CounterVec
	syncs      prometheus.Counter
	batch      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_psp_requests_total",
			Help: "Requests to the payment gateway simulator by operation and outcome (ok, declined, refused, replayed, fault_error, fault_timeout, error)."},
			[]string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ticketing_psp_request_duration_seconds",
			Help:    "Time to answer a request of the payment gateway simulator, by operation (injected latency included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
			[]string{"op"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ticketing_psp_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome (delivered, failed, abandoned, duplicate)."},
			[]string{"outcome"}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "ticketing_psp_journal_syncs_total",
			Help: "fsyncs of the simulator's journal (each carries a group of records)."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ticketing_psp_journal_batch_records",
			Help:    "Records made durable by one fsync of the journal (group commit).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.deliveries, m.syncs, m.batch} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) request(op, outcome string, took time.Duration) {
	m.requests.WithLabelValues(op, outcome).Inc()
	m.duration.WithLabelValues(op).Observe(took.Seconds())
}

func (m *metrics) synced(frames int) {
	m.syncs.Inc()
	m.batch.Observe(float64(frames))
}
