// Package natskv keeps settings and flag definitions in a JetStream
// key-value bucket (the core's "settings" bucket, core/streams): Store is
// the compare-and-set settings.Store the config service writes through,
// Watch applies the bucket's changes to a process's settings.Live and
// flags.Set as they happen (on every core node, and on every edge over its
// leaf node, which may read the bucket and not write it), and Auditor
// publishes each accepted change as a CloudEvent on the EVENTS stream.
//
// Keys are settings' bucket keys ("setting.<name>", "setting.<name>/<scope>",
// "flag.<key>"); values are settings.Entry JSON.
package natskv

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/kvget"
	"github.com/ticketing/ticketing/services/settings"
)

// Bucket is the bucket's name.
const Bucket = "settings"

// KeyValueConfig is the bucket's configuration, for code that creates
// every bucket in one place. It keeps a few revisions of each key (the
// audit trail proper is the domain events).
func KeyValueConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "dynamic settings and feature flags (written by the config service only)",
		History:      8,
		Storage:      jetstream.FileStorage,
		Replicas:     replicas,
		MaxValueSize: settings.MaxEntrySize,
	}
}

// Store is a settings.Store on a bucket. Safe for concurrent use.
type Store struct {
	KV jetstream.KeyValue
	// JS publishes the deletion markers (to learn their revision).
	JS jetstream.JetStream
	// NC, when set, is the connection reads go over to the bucket
	// stream's leader, so that a compare-and-set starts from the newest
	// revision in a cluster (internal/kvget).
	NC *nats.Conn
}

var _ settings.Store = (*Store)(nil)

func unavailable(op string, err error) error {
	return errs.E(op, errs.Unavailable, "the settings bucket is unavailable; try again", err)
}

// Get implements settings.Store. An entry that does not decode is
// returned with its revision and no value, so that it can be overwritten.
func (s *Store) Get(ctx context.Context, key string) (settings.Stored, error) {
	const op = "settings.natskv.get"
	var e jetstream.KeyValueEntry
	var err error
	if s.NC != nil {
		e, err = kvget.LeaderEntry(ctx, s.NC, s.KV, key)
	} else {
		e, err = s.KV.Get(ctx, key)
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return settings.Stored{}, errs.Errorf(op, errs.NotFound, "%s is not set", key)
	}
	if err != nil {
		return settings.Stored{}, unavailable(op, err)
	}
	st := settings.Stored{Key: key, Revision: e.Revision()}
	if entry, err := settings.DecodeEntry(e.Value()); err == nil {
		st.Entry = entry
	}
	return st, nil
}

// List implements settings.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]settings.Stored, error) {
	const op = "settings.natskv.list"
	first, _, _ := strings.Cut(prefix, ".")
	lister, err := s.KV.ListKeysFiltered(ctx, first+".>")
	if err != nil {
		return nil, unavailable(op, err)
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]settings.Stored, 0, len(keys))
	for _, k := range keys {
		st, err := s.Get(ctx, k)
		if errs.Is(errs.NotFound, err) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Put implements settings.Store.
func (s *Store) Put(ctx context.Context, key string, value []byte, last uint64) (uint64, error) {
	const op = "settings.natskv.put"
	var rev uint64
	var err error
	if last == 0 {
		rev, err = s.KV.Create(ctx, key, value)
	} else {
		rev, err = s.KV.Update(ctx, key, value, last)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, errs.E(op, errs.Conflict, key+" was changed by someone else meanwhile", err)
	}
	if err != nil {
		return 0, unavailable(op, err)
	}
	return rev, nil
}

// Delete implements settings.Store: a deletion marker written with the
// expected last revision, as KeyValue.Delete writes it, published here to
// learn its revision.
func (s *Store) Delete(ctx context.Context, key string, last uint64) (uint64, error) {
	const op = "settings.natskv.delete"
	m := nats.NewMsg("$KV." + s.KV.Bucket() + "." + key)
	m.Header.Set("KV-Operation", "DEL")
	ack, err := s.JS.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(last))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, errs.E(op, errs.Conflict, key+" was changed by someone else meanwhile", err)
	}
	if err != nil {
		return 0, unavailable(op, err)
	}
	return ack.Sequence, nil
}
