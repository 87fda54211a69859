package owner

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/services/inventory"
)

// The relay publishes the domain events of every committed record to the
// EVENTS stream, in log order: one message per record (a record holds a
// group commit, tens of decisions at load), a CloudEvents JSON batch
// (cloudevents.BatchContentType) of at most relayBatchEvents events or about
// relayBatchBytes, which the Kafka bridge splits into one record per event.
// Each event's id is "<partition>:<log seq>:<index>"; a message's
// Nats-Msg-Id is "<partition>:<log seq>:<first index>-<last index>" and its
// headers carry the log position of its last event. Ids are derived from the
// log, so publishing again after a crash or an error yields the same ids:
// JetStream drops the duplicates inside its window, and the relay restarts
// after the last event the stream holds, so there are none outside it. A
// failed publish is not skipped: the relay finds its place on EVENTS again
// and republishes from the log.

type inflight struct {
	pos   position
	f     jetstream.PubAckFuture
	spans []trace.Span // of its sampled events; nearly always nil
}

type relayer struct {
	o       *Owner
	js      jetstream.JetStream
	sent    position // last event published (maybe not yet acknowledged)
	handed  uint64   // last record received from the writer
	q       []inflight
	stopped bool
	spans   []trace.Span // of sampled events not yet sent
}

const (
	relayWindow      = 1024 // messages in flight
	relayBatchEvents = 256
	relayBatchBytes  = 256 << 10
)

func (o *Owner) relay(backlog []committed, from position) {
	js, err := jetstream.New(o.deps.conn(o.deps.RelayNC),
		jetstream.WithPublishAsyncMaxPending(2*relayWindow),
		jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		o.log.Error("relay: no JetStream context", "err", err)
		return
	}
	r := &relayer{o: o, js: js, sent: from}
	lag := o.deps.Metrics.RelayLag.WithLabelValues(o.key)
	defer o.deps.Metrics.RelayLag.DeleteLabelValues(o.key)
	for _, c := range backlog {
		r.publish(c)
	}
	for c := range o.relayCh {
		r.publish(c)
		r.reap(false)
		lag.Set(float64(len(r.q)))
	}
	// Stopping: wait for what is in flight, within the owner's stop deadline.
	r.stopped = true
	r.reap(true)
}

func (r *relayer) publish(c committed) {
	o := r.o
	traced := o.traces.take(c.seq)
	var body []byte
	first, last, n := 0, 0, 0
	for i, d := range c.ds {
		pos := position{seq: c.seq, idx: i}
		if !pos.after(r.sent) {
			continue
		}
		typ, data, ok := o.events.Of(d)
		if !ok {
			continue
		}
		start := len(body)
		if n == 0 {
			// A new buffer for each message: an async publish keeps it.
			body, start = append(make([]byte, 0, 1024*min(len(c.ds)-i, 64)), '['), 0
		} else {
			body = append(body, ',')
		}
		var err error
		if body, err = o.appendEvent(body, pos, typ, d, &data, r.traceEvent(traced, c.seq, i)); err != nil {
			o.log.Error("relay: cannot encode event; skipping it", "seq", c.seq, "index", i, "err", err)
			body = body[:start]
			continue
		}
		if n == 0 {
			first = i
		}
		last = i
		n++
		if n >= relayBatchEvents || len(body) >= relayBatchBytes {
			if !r.send(c.seq, first, last, body) {
				return
			}
			n = 0
		}
	}
	if n > 0 && !r.send(c.seq, first, last, body) {
		return
	}
	r.handed = max(r.handed, c.seq)
	if len(r.q) == 0 {
		o.relayedSeq.Store(r.handed)
	}
}

// send publishes one batch: the events of record seq from index first to
// last (the body without its closing bracket). False if the publish failed
// and the relay resynchronised.
func (r *relayer) send(seq uint64, first, last int, body []byte) bool {
	m := r.o.batchMsg(seq, first, last, append(body, ']'))
	f, err := r.js.PublishMsgAsync(m)
	for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		r.reapOne()
		f, err = r.js.PublishMsgAsync(m)
	}
	if err != nil {
		r.resync(err)
		return false
	}
	pos := position{seq: seq, idx: last}
	r.q = append(r.q, inflight{pos: pos, f: f, spans: r.sentSpans()})
	r.sent = pos
	return true
}

