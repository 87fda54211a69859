// Package natskv keeps the card vault's sealed records in two JetStream
// key-value buckets, the embedded default of `ticketing dev`:
//
//	payment-vault       key.<dek id>     a wrapped data key, JSON; its Version is the revision
//	                    card.<token id>  a sealed card, JSON
//	                    meta.fingerprint the fingerprint key's check value
//	payment-vault-cvc   cvc.<token id>   a sealed CVC, JSON
//
// The CVC bucket's age limit (Config.CVCMaxAge) drops every CVC that
// long after it was written, whether or not the vault deleted it; reads
// also refuse a CVC past its ExpiresAt by this process's clock
// (Config.Now). DeleteCVC purges the key, so that no revision of it
// stays.
//
// Creates are KV Create (compare-and-set on "no such key"), UpdateKey is
// KV Update on the revision the caller read. Keys lists the key.* keys
// and sorts them: data keys are few (one per process start and per
// CardsPerDEK cards).
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/payment/vault"
)

// Config configures the store.
type Config struct {
	// Bucket holds data keys and cards. Default "payment-vault".
	Bucket string
	// CVCBucket holds CVCs. Default "payment-vault-cvc".
	CVCBucket string
	// CVCMaxAge is the CVC bucket's age limit: no CVC is kept longer,
	// whatever its ExpiresAt. Default 1h; at least 1m. Keep it at least
	// the vault's CVCLifetime.
	CVCMaxAge time.Duration
	// Replicas of the buckets: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
	// Now is the clock that CVCs' ExpiresAt is compared with. Default
	// time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "payment-vault"
	}
	if c.CVCBucket == "" {
		c.CVCBucket = "payment-vault-cvc"
	}
	if c.CVCMaxAge == 0 {
		c.CVCMaxAge = time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "vault.natskv"
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	case c.CVCMaxAge < time.Minute:
		return errs.Errorf(op, errs.Invalid, "CVC max age %v is below 1m", c.CVCMaxAge)
	case c.Bucket == c.CVCBucket:
		return errs.E(op, errs.Invalid, "the CVC bucket must be another bucket")
	}
	return nil
}

// MaxValueSize bounds a value in the buckets (a sealed card is at most
// vault.MaxSealed bytes, base64 in JSON).
const MaxValueSize = 4 << 10

// KeyValueConfigs are the buckets' configurations, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfigs() []jetstream.KeyValueConfig {
	c.Defaults()
	return []jetstream.KeyValueConfig{{
		Bucket:       c.Bucket,
		Description:  "payment card vault: wrapped data keys and sealed cards",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: MaxValueSize,
	}, {
		Bucket:       c.CVCBucket,
		Description:  "payment card vault: sealed CVCs, until authorization",
		History:      1,
		TTL:          c.CVCMaxAge,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: MaxValueSize,
	}}
}

// Store is a vault.Store on two key-value buckets. Safe for concurrent use,
// also by several processes on the same buckets.
type Store struct {
	kv, cvc jetstream.KeyValue
	nc      *nats.Conn // for reads from the bucket's leader (kvget); nil: none
	cfg     Config
	// stored are the data key ids this store created or read: data keys
	// are never deleted, so a record naming one needs no look-up.
	stored sync.Map
}

var _ vault.Store = (*Store)(nil)

// Open creates or updates the buckets and returns a store on them.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var kvs []jetstream.KeyValue
	for _, kc := range c.KeyValueConfigs() {
		kv, err := js.CreateOrUpdateKeyValue(ctx, kc)
		if err != nil {
			return nil, errs.E("vault.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", kc.Bucket, err))
		}
		kvs = append(kvs, kv)
	}
	return &Store{kv: kvs[0], cvc: kvs[1], nc: js.Conn(), cfg: c}, nil
}

func keyKey(id string) string  { return "key." + id }
func cardKey(id string) string { return "card." + id }
func cvcKey(id string) string  { return "cvc." + id }

const fingerprintKey = "meta.fingerprint"

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "card vault unavailable", err)
}

func decodeKey(e jetstream.KeyValueEntry) (vault.WrappedKey, error) {
	var k vault.WrappedKey
	if err := json.Unmarshal(e.Value(), &k); err != nil {
		return k, errs.E(errs.Other, fmt.Errorf("%s: %w", e.Key(), err))
	}
	k.Version = e.Revision()
	return k, nil
}

