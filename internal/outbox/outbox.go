// Package outbox relays the domain events that embedded stores write with
// their state (a transactional outbox in a JetStream key-value bucket,
// written by internal/kvtx transactions under keys "out.<event id>") into
// the EVENTS stream, each with its event id as Nats-Msg-Id, and purges
// what it relayed. An entry is published at least once; the stream's
// duplicate window drops a repeat published within it (a relay that
// crashed between publishing and purging publishes again at once).
//
// Events of one bucket are published in the order they were written.
//
// Stores on PostgreSQL keep their outbox in a table instead, relayed by
// the sub-package pgrelay; both publish the same messages (Entry.Msg).
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/kvtx"
	"github.com/ticketing/ticketing/internal/pause"
)

// KeyPrefix starts the key of every outbox entry.
const KeyPrefix = "out."

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

// Encode makes the entry of an event with data on subject, encoded as a
// key-value outbox keeps it.
func Encode(subject string, ce *cloudevents.Event, data any) ([]byte, error) {
	e, err := NewEntry(subject, ce, data)
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
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

// Put adds the entry of event id to a transaction.
func Put(tx *kvtx.Tx, id string, entry []byte) { tx.Blind(KeyPrefix+id, entry, 0) }

// Relay publishes a bucket's outbox.
type Relay struct {
	KV jetstream.KeyValue
	JS jetstream.JetStream
	// Batch is how many entries are published before their acks are
	// awaited and they are purged. Default 256.
	Batch int
	Log   *slog.Logger

	relayed atomic.Uint64
}

// Run relays until ctx ends, starting again after a failure.
func (r *Relay) Run(ctx context.Context) error {
	if r.Batch == 0 {
		r.Batch = 256
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	for ctx.Err() == nil {
		err := r.run(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("outbox relay restarts", "bucket", r.KV.Bucket(), "err", err)
			pause.For(ctx, time.Second)
		}
	}
	return nil
}

// Relayed is how many entries this relay published (repeats included).
func (r *Relay) Relayed() uint64 { return r.relayed.Load() }

func (r *Relay) run(ctx context.Context) error {
	stream := "KV_" + r.KV.Bucket()
	filter := "$KV." + r.KV.Bucket() + "." + KeyPrefix + ">"
	s, err := r.JS.Stream(ctx, stream)
	if err != nil {
		return err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(r.Batch)
		if err != nil {
			return err
		}
		var last uint64
		var acks []jetstream.PubAckFuture
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return err
			}
			last = md.Sequence.Stream
			if m.Headers().Get("KV-Operation") != "" {
				continue // a delete or purge marker
			}
			var e Entry
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				r.Log.Error("outbox entry dropped: not an entry", "bucket", r.KV.Bucket(), "seq", last, "err", err)
				continue
			}
			f, err := r.JS.PublishMsgAsync(e.Msg())
			if err != nil {
				return err
			}
			acks = append(acks, f)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		for _, f := range acks {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r.relayed.Add(uint64(len(acks)))
		if last == 0 {
			if !r.wait(ctx) {
				return nil
			}
			continue
		}
		// Everything up to last is in EVENTS: remove it from the outbox.
		if err := s.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(last+1)); err != nil {
			return err
		}
	}
	return nil
}

// wait pauses while the outbox is empty.
func (r *Relay) wait(ctx context.Context) bool { return pause.For(ctx, 20*time.Millisecond) }
