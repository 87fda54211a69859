package postgres

import "sync"

// recent remembers the last written form of the orders this store wrote
// or read last (the record and its version), at most max of them, the
// oldest forgotten first. An update of an order it remembers needs no
// read: it writes where the order is still at the remembered version, and
// reads only when another writer came first. A nil *recent remembers
// nothing.
type recent struct {
	mu     sync.Mutex
	max    int
	orders map[string]remembered
	ring   []string // ids in the order they were first remembered
	next   int      // the ring's oldest slot
}

type remembered struct {
	record  []byte // the order's JSON with version 0
	version uint64
}

func newRecent(max int) *recent {
	if max <= 0 {
		return nil
	}
	return &recent{max: max, orders: make(map[string]remembered, max), ring: make([]string, 0, max)}
}

// get returns the remembered form of order id; its record must not be
// changed.
func (r *recent) get(id string) (remembered, bool) {
	if r == nil {
		return remembered{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.orders[id]
	return o, ok
}

// put remembers record (not changed afterwards) at version as order id's
// last written form.
func (r *recent) put(id string, record []byte, version uint64) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.orders[id]; !ok {
		if len(r.ring) < r.max {
			r.ring = append(r.ring, id)
		} else {
			delete(r.orders, r.ring[r.next])
			r.ring[r.next] = id
			r.next = (r.next + 1) % r.max
		}
	}
	r.orders[id] = remembered{record: record, version: version}
}

// drop forgets order id's form. Its id stays in the ring: remembered
// again, it is there twice, and the older slot's reuse forgets it early,
// which costs a read.
func (r *recent) drop(id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.orders, id)
}
