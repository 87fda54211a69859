// Package redis is the production session.Store: sessions in Redis, one
// hash per session and one set per user.
//
//	<prefix>s:<session id>  hash: v (version), exp (expiry, Unix ms),
//	                        u (user id), d (the session, JSON)
//	<prefix>u:<user id>     set of the user's session ids
//
// Every write is one Lua script, atomic in Redis and one round trip:
// Rotate compares v with the version that was read and writes only if it is
// unchanged, so of concurrent rotations from one version exactly one lands.
// Create adds the session and its index entry together; Revoke and
// RevokeAllForUser delete both together, so that a session whose Create
// returned before RevokeAllForUser is always found by it.
//
// Expiry: the session key expires (PEXPIREAT) at the session's ExpiresAt,
// so Redis memory holds live sessions only; the user's set expires with the
// latest of its sessions. Reads also compare exp with Config.Now, so that a
// session is gone at ExpiresAt whatever Redis's clock says and tests can
// move the clock. Set members whose session expired are dropped by
// ListForUser.
//
// The scripts of Revoke, RevokeAllForUser and Create touch keys of two
// kinds (a session and its user's set), and the first two name keys they
// read from the set: this works on one Redis (with replicas, Sentinel), not
// on a Redis Cluster.
//
// Durability is Redis's: with appendonly yes and appendfsync everysec, a
// crash loses at most the last second of rotations, whose clients then
// present tokens older than the stored ones and are taken for replays: the
// session is revoked and they sign in again. With appendfsync always none
// is lost, at a cost in throughput (see BenchmarkRotate).
package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
)

// Config configures a Store.
type Config struct {
	// Prefix is prepended to every key. Default "identity:session:".
	Prefix string
	// Now is the clock that expires sessions. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = "identity:session:"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if len(c.Prefix) > 128 {
		return errs.Errorf("session.redis.config", errs.Invalid, "prefix longer than 128 bytes")
	}
	return nil
}

// Store is the Redis session.Store. Safe for concurrent use, also by many
// processes on one Redis.
type Store struct {
	client goredis.Cmdable
	prefix string
	now    func() time.Time
}

var _ session.Store = (*Store)(nil)

// New returns a store using client (a *redis.Client, or a failover client
// of Sentinel; not a cluster client: see the package documentation). It
// does not own the client.
func New(client goredis.Cmdable, cfg Config) (*Store, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, prefix: cfg.Prefix, now: cfg.Now}, nil
}

func (s *Store) sessionPrefix() string        { return s.prefix + "s:" }
func (s *Store) userPrefix() string           { return s.prefix + "u:" }
func (s *Store) sessionKey(id string) string  { return s.sessionPrefix() + id }
func (s *Store) userKey(userID string) string { return s.userPrefix() + userID }
func (s *Store) nowMs() int64                 { return s.now().UnixMilli() }
func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "session store unavailable", err)
}
func notFound(op string) error                  { return errs.E(op, errs.NotFound, "no such session") }
func expiresMs(v session.Session) int64         { return v.ExpiresAt.UnixMilli() }
func (s *Store) expired(v session.Session) bool { return !s.now().Before(v.ExpiresAt) }

// createScript stores a session unless a live one has its id (returns 0),
// and adds it to its user's set, whose expiry it moves to the session's if
// that is later. The version continues the one of an expired session with
// the id, so that no stale reader's version matches the new session.
// KEYS: session, user set. ARGV: data, expiry ms, id, user id, now ms.
var createScript = goredis.NewScript(`
local old = redis.call('HMGET', KEYS[1], 'v', 'exp')
if old[1] and tonumber(old[2]) > tonumber(ARGV[5]) then return 0 end
local v = 1
if old[1] then v = tonumber(old[1]) + 1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', v, 'exp', ARGV[2], 'u', ARGV[4], 'd', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
local t = redis.call('PEXPIRETIME', KEYS[2])
if t == -1 or t < tonumber(ARGV[2]) then redis.call('PEXPIREAT', KEYS[2], ARGV[2]) end
return 1`)

// rotateScript writes a session if its version is unchanged: the new
// version, -1 for no live session, -2 for a changed one.
// KEYS: session. ARGV: version, data, now ms.
var rotateScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'v', 'exp')
if not r[1] or tonumber(r[2]) <= tonumber(ARGV[3]) then return -1 end
if r[1] ~= ARGV[1] then return -2 end
local v = tonumber(r[1]) + 1
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[2])
return v`)

// revokeScript deletes a session and its set entry: 1 if it was live.
// KEYS: session. ARGV: user set prefix, id, now ms.
var revokeScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'u', 'exp')
if not r[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[1] .. r[1], ARGV[2])
if tonumber(r[2]) <= tonumber(ARGV[3]) then return 0 end
return 1`)

