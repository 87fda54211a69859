package kvget_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/kvget"
)

func TestLeaderGet(t *testing.T) {
	_, nc, js := nodetest.StartListening(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kvget-test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kvget.Leader(ctx, nc, kv, "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for _, v := range []string{"one", "two"} {
		if _, err := kv.PutString(ctx, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	for name, get := range map[string]func() ([]byte, error){
		"Leader": func() ([]byte, error) { return kvget.Leader(ctx, nc, kv, "k") },
		"Get":    func() ([]byte, error) { return kvget.Get(ctx, nc, kv, "k") },
	} {
		if v, err := get(); err != nil || string(v) != "two" {
			t.Fatalf("%s: %q, %v; want the last value", name, v, err)
		}
	}
	// The whole entry, as a replica's Get gives it.
	want, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for name, get := range map[string]func() (jetstream.KeyValueEntry, error){
		"LeaderEntry": func() (jetstream.KeyValueEntry, error) { return kvget.LeaderEntry(ctx, nc, kv, "k") },
		"GetEntry":    func() (jetstream.KeyValueEntry, error) { return kvget.GetEntry(ctx, nc, kv, "k") },
	} {
		e, err := get()
		if err != nil || e.Key() != "k" || e.Bucket() != kv.Bucket() || string(e.Value()) != "two" ||
			e.Revision() != want.Revision() || !e.Created().Equal(want.Created()) || e.Operation() != jetstream.KeyValuePut {
			t.Fatalf("%s: %+v, %v; want %+v", name, e, err, want)
		}
	}
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := kvget.Leader(ctx, nc, kv, "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if _, err := kvget.Get(ctx, nc, kv, "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted key through Get: %v", err)
	}
	if _, err := kvget.GetEntry(ctx, nc, kv, "k"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted key through GetEntry: %v", err)
	}
}
