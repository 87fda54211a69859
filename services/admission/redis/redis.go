// Package redis is the admission.SpentStore that all edges of a region
// share: a redeemed token's id is a Redis key, its value the use that spent
// it, written with SET NX and an absolute expiry (PXAT) at the time the
// token can no longer verify, so that of any number of redemptions across
// edges exactly one use wins, and Redis memory is bounded by the tokens
// still alive. Spend and Unspend are one script each (one round trip,
// atomic in Redis).
//
// The expiry is an absolute time from the edge's clock; Redis compares it
// with its own. Redeem adds the verifier's clock skew and a second to the
// token's exp, which covers the difference between well-run clocks. Works
// with a Redis Cluster: one key per call.
package redis

import (
	"context"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
)

// Config configures a SpentStore.
type Config struct {
	// Prefix is prepended to every key. Default "admission:spent:".
	Prefix string
	// Now is the clock that checks until is in the future. Default
	// time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Prefix == "" {
		c.Prefix = "admission:spent:"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if len(c.Prefix) > 128 {
		return errs.Errorf("admission.redis.config", errs.Invalid, "prefix longer than 128 bytes")
	}
	return nil
}

// SpentStore is the Redis admission.SpentStore.
type SpentStore struct {
	client goredis.Cmdable
	prefix string
	now    func() time.Time
}

var _ admission.SpentStore = (*SpentStore)(nil)

// New returns a store using client (a *redis.Client, *redis.ClusterClient
// or any redis.UniversalClient). It does not own the client.
func New(client goredis.Cmdable, cfg Config) (*SpentStore, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SpentStore{client: client, prefix: cfg.Prefix, now: cfg.Now}, nil
}

// maxJTI and maxUse bound the ids and uses accepted, so entries stay small.
const (
	maxJTI = 128
	maxUse = 256
)

// spendScript sets the key to the use unless it exists; a key that exists
// with the same use is that use retried. Returns 1 when the use may go on.
var spendScript = goredis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`)

// unspendScript deletes the key only when the use spent it.
var unspendScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Spend implements admission.SpentStore.
func (s *SpentStore) Spend(ctx context.Context, jti, use string, until time.Time) (bool, error) {
	const op = "admission.redis.spend"
	if jti == "" || len(jti) > maxJTI || use == "" || len(use) > maxUse || !until.After(s.now()) {
		return false, errs.E(op, errs.Invalid, "bad id or use, or expiry not in the future")
	}
	n, err := spendScript.Run(ctx, s.client, []string{s.prefix + jti}, use, until.UnixMilli()).Int()
	if err != nil {
		return false, errs.E(op, errs.Unavailable, "spent token store unreachable", err)
	}
	return n == 1, nil
}

// Unspend implements admission.SpentStore.
func (s *SpentStore) Unspend(ctx context.Context, jti, use string) error {
	const op = "admission.redis.unspend"
	if jti == "" || len(jti) > maxJTI || use == "" || len(use) > maxUse {
		return errs.E(op, errs.Invalid, "bad id or use")
	}
	if err := unspendScript.Run(ctx, s.client, []string{s.prefix + jti}, use).Err(); err != nil {
		return errs.E(op, errs.Unavailable, "spent token store unreachable", err)
	}
	return nil
}
