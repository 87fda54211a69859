package session_test

import (
	"context"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/session"
)

// memStore is a session.Store in a map, for the domain's tests and as the
// plainest reading of the contract.
type memStore struct {
	mu   sync.Mutex
	now  func() time.Time
	m    map[string]session.Session
	next uint64
}

func newMemStore(now func() time.Time) *memStore {
	return &memStore{now: now, m: make(map[string]session.Session)}
}

// live returns the session unless it is missing or expired. Under mu.
func (s *memStore) live(id string) (session.Session, bool) {
	v, ok := s.m[id]
	if !ok {
		return v, false
	}
	if !s.now().Before(v.ExpiresAt) {
		delete(s.m, id)
		return v, false
	}
	return v, true
}

func (s *memStore) Create(ctx context.Context, v session.Session) error {
	if err := ctx.Err(); err != nil {
		return errs.E(errs.Unavailable, err)
	}
	if err := session.Check(v); err != nil {
		return err
	}
	if !s.now().Before(v.ExpiresAt) {
		return errs.E(errs.Invalid, "expired")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(v.ID); ok {
		return errs.E(errs.Conflict, "id taken").WithReason(session.ReasonIDTaken)
	}
	s.next++
	v.Version = s.next
	s.m[v.ID] = v
	return nil
}

func (s *memStore) Get(ctx context.Context, id string) (session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.live(id)
	if !ok {
		return session.Session{}, errs.E(errs.NotFound, "no such session")
	}
	return v, nil
}

func (s *memStore) Rotate(ctx context.Context, v session.Session) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.live(v.ID)
	if !ok {
		return 0, errs.E(errs.NotFound, "no such session")
	}
	if cur.Version != v.Version {
		return 0, errs.E(errs.Conflict, "changed").WithReason(session.ReasonVersionMismatch)
	}
	s.next++
	v.Version = s.next
	s.m[v.ID] = v
	return v.Version, nil
}

func (s *memStore) Revoke(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live(id); !ok {
		return errs.E(errs.NotFound, "no such session")
	}
	delete(s.m, id)
	return nil
}

func (s *memStore) RevokeAllForUser(ctx context.Context, userID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.m {
		if v, ok := s.live(id); ok && v.UserID == userID {
			delete(s.m, id)
			n++
		}
	}
	return n, nil
}

func (s *memStore) ListForUser(ctx context.Context, userID string) ([]session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, errs.E(errs.Unavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var l []session.Session
	for id := range s.m {
		if v, ok := s.live(id); ok && v.UserID == userID {
			l = append(l, v)
		}
	}
	session.SortSessions(l)
	return l, nil
}
