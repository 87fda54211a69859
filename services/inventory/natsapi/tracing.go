package natsapi

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/tracing"
)

// tracedCall is call for a sampled request: a client span around the call
// (its retries included), whose trace context every request carries in a
// traceparent header. Unsampled calls send no header at all.
func (c *Client) tracedCall(ctx context.Context, partition, op string, req, resp any) error {
	subj := Subject(partition, op)
	ctx, span := tracing.Start(ctx, "inventory."+op, trace.SpanKindClient)
	defer span.End()
	span.SetAttributes(attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", subj), attribute.String("inventory.partition", partition))
	err := c.do(ctx, nats.Header(tracing.Header(ctx)), partition, op, req, resp)
	if err != nil {
		span.SetAttributes(attribute.String("error.type", errs.KindOf(err).Code()))
		if k := errs.KindOf(err); k == errs.Unavailable || k == errs.Other {
			span.SetStatus(codes.Error, err.Error())
		}
	}
	return err
}

// request sends one request, with hdr when it is not nil.
func (c *Client) request(subj string, body []byte, hdr nats.Header, wait time.Duration) (*nats.Msg, error) {
	if hdr == nil {
		return c.NC.Request(subj, body, wait)
	}
	return c.NC.RequestMsg(&nats.Msg{Subject: subj, Data: body, Header: hdr}, wait)
}
