// Package tracing is the platform's OpenTelemetry tracing: its setup from
// the standard OTEL_* variables (off unless an OTLP endpoint is
// configured), the one place where a request is sampled, the W3C trace
// context carried in NATS headers, CloudEvents and Kafka record headers,
// and a log/slog handler that stamps records with the current trace and
// span ids.
//
// Tracing must cost the hot paths (tens of thousands of holds a second)
// next to nothing when a request is not sampled, so:
//
//   - Only an entry point decides: StartEntry (the edge's HTTP handler, a
//     NATS client such as the bench). A request it does not sample gets no
//     span, no allocation and no header: a NATS message sent on its behalf
//     has no headers at all, and every hop behind it pays one map lookup
//     in a nil header to learn that (Extract).
//   - Every hop behind the entry point starts spans only under a sampled
//     parent (Start, Extract): from the context, a NATS header, a
//     CloudEvents traceparent or a Kafka record header.
//   - With tracing off (no Setup, or Exporter "none") every helper returns
//     at its first check.
//
// Spans are started only through this package's helpers, so that no span
// starts a trace of its own behind an entry point's back: the SDK's sampler
// records every span whose parent is sampled and every root an entry point
// asked for.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every span the platform makes.
const ScopeName = "github.com/ticketing/ticketing"

// tracing is what Setup installed; nil while tracing is off.
type tracing struct {
	tracer      trace.Tracer
	always      bool   // every root is sampled
	threshold   uint64 // a root is sampled when a uniform draw is below it
	parentBased bool   // an entry point keeps a caller's sampled flag
}

var active atomic.Pointer[tracing]

// noSpan is what the helpers return when they start no span: End and the
// other methods do nothing; IsRecording is false.
var noSpan trace.Span = noop.Span{}

// Enabled reports whether tracing is on in this process.
func Enabled() bool { return active.Load() != nil }

// Setup starts tracing as cfg says: an OTLP exporter behind a batching
// span processor, a tracer provider and the W3C trace-context propagator
// installed as OpenTelemetry's globals, and this package's helpers on.
// With Exporter "none" it changes nothing and returns a shutdown that does
// nothing. Export errors go to log. shutdown exports the spans still
// queued and stops tracing in this process (helpers return at once after
// it); the process calls it last, after everything that makes spans has
// stopped.
func Setup(ctx context.Context, cfg Config, log *slog.Logger) (shutdown func(context.Context) error, err error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Exporter == ExporterNone {
		return func(context.Context) error { return nil }, nil
	}
	var client otlptrace.Client
	switch cfg.Protocol {
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		client = otlptracegrpc.NewClient(opts...)
	default:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
		}
		client = otlptracehttp.NewClient(opts...)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", cfg.ServiceName)),
		resource.WithFromEnv()) // OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME win
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp), // OTEL_BSP_* tune it
		sdktrace.WithResource(res),
		// Entry points decide (StartEntry); every other span has a parent,
		// and follows it.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	}
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t := &tracing{tracer: tp.Tracer(ScopeName), parentBased: cfg.parentBased()}
	switch r := cfg.rootRatio(); {
	case r >= 1:
		t.always = true
	case r > 0:
		t.threshold = uint64(r * math.MaxUint64)
	}
	active.Store(t)
	return func(ctx context.Context) error {
		active.CompareAndSwap(t, nil)
		return tp.Shutdown(ctx)
	}, nil
}

// sampleRoot draws an entry point's decision for a request that brings none.
func (t *tracing) sampleRoot() bool {
	return t.always || t.threshold > 0 && rand.Uint64() < t.threshold
}

// StartEntry starts the span of a request entering the platform, if it is
// sampled: traceparent is the W3C header the request came with ("" when
// none). With a parent-based sampler a valid traceparent decides (its
// sampled flag); otherwise the configured ratio does. A request that is
// not sampled gets ctx back unchanged and a span that does nothing,
// without allocating.
func StartEntry(ctx context.Context, name string, kind trace.SpanKind, traceparent string) (context.Context, trace.Span) {
	t := active.Load()
	if t == nil {
		return ctx, noSpan
	}
	if traceparent != "" && t.parentBased {
		if sc, ok := ParseTraceParent(traceparent); ok {
			if !sc.IsSampled() {
				return ctx, noSpan
			}
			return t.tracer.Start(trace.ContextWithRemoteSpanContext(ctx, sc), name, trace.WithSpanKind(kind))
		}
	}
	if !t.sampleRoot() {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithNewRoot())
}

// Start starts a span under ctx's span if that is sampled; otherwise it
// returns ctx and a span that does nothing, without allocating.
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	t := active.Load()
	if t == nil || !trace.SpanContextFromContext(ctx).IsSampled() {
		return ctx, noSpan
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// Sampled reports whether ctx carries a sampled span context (and tracing
// is on): whether spans started under it are recorded.
func Sampled(ctx context.Context) bool {
	return active.Load() != nil && trace.SpanContextFromContext(ctx).IsSampled()
}

// Tracer is the platform's tracer while tracing is on, for spans that
// need options the helpers do not take (start and end times, links). Use
// it only under a sampled parent (Sampled, Extract): it does not sample.
// With tracing off it is a tracer that records nothing.
func Tracer() trace.Tracer {
	if t := active.Load(); t != nil {
		return t.tracer
	}
	return noop.NewTracerProvider().Tracer(ScopeName)
}
