// Package natsevents publishes the payment service's state changes into
// the core's EVENTS stream, which the bridge mirrors into Kafka: after
// every change of an order's payment, one CloudEvents message of type
// ticketing.payment.<status> on subject events.payment.<order id>, whose
// data is the payment with its ledger (amounts, entries, the card's brand
// and last four digits: never a card number). Its id, and Nats-Msg-Id, is
// made of the order and the payment's version, so that publishing one
// version again (a retried webhook, a sync) is stored once within the
// stream's duplicate window. Publish waits for the stream's
// acknowledgement.
//
// The saga of the orders consumes these events (core/checkout.go): a
// capture that a webhook reports reaches the order this way.
package natsevents

import (
	"context"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// SubjectPrefix starts every payment event's subject.
const SubjectPrefix = "events.payment."

// TypePrefix starts every payment event's type.
const TypePrefix = "ticketing.payment."

// Subject is the subject of an order's payment events.
func Subject(order string) string { return SubjectPrefix + order }

// Publisher is a payment.Publisher on JetStream.
type Publisher struct {
	JS     jetstream.JetStream
	Source string // the CloudEvents source, e.g. "/payment"
}

var _ payment.Publisher = (*Publisher)(nil)

// EventID is the id of the event of a payment's version.
func EventID(p payment.Payment) string {
	return "pay_" + p.OrderID + "_" + strconv.FormatInt(p.Version, 10)
}

// Publish implements payment.Publisher.
func (p *Publisher) Publish(ctx context.Context, pay payment.Payment) error {
	const op = "payment.natsevents.publish"
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: EventID(pay), Source: p.Source,
		Type: TypePrefix + string(pay.Status), Subject: pay.OrderID, Time: pay.Updated.UTC(),
		DataContentType: "application/json", PartitionKey: pay.OrderID}
	body, err := cloudevents.Encode(&ce, pay)
	if err != nil {
		return errs.E(op, errs.Other, err)
	}
	m := nats.NewMsg(Subject(pay.OrderID))
	for _, h := range ce.Headers() {
		m.Header.Set(h[0], h[1])
	}
	m.Header.Set(nats.MsgIdHdr, ce.ID)
	m.Data = body
	if _, err := p.JS.PublishMsg(ctx, m); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	return nil
}
