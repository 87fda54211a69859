package natskv

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
)

// dueIndex is when each order of the bucket is due, in memory, kept from
// the Orders-Next-At headers of the writes of o.> in the bucket's stream
// (a headers-only ordered consumer) that the first list starts: every
// node that runs a saga has one. A consumer that fails is started again
// by the next list.
type dueIndex struct {
	js     jetstream.JetStream
	stream string
	prefix string // of the order keys' subjects: "$KV.<bucket>.o."

	mu     sync.Mutex
	run    *dueRun // nil: none running
	closed bool
}

// dueRun is one consumer's index.
type dueRun struct {
	cancel context.CancelFunc
	ready  chan struct{} // closed once it read what existed at its start, or failed
	err    error         // why it failed, set before ready is closed

	mu sync.Mutex
	at map[string]int64 // order id → NextAt, unix nanoseconds
}

func newDueIndex(js jetstream.JetStream, stream, prefix string) *dueIndex {
	return &dueIndex{js: js, stream: stream, prefix: prefix + orderPrefix}
}

// current returns the running index, starting one if none is.
func (d *dueIndex) current(ctx context.Context) (*dueRun, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errs.E("orders.natskv.due", errs.Unavailable, "the store is closed")
	}
	if d.run != nil {
		return d.run, nil
	}
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return nil, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{d.prefix + ">"}, HeadersOnly: true})
	if err != nil {
		return nil, err
	}
	it, err := c.Messages()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	r := &dueRun{cancel: cancel, ready: make(chan struct{}), at: map[string]int64{}}
	d.run = r
	// Nothing to read: ready at once. Else ready at the first message
	// with nothing pending after it.
	ready := false
	if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.Delivered.Consumer == 0 {
		ready = true
		close(r.ready)
	}
	go func() { <-runCtx.Done(); it.Stop() }()
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				// Stopped, or failed: the next list starts another.
				d.mu.Lock()
				if d.run == r {
					d.run = nil
				}
				d.mu.Unlock()
				cancel()
				if !ready {
					r.err = err
					close(r.ready)
				}
				return
			}
			r.apply(m, d.prefix)
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 && !ready {
				ready = true
				close(r.ready)
			}
		}
	}()
	return r, nil
}

// apply takes one write of an order's key into the index.
func (r *dueRun) apply(m jetstream.Msg, prefix string) {
	id := strings.TrimPrefix(m.Subject(), prefix)
	h := m.Headers()
	v := h.Get(NextAtHeader)
	r.mu.Lock()
	defer r.mu.Unlock()
	if h.Get("KV-Operation") != "" {
		delete(r.at, id) // deleted or purged
		return
	}
	if v == "" {
		return // written before the header existed (Open migrated those due)
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n != 0 {
		r.at[id] = n
	} else {
		delete(r.at, id)
	}
}

func (d *dueIndex) list(ctx context.Context, now time.Time, limit int) ([]string, error) {
	const op = "orders.natskv.due"
	r, err := d.current(ctx)
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, err)
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		return nil, errs.E(op, errs.Unavailable, ctx.Err())
	}
	if r.err != nil {
		return nil, errs.E(op, errs.Unavailable, r.err)
	}
	type due struct {
		id string
		at int64
	}
	cut := now.UnixNano()
	var out []due
	r.mu.Lock()
	for id, at := range r.at {
		if at <= cut {
			out = append(out, due{id, at})
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b due) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, 0, min(limit, len(out)))
	for _, o := range out[:min(limit, len(out))] {
		ids = append(ids, o.id)
	}
	return ids, nil
}

func (d *dueIndex) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.run != nil {
		d.run.cancel()
		d.run = nil
	}
}
