package kvwatch_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/kvwatch"
)

// TestFollow: the current entries, then ready, then every change in order,
// deletes included; nil when the context ends; an error when the watch
// ends on its own (the bucket deleted under it).
func TestFollow(t *testing.T) {
	_, _, js := nodetest.Start(t)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "follow"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	add := func(s string) { mu.Lock(); seen = append(seen, s); mu.Unlock() }
	got := func() string { mu.Lock(); defer mu.Unlock(); return strings.Join(seen, " ") }

	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- kvwatch.Follow(fctx, kv, "test follow", func() { add("ready") }, func(e jetstream.KeyValueEntry) {
			if e.Operation() == jetstream.KeyValuePut {
				add(e.Key() + "=" + string(e.Value()))
			} else {
				add("-" + e.Key())
			}
		})
	}()
	eventually.Nil(t, 10*time.Second, func() error {
		if got() != "a=1 ready" {
			return fmt.Errorf("seen %q", got())
		}
		return nil
	})
	if _, err := kv.Put(ctx, "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	eventually.Nil(t, 10*time.Second, func() error {
		if got() != "a=1 ready b=2 -a" {
			return fmt.Errorf("seen %q", got())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow after its context ended: %v, want nil", err)
	}

	// The watch ending on its own is an error that names what followed.
	go func() {
		done <- kvwatch.Follow(ctx, kv, "test follow", nil, func(jetstream.KeyValueEntry) {})
	}()
	if err := js.DeleteKeyValue(ctx, "follow"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "test follow") {
			t.Fatalf("Follow of a deleted bucket: %v, want an error naming it", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Follow did not return after its bucket was deleted")
	}
}
