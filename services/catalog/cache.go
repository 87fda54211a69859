package catalog

import (
	"sort"
	"sync"
)

// Cache is an in-memory copy of the catalog, kept current by a follower of
// the store (natskv.Follow). Edges serve browsing from it; the core learns
// of new events from it. Safe for concurrent use.
type Cache struct {
	mu       sync.RWMutex
	venues   map[string]*Venue
	events   map[string]*Event
	routers  map[string]*Router
	onEvent  []func(Event, Venue)
	ready    chan struct{}
	readyOne sync.Once
}

// NewCache makes an empty cache.
func NewCache() *Cache {
	return &Cache{venues: map[string]*Venue{}, events: map[string]*Event{}, routers: map[string]*Router{}, ready: make(chan struct{})}
}

// OnEvent registers f to be called, outside the lock, for every event that
// is (or becomes) known together with its venue. Register before following.
func (c *Cache) OnEvent(f func(Event, Venue)) {
	c.mu.Lock()
	c.onEvent = append(c.onEvent, f)
	c.mu.Unlock()
}

// PutVenue adds or replaces a venue and announces events waiting for it.
func (c *Cache) PutVenue(v Venue) {
	c.mu.Lock()
	c.venues[v.ID] = &v
	var ready []Event
	for _, e := range c.events {
		if e.VenueID == v.ID {
			c.routers[e.ID] = NewRouter(e, &v)
			ready = append(ready, *e)
		}
	}
	hooks := c.onEvent
	c.mu.Unlock()
	for _, e := range ready {
		for _, f := range hooks {
			f(e, v)
		}
	}
}

// PutEvent adds or replaces an event and announces it once its venue is known.
func (c *Cache) PutEvent(e Event) {
	c.mu.Lock()
	c.events[e.ID] = &e
	v, ok := c.venues[e.VenueID]
	if ok {
		c.routers[e.ID] = NewRouter(&e, v)
	}
	hooks := c.onEvent
	c.mu.Unlock()
	if ok {
		for _, f := range hooks {
			f(e, *v)
		}
	}
}

// MarkReady records that the initial load is complete.
func (c *Cache) MarkReady() { c.readyOne.Do(func() { close(c.ready) }) }

// Ready is closed once the initial load is complete.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Event returns an event and its venue.
func (c *Cache) Event(id string) (Event, Venue, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.events[id]
	if !ok {
		return Event{}, Venue{}, false
	}
	v, ok := c.venues[e.VenueID]
	if !ok {
		return Event{}, Venue{}, false
	}
	return *e, *v, true
}

// Router returns the seat router of an event.
func (c *Cache) Router(id string) (*Router, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.routers[id]
	return r, ok
}

// Events lists events whose venue is known, by on-sale time then id.
func (c *Cache) Events() []Event {
	c.mu.RLock()
	out := make([]Event, 0, len(c.events))
	for _, e := range c.events {
		if _, ok := c.venues[e.VenueID]; ok {
			out = append(out, *e)
		}
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].OnSaleAt.Equal(out[j].OnSaleAt) {
			return out[i].OnSaleAt.Before(out[j].OnSaleAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Venue returns a venue.
func (c *Cache) Venue(id string) (Venue, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.venues[id]
	if !ok {
		return Venue{}, false
	}
	return *v, true
}