// reap takes acknowledged publishes off the front of the queue; with wait it
// waits for all of them, else only when the window is full.
func (r *relayer) reap(wait bool) {
	for len(r.q) > 0 {
		if !wait && len(r.q) < relayWindow {
			select {
			case <-r.q[0].f.Ok():
			case err := <-r.q[0].f.Err():
				r.resync(err)
				return
			default:
				return
			}
		} else if !r.reapOne() {
			return
		}
		r.confirm()
	}
}

// reapOne waits for the front publish; false if it failed (and the relay
// resynchronised).
func (r *relayer) reapOne() bool {
	select {
	case <-r.q[0].f.Ok():
		return true
	case err := <-r.q[0].f.Err():
		r.resync(err)
		return false
	}
}

func (r *relayer) confirm() {
	done := r.q[0].pos
	endSpans(r.q[0].spans, nil)
	r.q = r.q[1:]
	if len(r.q) == 0 {
		r.o.relayedSeq.Store(r.handed)
	} else {
		r.o.relayedSeq.Store(done.seq - 1)
	}
}

// resync recovers from a failed publish: it lets what is in flight settle,
// reads the last event of this partition on EVENTS, and republishes from the
// log every event after it.
func (r *relayer) resync(cause error) {
	o := r.o
	o.log.Warn("relay: publish failed; resynchronising from the log", "err", cause)
	for _, in := range r.q {
		select {
		case <-in.f.Ok():
		case <-in.f.Err():
		}
		endSpans(in.spans, cause)
	}
	endSpans(r.sentSpans(), cause)
	r.q = nil
	backoff := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.replayFromLog(ctx)
		cancel()
		if err == nil {
			return
		}
		if r.stopped || o.isFailed() {
			o.log.Warn("relay: stopping before events were resynchronised; the next owner will", "err", err)
			return
		}
		o.log.Warn("relay: resynchronisation failed; retrying", "err", err)
		time.Sleep(backoff) // a retry pause in a background loop, not a wait for a condition
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (r *relayer) replayFromLog(ctx context.Context) error {
	o := r.o
	cp, err := o.relayCheckpoint(ctx)
	if err != nil {
		return err
	}
	r.sent = cp
	var records []committed
	err = o.readLog(ctx, max(cp.seq, 1), r.handed, func(seq uint64, rec *record) error {
		if !o.skipped[seq] {
			records = append(records, committed{seq: seq, gen: rec.Gen, ds: rec.D})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range records {
		r.publish(c)
	}
	return nil
}

// appendEvent appends the structured CloudEvents JSON of one domain event.
func (o *Owner) appendEvent(b []byte, pos position, typ string, d *inventory.Decision, data *inventory.EventData, traceparent string) ([]byte, error) {
	ev := cloudevents.Event{
		SpecVersion:     cloudevents.SpecVersion,
		ID:              o.key + ":" + strconv.FormatUint(pos.seq, 10) + ":" + strconv.Itoa(pos.idx),
		Source:          o.evSource,
		Type:            typ,
		Subject:         d.Hold,
		Time:            d.Time(),
		DataContentType: "application/json",
		PartitionKey:    data.EventID,
		TraceParent:     traceparent,
	}
	return cloudevents.AppendEncode(b, &ev, data)
}

// batchMsg builds the NATS message of a batch of events of record seq, the
// first to the last index.
func (o *Owner) batchMsg(seq uint64, first, last int, body []byte) *nats.Msg {
	s, l := strconv.FormatUint(seq, 10), strconv.Itoa(last)
	// One backing array for the header values: one allocation, not four.
	vals := [...]string{o.key + ":" + s + ":" + strconv.Itoa(first) + "-" + l, cloudevents.BatchContentType, s, l}
	return &nats.Msg{Subject: o.evSubj, Data: body, Header: nats.Header{
		nats.MsgIdHdr:                 vals[0:1:1],
		cloudevents.HeaderContentType: vals[1:2:2],
		headerLogSeq:                  vals[2:3:3],
		headerLogIndex:                vals[3:4:4],
	}}
}
