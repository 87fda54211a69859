package queue

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/internal/keyring"
	admissionapi "github.com/ticketing/ticketing/services/admission/natsapi"
	"github.com/ticketing/ticketing/services/queue"
	queueapi "github.com/ticketing/ticketing/services/queue/natsapi"
)

// The wire types of the waiting-room protocol (services/queue/natsapi).
type (
	CoreConfig    = queueapi.Config
	Report        = queueapi.Report
	Decision      = queueapi.Decision
	PreQueueChunk = queueapi.PreQueueChunk
	DrawRecord    = queueapi.DrawRecord
	DrawRequest   = queueapi.DrawRequest
)

// MaxPreQueueChunk is the most tickets one queue.prequeue request carries.
const MaxPreQueueChunk = queueapi.MaxPreQueueChunk

// share is the edge's share of a decision, and whether the decision listed
// the edge at all (an edge the core has no report from yet is not).
func share(d *Decision, edge string) (queue.EdgeAdmit, bool) {
	for _, e := range d.Edges {
		if e.Edge == edge {
			return e, true
		}
	}
	return queue.EdgeAdmit{Edge: edge}, false
}

// Core is what the waiting room needs of the core's queue service, over
// the edge's leaf node (NATSCore). Implementations are safe for concurrent
// use.
type Core interface {
	// Config is the event's setup; errs.NotFound for an unknown or
	// queue-off event.
	Config(ctx context.Context, eventID string) (CoreConfig, error)
	// PreQueue sends one chunk of this edge's pre-queue.
	PreQueue(ctx context.Context, chunk PreQueueChunk) error
	// DrawPage is a page of the public draw record.
	DrawPage(ctx context.Context, r DrawRequest) (DrawRecord, error)
	// Report publishes this edge's report (fire and forget).
	Report(r Report) error
	// SubscribeDecisions calls f, in order and never concurrently, with
	// every decision published for the event until stop is called.
	SubscribeDecisions(eventID string, f func(Decision)) (stop func() error, err error)
}

// Admission is what the waiting room needs of the core's admission
// service (*admissionapi.Client).
type Admission interface {
	// Issue signs a token admitting subject (a ticket id in hex) to the
	// event.
	Issue(ctx context.Context, eventID, subject string) (token, jti string, expires time.Time, err error)
	// JWKS is the public key set as served, and parsed.
	JWKS(ctx context.Context) ([]byte, *keyring.PublicKeys, error)
}

var _ Admission = (*admissionapi.Client)(nil)

// NATSCore is Core over NATS: the queue service's client.
type NATSCore struct{ *queueapi.Client }

// SubscribeDecisions subscribes to the event's decisions.
func (c NATSCore) SubscribeDecisions(eventID string, f func(Decision)) (func() error, error) {
	sub, err := c.Client.SubscribeDecisions(eventID, f)
	if err != nil {
		return nil, err
	}
	return func() error {
		if err := sub.Unsubscribe(); err != nil && err != nats.ErrConnectionClosed && err != nats.ErrBadSubscription {
			return err
		}
		return nil
	}, nil
}
