// Package redis is the admission.SpentStore that all edges of a region
// share: a redeemed token's id is a Redis key written with SET NX and an
// absolute expiry (PXAT) at the time the token can no longer verify, so
// that of any number of redemptions across edges exactly one finds the key
// absent, and Redis memory is bounded by the tokens still alive.
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

// maxJTI bounds the ids accepted, so keys stay small.
const maxJTI = 128

// Spend implements admission.SpentStore: one round trip, SET key 1 NX PXAT.
func (s *SpentStore) Spend(ctx context.Context, jti string, until time.Time) (bool, error) {
	const op = "admission.redis.spend"
	if jti == "" || len(jti) > maxJTI || !until.After(s.now()) {
		return false, errs.E(op, errs.Invalid, "bad id or expiry not in the future")
	}
	err := s.client.SetArgs(ctx, s.prefix+jti, "1", goredis.SetArgs{Mode: "NX", ExpireAt: until}).Err()
	switch {
	case err == goredis.Nil:
		return false, nil // exists: already spent
	case err != nil:
		return false, errs.E(op, errs.Unavailable, "spent token store unreachable", err)
	}
	return true, nil
}
