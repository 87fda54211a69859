package settings

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Snapshot is the set values at one moment. It is immutable.
type Snapshot struct {
	values map[Key]Value
}

// Lookup returns name's value for scope: the scoped value when one is set,
// else the global one. ok is false when neither is set (the caller keeps
// its own start-up value).
func (s *Snapshot) Lookup(name, scope string) (v Value, ok bool) {
	if scope != "" {
		if v, ok = s.values[Key{Name: name, Scope: scope}]; ok {
			return v, true
		}
	}
	v, ok = s.values[Key{Name: name}]
	return v, ok
}

// Bool is name's bool for scope, or fallback when none is set.
func (s *Snapshot) Bool(name, scope string, fallback bool) bool {
	if v, ok := s.Lookup(name, scope); ok && v.Type == Bool {
		return v.Bool
	}
	return fallback
}

// Int is name's int for scope, or fallback when none is set.
func (s *Snapshot) Int(name, scope string, fallback int64) int64 {
	if v, ok := s.Lookup(name, scope); ok && v.Type == Int {
		return v.Int
	}
	return fallback
}

// Duration is name's duration for scope, or fallback when none is set.
func (s *Snapshot) Duration(name, scope string, fallback time.Duration) time.Duration {
	if v, ok := s.Lookup(name, scope); ok && v.Type == Duration {
		return v.Duration
	}
	return fallback
}

// Len is how many values are set.
func (s *Snapshot) Len() int { return len(s.values) }

// Live is a process's current settings, fed by a watcher of the store and
// read on hot paths without a lock. Apply checks each entry again against
// the registry and keeps the last good value when one is bad.
type Live struct {
	reg  *Registry
	snap atomic.Pointer[Snapshot]

	mu        sync.Mutex // serializes writers; guards listeners
	listeners []func(Key)
	ready     chan struct{}
	readyOnce sync.Once
}

// NewLive returns settings with nothing set, checked against reg (nil:
// Known).
func NewLive(reg *Registry) *Live {
	if reg == nil {
		reg = Known
	}
	l := &Live{reg: reg, ready: make(chan struct{})}
	l.snap.Store(&Snapshot{values: map[Key]Value{}})
	return l
}

// Snapshot returns the current values.
func (l *Live) Snapshot() *Snapshot { return l.snap.Load() }

// Apply installs the entry stored under bucketKey. An entry that does not
// decode, names an unknown setting or a scope the setting has not, or
// holds a value its definition refuses, is refused (errs.Invalid; unknown
// settings errs.NotFound, for a newer writer's settings) and the value
// before stays.
func (l *Live) Apply(bucketKey string, raw []byte) error {
	const op = "settings.apply"
	k, ok := ParseBucketKey(bucketKey)
	if !ok {
		return errs.Errorf(op, errs.Invalid, "%q is not a setting's key", bucketKey)
	}
	def, ok := l.reg.Lookup(k.Name)
	if !ok {
		return errs.Errorf(op, errs.NotFound, "unknown setting %q", k.Name)
	}
	if k.Scope != "" && def.Scope == Global {
		return errs.Errorf(op, errs.Invalid, "%s has no scope; %q is not a key of it", k.Name, bucketKey)
	}
	e, err := DecodeEntry(raw)
	if err != nil {
		return err
	}
	v, err := def.Decode(e.Value)
	if err != nil {
		return err
	}
	l.swap(k, func(m map[Key]Value) { m[k] = v })
	return nil
}

// Remove forgets the value stored under bucketKey (deleted: the scope
// falls back to the global value, the global one to the start-up value).
func (l *Live) Remove(bucketKey string) {
	k, ok := ParseBucketKey(bucketKey)
	if !ok {
		return
	}
	if _, set := l.Snapshot().values[k]; !set {
		return
	}
	l.swap(k, func(m map[Key]Value) { delete(m, k) })
}

// MarkReady says the store's current values have all been applied.
func (l *Live) MarkReady() { l.readyOnce.Do(func() { close(l.ready) }) }

// Ready is closed once the store's values at the start have been applied.
func (l *Live) Ready() <-chan struct{} { return l.ready }

// OnChange calls f after each change with the key that changed. f must not
// block.
func (l *Live) OnChange(f func(Key)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners = append(l.listeners, f)
}

func (l *Live) swap(k Key, change func(map[Key]Value)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := maps.Clone(l.snap.Load().values)
	change(m)
	l.snap.Store(&Snapshot{values: m})
	for _, f := range l.listeners {
		f(k)
	}
}
