package keyring

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// KeyStore keeps the KeySet that the core nodes share, under a revision
// for compare-and-set. Safe for concurrent use, also by several processes
// on one store.
type KeyStore interface {
	// Load returns the stored set and its revision (never 0), or an error
	// of kind NotFound when nothing is stored yet.
	Load(ctx context.Context) (KeySet, uint64, error)
	// Save stores set if the stored revision is still rev (rev 0: only if
	// nothing is stored) and returns the new revision. Otherwise it
	// returns an error of kind Conflict and changes nothing. Errors of
	// kind Unavailable leave the outcome unknown: Load again.
	Save(ctx context.Context, set KeySet, rev uint64) (uint64, error)
}

// Sync brings ring in line with store at now: it stores the ring's keys
// when the store is empty, rotates the stored keys when the active one is
// due (RotationDue), drops retired keys past their time, and loads the
// result into ring. Concurrent Syncs of several nodes agree: one
// compare-and-set wins and the others load its keys. Core nodes call it at
// start and then periodically (well within RotateEvery); it reports whether
// this call rotated.
func Sync(ctx context.Context, store KeyStore, ring *KeyRing, now time.Time) (rotated bool, err error) {
	const op = "keyring.sync"
	for attempt := 0; attempt < 8; attempt++ {
		set, rev, err := store.Load(ctx)
		switch {
		case errs.Is(errs.NotFound, err):
			ring.Prune(now)
			_, err = store.Save(ctx, ring.KeySet(), 0)
			if errs.Is(errs.Conflict, err) {
				continue
			}
			return false, err
		case err != nil:
			return false, err
		}
		next, err := NewKeyRingFromSet(ring.Config(), set)
		if err != nil {
			return false, errs.E(op, errs.Other, "stored key set", err)
		}
		rotate := next.RotationDue(now)
		changed := next.Prune(now)
		if rotate {
			if err := next.Rotate(now); err != nil {
				return false, err
			}
		}
		if rotate || changed {
			if _, err = store.Save(ctx, next.KeySet(), rev); errs.Is(errs.Conflict, err) {
				continue
			}
			if err != nil {
				return false, err
			}
		}
		return rotate, ring.Load(next.KeySet())
	}
	return false, errs.E(op, errs.Unavailable, "key set contended; try again")
}

// MemoryKeyStore is a KeyStore in one process, for tests and single-node
// setups.
type MemoryKeyStore struct {
	mu  sync.Mutex
	set []byte // JSON, so that callers never share slices with the store
	rev uint64
}

var _ KeyStore = (*MemoryKeyStore)(nil)

// Load implements KeyStore.
func (s *MemoryKeyStore) Load(ctx context.Context) (KeySet, uint64, error) {
	const op = "keyring.memory.load"
	if err := ctx.Err(); err != nil {
		return KeySet{}, 0, errs.E(op, errs.Unavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rev == 0 {
		return KeySet{}, 0, errs.E(op, errs.NotFound, "no key set stored")
	}
	var set KeySet
	if err := json.Unmarshal(s.set, &set); err != nil {
		return KeySet{}, 0, errs.E(op, errs.Other, err)
	}
	return set, s.rev, nil
}

// Save implements KeyStore.
func (s *MemoryKeyStore) Save(ctx context.Context, set KeySet, rev uint64) (uint64, error) {
	const op = "keyring.memory.save"
	if err := ctx.Err(); err != nil {
		return 0, errs.E(op, errs.Unavailable, err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rev != s.rev {
		return 0, errs.Errorf(op, errs.Conflict, "key set revision is %d, not %d", s.rev, rev)
	}
	s.set = b
	s.rev++
	return s.rev, nil
}
