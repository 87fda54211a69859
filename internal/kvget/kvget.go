// Package kvget reads a JetStream key-value entry from the bucket stream's
// leader. A KV Get is a direct get that any replica answers, and a replica
// may not have the newest write yet: a key another node created a moment ago
// can read as not found. Callers that have just learnt a key exists (a
// Create that failed with "key exists", a catalog entry created through
// another node) read it here instead.
package kvget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Leader returns key's last value in kv, read through the JetStream API's
// message get (answered by the stream's leader); jetstream.ErrKeyNotFound
// when there is none or it was deleted.
func Leader(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) ([]byte, error) {
	e, err := LeaderEntry(ctx, nc, kv, key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// LeaderEntry is Leader returning the whole entry (revision and creation
// time included), for callers that update it next.
func LeaderEntry(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	stream := "KV_" + kv.Bucket()
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + kv.Bucket() + "." + key})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *struct {
			Data []byte    `json:"data"`
			Hdrs []byte    `json:"hdrs"`
			Seq  uint64    `json:"seq"`
			Time time.Time `json:"time"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, err
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, fmt.Errorf("message get: %d %s", resp.Error.Code, resp.Error.Description)
	case resp.Message == nil:
		return nil, errors.New("message get: empty answer")
	}
	// A deleted or purged key is a marker message.
	if h := string(resp.Message.Hdrs); strings.Contains(h, "KV-Operation: DEL") || strings.Contains(h, "KV-Operation: PURGE") {
		return nil, jetstream.ErrKeyNotFound
	}
	return entry{bucket: kv.Bucket(), key: key, value: resp.Message.Data, rev: resp.Message.Seq, created: resp.Message.Time}, nil
}

// entry is a jetstream.KeyValueEntry read from the leader (always a put:
// deletes read as not found).
type entry struct {
	bucket, key string
	value       []byte
	rev         uint64
	created     time.Time
}

func (e entry) Bucket() string                  { return e.bucket }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return e.created }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }

// Get is kv.Get, asking the leader when the replica that answered does not
// have the key.
func Get(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) ([]byte, error) {
	e, err := GetEntry(ctx, nc, kv, key)
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}

// GetEntry is kv.Get, asking the leader when the replica that answered
// does not have the key.
func GetEntry(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) && nc != nil {
		return LeaderEntry(ctx, nc, kv, key)
	}
	return e, err
}
