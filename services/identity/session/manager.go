package session

import (
	"context"
	"sort"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

// Config configures a Manager.
type Config struct {
	// Lifetime is how long a session lasts from sign-in, however much it
	// is used. Default 30 days.
	Lifetime time.Duration
	// Grace is how long after a rotation the previous token still obtains
	// the same new token (a retry after a lost response). Default 30s;
	// see NoGrace.
	Grace time.Duration
	// NoGrace turns the grace window off: the previous token is a replay
	// at once.
	NoGrace bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Bounds of Config.
const (
	MinLifetime = time.Minute
	MaxLifetime = 400 * 24 * time.Hour
	MaxGrace    = 5 * time.Minute
)

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Lifetime == 0 {
		c.Lifetime = 30 * 24 * time.Hour
	}
	if c.Grace == 0 && !c.NoGrace {
		c.Grace = 30 * time.Second
	}
	if c.NoGrace {
		c.Grace = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "session.config"
	if c.Lifetime < MinLifetime || c.Lifetime > MaxLifetime {
		return errs.Errorf(op, errs.Invalid, "lifetime %v is outside %v..%v", c.Lifetime, MinLifetime, MaxLifetime)
	}
	if c.Grace < 0 || c.Grace > MaxGrace {
		return errs.Errorf(op, errs.Invalid, "grace %v is outside 0..%v", c.Grace, MaxGrace)
	}
	if c.Grace >= c.Lifetime {
		return errs.Errorf(op, errs.Invalid, "grace %v is not below the lifetime %v", c.Grace, c.Lifetime)
	}
	return nil
}

// Manager starts and refreshes sessions on a Store. Safe for concurrent
// use.
type Manager struct {
	store Store
	cfg   Config
}

// NewManager returns a manager on store.
func NewManager(store Store, cfg Config) (*Manager, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Manager{store: store, cfg: cfg}, nil
}

// now is the clock in UTC at microseconds, the precision every store keeps.
func (m *Manager) now() time.Time { return m.cfg.Now().UTC().Truncate(time.Microsecond) }

// Start creates a session for a user who has just signed in on a client,
// and returns it with its first refresh token.
func (m *Manager) Start(ctx context.Context, userID, clientID string, seen Seen) (Session, string, error) {
	const op = "session.start"
	if !identity.ValidID(userID) {
		return Session{}, "", errs.E(op, errs.Invalid, "bad user id")
	}
	if !ValidClientID(clientID) {
		return Session{}, "", errs.E(op, errs.Invalid, "bad client id")
	}
	now := m.now()
	s := Session{
		ID:         NewID(),
		UserID:     userID,
		ClientID:   clientID,
		CreatedAt:  now,
		LastUsedAt: now,
		ExpiresAt:  now.Add(m.cfg.Lifetime),
		UserAgent:  cleanUserAgent(seen.UserAgent),
		IP:         cleanIP(seen.IP),
	}
	tok := newToken(s.ID)
	s.Family = Family{Current: HashToken(tok), RotatedAt: now}
	if err := m.store.Create(ctx, s); err != nil {
		return Session{}, "", errs.E(op, err)
	}
	return s, tok, nil
}

// maxAttempts bounds the reads of one Refresh that lose a compare-and-set.
const maxAttempts = 8

func invalid(op string) error {
	return errs.E(op, errs.Unauthorized, "refresh token is not valid").WithReason(ReasonRefreshInvalid)
}

// Refresh exchanges a refresh token presented by clientID for the next
// one (see the package documentation for the rules), and returns the
// session as stored afterwards.
func (m *Manager) Refresh(ctx context.Context, clientID, token string, seen Seen) (Session, string, error) {
	const op = "session.refresh"
	id, ok := parseToken(token)
	if !ok {
		return Session{}, "", invalid(op)
	}
	h := HashToken(token)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		s, err := m.store.Get(ctx, id)
		if errs.Is(errs.NotFound, err) {
			return Session{}, "", invalid(op)
		}
		if err != nil {
			return Session{}, "", errs.E(op, err)
		}
		now := m.now()
		if !now.Before(s.ExpiresAt) || s.ClientID != clientID {
			return Session{}, "", invalid(op)
		}
		f := s.Family
		switch {
		case sameHash(h, f.Current):
			next := newToken(s.ID)
			n := s
			n.Family = Family{
				Generation: f.Generation + 1,
				Current:    HashToken(next),
				Previous:   h,
				RotatedAt:  now,
				Sealed:     seal(s.ID, token, next),
			}
			n.LastUsedAt = now
			if ua := cleanUserAgent(seen.UserAgent); ua != "" {
				n.UserAgent = ua
			}
			if ip := cleanIP(seen.IP); ip != "" {
				n.IP = ip
			}
			v, err := m.store.Rotate(ctx, n)
			switch {
			case err == nil:
				n.Version = v
				return n, next, nil
			case errs.Is(errs.Conflict, err):
				continue // changed since read: judge again
			case errs.Is(errs.NotFound, err):
				return Session{}, "", invalid(op)
			default:
				return Session{}, "", errs.E(op, err)
			}
		case sameHash(h, f.Previous) && m.cfg.Grace > 0 && absDuration(now.Sub(f.RotatedAt)) <= m.cfg.Grace:
			// A negative age (down to -Grace) passes: the rotation was
			// stamped by another process whose clock is ahead of ours.
			if next, ok := open(s.ID, token, f.Sealed); ok {
				return s, next, nil
			}
			// The sealed copy does not open (storage damaged): no way to
			// answer the retry; a replay is the safe reading.
		}
		return Session{}, "", m.reused(ctx, op, s)
	}
	return Session{}, "", errs.E(op, errs.Unavailable, "session contended; try again")
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// reused revokes a session whose spent token was presented.
func (m *Manager) reused(ctx context.Context, op string, s Session) error {
	// Revoke even if the caller gave up: the replay is a fact.
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.store.Revoke(c, s.ID); err != nil && !errs.Is(errs.NotFound, err) {
		return errs.E(op, errs.Unavailable, "refresh token reused; revoking the session failed", err)
	}
	return errs.E(op, errs.Unauthorized, "refresh token was already used; the session is revoked").WithReason(ReasonRefreshReused)
}

// Revoke ends one of the user's sessions (signing a device out). A
// session of another user is errs.NotFound, as is one that is gone.
func (m *Manager) Revoke(ctx context.Context, userID, sessionID string) error {
	const op = "session.revoke"
	if !ValidID(sessionID) {
		return errs.E(op, errs.NotFound, "no such session")
	}
	s, err := m.store.Get(ctx, sessionID)
	if err != nil {
		return errs.E(op, err)
	}
	if s.UserID != userID {
		return errs.E(op, errs.NotFound, "no such session")
	}
	if err := m.store.Revoke(ctx, sessionID); err != nil {
		return errs.E(op, err)
	}
	return nil
}

// RevokeAll ends every session of the user (sign out everywhere, a
// password change) and returns how many there were.
func (m *Manager) RevokeAll(ctx context.Context, userID string) (int, error) {
	const op = "session.revoke_all"
	if !identity.ValidID(userID) {
		return 0, errs.E(op, errs.Invalid, "bad user id")
	}
	n, err := m.store.RevokeAllForUser(ctx, userID)
	if err != nil {
		return 0, errs.E(op, err)
	}
	return n, nil
}

// List returns the user's live sessions, oldest first.
func (m *Manager) List(ctx context.Context, userID string) ([]Session, error) {
	const op = "session.list"
	if !identity.ValidID(userID) {
		return nil, errs.E(op, errs.Invalid, "bad user id")
	}
	l, err := m.store.ListForUser(ctx, userID)
	if err != nil {
		return nil, errs.E(op, err)
	}
	return l, nil
}

// SortSessions orders sessions as ListForUser returns them: by CreatedAt,
// then ID. For stores.
func SortSessions(l []Session) {
	sort.Slice(l, func(i, j int) bool {
		if !l[i].CreatedAt.Equal(l[j].CreatedAt) {
			return l[i].CreatedAt.Before(l[j].CreatedAt)
		}
		return l[i].ID < l[j].ID
	})
}
