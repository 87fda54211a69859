// Package keyringtest is the contract suite of keyring.KeyStore: every
// implementation runs RunKeyStore (the in-memory store, the JetStream KV
// store), so that Sync and the code above it can rely on one behaviour.
package keyringtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func cancelled() context.Context {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	return c
}

// RunKeyStore runs the KeyStore suite. newStore returns an empty store for
// each subtest; two calls with the same t are not required to share data.
func RunKeyStore(t *testing.T, newStore func(t *testing.T) keyring.KeyStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, keyring.KeyStore)
	}{
		{"EmptyIsNotFound", testKeysEmpty},
		{"SaveAndLoad", testKeysSaveLoad},
		{"CompareAndSet", testKeysCAS},
		{"ConcurrentCreate", testKeysConcurrentCreate},
		{"SyncRotatesOnce", testKeysSyncRotatesOnce},
		{"CancelledContext", testKeysCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func ring(t *testing.T, now time.Time) *keyring.KeyRing {
	t.Helper()
	r, err := keyring.NewKeyRing(keyring.KeyRingConfig{RotateEvery: time.Hour, VerifyFor: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testKeysEmpty(t *testing.T, s keyring.KeyStore) {
	if _, _, err := s.Load(ctx(t)); !errs.Is(errs.NotFound, err) {
		t.Fatalf("Load of an empty store: %v, want not found", err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), 7); !errs.Is(errs.Conflict, err) {
		t.Fatalf("Save at revision 7 into an empty store: %v, want conflict", err)
	}
}

func testKeysSaveLoad(t *testing.T, s keyring.KeyStore) {
	r := ring(t, t0)
	if err := r.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := r.KeySet()
	rev, err := s.Save(ctx(t), want, 0)
	if err != nil || rev == 0 {
		t.Fatalf("Save = %d, %v", rev, err)
	}
	got, grev, err := s.Load(ctx(t))
	if err != nil || grev != rev {
		t.Fatalf("Load = rev %d, %v; want rev %d", grev, err, rev)
	}
	if len(got.Keys) != 2 {
		t.Fatalf("loaded %d keys, want 2", len(got.Keys))
	}
	for i := range want.Keys {
		w, g := want.Keys[i], got.Keys[i]
		if w.KID != g.KID || string(w.Seed) != string(g.Seed) || !w.Created.Equal(g.Created) ||
			!w.Retired.Equal(g.Retired) || !w.VerifyUntil.Equal(g.VerifyUntil) {
			t.Fatalf("key %d: got %s created %v retired %v until %v, want %s created %v retired %v until %v",
				i, g.KID, g.Created, g.Retired, g.VerifyUntil, w.KID, w.Created, w.Retired, w.VerifyUntil)
		}
	}
	r2, err := keyring.NewKeyRingFromSet(r.Config(), got)
	if err != nil || r2.ActiveKID() != r.ActiveKID() {
		t.Fatalf("ring from loaded set: %v, active %s want %s", err, r2.ActiveKID(), r.ActiveKID())
	}
}

func testKeysCAS(t *testing.T, s keyring.KeyStore) {
	rev1, err := s.Save(ctx(t), ring(t, t0).KeySet(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), 0); !errs.Is(errs.Conflict, err) {
		t.Fatalf("second create: %v, want conflict", err)
	}
	second := ring(t, t0)
	rev2, err := s.Save(ctx(t), second.KeySet(), rev1)
	if err != nil || rev2 == rev1 {
		t.Fatalf("Save at the current revision = %d, %v", rev2, err)
	}
	if _, err := s.Save(ctx(t), ring(t, t0).KeySet(), rev1); !errs.Is(errs.Conflict, err) {
		t.Fatalf("Save at a stale revision: %v, want conflict", err)
	}
	got, rev, err := s.Load(ctx(t))
	if err != nil || rev != rev2 || len(got.Keys) != 1 || got.Keys[0].KID != second.ActiveKID() {
		t.Fatalf("Load after the stale save: rev %d %v, want the second set at rev %d", rev, err, rev2)
	}
}

func testKeysConcurrentCreate(t *testing.T, s keyring.KeyStore) {
	const n = 8
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		r := ring(t, t0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Save(ctx(t), r.KeySet(), 0)
			switch {
			case err == nil:
				wins.Add(1)
			case !errs.Is(errs.Conflict, err):
				t.Errorf("concurrent create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent creates won, want 1", wins.Load())
	}
}

// Several nodes sync at once when the key is due: exactly one rotation,
// and they all end with the same active key.
func testKeysSyncRotatesOnce(t *testing.T, s keyring.KeyStore) {
	const nodes = 4
	rings := make([]*keyring.KeyRing, nodes)
	for i := range rings {
		rings[i] = ring(t, t0)
		if _, err := keyring.Sync(ctx(t), s, rings[i], t0); err != nil {
			t.Fatal(err)
		}
	}
	first := rings[0].ActiveKID()
	for i, r := range rings {
		if r.ActiveKID() != first {
			t.Fatalf("node %d after the first sync: active %s, want %s", i, r.ActiveKID(), first)
		}
	}
	later := t0.Add(61 * time.Minute)
	var rotations atomic.Int32
	var wg sync.WaitGroup
	for _, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rotated, err := keyring.Sync(ctx(t), s, r, later)
			if err != nil {
				t.Errorf("sync: %v", err)
			}
			if rotated {
				rotations.Add(1)
			}
		}()
	}
	wg.Wait()
	if rotations.Load() != 1 {
		t.Fatalf("%d nodes rotated, want 1", rotations.Load())
	}
	second := rings[0].ActiveKID()
	if second == first {
		t.Fatal("active key did not change")
	}
	for i, r := range rings {
		if r.ActiveKID() != second {
			t.Fatalf("node %d: active %s, want %s", i, r.ActiveKID(), second)
		}
		if _, ok := r.PublicKeys().Lookup(first); !ok {
			t.Fatalf("node %d lost the retired key", i)
		}
	}
	// Past VerifyFor, the retired key is dropped from the store too.
	if _, err := keyring.Sync(ctx(t), s, rings[0], later.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	set, _, err := s.Load(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.KID == first {
			t.Fatal("retired key still stored after VerifyFor")
		}
	}
}

func testKeysCancelled(t *testing.T, s keyring.KeyStore) {
	if _, err := s.Save(cancelled(), ring(t, t0).KeySet(), 0); err == nil {
		t.Fatal("Save with a cancelled context succeeded")
	}
	if _, _, err := s.Load(cancelled()); err == nil {
		t.Fatal("Load with a cancelled context succeeded")
	}
}
