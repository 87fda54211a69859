package flags

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Set is the flag definitions a process knows, safe for concurrent use:
// reads (Get, on every evaluation) take no lock. A watcher feeds it from
// the store; Apply refuses a definition that does not decode or validate
// and keeps the last good one, so that a bad write that got past the
// service (a hand-made bucket put) changes nothing.
type Set struct {
	defs atomic.Pointer[map[string]*Definition]

	mu        sync.Mutex // serializes writers and guards listeners
	listeners []func(keys []string)
}

// NewSet returns an empty set.
func NewSet() *Set {
	s := &Set{}
	m := map[string]*Definition{}
	s.defs.Store(&m)
	return s
}

// Get returns the definition of key.
func (s *Set) Get(key string) (*Definition, bool) {
	d, ok := (*s.defs.Load())[key]
	return d, ok
}

// All returns the definitions, by key.
func (s *Set) All() []*Definition {
	m := *s.defs.Load()
	out := make([]*Definition, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// Apply decodes raw as the definition of key and installs it. A definition
// that does not decode, does not validate or names another key is refused
// (errs.Invalid) and the one before stays.
func (s *Set) Apply(key string, raw []byte) error {
	d, err := Decode(raw)
	if err != nil {
		return err
	}
	if d.Key != key {
		return errKeyMismatch(key, d.Key)
	}
	s.swap(func(m map[string]*Definition) { m[key] = &d }, key)
	return nil
}

// Remove forgets key's definition (deleted from the store).
func (s *Set) Remove(key string) {
	if _, ok := s.Get(key); !ok {
		return
	}
	s.swap(func(m map[string]*Definition) { delete(m, key) }, key)
}

// OnChange calls f, after every change, with the keys that changed. f must
// not block.
func (s *Set) OnChange(f func(keys []string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listeners = append(s.listeners, f)
}

func (s *Set) swap(change func(map[string]*Definition), key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := maps.Clone(*s.defs.Load())
	change(m)
	s.defs.Store(&m)
	for _, f := range s.listeners {
		f([]string{key})
	}
}