// CreateKey implements vault.Store.
func (s *Store) CreateKey(ctx context.Context, k vault.WrappedKey) (vault.WrappedKey, error) {
	const op = "vault.create_key"
	k, err := k.Check()
	if err != nil {
		return vault.WrappedKey{}, errs.E(op, err)
	}
	b, _ := json.Marshal(k)
	rev, err := s.kv.Create(ctx, keyKey(k.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return vault.WrappedKey{}, errs.E(op, errs.Conflict, "a data key with this id exists")
	}
	if err != nil {
		return vault.WrappedKey{}, unavailable(op, err)
	}
	s.stored.Store(k.ID, struct{}{})
	k.Version = rev
	return k, nil
}

// Key implements vault.Store.
func (s *Store) Key(ctx context.Context, id string) (vault.WrappedKey, error) {
	const op = "vault.key"
	if !vault.ValidKeyID(id) {
		return vault.WrappedKey{}, errs.E(op, errs.NotFound, "no such data key")
	}
	return s.key(ctx, op, id, false)
}

// key reads a data key; leader reads it from the bucket's leader (for an
// update that must see the newest revision).
func (s *Store) key(ctx context.Context, op, id string, leader bool) (vault.WrappedKey, error) {
	var (
		e   jetstream.KeyValueEntry
		err error
	)
	if leader && s.nc != nil {
		e, err = kvget.LeaderEntry(ctx, s.nc, s.kv, keyKey(id))
	} else {
		e, err = kvget.GetEntry(ctx, s.nc, s.kv, keyKey(id))
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return vault.WrappedKey{}, errs.E(op, errs.NotFound, "no such data key")
	}
	if err != nil {
		return vault.WrappedKey{}, unavailable(op, err)
	}
	k, err := decodeKey(e)
	if err != nil {
		return vault.WrappedKey{}, errs.E(op, err)
	}
	return k, nil
}

// Keys implements vault.Store.
func (s *Store) Keys(ctx context.Context, after string, limit int) ([]vault.WrappedKey, error) {
	const op = "vault.keys"
	if limit < 1 || limit > vault.MaxKeysPage {
		return nil, errs.Errorf(op, errs.Invalid, "limit must be 1 to %d", vault.MaxKeysPage)
	}
	lister, err := s.kv.ListKeysFiltered(ctx, "key.*")
	if err != nil {
		return nil, unavailable(op, err)
	}
	var ids []string
	for k := range lister.Keys() {
		if id := strings.TrimPrefix(k, "key."); id > after {
			ids = append(ids, id)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	slices.Sort(ids)
	out := make([]vault.WrappedKey, 0, min(limit, len(ids)))
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		k, err := s.key(ctx, op, id, false)
		if errs.Is(errs.NotFound, err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// UpdateKey implements vault.Store.
func (s *Store) UpdateKey(ctx context.Context, k vault.WrappedKey) (vault.WrappedKey, error) {
	const op = "vault.update_key"
	k, err := k.Check()
	if err != nil {
		return vault.WrappedKey{}, errs.E(op, err)
	}
	cur, err := s.key(ctx, op, k.ID, true)
	if err != nil {
		return vault.WrappedKey{}, err
	}
	if cur.Version != k.Version {
		return vault.WrappedKey{}, errs.E(op, errs.Conflict, "the data key changed since it was read").WithReason(vault.ReasonVersionMismatch)
	}
	if !cur.Created.Equal(k.Created) {
		return vault.WrappedKey{}, errs.E(op, errs.Invalid, "a data key's creation time cannot change")
	}
	b, _ := json.Marshal(k)
	rev, err := s.kv.Update(ctx, keyKey(k.ID), b, k.Version)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return vault.WrappedKey{}, errs.E(op, errs.Conflict, "the data key changed since it was read").WithReason(vault.ReasonVersionMismatch)
	}
	if err != nil {
		return vault.WrappedKey{}, unavailable(op, err)
	}
	k.Version = rev
	return k, nil
}

// keyExists checks that a record's data key is stored (data keys are never
// deleted, so the check cannot go stale: a key found once is not looked
// up again).
func (s *Store) keyExists(ctx context.Context, op, id string) error {
	if _, ok := s.stored.Load(id); ok {
		return nil
	}
	_, err := s.key(ctx, op, id, false)
	if errs.Is(errs.NotFound, err) {
		return errs.E(op, errs.Invalid, "the record's data key does not exist")
	}
	if err == nil {
		s.stored.Store(id, struct{}{})
	}
	return err
}

// PutCard implements vault.Store.
func (s *Store) PutCard(ctx context.Context, c vault.SealedCard) error {
	const op = "vault.put_card"
	c, err := c.Check()
	if err != nil {
		return errs.E(op, err)
	}
	if err := s.keyExists(ctx, op, c.KeyID); err != nil {
		return err
	}
	b, _ := json.Marshal(c)
	_, err = s.kv.Create(ctx, cardKey(c.Token.ID), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errs.E(op, errs.Conflict, "a card with this token id exists")
	}
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// PutCardWithCVC implements vault.Store: the CVC (in its own bucket)
// first, then the card.
func (s *Store) PutCardWithCVC(ctx context.Context, c vault.SealedCard, cvc *vault.SealedCVC) error {
	if cvc != nil {
		if cvc.TokenID != c.Token.ID {
			return errs.E("vault.put_card", errs.Invalid, "the CVC is another card's")
		}
		if _, err := c.Check(); err != nil {
			return errs.E("vault.put_card", err)
		}
		if err := s.PutCVC(ctx, *cvc); err != nil {
			return err
		}
	}
	return s.PutCard(ctx, c)
}

// Card implements vault.Store.
func (s *Store) Card(ctx context.Context, id string) (vault.SealedCard, error) {
	const op = "vault.card"
	if !vault.ValidTokenID(id) {
		return vault.SealedCard{}, errs.E(op, errs.NotFound, "no such card")
	}
	e, err := kvget.GetEntry(ctx, s.nc, s.kv, cardKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return vault.SealedCard{}, errs.E(op, errs.NotFound, "no such card")
	}
	if err != nil {
		return vault.SealedCard{}, unavailable(op, err)
	}
	var c vault.SealedCard
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return vault.SealedCard{}, errs.E(op, errs.Other, fmt.Errorf("%s: %w", e.Key(), err))
	}
	return c, nil
}

// PutCVC implements vault.Store.
func (s *Store) PutCVC(ctx context.Context, c vault.SealedCVC) error {
	const op = "vault.put_cvc"
	c, err := c.Check()
	if err != nil {
		return errs.E(op, err)
	}
	if err := s.keyExists(ctx, op, c.KeyID); err != nil {
		return err
	}
	b, _ := json.Marshal(c)
	if _, err := s.cvc.Put(ctx, cvcKey(c.TokenID), b); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// CVC implements vault.Store.
func (s *Store) CVC(ctx context.Context, id string) (vault.SealedCVC, error) {
	const op = "vault.cvc"
	notFound := errs.E(op, errs.NotFound, "no CVC kept for this card")
	if !vault.ValidTokenID(id) {
		return vault.SealedCVC{}, notFound
	}
	e, err := kvget.GetEntry(ctx, s.nc, s.cvc, cvcKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return vault.SealedCVC{}, notFound
	}
	if err != nil {
		return vault.SealedCVC{}, unavailable(op, err)
	}
	var c vault.SealedCVC
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return vault.SealedCVC{}, errs.E(op, errs.Other, fmt.Errorf("%s: %w", e.Key(), err))
	}
	if !s.cfg.Now().Before(c.ExpiresAt) {
		return vault.SealedCVC{}, notFound
	}
	return c, nil
}

// CardAndCVC implements vault.Store: the card and the CVC are in two
// buckets, read at once.
func (s *Store) CardAndCVC(ctx context.Context, id string) (vault.SealedCard, *vault.SealedCVC, error) {
	var (
		cvc    vault.SealedCVC
		cvcErr error
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		cvc, cvcErr = s.CVC(ctx, id)
	}()
	c, err := s.Card(ctx, id)
	<-done
	switch {
	case err != nil:
		return vault.SealedCard{}, nil, err
	case errs.Is(errs.NotFound, cvcErr):
		return c, nil, nil
	case cvcErr != nil:
		return vault.SealedCard{}, nil, cvcErr
	}
	return c, &cvc, nil
}

// DeleteCVC implements vault.Store.
func (s *Store) DeleteCVC(ctx context.Context, id string) error {
	const op = "vault.delete_cvc"
	if !vault.ValidTokenID(id) {
		return nil
	}
	if err := s.cvc.Purge(ctx, cvcKey(id)); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// FingerprintCheck implements vault.Store.
func (s *Store) FingerprintCheck(ctx context.Context, check string) (string, error) {
	const op = "vault.fingerprint_check"
	for attempt := 0; attempt < 4; attempt++ {
		_, err := s.kv.Create(ctx, fingerprintKey, []byte(check))
		if err == nil {
			return check, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", unavailable(op, err)
		}
		v, err := kvget.Leader(ctx, s.nc, s.kv, fingerprintKey)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", unavailable(op, err)
		}
		return string(v), nil
	}
	return "", errs.E(op, errs.Unavailable, "fingerprint check contended; try again")
}
