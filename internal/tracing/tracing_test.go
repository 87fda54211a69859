package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/otlpreceiver"
	"github.com/ticketing/ticketing/internal/tracing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    tracing.Config
		wantErr bool
	}{
		{name: "nothing set: off", env: nil,
			want: tracing.Config{Exporter: "none", Protocol: "http/protobuf", Sampler: "parentbased_traceidratio", Ratio: 0.01, ServiceName: "ticketing-core"}},
		{name: "an endpoint turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
			want: tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", Sampler: "parentbased_traceidratio", Ratio: 0.01, ServiceName: "ticketing-core"}},
		{name: "traces endpoint, grpc, sampler, service", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25", "OTEL_SERVICE_NAME": "core-eu"},
			want: tracing.Config{Exporter: "otlp", Protocol: "grpc", Sampler: "traceidratio", Ratio: 0.25, ServiceName: "core-eu"}},
		{name: "otlp without an endpoint: off", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"},
			want: tracing.Config{Exporter: "none", Protocol: "http/protobuf", Sampler: "parentbased_traceidratio", Ratio: 0.01, ServiceName: "ticketing-core"}},
		{name: "exporter none wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
			want: tracing.Config{Exporter: "none", Protocol: "http/protobuf", Sampler: "parentbased_traceidratio", Ratio: 0.01, ServiceName: "ticketing-core"}},
		{name: "SDK disabled wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
			want: tracing.Config{Exporter: "none", Protocol: "http/protobuf", Sampler: "parentbased_traceidratio", Ratio: 0.01, ServiceName: "ticketing-core"}},
		{name: "ratio 0 is always off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER_ARG": "0"},
			want: tracing.Config{Exporter: "otlp", Protocol: "http/protobuf", Sampler: "parentbased_always_off", Ratio: 0, ServiceName: "ticketing-core"}},
		{name: "bad sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, wantErr: true},
		{name: "bad ratio", env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1.5"}, wantErr: true},
		{name: "unparsable ratio", env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "half"}, wantErr: true},
		{name: "bad protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: true},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracing.FromEnv(env(tc.env), "ticketing-core")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTraceParentMatchesPropagator(t *testing.T) {
	prop := propagation.TraceContext{}
	for _, v := range []string{
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", // sampled and random
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", // reserved flag in version 00
		"02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", // kept as sampled later
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", // 00 must be exact
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
		"00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01",
		"", "00", "garbage",
	} {
		want := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": v}))
		got, ok := tracing.ParseTraceParent(v)
		if ok != want.IsValid() || ok && !got.Equal(want) {
			t.Errorf("%q: got %v %v, the propagator %v", v, got, ok, want)
		}
		gotB, okB := tracing.ParseTraceParent([]byte(v))
		if okB != ok || !gotB.Equal(got) {
			t.Errorf("%q: bytes and string parse apart", v)
		}
		if ok && v[:2] == "00" && len(v) == 55 {
			if back := tracing.TraceParent(got); back != v {
				t.Errorf("%q formats back as %q", v, back)
			}
		}
	}
}

// setup starts tracing to a receiver; flush exports every span ended so
// far and stops tracing.
func setup(t *testing.T, cfg tracing.Config) (r *otlpreceiver.Receiver, flush func()) {
	t.Helper()
	r, err := otlpreceiver.Start(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	cfg.Endpoint = r.URL()
	shutdown, err := tracing.Setup(context.Background(), cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return r, func() {
		if err := shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSampling: entry points decide; hops behind them follow; nothing
// unsampled carries a header.
func TestSampling(t *testing.T) {
	ctx := context.Background()
	if ctx2, span := tracing.StartEntry(ctx, "off", trace.SpanKindServer, ""); ctx2 != ctx || span.IsRecording() {
		t.Fatal("tracing off, yet a span")
	}

	r, flush := setup(t, tracing.Config{Sampler: tracing.SamplerParentBasedAlwaysOff, ServiceName: "test"})
	if ctx2, span := tracing.StartEntry(ctx, "root", trace.SpanKindServer, ""); ctx2 != ctx || span.IsRecording() {
		t.Fatal("always_off root sampled")
	}
	if _, span := tracing.StartEntry(ctx, "unsampled caller", trace.SpanKindServer, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"); span.IsRecording() {
		t.Fatal("a caller's unsampled decision not kept")
	}
	if h := tracing.Header(ctx); h != nil {
		t.Fatalf("unsampled context gives a header: %v", h)
	}
	var nh nats.Header // a message without headers
	if _, ok := tracing.Extract(ctx, nh); ok {
		t.Fatal("nil header extracted")
	}

	// A sampled caller: the entry span continues its trace; a hop behind
	// it gets the header and continues from it.
	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ectx, entry := tracing.StartEntry(ctx, "entry", trace.SpanKindServer, caller)
	if !entry.IsRecording() || entry.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatal("a caller's sampled decision not kept")
	}
	cctx, client := tracing.Start(ectx, "client", trace.SpanKindClient)
	h := nats.Header(tracing.Header(cctx))
	if h.Get(tracing.HeaderTraceParent) != tracing.TraceParent(client.SpanContext()) {
		t.Fatalf("header %v", h)
	}
	sctx, ok := tracing.Extract(context.Background(), h)
	if !ok {
		t.Fatal("sampled header not extracted")
	}
	_, server := tracing.Start(sctx, "server", trace.SpanKindServer)
	kh := []kgo.RecordHeader{{Key: "ce_id", Value: []byte("x")}, {Key: tracing.HeaderTraceParent, Value: []byte(tracing.TraceParent(server.SpanContext()))}}
	i := tracing.KafkaHeader(kh)
	kctx, ok := tracing.ExtractBytes(context.Background(), kh[i].Value)
	if i != 1 || !ok {
		t.Fatal("Kafka header not found")
	}
	_, producer := tracing.Start(kctx, "producer", trace.SpanKindProducer)
	for _, s := range []trace.Span{producer, server, client, entry} {
		s.End()
	}
	flush()
	if n := len(r.Spans()); n != 4 {
		t.Fatalf("%d spans exported, want 4", n)
	}
	parent := map[string]string{}
	for _, s := range r.Spans() {
		if s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Service != "test" {
			t.Fatalf("span %+v", s)
		}
		parent[s.Name] = s.ParentSpanID
	}
	if parent["entry"] != "00f067aa0ba902b7" || parent["client"] != entry.SpanContext().SpanID().String() ||
		parent["server"] != client.SpanContext().SpanID().String() || parent["producer"] != server.SpanContext().SpanID().String() {
		t.Fatalf("chain %v", parent)
	}
}

func TestRootRatio(t *testing.T) {
	_, _ = setup(t, tracing.Config{Sampler: tracing.SamplerTraceIDRatio, Ratio: 0.25, ServiceName: "test"})
	n := 0
	for range 20000 {
		_, s := tracing.StartEntry(context.Background(), "r", trace.SpanKindServer,
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01") // ignored: not parent-based
		if s.IsRecording() {
			n++
			if s.SpanContext().TraceID().String() == "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatal("traceidratio kept the caller's trace")
			}
		}
	}
	if n < 4500 || n > 5500 { // 5000 expected; this is > 15 standard deviations wide
		t.Fatalf("%d of 20000 sampled at 0.25", n)
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	read := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		return m
	}
	log.InfoContext(context.Background(), "no span")
	if m := read(); m["trace_id"] != nil || m["span_id"] != nil || m["component"] != "test" {
		t.Fatalf("without a span: %v", m)
	}
	_, _ = setup(t, tracing.Config{Sampler: tracing.SamplerParentBasedAlwaysOn, ServiceName: "test"})
	ctx, span := tracing.StartEntry(context.Background(), "op", trace.SpanKindServer, "")
	defer span.End()
	log.InfoContext(ctx, "in a span", "k", 1)
	m := read()
	if m["trace_id"] != span.SpanContext().TraceID().String() || m["span_id"] != span.SpanContext().SpanID().String() || m["k"] != 1.0 {
		t.Fatalf("in a span: %v", m)
	}
	log.Info("no context")
	if m := read(); m["trace_id"] != nil {
		t.Fatalf("without a context: %v", m)
	}
	// An unsampled remote parent: no recording span, no ids.
	rctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: span.SpanContext().TraceID(), SpanID: span.SpanContext().SpanID()}))
	log.InfoContext(rctx, "unsampled")
	if m := read(); m["trace_id"] != nil {
		t.Fatalf("unsampled parent: %v", m)
	}
}

// Per-message costs on the hot paths, unsampled (what nearly every
// message pays) and sampled.
func BenchmarkUnsampled(b *testing.B) {
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:1/v1/traces",
		Sampler: tracing.SamplerParentBasedAlwaysOff, ServiceName: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	ctx := context.Background()
	b.Run("StartEntry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, s := tracing.StartEntry(ctx, "e", trace.SpanKindServer, "")
			s.End()
		}
	})
	b.Run("Start", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, s := tracing.Start(ctx, "s", trace.SpanKindClient)
			s.End()
		}
	})
	b.Run("Header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if tracing.Header(ctx) != nil {
				b.Fatal("header")
			}
		}
	})
	b.Run("Extract/no-header", func(b *testing.B) {
		b.ReportAllocs()
		var h nats.Header
		for b.Loop() {
			if _, ok := tracing.Extract(ctx, h); ok {
				b.Fatal("extracted")
			}
		}
	})
	b.Run("KafkaHeader/none", func(b *testing.B) {
		b.ReportAllocs()
		hs := make([]kgo.RecordHeader, 10)
		for i := range hs {
			hs[i].Key = "ce_attribute_" + string(rune('a'+i))
		}
		for b.Loop() {
			if tracing.KafkaHeader(hs) >= 0 {
				b.Fatal("found")
			}
		}
	})
}

