package waitroom

import (
	"context"
	"time"

	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/queue"
)

// The wire types of the waiting-room protocol (shared spec, "Wire
// protocol"). They mirror services/queue/natsapi until that package lands;
// then they become aliases of it.

// CoreConfig is an event's waiting-room setup (queue.config).
type CoreConfig struct {
	EventID    string    `json:"event_id"`
	TicketKey  []byte    `json:"ticket_key"`
	Commitment string    `json:"commitment"`
	OnSaleAt   time.Time `json:"on_sale_at"`
	Seed       []byte    `json:"seed,omitempty"`
	SoldOut    bool      `json:"sold_out"`
}

// Report is an edge's queue lengths for an event (queue.report.<event>).
type Report struct {
	Edge     string    `json:"edge"`
	EventID  string    `json:"event_id"`
	Waiting  int       `json:"waiting"`
	PreQueue int       `json:"pre_queue"`
	Admitted int       `json:"admitted"`
	Joined   int       `json:"joined"`
	At       time.Time `json:"at"`
}

// Decision is the core's decision for an event (queue.edge.<event>).
type Decision struct {
	EventID   string            `json:"event_id"`
	Seq       uint64            `json:"seq"`
	At        time.Time         `json:"at"`
	Seed      []byte            `json:"seed,omitempty"`
	SoldOut   bool              `json:"sold_out"`
	Reachable int               `json:"reachable"`
	Waiting   int               `json:"waiting"`
	Rate      float64           `json:"rate"`
	Edges     []queue.EdgeAdmit `json:"edges"`
}

// For returns the share of the named edge (zero if it is not listed).
func (d *Decision) For(edge string) (queue.EdgeAdmit, bool) {
	for _, e := range d.Edges {
		if e.Edge == edge {
			return e, true
		}
	}
	return queue.EdgeAdmit{Edge: edge}, false
}

// PreQueueChunk is part of an edge's pre-queue (queue.prequeue).
type PreQueueChunk struct {
	EventID string           `json:"event_id"`
	Edge    string           `json:"edge"`
	Tickets []queue.TicketID `json:"tickets"`
	Last    bool             `json:"last"`
}

// MaxPreQueueChunk is the most tickets one queue.prequeue request carries.
const MaxPreQueueChunk = 10_000

// DrawRecord is the public record of an event's draw (queue.draw).
type DrawRecord struct {
	EventID    string           `json:"event_id"`
	Commitment string           `json:"commitment"`
	OnSaleAt   time.Time        `json:"on_sale_at"`
	Seed       []byte           `json:"seed,omitempty"`
	Tickets    []queue.TicketID `json:"tickets,omitempty"`
	Complete   bool             `json:"complete"`
}

// Core is what the waiting room needs of the core's queue service, over
// the edge's leaf node. Implementations are safe for concurrent use.
type Core interface {
	// Config is the event's setup; errs.NotFound for an unknown or
	// queue-off event.
	Config(ctx context.Context, eventID string) (CoreConfig, error)
	// PreQueue sends one chunk of this edge's pre-queue.
	PreQueue(ctx context.Context, chunk PreQueueChunk) error
	// Draw is the public draw record.
	Draw(ctx context.Context, eventID string) (DrawRecord, error)
	// Report publishes this edge's report (fire and forget).
	Report(r Report) error
	// SubscribeDecisions calls f, in order and never concurrently, with
	// every decision published for the event until stop is called.
	SubscribeDecisions(eventID string, f func(Decision)) (stop func() error, err error)
}

// Admission is what the waiting room needs of the core's admission
// service.
type Admission interface {
	// Issue signs a token admitting subject (a ticket id in hex) to the
	// event.
	Issue(ctx context.Context, eventID, subject string) (token, jti string, expires time.Time, err error)
	// JWKS is the public key set as served, and parsed.
	JWKS(ctx context.Context) ([]byte, *admission.PublicKeys, error)
}
