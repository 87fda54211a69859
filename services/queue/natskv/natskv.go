// Package natskv keeps the waiting room's core state (coord.Store) in a
// JetStream key-value bucket: per event the secrets (ticket key and draw
// seed, created once with KV Create so every core node agrees), the
// controller state (updated by compare-and-set on its revision, which
// fences a deposed controller out) and the edges' pre-queue chunks.
//
// The bucket holds secrets: it must be readable by core users only, never
// by edge leaf users (conf/nats/core.conf gives them no access to it).
//
// Keys:
//
//	secrets.<event>                  coord.Secrets (JSON)
//	state.<event>                    coord.State (JSON)
//	pq.<event>.<edge>.<digest>       a chunk: 16 bytes per ticket
//	pqdone.<event>.<edge>            the edge sent its last chunk
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
	"github.com/ticketing/ticketing/services/queue/coord"
)

// Bucket is the default bucket name.
const Bucket = "queue-state"

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func KeyValueConfig(replicas int) jetstream.KeyValueConfig {
	if replicas == 0 {
		replicas = 1
	}
	return jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "waiting-room secrets, controller state, pre-queues (private: core only)",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
		MaxValueSize: 1 << 20,
	}
}

// Store is a coord.Store on a key-value bucket.
type Store struct {
	KV jetstream.KeyValue
}

var _ coord.Store = (*Store)(nil)

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "queue store unavailable", err)
}

// Secrets implements coord.Store.
func (s *Store) Secrets(ctx context.Context, eventID string) (coord.Secrets, error) {
	const op = "queue.natskv.secrets"
	key := "secrets." + eventID
	for attempt := 0; attempt < 3; attempt++ {
		e, err := s.KV.Get(ctx, key)
		if err == nil {
			var sec coord.Secrets
			if err := json.Unmarshal(e.Value(), &sec); err != nil {
				return coord.Secrets{}, errs.E(op, errs.Other, fmt.Errorf("stored secrets: %w", err))
			}
			return sec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return coord.Secrets{}, unavailable(op, err)
		}
		sec := coord.NewSecrets()
		b, _ := json.Marshal(sec)
		_, err = s.KV.Create(ctx, key, b)
		if err == nil {
			return sec, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return coord.Secrets{}, unavailable(op, err)
		}
		// Another node created them first: read theirs.
	}
	return coord.Secrets{}, errs.E(op, errs.Unavailable, "secrets contended; try again")
}

// LoadState implements coord.Store.
func (s *Store) LoadState(ctx context.Context, eventID string) (coord.State, uint64, error) {
	const op = "queue.natskv.load_state"
	e, err := s.KV.Get(ctx, "state."+eventID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return coord.State{}, 0, nil
	case err != nil:
		return coord.State{}, 0, unavailable(op, err)
	}
	var st coord.State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return coord.State{}, 0, errs.E(op, errs.Other, fmt.Errorf("stored state: %w", err))
	}
	return st, e.Revision(), nil
}

// SaveState implements coord.Store.
func (s *Store) SaveState(ctx context.Context, eventID string, st coord.State, rev uint64) (uint64, error) {
	const op = "queue.natskv.save_state"
	b, err := json.Marshal(st)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.KV.Create(ctx, "state."+eventID, b)
	} else {
		nrev, err = s.KV.Update(ctx, "state."+eventID, b, rev)
	}
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch),
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence:
		return 0, errs.E(op, errs.Conflict, "controller state changed meanwhile", err)
	case err != nil:
		return 0, unavailable(op, err)
	}
	return nrev, nil
}

// AddPreQueue implements coord.Store. A chunk's key is the digest of its
// tickets, so a repeated chunk overwrites itself.
func (s *Store) AddPreQueue(ctx context.Context, eventID, edge string, tickets []queue.TicketID, last bool) error {
	const op = "queue.natskv.add_prequeue"
	if !coord.ValidEdge(edge) {
		return errs.Errorf(op, errs.Invalid, "edge name %q: use 1-64 letters, digits, dashes and underscores", edge)
	}
	b := make([]byte, 0, len(tickets)*queue.TicketIDSize)
	for _, t := range tickets {
		b = append(b, t[:]...)
	}
	if len(tickets) > 0 {
		sum := sha256.Sum256(b)
		if _, err := s.KV.Put(ctx, "pq."+eventID+"."+edge+"."+hex.EncodeToString(sum[:12]), b); err != nil {
			return unavailable(op, err)
		}
	}
	if last {
		if _, err := s.KV.Put(ctx, "pqdone."+eventID+"."+edge, nil); err != nil {
			return unavailable(op, err)
		}
	} else if len(tickets) == 0 {
		// An empty chunk that is not the last still says the edge sends.
		if _, err := s.KV.Put(ctx, "pq."+eventID+"."+edge+".empty", nil); err != nil {
			return unavailable(op, err)
		}
	}
	return nil
}

// PreQueue implements coord.Store.
func (s *Store) PreQueue(ctx context.Context, eventID string) (coord.PreQueue, error) {
	const op = "queue.natskv.prequeue"
	out := coord.PreQueue{Done: map[string]bool{}}
	sent := map[string]bool{}
	keys, err := s.listKeys(ctx, "pq."+eventID+".>", "pqdone."+eventID+".*")
	if err != nil {
		return out, unavailable(op, err)
	}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		switch {
		case parts[0] == "pqdone" && len(parts) == 3:
			out.Done[parts[2]] = true
			sent[parts[2]] = true
		case parts[0] == "pq" && len(parts) == 4:
			sent[parts[2]] = true
			if parts[3] == "empty" {
				continue
			}
			e, err := s.KV.Get(ctx, k)
			if err != nil {
				return out, unavailable(op, err)
			}
			v := e.Value()
			chunk := make([]queue.TicketID, len(v)/queue.TicketIDSize)
			for i := range chunk {
				copy(chunk[i][:], v[i*queue.TicketIDSize:])
			}
			out.Chunks = append(out.Chunks, chunk)
		}
	}
	for e := range sent {
		out.Sent = append(out.Sent, e)
	}
	sort.Strings(out.Sent)
	return out, nil
}

func (s *Store) listKeys(ctx context.Context, filters ...string) ([]string, error) {
	l, err := s.KV.ListKeysFiltered(ctx, filters...)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, err
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	return keys, nil
}
