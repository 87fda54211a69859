package bench

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/ticketing/ticketing/internal/otlpreceiver"
	"github.com/ticketing/ticketing/internal/tracing"
)

// benchTracing is the benchmarks' --tracing flag: tracing on at a sampling
// ratio (the default, tracing.DefaultRatio, with --tracing default), its
// spans exported over OTLP/HTTP to a receiver in the benchmark's process
// (which counts them), so that what is measured includes building and
// exporting them.
type benchTracing struct {
	ratio    *string
	endpoint *string // a child's: its parent's receiver
	recv     *otlpreceiver.Receiver
}

func addBenchTracingFlags(fs *flag.FlagSet, child bool) *benchTracing {
	t := &benchTracing{ratio: fs.String("tracing", "off",
		fmt.Sprintf("trace at this sampling ratio (0-1, or default: %v) and export the spans over OTLP to a receiver in this process; off: no tracing", tracing.DefaultRatio))}
	if child {
		t.endpoint = fs.String("otlp-endpoint", "", "the OTLP traces endpoint of --tracing")
	}
	return t
}

// on reports whether --tracing asks for tracing.
func (t *benchTracing) on() bool { return *t.ratio != "off" && *t.ratio != "" }

// Ratio is the sampling ratio of --tracing; 0 when off.
func (t *benchTracing) Ratio() float64 {
	if !t.on() {
		return 0
	}
	if *t.ratio == "default" {
		return tracing.DefaultRatio
	}
	r, _ := strconv.ParseFloat(*t.ratio, 64) // checked by start
	return r
}

// start starts tracing when --tracing asks for it (with a receiver of its
// own unless this is a child given its parent's); stop flushes and stops
// it, and the receiver.
func (t *benchTracing) start(ctx context.Context, service string) (stop func(), err error) {
	if !t.on() {
		return func() {}, nil
	}
	if r, err := strconv.ParseFloat(*t.ratio, 64); *t.ratio != "default" && (err != nil || r <= 0 || r > 1) {
		return nil, fmt.Errorf("--tracing %q: want off, default or a ratio in (0, 1]", *t.ratio)
	}
	endpoint := ""
	if t.endpoint != nil {
		endpoint = *t.endpoint
	}
	if endpoint == "" {
		if t.recv, err = otlpreceiver.Start(false); err != nil {
			return nil, err
		}
		endpoint = t.recv.URL()
	}
	shutdown, err := tracing.Setup(ctx, tracing.Config{Endpoint: endpoint, Sampler: tracing.SamplerParentBasedTraceIDRatio,
		Ratio: t.Ratio(), ServiceName: service}, nil)
	if err != nil {
		return nil, err
	}
	return func() {
		_ = shutdown(context.WithoutCancel(ctx))
		if t.recv != nil {
			_ = t.recv.Close()
		}
	}, nil
}

// childArgs are the flags that give a child process the same tracing,
// exporting to this process's receiver.
func (t *benchTracing) childArgs() []string {
	if !t.on() || t.recv == nil {
		return nil
	}
	return []string{"--tracing", *t.ratio, "--otlp-endpoint", t.recv.URL()}
}

// Traced is what a run says of its tracing, in every benchmark's report.
type Traced struct {
	// TracingRatio is the run's sampling ratio (0: off); SpansExported the
	// spans its processes exported to the benchmark's receiver.
	TracingRatio  float64 `json:"tracing_ratio"`
	SpansExported int     `json:"spans_exported"`
}

// tracedRun makes one run with run: with tracing on for it (in this
// process, and in the children it starts with t.childArgs) when s asks,
// its ratio and exported spans written into the report's Traced.
func tracedRun[R any](ctx context.Context, t *benchTracing, service string, s setup, traced func(*R) *Traced, run func() (R, error)) (R, error) {
	if !s.Traced {
		return run()
	}
	stop, err := t.start(ctx, service)
	if err != nil {
		var zero R
		return zero, err
	}
	rep, err := run()
	stop() // the spans still queued
	*traced(&rep) = Traced{TracingRatio: t.Ratio(), SpansExported: t.spans()}
	return rep, err
}

// spans is how many spans the receiver got so far.
func (t *benchTracing) spans() int {
	if t.recv == nil {
		return 0
	}
	n, _, _ := t.recv.Counts()
	return n
}

// benchTracedEvery makes one event in so many of the bridge benchmark's
// carry a sampled traceparent, as the events of sampled holds do; 0: none.
var benchTracedEvery atomic.Int64

// benchTraceParent is the traceparent of bench event i: a sampled one for
// one event in benchTracedEvery, "" for the others.
func benchTraceParent(i int) string {
	every := benchTracedEvery.Load()
	if every == 0 || int64(i)%every != 0 {
		return ""
	}
	return fmt.Sprintf("00-%016x%016x-%016x-01", 0x7ace, i+1, i+1)
}
