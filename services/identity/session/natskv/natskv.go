// Package natskv stores sessions in a JetStream key-value bucket, the
// embedded store of the core (without --sessions-redis). Two kinds of
// keys:
//
//	s.<session id>            the session, JSON; its revision is the
//	                          session's Version
//	u.<user id>.<session id>  the user's index entry, empty
//
// Rotate is KV Update on the revision that was read, the bucket's
// compare-and-set: of concurrent rotations from one version exactly one
// lands. Create writes the index entry first and then the session with KV
// Create (the id is taken once), so that every session a completed Create
// made is listed and found by RevokeAllForUser; an index entry without a
// session (a Create that failed between the writes) is skipped by lists and
// deleted when met.
//
// Expiry is the session's ExpiresAt by Config.Now: past it, a session reads
// as absent. The bucket's MaxAge is Config.MaxLifetime, and Create refuses
// sessions that expire later than that from now: every write of a session
// is at most its lifetime before its expiry, so the server drops each key
// (session or index entry) some time after its session expired, never
// before, and storage stays bounded without a sweeper.
//
// A rotation is two requests (a get and the update) and, with the core
// configuration's sync_interval always, one fsync on the bucket's stream,
// which bounds it: BenchmarkRotate measured 650-760 rotations/s on a
// 2-vCPU test VM, serial or with up to 128 concurrent sessions (the
// stream's writes are synced one by one). The production store is Redis.
//
// With more than one replica, reads go to the stream's leader (Open only):
// a replica that lags behind a rotation would show the previous family, and
// judging a refresh on that would take the newest token for a replay.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "identity-sessions".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// MaxLifetime is the longest a session may live, and the bucket's
	// MaxAge. Default 30 days, session.Config's default Lifetime.
	MaxLifetime time.Duration
	// Now is the clock that expires sessions. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "identity-sessions"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "session.natskv.config"
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	if c.MaxLifetime < session.MinLifetime || c.MaxLifetime > session.MaxLifetime {
		return errs.Errorf(op, errs.Invalid, "max lifetime %v is outside %v..%v", c.MaxLifetime, session.MinLifetime, session.MaxLifetime)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "identity sessions and their refresh-token families",
		History:      1,
		TTL:          c.MaxLifetime,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 8 << 10,
	}
}

// Store is a session.Store on a key-value bucket. Safe for concurrent use,
// also by several processes on one bucket.
type Store struct {
	kv  jetstream.KeyValue
	nc  *nats.Conn // set: read from the stream leader
	cfg Config
}

var _ session.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("session.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	s := &Store{kv: kv, cfg: c}
	if c.Replicas > 1 {
		s.nc = js.Conn()
	}
	return s, nil
}

// New returns a store on an existing bucket of one replica (Open is for
// replicated ones: it reads from the leader).
func New(kv jetstream.KeyValue, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Replicas != 1 {
		return nil, errs.E("session.natskv", errs.Invalid, "New is for buckets of one replica; use Open")
	}
	return &Store{kv: kv, cfg: c}, nil
}

func sessionKey(id string) string       { return "s." + id }
func indexKey(userID, id string) string { return "u." + userID + "." + id }

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "session store unavailable", err)
}

func notFound(op string) error { return errs.E(op, errs.NotFound, "no such session") }

func (s *Store) expired(v session.Session) bool { return !s.cfg.Now().Before(v.ExpiresAt) }

// entry reads a key, from the leader when replicated.
func (s *Store) entry(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if s.nc != nil {
		return kvget.LeaderEntry(ctx, s.nc, s.kv, key)
	}
	return s.kv.Get(ctx, key)
}

// read returns the session with its revision; found is false when it is
// missing or expired.
func (s *Store) read(ctx context.Context, id string) (v session.Session, found bool, err error) {
	e, err := s.entry(ctx, sessionKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return session.Session{}, false, nil
	}
	if err != nil {
		return session.Session{}, false, err
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return session.Session{}, false, fmt.Errorf("session %s: %w", id, err)
	}
	v.Version = e.Revision()
	return v, !s.expired(v), nil
}

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, v session.Session) error {
	const op = "session.natskv.create"
	if err := session.Check(v); err != nil {
		return errs.E(op, err)
	}
	if s.expired(v) {
		return errs.E(op, errs.Invalid, "session has expired")
	}
	if v.ExpiresAt.Sub(s.cfg.Now()) > s.cfg.MaxLifetime {
		return errs.Errorf(op, errs.Invalid, "session lives longer than the store's max lifetime %v", s.cfg.MaxLifetime)
	}
	v.Version = 0
	b, err := json.Marshal(v)
	if err != nil {
		return errs.E(op, err)
	}
	ikey := indexKey(v.UserID, v.ID)
	if _, err := s.kv.Put(ctx, ikey, nil); err != nil {
		return unavailable(op, err)
	}
	_, err = s.kv.Create(ctx, sessionKey(v.ID), b)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		// Unknown outcome: keep the index entry, lists skip it if the
		// session was not stored.
		return unavailable(op, err)
	}
	old, found, rerr := s.read(ctx, v.ID)
	if rerr != nil {
		return unavailable(op, rerr)
	}
	if !found && old.ID == v.ID {
		// Expired but not yet dropped by the server: take the id over.
		if _, err := s.kv.Update(ctx, sessionKey(v.ID), b, old.Version); err == nil {
			return nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return unavailable(op, err)
		}
	}
	if old.UserID != v.UserID {
		_ = s.kv.Delete(context.WithoutCancel(ctx), ikey)
	}
	return errs.E(op, errs.Conflict, "the session id is taken").WithReason(session.ReasonIDTaken)
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (session.Session, error) {
	const op = "session.natskv.get"
	if !session.ValidID(id) {
		return session.Session{}, notFound(op)
	}
	v, found, err := s.read(ctx, id)
	if err != nil {
		return session.Session{}, unavailable(op, err)
	}
	if !found {
		return session.Session{}, notFound(op)
	}
	return v, nil
}

