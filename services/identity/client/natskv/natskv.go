// Package natskv stores partner clients in a JetStream key-value bucket,
// the embedded store of `ticketing dev`. One key a client:
//
//	client.<id>  the client, JSON; its revision is the client's Version
//
// Create is KV Create (a compare-and-set on "no such key": of concurrent
// creates with one id exactly one lands) and Update is KV Update on the
// revision that was read, so of concurrent updates from one version exactly
// one lands. Clients are never deleted (they are disabled), so a key once
// written stays.
//
// List reads the bucket's keys (a watch that carries no values), sorts
// them and reads the clients of one page: fine for the hundreds of
// partners expected, not for millions.
//
// With more than one replica, reads go to the stream's leader (Open only):
// a replica lagging behind an update would hand out a client that was just
// disabled, or a version that cannot be updated.
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/identity/client"
)

// Config configures the store.
type Config struct {
	// Bucket is the key-value bucket. Default "identity-clients".
	Bucket string
	// Replicas of the bucket: 1 alone, 3 or 5 in a cluster. Default 1.
	Replicas int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Bucket == "" {
		c.Bucket = "identity-clients"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "client.natskv.config"
	if c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5 {
		return errs.Errorf(op, errs.Invalid, "replicas must be 1, 3 or 5, not %d", c.Replicas)
	}
	return nil
}

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place.
func (c Config) KeyValueConfig() jetstream.KeyValueConfig {
	c.Defaults()
	return jetstream.KeyValueConfig{
		Bucket:       c.Bucket,
		Description:  "identity: partner clients of the client credentials grant",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     c.Replicas,
		MaxValueSize: 16 << 10,
	}
}

// Store is a client.Store on a key-value bucket. Safe for concurrent use,
// also by several processes on one bucket.
type Store struct {
	kv jetstream.KeyValue
	nc *nats.Conn // set: read from the stream leader
}

var _ client.Store = (*Store)(nil)

// Open creates or updates the bucket and returns a store on it.
func Open(ctx context.Context, js jetstream.JetStream, c Config) (*Store, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, c.KeyValueConfig())
	if err != nil {
		return nil, errs.E("client.natskv", errs.Unavailable, fmt.Errorf("bucket %s: %w", c.Bucket, err))
	}
	s := &Store{kv: kv}
	if c.Replicas > 1 {
		s.nc = js.Conn()
	}
	return s, nil
}

// New returns a store on an existing bucket of one replica (Open is for
// replicated ones: it reads from the leader).
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

const keyPrefix = "client."

func key(id string) string { return keyPrefix + id }

// unavailable wraps a failure of the bucket; an *errs.Error (a value that
// does not decode, errs.Other) keeps its kind.
func unavailable(op string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return errs.E(op, err)
	}
	return errs.E(op, errs.Unavailable, "client store unavailable", err)
}

func notFound(op string) error { return errs.E(op, errs.NotFound, "no such client") }

// read returns the client of id with its revision as Version;
// jetstream.ErrKeyNotFound when there is none.
func (s *Store) read(ctx context.Context, id string) (client.Client, error) {
	var (
		e   jetstream.KeyValueEntry
		err error
	)
	if s.nc != nil {
		e, err = kvget.LeaderEntry(ctx, s.nc, s.kv, key(id))
	} else {
		e, err = s.kv.Get(ctx, key(id))
	}
	if err != nil {
		return client.Client{}, err
	}
	var c client.Client
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return client.Client{}, errs.E(errs.Other, fmt.Errorf("client %s: %w", id, err))
	}
	c.Version = e.Revision()
	return c, nil
}

// encode returns the normalized client's JSON.
func encode(c client.Client) []byte {
	b, _ := json.Marshal(c) // strings, slices and a time: cannot fail
	return b
}

// Create implements client.Store.
func (s *Store) Create(ctx context.Context, c client.Client) (client.Client, error) {
	const op = "client.natskv.create"
	c, err := client.Normalize(c)
	if err != nil {
		return client.Client{}, errs.E(op, err)
	}
	rev, err := s.kv.Create(ctx, key(c.ID), encode(c))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return client.Client{}, errs.E(op, errs.Conflict, "the client id is taken").WithReason(client.ReasonIDTaken)
	}
	if err != nil {
		return client.Client{}, unavailable(op, err)
	}
	c.Version = rev
	return c, nil
}

// ByID implements client.Store.
func (s *Store) ByID(ctx context.Context, id string) (client.Client, error) {
	const op = "client.natskv.by_id"
	if !client.ValidID(id) {
		return client.Client{}, notFound(op)
	}
	c, err := s.read(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return client.Client{}, notFound(op)
	}
	if err != nil {
		return client.Client{}, unavailable(op, err)
	}
	return c, nil
}

// Update implements client.Store. It reads the stored client first, to
// tell a missing client, another version and a moved CreatedAt apart;
// the write is a compare-and-set on c.Version all the same.
func (s *Store) Update(ctx context.Context, c client.Client) (client.Client, error) {
	const op = "client.natskv.update"
	c, err := client.Normalize(c)
	if err != nil {
		return client.Client{}, errs.E(op, err)
	}
	old, err := s.read(ctx, c.ID)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return client.Client{}, notFound(op)
	case err != nil:
		return client.Client{}, unavailable(op, err)
	case old.Version != c.Version:
		return client.Client{}, versionMismatch(op)
	case !old.CreatedAt.Equal(c.CreatedAt):
		return client.Client{}, errs.E(op, errs.Invalid, "a client's created at cannot change")
	}
	rev, err := s.kv.Update(ctx, key(c.ID), encode(c), c.Version)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return client.Client{}, versionMismatch(op)
	}
	if err != nil {
		return client.Client{}, unavailable(op, err)
	}
	c.Version = rev
	return c, nil
}

func versionMismatch(op string) error {
	return errs.E(op, errs.Conflict, "the client changed since it was read").WithReason(client.ReasonVersionMismatch)
}

// List implements client.Store.
func (s *Store) List(ctx context.Context, after string, limit int) ([]client.Client, error) {
	const op = "client.natskv.list"
	if limit < 1 || limit > client.MaxList {
		return nil, errs.Errorf(op, errs.Invalid, "limit must be 1-%d", client.MaxList)
	}
	l, err := s.kv.ListKeysFiltered(ctx, keyPrefix+"*")
	if err != nil {
		return nil, unavailable(op, err)
	}
	var ids []string
	for k := range l.Keys() {
		if id := strings.TrimPrefix(k, keyPrefix); id > after && client.ValidID(id) {
			ids = append(ids, id)
		}
	}
	// The lister ends early, without an error, when ctx ends.
	if err := ctx.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids) // a key written during the listing may show twice
	out := make([]client.Client, 0, min(limit, len(ids)))
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		c, err := s.read(ctx, id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // purged by hand since it was listed
		}
		if err != nil {
			return nil, unavailable(op, err)
		}
		out = append(out, c)
	}
	return out, nil
}
