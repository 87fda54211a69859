// Package natskv keeps spent challenges (passkey.Spent: the passkey
// ceremonies', and the sign-in proofs of work the fraud engine asks for) in
// a JetStream key-value bucket, shared by every core node: a challenge is a
// key created once (KV Create, a compare-and-set on "no such key"), so of
// two nodes finishing one ceremony exactly one proceeds. The bucket's TTL
// forgets challenges after the longest ceremony (KeyValueConfig).
package natskv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/passkey"
)

// Bucket is the bucket's default name.
const Bucket = "identity-passkey-spent"

// KeyValueConfig is the bucket's configuration: entries live an hour,
// longer than passkey.Config's longest timeout (30m).
func KeyValueConfig(replicas int) jetstream.KeyValueConfig {
	if replicas == 0 {
		replicas = 1
	}
	return jetstream.KeyValueConfig{Bucket: Bucket, Description: "spent passkey ceremony challenges",
		History: 1, TTL: time.Hour, Storage: jetstream.FileStorage, Replicas: replicas, MaxValueSize: 1024}
}

// Spent is a passkey.Spent on a bucket.
type Spent struct{ KV jetstream.KeyValue }

var _ passkey.Spent = Spent{}

// Spend implements passkey.Spent. until is bounded by the bucket's TTL.
func (s Spent) Spend(ctx context.Context, jti, use string, until time.Time) (bool, error) {
	const op = "passkey.spend"
	if !time.Now().Before(until) {
		return false, errs.E(op, errs.Invalid, "the challenge has expired")
	}
	sum := sha256.Sum256([]byte(jti))
	key := "c." + hex.EncodeToString(sum[:])
	_, err := s.KV.Create(ctx, key, []byte(use))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, errs.E(op, errs.Unavailable, "challenge store unavailable", err)
	}
	e, err := s.KV.Get(ctx, key)
	if err != nil {
		return false, errs.E(op, errs.Unavailable, "challenge store unavailable", err)
	}
	return string(e.Value()) == use, nil
}
