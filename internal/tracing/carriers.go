package tracing

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"
)

// HeaderTraceParent is the W3C trace-context header, under the same name
// in HTTP requests, NATS message headers and Kafka record headers, and the
// CloudEvents distributed-tracing extension attribute.
const HeaderTraceParent = "traceparent"

// TraceParent formats sc as a W3C traceparent value (version 00).
func TraceParent(sc trace.SpanContext) string {
	b := make([]byte, 0, traceParentLen)
	return string(AppendTraceParent(b, sc))
}

// AppendTraceParent appends sc as a W3C traceparent value (version 00).
func AppendTraceParent(b []byte, sc trace.SpanContext) []byte {
	const hexDigits = "0123456789abcdef"
	hex := func(b []byte, src []byte) []byte {
		for _, c := range src {
			b = append(b, hexDigits[c>>4], hexDigits[c&15])
		}
		return b
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	b = append(b, "00-"...)
	b = hex(b, tid[:])
	b = append(b, '-')
	b = hex(b, sid[:])
	b = append(b, '-')
	return hex(b, []byte{byte(sc.TraceFlags())})
}

const traceParentLen = 55 // 00-<32 hex>-<16 hex>-<2 hex>

// ParseTraceParent parses a W3C traceparent value into a remote span
// context, accepting exactly what the trace-context propagator accepts
// (TestTraceParentMatchesPropagator): lowercase hex, trace and span ids
// not all zero, version ff refused, version 00 without further fields or
// reserved flags, a later version with any fields after a dash.
func ParseTraceParent[T string | []byte](v T) (trace.SpanContext, bool) {
	if len(v) < traceParentLen || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return trace.SpanContext{}, false
	}
	ver, ok := hexByte(v[0], v[1])
	if !ok || ver == 0xff {
		return trace.SpanContext{}, false
	}
	flags, ok := hexByte(v[53], v[54])
	if !ok {
		return trace.SpanContext{}, false
	}
	if rest := v[traceParentLen:]; len(rest) > 0 && rest[0] != '-' || ver == 0 && (len(rest) > 1 || flags > 3) {
		return trace.SpanContext{}, false
	}
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		if tid[i], ok = hexByte(v[3+2*i], v[4+2*i]); !ok {
			return trace.SpanContext{}, false
		}
	}
	for i := range sid {
		if sid[i], ok = hexByte(v[36+2*i], v[37+2*i]); !ok {
			return trace.SpanContext{}, false
		}
	}
	if !tid.IsValid() || !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags) & (trace.FlagsSampled | trace.FlagsRandom), Remote: true}), true
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Header returns a NATS message header (nats.Header, micro.Headers: any
// map of header names to values) carrying ctx's span context, or nil when
// ctx's span is not sampled: a message sent for an unsampled request keeps
// no header at all.
func Header(ctx context.Context) map[string][]string {
	if !Sampled(ctx) {
		return nil
	}
	return map[string][]string{HeaderTraceParent: {TraceParent(trace.SpanContextFromContext(ctx))}}
}

// Extract returns ctx with the remote span context of a NATS message's
// header (nats.Header, micro.Headers) and true, when the header carries a
// sampled traceparent and tracing is on; otherwise ctx and false. A
// message without headers costs one lookup in a nil map.
func Extract(ctx context.Context, h map[string][]string) (context.Context, bool) {
	v := h[HeaderTraceParent]
	if len(v) == 0 || active.Load() == nil {
		return ctx, false
	}
	sc, ok := ParseTraceParent(v[0])
	if !ok || !sc.IsSampled() {
		return ctx, false
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc), true
}

// KafkaHeader returns the index of the traceparent header among a Kafka
// record's headers, or -1.
func KafkaHeader(hs []kgo.RecordHeader) int {
	for i := range hs {
		if hs[i].Key == HeaderTraceParent {
			return i
		}
	}
	return -1
}

// ExtractBytes is Extract for a traceparent value held as bytes (a Kafka
// record header, a CloudEvents attribute of a batch).
func ExtractBytes(ctx context.Context, traceparent []byte) (context.Context, bool) {
	if len(traceparent) == 0 || active.Load() == nil {
		return ctx, false
	}
	sc, ok := ParseTraceParent(traceparent)
	if !ok || !sc.IsSampled() {
		return ctx, false
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc), true
}
