// Package outbox is the message a store's transactional outbox keeps for
// a domain event and publishes into the EVENTS stream: its subject, its
// CloudEvents headers and its body, with the event id as Nats-Msg-Id so
// that EVENTS drops a repeat within its duplicate window (a relay
// publishes at least once).
//
// Every store makes its entries with NewEntry and publishes them with
// Entry.Msg, so that consumers of EVENTS cannot tell the stores apart:
// the orders' JetStream store carries them in the orders' values
// (services/orders/natskv and its Relay), stores on PostgreSQL keep them
// in a table relayed by the sub-package pgrelay.
package outbox

import (
	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/internal/cloudevents"
)

// Entry is one event to publish: its subject and CloudEvents message.
type Entry struct {
	Subject string      `json:"subject"`
	Headers [][2]string `json:"headers"`
	Body    []byte      `json:"body"` // the structured CloudEvents JSON
}

// NewEntry makes the entry of an event with data on subject. Every
// store's outbox, whatever keeps it, is made of these, so that consumers
// of EVENTS cannot tell the stores apart.
func NewEntry(subject string, ce *cloudevents.Event, data any) (Entry, error) {
	body, err := cloudevents.Encode(ce, data)
	if err != nil {
		return Entry{}, err
	}
	return Entry{Subject: subject, Headers: ce.Headers(), Body: body}, nil
}

// ID is the entry's event id (its ce-id header), "" when it has none.
func (e *Entry) ID() string {
	for _, h := range e.Headers {
		if h[0] == cloudevents.HeaderID {
			return h[1]
		}
	}
	return ""
}

// Msg is the message that publishes the entry: its subject, headers and
// body, with the event id as Nats-Msg-Id so that EVENTS drops a repeat
// within its duplicate window.
func (e *Entry) Msg() *nats.Msg {
	m := nats.NewMsg(e.Subject)
	for _, h := range e.Headers {
		m.Header.Set(h[0], h[1])
	}
	m.Header.Set(nats.MsgIdHdr, m.Header.Get(cloudevents.HeaderID))
	m.Data = e.Body
	return m
}