// revokeAllScript deletes the user's sessions and set: how many were live.
// KEYS: user set. ARGV: session key prefix, user id, now ms.
var revokeAllScript = goredis.NewScript(`
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. id
  local r = redis.call('HMGET', k, 'u', 'exp')
  if r[1] == ARGV[2] then
    redis.call('DEL', k)
    if tonumber(r[2]) > tonumber(ARGV[3]) then n = n + 1 end
  end
end
redis.call('DEL', KEYS[1])
return n`)

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, v session.Session) error {
	const op = "session.redis.create"
	if err := session.Check(v); err != nil {
		return errs.E(op, err)
	}
	if s.expired(v) {
		return errs.E(op, errs.Invalid, "session has expired")
	}
	v.Version = 0
	b, err := json.Marshal(v)
	if err != nil {
		return errs.E(op, err)
	}
	n, err := createScript.Run(ctx, s.client, []string{s.sessionKey(v.ID), s.userKey(v.UserID)},
		b, expiresMs(v), v.ID, v.UserID, s.nowMs()).Int()
	if err != nil {
		return unavailable(op, err)
	}
	if n == 0 {
		return errs.E(op, errs.Conflict, "the session id is taken").WithReason(session.ReasonIDTaken)
	}
	return nil
}

// decode makes a session of a hash's v and d fields.
func decode(version, data any) (session.Session, error) {
	vs, ok1 := version.(string)
	ds, ok2 := data.(string)
	if !ok1 || !ok2 {
		return session.Session{}, errors.New("session hash lacks fields")
	}
	var v session.Session
	if err := json.Unmarshal([]byte(ds), &v); err != nil {
		return session.Session{}, err
	}
	ver, err := strconv.ParseUint(vs, 10, 64)
	if err != nil {
		return session.Session{}, fmt.Errorf("version %q: %w", vs, err)
	}
	v.Version = ver
	return v, nil
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (session.Session, error) {
	const op = "session.redis.get"
	if !session.ValidID(id) {
		return session.Session{}, notFound(op)
	}
	r, err := s.client.HMGet(ctx, s.sessionKey(id), "v", "d").Result()
	if err != nil {
		return session.Session{}, unavailable(op, err)
	}
	if r[0] == nil {
		return session.Session{}, notFound(op)
	}
	v, err := decode(r[0], r[1])
	if err != nil {
		return session.Session{}, errs.E(op, fmt.Errorf("session %s: %w", id, err))
	}
	if s.expired(v) {
		return session.Session{}, notFound(op)
	}
	return v, nil
}

// Rotate implements session.Store.
func (s *Store) Rotate(ctx context.Context, v session.Session) (uint64, error) {
	const op = "session.redis.rotate"
	if err := session.Check(v); err != nil {
		return 0, errs.E(op, err)
	}
	ver := v.Version
	v.Version = 0
	b, err := json.Marshal(v)
	if err != nil {
		return 0, errs.E(op, err)
	}
	n, err := rotateScript.Run(ctx, s.client, []string{s.sessionKey(v.ID)}, ver, b, s.nowMs()).Int64()
	if err != nil {
		return 0, unavailable(op, err)
	}
	switch {
	case n == -1:
		return 0, notFound(op)
	case n == -2:
		return 0, errs.E(op, errs.Conflict, "the session changed").WithReason(session.ReasonVersionMismatch)
	case n <= 0:
		return 0, errs.Errorf(op, errs.Other, "rotate script answered %d", n)
	}
	return uint64(n), nil
}

// Revoke implements session.Store.
func (s *Store) Revoke(ctx context.Context, id string) error {
	const op = "session.redis.revoke"
	if !session.ValidID(id) {
		return notFound(op)
	}
	n, err := revokeScript.Run(ctx, s.client, []string{s.sessionKey(id)}, s.userPrefix(), id, s.nowMs()).Int()
	if err != nil {
		return unavailable(op, err)
	}
	if n == 0 {
		return notFound(op)
	}
	return nil
}

// RevokeAllForUser implements session.Store.
func (s *Store) RevokeAllForUser(ctx context.Context, userID string) (int, error) {
	const op = "session.redis.revoke_all"
	if !identity.ValidID(userID) {
		return 0, nil
	}
	n, err := revokeAllScript.Run(ctx, s.client, []string{s.userKey(userID)}, s.sessionPrefix(), userID, s.nowMs()).Int()
	if err != nil {
		return 0, unavailable(op, err)
	}
	return n, nil
}

// ListForUser implements session.Store.
func (s *Store) ListForUser(ctx context.Context, userID string) ([]session.Session, error) {
	const op = "session.redis.list"
	if !identity.ValidID(userID) {
		return nil, nil
	}
	ids, err := s.client.SMembers(ctx, s.userKey(userID)).Result()
	if err != nil {
		return nil, unavailable(op, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.SliceCmd, len(ids))
	_, err = s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, s.sessionKey(id), "v", "u", "d")
		}
		return nil
	})
	if err != nil {
		return nil, unavailable(op, err)
	}
	var out []session.Session
	var stale []any
	for i, c := range cmds {
		r := c.Val()
		if r[0] == nil || r[1] != userID {
			// Gone (expired in Redis) or the id is now another user's.
			stale = append(stale, ids[i])
			continue
		}
		v, err := decode(r[0], r[2])
		if err != nil {
			return nil, errs.E(op, fmt.Errorf("session %s: %w", ids[i], err))
		}
		if !s.expired(v) {
			out = append(out, v)
		}
	}
	if len(stale) > 0 {
		// A session whose key is gone never comes back under its random
		// id, so the entry can go; failing to drop it changes nothing.
		_ = s.client.SRem(ctx, s.userKey(userID), stale...).Err()
	}
	session.SortSessions(out)
	return out, nil
}
