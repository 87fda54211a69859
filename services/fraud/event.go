package fraud

import (
	"context"
	"time"
)

// TypeDecided is the CloudEvents type of a decision's event.
const TypeDecided = "ticketing.fraud.decided"

// Event is a decision as a domain event, for analytics. It never holds an
// address (only its network, and a keyed hash when Config.HashKey is set),
// a device fingerprint or a credential.
type Event struct {
	// ID is unique per decision (the CloudEvents id and Nats-Msg-Id).
	ID string `json:"-"`
	// Subject is what the decision was about: "account:<id>" when there
	// was an account, else "network:<prefix>", else "unknown". Events
	// with one subject are ordered (the Kafka record key).
	Subject string    `json:"-"`
	At      time.Time `json:"at"`
	Action  Action    `json:"action"`
	Account string    `json:"account,omitempty"`
	// Network is the client's network prefix (Config.IPv4Prefix,
	// IPv6Prefix), e.g. "192.0.2.0/24".
	Network string `json:"network,omitempty"`
	// AddressHash is a keyed hash of the client's address, set only when
	// Config.HashKey is: distinct addresses can be counted, not named.
	AddressHash  string    `json:"address_hash,omitempty"`
	KnownDevice  bool      `json:"known_device,omitempty"`
	KnownNetwork bool      `json:"known_network,omitempty"`
	Outcome      Outcome   `json:"outcome"`
	Challenge    Challenge `json:"challenge,omitempty"`
	Score        int       `json:"score"`
	Reasons      []string  `json:"reasons,omitempty"`
	// RetryAfterMS is Decision.RetryAfter in milliseconds.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Publisher receives the event of every decision.
//
// Publish is called on the decision path, synchronously, by any number of
// goroutines at once: it must not block for long (an adapter buffers and
// publishes in the background). A decision never fails because its event
// was not published: the engine counts the error (Stats.PublishFailed)
// and goes on. Cancelling ctx may abandon the event.
type Publisher interface {
	Publish(ctx context.Context, ev Event) error
}

// Discard is a Publisher that drops every event (tests, tools).
type Discard struct{}

// Publish implements Publisher.
func (Discard) Publish(context.Context, Event) error { return nil }