// Rotate implements session.Store.
func (s *Store) Rotate(ctx context.Context, v session.Session) (uint64, error) {
	const op = "session.natskv.rotate"
	if err := session.Check(v); err != nil {
		return 0, errs.E(op, err)
	}
	if s.expired(v) {
		return 0, notFound(op)
	}
	ver := v.Version
	v.Version = 0
	b, err := json.Marshal(v)
	if err != nil {
		return 0, errs.E(op, err)
	}
	rev, err := s.kv.Update(ctx, sessionKey(v.ID), b, ver)
	if err == nil {
		return rev, nil
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, unavailable(op, err)
	}
	// Changed, or gone: tell which.
	if _, found, err := s.read(ctx, v.ID); err != nil {
		return 0, unavailable(op, err)
	} else if !found {
		return 0, notFound(op)
	}
	return 0, errs.E(op, errs.Conflict, "the session changed").WithReason(session.ReasonVersionMismatch)
}

// Revoke implements session.Store.
func (s *Store) Revoke(ctx context.Context, id string) error {
	const op = "session.natskv.revoke"
	if !session.ValidID(id) {
		return notFound(op)
	}
	v, found, err := s.read(ctx, id)
	if err != nil {
		return unavailable(op, err)
	}
	if !found {
		return notFound(op)
	}
	if err := s.kv.Delete(ctx, sessionKey(id)); err != nil {
		return unavailable(op, err)
	}
	if err := s.kv.Delete(ctx, indexKey(v.UserID, id)); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// indexed returns the ids in the user's index.
func (s *Store) indexed(ctx context.Context, userID string) ([]string, error) {
	l, err := s.kv.ListKeysFiltered(ctx, "u."+userID+".*")
	if err != nil {
		return nil, err
	}
	var ids []string
	seen := make(map[string]bool)
	for k := range l.Keys() {
		id := strings.TrimPrefix(k, "u."+userID+".")
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ids, nil
}

// RevokeAllForUser implements session.Store.
func (s *Store) RevokeAllForUser(ctx context.Context, userID string) (int, error) {
	const op = "session.natskv.revoke_all"
	if !identity.ValidID(userID) {
		return 0, nil
	}
	ids, err := s.indexed(ctx, userID)
	if err != nil {
		return 0, unavailable(op, err)
	}
	n := 0
	for _, id := range ids {
		v, found, err := s.read(ctx, id)
		if err != nil {
			return n, unavailable(op, err)
		}
		if found && v.UserID == userID {
			if err := s.kv.Delete(ctx, sessionKey(id)); err != nil {
				return n, unavailable(op, err)
			}
			n++
		}
		if v.ID == "" {
			// No session (yet): a Create between its writes keeps its
			// entry; a failed one's goes with the bucket's MaxAge.
			continue
		}
		if err := s.kv.Delete(ctx, indexKey(userID, id)); err != nil {
			return n, unavailable(op, err)
		}
	}
	return n, nil
}

// ListForUser implements session.Store.
func (s *Store) ListForUser(ctx context.Context, userID string) ([]session.Session, error) {
	const op = "session.natskv.list"
	if !identity.ValidID(userID) {
		return nil, nil
	}
	ids, err := s.indexed(ctx, userID)
	if err != nil {
		return nil, unavailable(op, err)
	}
	var out []session.Session
	for _, id := range ids {
		v, found, err := s.read(ctx, id)
		if err != nil {
			return nil, unavailable(op, err)
		}
		if found && v.UserID == userID {
			out = append(out, v)
			continue
		}
		if v.ID == "" {
			// No session behind the entry: a Create that failed midway,
			// or one still between its writes. The entry goes when the
			// bucket's MaxAge drops it; deleting it here could race
			// that Create.
			continue
		}
		// Expired, or the id is another user's: the entry is stale.
		_ = s.kv.Delete(ctx, indexKey(userID, id))
	}
	session.SortSessions(out)
	return out, nil
}