// BenchmarkStartEntryRatio: an entry point at the default ratio, mostly
// not sampling (the sampled 1% build and export spans).
func BenchmarkStartEntryRatio(b *testing.B) {
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:1/v1/traces",
		Sampler: tracing.SamplerParentBasedTraceIDRatio, Ratio: 0.01, ServiceName: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, s := tracing.StartEntry(ctx, "e", trace.SpanKindServer, "")
		s.End()
	}
}

func BenchmarkSampled(b *testing.B) {
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: "http://127.0.0.1:1/v1/traces",
		Sampler: tracing.SamplerParentBasedAlwaysOn, ServiceName: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	ctx, span := tracing.StartEntry(context.Background(), "e", trace.SpanKindServer, "")
	defer span.End()
	h := nats.Header(tracing.Header(ctx))
	b.Run("Header", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = tracing.Header(ctx)
		}
	})
	b.Run("Extract", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := tracing.Extract(context.Background(), h); !ok {
				b.Fatal("not extracted")
			}
		}
	})
}

// BenchmarkSampledHold is what one sampled hold costs in spans, exported
// over OTLP/HTTP to an in-process receiver: the entry and client spans, a
// NATS header out and in, the owner's server, decide, log-write and relay
// spans, a Kafka header in and the bridge's send span.
//
// ns/op is the caller's wall time; cpu-ns/op is the whole process's CPU
// (the batch exporter's goroutine and the receiver's included) up to the
// export of the last span.
func BenchmarkSampledHold(b *testing.B) {
	b.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10000000") // drop nothing: measure every export
	r, err := otlpreceiver.Start(false)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{Endpoint: r.URL(),
		Sampler: tracing.SamplerParentBasedAlwaysOn, ServiceName: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuNanos()
	for b.Loop() {
		ctx, entry := tracing.StartEntry(context.Background(), "POST /v1/events/:id/holds", trace.SpanKindServer, "")
		cctx, client := tracing.Start(ctx, "inventory.hold", trace.SpanKindClient)
		h := nats.Header(tracing.Header(cctx))
		sctx, _ := tracing.Extract(context.Background(), h)
		sctx, server := tracing.Start(sctx, "inventory.hold", trace.SpanKindServer)
		dctx, decide := tracing.Start(sctx, "inventory.decide", trace.SpanKindInternal)
		decide.End()
		_, write := tracing.Start(sctx, "inventory.log.write", trace.SpanKindClient)
		write.End()
		_, relay := tracing.Start(dctx, "EVENTS publish", trace.SpanKindProducer)
		tp := []byte(tracing.TraceParent(relay.SpanContext()))
		relay.End()
		server.End()
		client.End()
		entry.End()
		kctx, _ := tracing.ExtractBytes(context.Background(), tp)
		_, send := tracing.Start(kctx, "send ticketing.inventory", trace.SpanKindProducer)
		_ = tracing.TraceParent(send.SpanContext())
		send.End()
	}
	if err := shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/op")
	n, _, _ := r.Counts()
	b.ReportMetric(float64(n)/float64(b.N), "spans/op")
}

func cpuNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
