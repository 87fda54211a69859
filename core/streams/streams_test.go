package streams_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/jsnames"
)

// The admission keys are stored data: the bucket, the key and the bucket's
// description stay what they were when the store lived in
// services/admission/natskv.
func TestAdmissionKeysStoredNames(t *testing.T) {
	c := streams.AdmissionKeysConfig(3)
	kv := c.KeyValueConfig()
	if c.Bucket != "admission-keys" || c.Key != "keyset" || kv.Bucket != "admission-keys" || kv.Replicas != 3 ||
		kv.Description != "admission token signing keys (private: core only)" || kv.History != 1 || kv.MaxValueSize != 64<<10 {
		t.Fatalf("admission key store %+v, bucket %+v", c, kv)
	}
}

// EVENTS stores each event before it acknowledges it, on a single node
// too; a stream made before with asynchronous flushes (its persist mode
// cannot change in place) keeps them, and the set says so.
func TestEnsureEventsPersistence(t *testing.T) {
	ctx := context.Background()
	t.Run("new", func(t *testing.T) {
		_, _, js := nodetest.Start(t)
		set, err := streams.Ensure(ctx, js, streams.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if m := set.Events.CachedInfo().Config.PersistMode; m != jetstream.DefaultPersistMode || set.EventsAsync {
			t.Fatalf("persist mode %v, async %v", m, set.EventsAsync)
		}
	})
	t.Run("made before, asynchronous", func(t *testing.T) {
		_, _, js := nodetest.Start(t)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: jsnames.Events, Subjects: []string{jsnames.EventsSubjPx + ">"},
			Storage: jetstream.FileStorage, PersistMode: jetstream.AsyncPersistMode}); err != nil {
			t.Fatal(err)
		}
		set, err := streams.Ensure(ctx, js, streams.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if m := set.Events.CachedInfo().Config.PersistMode; m != jetstream.AsyncPersistMode || !set.EventsAsync {
			t.Fatalf("persist mode %v, async %v", m, set.EventsAsync)
		}
	})
}
