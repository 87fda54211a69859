package payment

import "sync"

// maxPublished bounds the orders publishedVersions remembers: two
// generations of up to this many each.
const maxPublished = 1 << 16

// publishedVersions remembers, per order, the newest version of its
// payment whose event this process published, so that a look at a
// payment that changes nothing publishes nothing (Service.publish).
// Forgetting is safe: a version not remembered is published again, and
// publishing a version twice stores one event (its id is the version's).
// It keeps the orders of two generations: when the newer fills up, the
// older is dropped, so the orders published lately (whose webhooks are
// still coming) stay. The zero value is ready for use; safe for
// concurrent use.
type publishedVersions struct {
	mu       sync.Mutex
	cur, old map[string]int64
}

// has reports whether version (or a newer one) of order's payment was
// published by this process.
func (m *publishedVersions) has(order string, version int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.cur[order]
	if !ok {
		v, ok = m.old[order]
	}
	return ok && v >= version
}

// add records that version of order's payment was published.
func (m *publishedVersions) add(order string, version int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cur[order]; ok {
		m.cur[order] = max(v, version)
		return
	}
	if len(m.cur) >= maxPublished || m.cur == nil {
		m.old, m.cur = m.cur, make(map[string]int64, min(maxPublished, 1024))
	}
	m.cur[order] = max(version, m.old[order])
}
