package natskv_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/identity/client/clienttest"
	"github.com/ticketing/ticketing/services/identity/client/natskv"
)

var buckets atomic.Int64

var testTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func open(t *testing.T, js jetstream.JetStream, c natskv.Config) *natskv.Store {
	t.Helper()
	if c.Bucket == "" {
		c.Bucket = fmt.Sprintf("clients-test-%d", buckets.Add(1))
	}
	s, err := natskv.Open(context.Background(), js, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	_, _, js := nodetest.Start(t)
	clienttest.Run(t, func(t *testing.T) client.Store {
		return open(t, js, natskv.Config{})
	})
}

func TestConfig(t *testing.T) {
	c := natskv.Config{Replicas: 2}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("replicas 2: %v", err)
	}
	c = natskv.Config{}
	c.Defaults()
	if c.Bucket != "identity-clients" || c.Replicas != 1 || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	kvc := c.KeyValueConfig()
	if kvc.Bucket != "identity-clients" || kvc.History != 1 || kvc.Storage != jetstream.FileStorage {
		t.Fatalf("bucket config: %+v", kvc)
	}
}

// A store opened with New on the bucket Open made sees the same clients:
// the key layout is the bucket's, not the handle's.
func TestNewOnOpenedBucket(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	a := open(t, js, natskv.Config{Bucket: "clients-shared"})
	kv, err := js.KeyValue(ctx, "clients-shared")
	if err != nil {
		t.Fatal(err)
	}
	b := natskv.New(kv)
	_, hash := client.NewSecret()
	in := client.Client{ID: client.NewID(), Name: "Acme", Scopes: []string{client.ScopeEventsRead},
		SecretHashes: []string{hash}, CreatedAt: testTime}
	created, err := a.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.ByID(ctx, in.ID)
	if err != nil || got.Version != created.Version || got.Name != "Acme" {
		t.Fatalf("ByID through New = %+v, %v", got, err)
	}
	e, err := kv.Get(ctx, "client."+in.ID)
	if err != nil || e.Revision() != created.Version {
		t.Fatalf("key client.%s: %v, %v; want revision %d", in.ID, e, err, created.Version)
	}
}

// A value that is not a client (written by hand) is an error, not an
// empty client.
func TestCorruptValue(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	s := open(t, js, natskv.Config{Bucket: "clients-corrupt"})
	kv, err := js.KeyValue(ctx, "clients-corrupt")
	if err != nil {
		t.Fatal(err)
	}
	id := client.NewID()
	if _, err := kv.Put(ctx, "client."+id, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ByID(ctx, id); !errs.Is(errs.Other, err) || err == nil {
		t.Fatalf("ByID of a corrupt value: %v, want an internal error", err)
	}
}
