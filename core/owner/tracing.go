package owner

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/tracing"
)

// Tracing. A request whose NATS headers carry a sampled W3C traceparent
// (the edge or another entry point sampled it; every other request has no
// headers at all) is traced through the owner:
//
//	inventory.<op> (server: arrival to answer)
//	├── inventory.decide (the loop deciding it)
//	│   └── EVENTS publish (producer: the relay's publish of each of its
//	│       events, to the stream's acknowledgement; the event's CloudEvents
//	│       traceparent is this span's, which the bridge continues)
//	└── inventory.log.write (the group commit its decisions went into:
//	    the write's send to its acknowledgement)
//
// The loop does no tracing work beyond noting when it decided a sampled
// call and which decisions it made: the spans are built by the writer once
// the batch is durable, with the times the loop noted, and by the relay.
// Every other call costs the loop a nil check.

// callTrace is a sampled call's tracing; nil for every other call.
type callTrace struct {
	ctx         context.Context // under the server span
	span        trace.Span      // the server span
	start, end  time.Time       // the loop's decision
	first, last int             // its decisions: batch.ds[first:last]
}

// traceCall starts the server span of a request that carries a sampled
// trace context, and returns nil for any other: one lookup in a nil map.
func traceCall(req micro.Request, which op) *callTrace {
	ctx, ok := tracing.Extract(context.Background(), req.Headers())
	if !ok {
		return nil
	}
	ctx, span := tracing.Start(ctx, "inventory."+opNames[which], trace.SpanKindServer)
	span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", req.Subject()))
	return &callTrace{ctx: ctx, span: span}
}

// decided notes, in the loop, when the call was decided and which of the
// open batch's decisions are its own.
func (t *callTrace) decided(start time.Time, first, last int) {
	t.start, t.end, t.first, t.last = start, time.Now(), first, last
}

// answered ends the server span with the call's outcome.
func (t *callTrace) answered(err error) {
	if err != nil {
		t.span.SetAttributes(attribute.String("error.type", errs.KindOf(err).Code()))
		if k := errs.KindOf(err); k == errs.Unavailable || k == errs.Other {
			t.span.SetStatus(codes.Error, err.Error())
		}
	}
	t.span.End()
}

// traceCommit makes the decide and log-write spans of the sampled calls of
// a batch durable at log sequence seq, and hands their decisions' trace
// contexts to the relay. It runs in the writer.
func (o *Owner) traceCommit(w inflightWrite, seq uint64) {
	for _, c := range w.b.calls {
		t := c.tr
		if t == nil || t.start.IsZero() {
			continue
		}
		tr := tracing.Tracer()
		dctx, decide := tr.Start(t.ctx, "inventory.decide", trace.WithTimestamp(t.start))
		decide.SetAttributes(attribute.String("inventory.partition", o.key), attribute.Int("inventory.decisions", t.last-t.first))
		if c.err != nil {
			decide.SetAttributes(attribute.String("inventory.refused", errs.KindOf(c.err).Code()))
		}
		decide.End(trace.WithTimestamp(t.end))
		_, write := tr.Start(t.ctx, "inventory.log.write", trace.WithTimestamp(w.sent), trace.WithSpanKind(trace.SpanKindClient))
		write.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", o.logSubj),
			attribute.Int64("inventory.log.seq", int64(seq)), attribute.Int("inventory.batch.decisions", len(w.b.ds)),
			attribute.Int("inventory.batch.calls", len(w.b.calls)))
		write.End()
		if t.last > t.first {
			o.traces.add(seq, relayTrace{first: t.first, last: t.last, ctx: dctx})
		}
	}
}

// relayTrace is the trace context of decisions first to last-1 of a
// record, for the relay.
type relayTrace struct {
	first, last int
	ctx         context.Context // under the decide span
}

// tracedRecords hands the trace contexts of sampled decisions from the
// writer to the relay, by log sequence. Records without any (nearly all)
// cost the relay one atomic load.
type tracedRecords struct {
	n  atomic.Int64 // records in m
	mu sync.Mutex
	m  map[uint64][]relayTrace
}

// maxTracedRecords bounds what waits for the relay (which takes every
// record it is handed, so only a relay that stopped leaves any behind).
const maxTracedRecords = 4096

func (t *tracedRecords) add(seq uint64, rt relayTrace) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[uint64][]relayTrace{}
	}
	if len(t.m) >= maxTracedRecords {
		clear(t.m)
	}
	t.m[seq] = append(t.m[seq], rt)
	t.n.Store(int64(len(t.m)))
}

// take returns and forgets the trace contexts of record seq.
func (t *tracedRecords) take(seq uint64) []relayTrace {
	if t.n.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rts := t.m[seq]
	delete(t.m, seq)
	t.n.Store(int64(len(t.m)))
	return rts
}

// traceEvent starts the relay's span of event i of a record when its
// decision was sampled (rts: the record's sampled decisions, nil for nearly
// every record) and returns the traceparent the event carries; "" for any
// other. The span ends when the stream acknowledges the event's message.
func (r *relayer) traceEvent(rts []relayTrace, seq uint64, i int) string {
	for _, rt := range rts {
		if i < rt.first || i >= rt.last {
			continue
		}
		o := r.o
		_, span := tracing.Tracer().Start(rt.ctx, "EVENTS publish", trace.WithSpanKind(trace.SpanKindProducer))
		span.SetAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", o.evSubj),
			attribute.String("messaging.message.id", o.key+":"+strconv.FormatUint(seq, 10)+":"+strconv.Itoa(i)))
		r.spans = append(r.spans, span)
		return tracing.TraceParent(span.SpanContext())
	}
	return ""
}

// sentSpans hands the spans of the events in the message just sent to its
// place in the queue.
func (r *relayer) sentSpans() []trace.Span {
	s := r.spans
	r.spans = nil
	return s
}

// endSpans ends a message's spans: acknowledged (cause nil) or not.
func endSpans(spans []trace.Span, cause error) {
	for _, s := range spans {
		if cause != nil {
			s.SetStatus(codes.Error, cause.Error())
		}
		s.End()
	}
}
