package payment

import (
	"strings"
	"sync"
)

// maxPublished bounds the orders publishedVersions remembers: two
// generations of up to this many each.
const maxPublished = 1 << 16

// publishedVersions remembers, per order, the newest version of its
// payment whose event this process published, so that a look at a
// payment that changes nothing publishes nothing (Service.publish), and
// the publishes under way, so that a second look waits for the first
// instead of publishing the version again. For a version that settled
// the payment (captured or voided) it keeps what decides every later
// report of its intent (settles). Forgetting is safe: a version not
// remembered is published again, and publishing a version twice stores
// one event (its id is the version's). It keeps the orders of two
// generations: when the newer fills up, the older is dropped, so the
// orders published lately (whose webhooks are still coming) stay. The
// zero value is ready for use; safe for concurrent use.
type publishedVersions struct {
	mu       sync.Mutex
	cur, old map[string]published
	flights  map[string]*flight // publishes under way, by order
}

// published is what is remembered of an order's payment.
type published struct {
	version int64
	// settled is the capture or void that settled the payment, and its
	// intent; zero when the version is not settled.
	intent  string
	settled Entry
}

// flight is a publish under way.
type flight struct {
	version int64
	done    chan struct{}
}

func (m *publishedVersions) get(order string) (published, bool) {
	if p, ok := m.cur[order]; ok {
		return p, true
	}
	p, ok := m.old[order]
	return p, ok
}

// begin starts the publish of version of order's payment: known when
// this process published it (or a newer one) already; else wait, when
// another publish of it (or a newer one) is under way, is closed when
// that ends (call begin again); else mine is this call's flight, for end.
func (m *publishedVersions) begin(order string, version int64) (known bool, wait <-chan struct{}, mine *flight) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.get(order); ok && p.version >= version {
		return true, nil, nil
	}
	if f := m.flights[order]; f != nil {
		if f.version >= version {
			return false, f.done, nil
		}
		return false, nil, nil // an older version under way: publish beside it
	}
	if m.flights == nil {
		m.flights = map[string]*flight{}
	}
	f := &flight{version: version, done: make(chan struct{})}
	m.flights[order] = f
	return false, nil, f
}

// end ends a publish of p that begin started (f: its flight, or nil),
// remembering p when ok (the stream stored it).
func (m *publishedVersions) end(p Payment, ok bool, f *flight) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok {
		m.add(p)
	}
	if f != nil {
		if m.flights[p.OrderID] == f {
			delete(m.flights, p.OrderID)
		}
		close(f.done)
	}
}

// add remembers p's version (unless a newer one is), with its
// settlement. m.mu is held.
func (m *publishedVersions) add(p Payment) {
	if was, ok := m.get(p.OrderID); ok && was.version >= p.Version {
		return
	}
	rec := published{version: p.Version}
	if p.Status.captured() || p.Status == StatusCanceled {
		for _, e := range p.Entries {
			if e.Kind == EntryCapture || e.Kind == EntryVoid {
				rec.intent, rec.settled = p.IntentID, Entry{ID: e.ID, Kind: e.Kind, Amount: e.Amount, Currency: e.Currency}
				break
			}
		}
	}
	if _, ok := m.cur[p.OrderID]; !ok && (m.cur == nil || len(m.cur) >= maxPublished) {
		m.old, m.cur = m.cur, make(map[string]published, min(maxPublished, 1024))
	}
	m.cur[p.OrderID] = rec
}

// settles reports whether this process published order's payment
// settled by a capture or void that makes applying in, a report of its
// intent, change nothing: entries are never removed, so a captured
// payment stays captured by that charge and a voided one voided, and
// applyIntent then leaves the payment as it is for a success with that
// charge, a cancellation (of a captured payment, or the void itself),
// or any passing state.
func (m *publishedVersions) settles(order string, in Intent) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.get(order)
	if !ok || p.intent == "" || p.intent != in.ID {
		return false
	}
	same := func(kind EntryKind, id string, amount int64) bool {
		return p.settled.Kind == kind && p.settled.ID == id && p.settled.Amount == amount && strings.EqualFold(p.settled.Currency, in.Currency)
	}
	switch in.Status {
	case Succeeded:
		charge := in.ChargeID
		if charge == "" {
			charge = in.ID
		}
		return same(EntryCapture, charge, in.AmountReceived)
	case Canceled:
		return p.settled.Kind == EntryCapture || same(EntryVoid, in.ID, in.Amount)
	}
	return true
}
