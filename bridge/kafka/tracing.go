package kafka

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/tracing"
)

// A record produced with a sampled W3C traceparent header (the bridge
// copies an event's CloudEvents traceparent there) is traced: a producer
// span "send <topic>" from the produce call to the broker's
// acknowledgement, whose own trace context replaces the header's, so that
// a consumer continues the trace from the Kafka write. Records without the
// header cost a scan of their header keys while tracing is on, and nothing
// while it is off.

type tracedRecord struct {
	kr   *kgo.Record
	span trace.Span
}

// traceProduce starts the spans of the traced records among krs; nil when
// there are none.
func traceProduce(ctx context.Context, krs []*kgo.Record) []tracedRecord {
	if !tracing.Enabled() {
		return nil
	}
	var out []tracedRecord
	for _, kr := range krs {
		i := tracing.KafkaHeader(kr.Headers)
		if i < 0 {
			continue
		}
		pctx, ok := tracing.ExtractBytes(ctx, kr.Headers[i].Value)
		if !ok {
			continue
		}
		_, span := tracing.Start(pctx, "send "+kr.Topic, trace.SpanKindProducer)
		span.SetAttributes(attribute.String("messaging.system", "kafka"), attribute.String("messaging.destination.name", kr.Topic),
			attribute.String("messaging.kafka.message.key", string(kr.Key)))
		kr.Headers[i].Value = []byte(tracing.TraceParent(span.SpanContext()))
		out = append(out, tracedRecord{kr: kr, span: span})
	}
	return out
}

// endProduce ends the spans of traced records once the produce call
// returned err (its first error: a failed record fails the call, and in a
// transaction every record of it).
func endProduce(traced []tracedRecord, err error) {
	for _, t := range traced {
		if err != nil {
			t.span.SetStatus(codes.Error, err.Error())
		} else {
			t.span.SetAttributes(attribute.String("messaging.destination.partition.id", strconv.Itoa(int(t.kr.Partition))),
				attribute.Int64("messaging.kafka.offset", t.kr.Offset))
		}
		t.span.End()
	}
}
