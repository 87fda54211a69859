package kvtx_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/kvtx"
)

func bucket(t *testing.T, js jetstream.JetStream, name string) jetstream.KeyValue {
	t.Helper()
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, LimitMarkerTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := kvtx.Enable(ctx, js, kv); err != nil {
		t.Fatal(err)
	}
	if err := kvtx.Enable(ctx, js, kv); err != nil {
		t.Fatalf("enable again: %v", err)
	}
	return kv
}

func rev(t *testing.T, kv jetstream.KeyValue, key string) uint64 {
	t.Helper()
	e, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return e.Revision()
}

func TestAllOrNothing(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "tx")
	ctx := context.Background()

	tx := kvtx.New(kv)
	tx.Put("a", []byte("1"), 0)
	tx.Put("b", []byte("1"), 0)
	tx.Blind("out.1", []byte("event"), 0)
	if _, err := tx.Commit(ctx, nc); err != nil {
		t.Fatal(err)
	}
	ra, rb := rev(t, kv, "a"), rev(t, kv, "b")
	if ra == 0 || rb == 0 || rev(t, kv, "out.1") == 0 {
		t.Fatalf("revisions after the first commit: a %d b %d", ra, rb)
	}
	if tx.Revision("a") != ra || tx.Revision("b") != rb || tx.Revision("out.1") != rev(t, kv, "out.1") || tx.Revision("c") != 0 {
		t.Fatalf("the transaction's revisions a %d b %d out.1 %d; stored a %d b %d", tx.Revision("a"), tx.Revision("b"), tx.Revision("out.1"), ra, rb)
	}

	// b moves on: a transaction that read it before fails whole, and a
	// is left as it was.
	if _, err := kv.Put(ctx, "b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	tx = kvtx.New(kv)
	tx.Put("a", []byte("stale"), ra)
	tx.Put("b", []byte("stale"), rb)
	tx.Blind("out.2", []byte("event"), 0)
	_, err := tx.Commit(ctx, nc)
	if !errs.Is(errs.Conflict, err) {
		t.Fatalf("stale transaction: %v", err)
	}
	if e, _ := kv.Get(ctx, "a"); string(e.Value()) != "1" {
		t.Fatalf("a after the failed transaction: %q", e.Value())
	}
	if rev(t, kv, "out.2") != 0 {
		t.Fatal("the failed transaction's outbox entry was stored")
	}
	// Creating a key that exists fails too.
	tx = kvtx.New(kv)
	tx.Put("a", []byte("again"), 0)
	if _, err := tx.Commit(ctx, nc); !errs.Is(errs.Conflict, err) {
		t.Fatalf("create of an existing key: %v", err)
	}
}

// Of concurrent transactions that read the same revision of a counter,
// exactly one is stored each round; retried, every increment lands once.
func TestConcurrentIncrements(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "counter")
	ctx := context.Background()
	const workers, each = 8, 25
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				e, err := kv.Get(ctx, "n")
				n, r := 0, uint64(0)
				if err == nil {
					n, _ = strconv.Atoi(string(e.Value()))
					r = e.Revision()
				} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
					t.Error(err)
					return
				}
				tx := kvtx.New(kv)
				tx.Put("n", []byte(strconv.Itoa(n+1)), r)
				tx.Blind("log."+strconv.Itoa(w)+"."+strconv.Itoa(i), []byte("x"), 0)
				_, err = tx.Commit(ctx, nc)
				switch {
				case err == nil:
					i++
				case errs.Is(errs.Conflict, err):
					conflicts.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	e, err := kv.Get(ctx, "n")
	if err != nil || string(e.Value()) != strconv.Itoa(workers*each) {
		t.Fatalf("counter %q (%v), want %d", e.Value(), err, workers*each)
	}
	keys, err := kv.ListKeysFiltered(ctx, "log.>")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != workers*each {
		t.Fatalf("%d log entries, want %d", n, workers*each)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

func TestTTL(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "ttl")
	tx := kvtx.New(kv)
	tx.PutTTL("short", []byte("x"), 0, time.Second)
	tx.Put("long", []byte("x"), 0)
	if _, err := tx.Commit(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 10*time.Second, "the short-lived key to go", func() bool { return rev(t, kv, "short") == 0 })
	if rev(t, kv, "long") == 0 {
		t.Fatal("the key without a TTL went too")
	}
}

func TestLimits(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "limits")
	tx := kvtx.New(kv)
	if seq, err := tx.Commit(context.Background(), nc); seq != 0 || err != nil {
		t.Fatalf("empty transaction: %d %v", seq, err)
	}
	for i := 0; i <= kvtx.MaxWrites; i++ {
		tx.Blind("k"+strconv.Itoa(i), nil, 0)
	}
	if _, err := tx.Commit(context.Background(), nc); !errs.Is(errs.Invalid, err) {
		t.Fatalf("%d writes: %v", tx.Len(), err)
	}
}

// A write's own headers are stored with its value.
func TestPutHeader(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "hdr")
	ctx := context.Background()
	tx := kvtx.New(kv)
	tx.PutHeader("a", []byte("1"), 0, nats.Header{"Test-Next": []string{"42"}})
	tx.Put("b", []byte("1"), 0)
	if _, err := tx.Commit(ctx, nc); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "KV_hdr")
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "$KV.hdr.a")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Test-Next"); got != "42" || m.Sequence != tx.Revision("a") {
		t.Fatalf("header %q at %d, want 42 at %d", got, m.Sequence, tx.Revision("a"))
	}
}

// Transactions committed through groups (two: two processes) land each
// once, with their revisions, whether they share a batch, wait for the
// next because they write a key of it, fail at once as stale, or fail a
// batch because another group wrote a key first.
func TestGroup(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	kv := bucket(t, js, "group")
	ctx := context.Background()
	groups := []*kvtx.Group{kvtx.NewGroup(kv, nc), kvtx.NewGroup(kv, nc)}
	const workers, each = 8, 20
	read := func(key string) (int, uint64, error) {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, err
		}
		n, _ := strconv.Atoi(string(e.Value()))
		return n, e.Revision(), nil
	}
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := groups[w%2]
			own := "own." + strconv.Itoa(w)
			for i := 0; i < each; {
				n, r, err := read(own)
				if err != nil {
					t.Error(err)
					return
				}
				total, tr, err := read("total")
				if err != nil {
					t.Error(err)
					return
				}
				tx := kvtx.New(kv)
				tx.Put(own, []byte(strconv.Itoa(n+1)), r)
				if i%2 == 0 { // every other one also counts in the shared key
					tx.Put("total", []byte(strconv.Itoa(total+1)), tr)
				}
				err = g.Commit(ctx, tx)
				switch {
				case err == nil:
					i++
					if _, got, err := read(own); err != nil || got != tx.Revision(own) {
						t.Errorf("%s at %d, the transaction says %d (%v)", own, got, tx.Revision(own), err)
						return
					}
				case errs.Is(errs.Conflict, err):
					conflicts.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		if n, _, err := read("own." + strconv.Itoa(w)); err != nil || n != each {
			t.Fatalf("own.%d is %d (%v), want %d", w, n, err, each)
		}
	}
	if n, _, err := read("total"); err != nil || n != workers*each/2 {
		t.Fatalf("total %d (%v), want %d", n, err, workers*each/2)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}
