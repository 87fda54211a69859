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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Leader returns key's last value in kv, read through the JetStream API's
// message get (answered by the stream's leader); jetstream.ErrKeyNotFound
// when there is none or it was deleted.
func Leader(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) ([]byte, error) {
	stream := "KV_" + kv.Bucket()
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + kv.Bucket() + "." + key})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
			Hdrs []byte `json:"hdrs"`
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
	return resp.Message.Data, nil
}

// Get is kv.Get, asking the leader when the replica that answered does not
// have the key.
func Get(ctx context.Context, nc *nats.Conn, kv jetstream.KeyValue, key string) ([]byte, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) && nc != nil {
		return Leader(ctx, nc, kv, key)
	}
	if err != nil {
		return nil, err
	}
	return e.Value(), nil
}
