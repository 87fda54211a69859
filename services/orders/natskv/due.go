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

// dueIndex is the due entries of the bucket in memory, kept by a watch on
// due.> that the first list starts (every node that runs a saga has one).
type dueIndex struct {
	kv jetstream.KeyValue

	mu      sync.Mutex
	at      map[string]int64 // order id → NextAt, unix nanoseconds
	ready   chan struct{}    // closed once the watch delivered what existed
	started bool
	cancel  context.CancelFunc
	err     error
}

func newDueIndex(kv jetstream.KeyValue) *dueIndex {
	return &dueIndex{kv: kv, at: map[string]int64{}, ready: make(chan struct{})}
}

func (d *dueIndex) start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return
	}
	d.started = true
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	w, err := d.kv.Watch(ctx, "due.>")
	if err != nil {
		d.err = err
		close(d.ready)
		return
	}
	go func() {
		defer func() { _ = w.Stop() }()
		initial := true
		for e := range w.Updates() {
			if e == nil {
				if initial {
					initial = false
					close(d.ready)
				}
				continue
			}
			id := strings.TrimPrefix(e.Key(), "due.")
			n, err := strconv.ParseInt(string(e.Value()), 10, 64)
			d.mu.Lock()
			if e.Operation() != jetstream.KeyValuePut || err != nil || n == 0 {
				delete(d.at, id)
			} else {
				d.at[id] = n
			}
			d.mu.Unlock()
		}
	}()
}

func (d *dueIndex) list(ctx context.Context, now time.Time, limit int) ([]string, error) {
	d.start()
	select {
	case <-d.ready:
	case <-ctx.Done():
		return nil, errs.E("orders.natskv.due", errs.Unavailable, ctx.Err())
	}
	if d.err != nil {
		return nil, errs.E("orders.natskv.due", errs.Unavailable, d.err)
	}
	type due struct {
		id string
		at int64
	}
	cut := now.UnixNano()
	var out []due
	d.mu.Lock()
	for id, at := range d.at {
		if at <= cut {
			out = append(out, due{id, at})
		}
	}
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b due) int {
		if a.at != b.at {
			return int(a.at - b.at)
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
	if d.cancel != nil {
		d.cancel()
	}
}
