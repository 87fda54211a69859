// Package natskv keeps a keyring.KeySet in a JetStream key-value bucket,
// shared by the core nodes: the embedded default of `ticketing dev` and the
// store of production cores alike (signing keys live with the rest of the
// core's state in JetStream). Each key ring has its own bucket, e.g.
// "admission-keys" for the admission tokens (core/streams names them).
//
// The set is one value under one key, so that a rotation (retire the old
// key, add the new one, drop expired ones) is one atomic write; the
// entry's revision is the KeyStore revision, and Save is KV Create (rev 0)
// or KV Update on that revision, the compare-and-set Sync relies on.
//
// The values hold private key seeds: the bucket must be readable by core
// users only, never exported to edge leaf nodes (edges verify with the
// public JWKS).
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket; required, one per key ring.
	Bucket string
	// Key is the key of the set within the bucket. Default "keyset".
	Key string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// Description of the bucket. Default "token signing keys (private:
	// core only)".
	Description string
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Key == "" {
		c.Key = "keyset"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Description == "" {
		c.Description = "token signing keys (private: core only)"
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if c.Bucket == "" {
		return errs.E("keyring.natskv", errs.Invalid, "no bucket")
	}
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf("keyring.natskv", errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  c.Description,
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 64 << 10,
	}
}

// Store is a keyring.KeyStore on a key-value bucket. Safe for
// concurrent use, also by several processes on one bucket.
type Store struct {
	kv  jetstream.KeyValue
	key string
}

var _ keyring.KeyStore = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("keyring.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	return &Store{kv: kv, key: c.Key}, nil
}

// New returns a store on an existing bucket.
func New(kv jetstream.KeyValue, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Store{kv: kv, key: c.Key}, nil
}

// Load implements keyring.KeyStore.
func (s *Store) Load(ctx context.Context) (keyring.KeySet, uint64, error) {
	const op = "keyring.natskv.load"
	e, err := s.kv.Get(ctx, s.key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return keyring.KeySet{}, 0, errs.E(op, errs.NotFound, "no key set stored")
	case err != nil:
		return keyring.KeySet{}, 0, errs.E(op, errs.Unavailable, "key store unavailable", err)
	}
	var set keyring.KeySet
	if err := json.Unmarshal(e.Value(), &set); err != nil {
		return keyring.KeySet{}, 0, errs.E(op, errs.Other, fmt.Errorf("stored key set: %w", err))
	}
	return set, e.Revision(), nil
}

// Save implements keyring.KeyStore.
func (s *Store) Save(ctx context.Context, set keyring.KeySet, rev uint64) (uint64, error) {
	const op = "keyring.natskv.save"
	b, err := json.Marshal(set)
	if err != nil {
		return 0, errs.E(op, errs.Invalid, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, s.key, b)
	} else {
		nrev, err = s.kv.Update(ctx, s.key, b, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, errs.E(op, errs.Conflict, "key set changed meanwhile", err)
	case isWrongLastSequence(err):
		return 0, errs.E(op, errs.Conflict, "key set changed meanwhile", err)
	case err != nil:
		return 0, errs.E(op, errs.Unavailable, "key store unavailable", err)
	}
	return nrev, nil
}

// isWrongLastSequence recognizes the API error of an Update on a key that
// does not exist (or a Create racing a delete).
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
