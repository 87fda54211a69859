// Package natskv stores the catalog in a JetStream key-value bucket (the
// embedded default): "venue.<id>" and "event.<id>" keys holding JSON. Create
// is compare-and-set, so an id is taken once. Follow keeps a catalog.Cache
// current by watching the bucket, over a leaf node too.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/internal/kvwatch"
	"github.com/ticketing/ticketing/services/catalog"
)

// Store is a catalog.Store on a key-value bucket.
type Store struct {
	KV jetstream.KeyValue
	// NC, when set, is the connection a key the bucket's Get did not find
	// is asked again on, from the stream's leader: a clustered bucket
	// answers Get from any replica, which may not have the key written a
	// moment ago through another node (a venue created just before its
	// event).
	NC *nats.Conn
}

var _ catalog.Store = (*Store)(nil)

func (s *Store) create(ctx context.Context, op, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	_, err = s.KV.Create(ctx, key, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errs.Errorf(op, errs.Conflict, "%s already exists", strings.Replace(key, ".", " ", 1))
	}
	if err != nil {
		return errs.E(op, errs.Unavailable, "catalog store unavailable", err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, op, key string, v any) error {
	val, err := kvget.Get(ctx, s.NC, s.KV, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return errs.Errorf(op, errs.NotFound, "no %s", strings.Replace(key, ".", " ", 1))
	}
	if err != nil {
		return errs.E(op, errs.Unavailable, "catalog store unavailable", err)
	}
	if err := json.Unmarshal(val, v); err != nil {
		return errs.E(op, errs.Other, fmt.Errorf("%s: %w", key, err))
	}
	return nil
}

func list[T any](ctx context.Context, s *Store, op, prefix string) ([]T, error) {
	keys, err := s.KV.ListKeysFiltered(ctx, prefix+".*")
	if err != nil {
		return nil, errs.E(op, errs.Unavailable, "catalog store unavailable", err)
	}
	var out []T
	for k := range keys.Keys() {
		var v T
		if err := s.get(ctx, op, k, &v); err != nil {
			if errs.Is(errs.NotFound, err) {
				continue
			}
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// CreateVenue stores a new venue.
func (s *Store) CreateVenue(ctx context.Context, v catalog.Venue) error {
	return s.create(ctx, "catalog.create_venue", "venue."+v.ID, v)
}

// Venue reads a venue.
func (s *Store) Venue(ctx context.Context, id string) (catalog.Venue, error) {
	var v catalog.Venue
	err := s.get(ctx, "catalog.venue", "venue."+id, &v)
	return v, err
}

// Venues lists the venues.
func (s *Store) Venues(ctx context.Context) ([]catalog.Venue, error) {
	return list[catalog.Venue](ctx, s, "catalog.venues", "venue")
}

// CreateEvent stores a new event.
func (s *Store) CreateEvent(ctx context.Context, e catalog.Event) error {
	return s.create(ctx, "catalog.create_event", "event."+e.ID, e)
}

// Event reads an event.
func (s *Store) Event(ctx context.Context, id string) (catalog.Event, error) {
	var e catalog.Event
	err := s.get(ctx, "catalog.event", "event."+id, &e)
	return e, err
}

// Events lists the events.
func (s *Store) Events(ctx context.Context) ([]catalog.Event, error) {
	return list[catalog.Event](ctx, s, "catalog.events", "event")
}

// Follow loads the bucket into cache and keeps it current until ctx is
// done (it then returns nil), or until the watch ends on its own (an
// error: the cache would go stale). The cache is marked ready after the
// initial values.
func Follow(ctx context.Context, kv jetstream.KeyValue, cache *catalog.Cache, log *slog.Logger) error {
	return kvwatch.Follow(ctx, kv, "catalog follow", cache.MarkReady, func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			return
		}
		key := e.Key()
		switch {
		case strings.HasPrefix(key, "venue."):
			var v catalog.Venue
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				log.Warn("catalog: unreadable venue", "key", key, "err", err)
				return
			}
			cache.PutVenue(v)
		case strings.HasPrefix(key, "event."):
			var ev catalog.Event
			if err := json.Unmarshal(e.Value(), &ev); err != nil {
				log.Warn("catalog: unreadable event", "key", key, "err", err)
				return
			}
			cache.PutEvent(ev)
		}
	})
}
