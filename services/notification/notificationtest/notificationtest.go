// Package notificationtest is the contract suite of notification.Ledger:
// the embedded natskv ledger and the PostgreSQL one both run it.
package notificationtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/notification"
)

// Run runs the suite; newLedger returns a ledger for a subtest (it may be
// shared: the suite uses fresh keys).
func Run(t *testing.T, newLedger func(t *testing.T) notification.Ledger) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, notification.Ledger)
	}{
		{"BeginFinish", testBeginFinish},
		{"BeginAgainBeforeFinish", testBeginAgain},
		{"ConcurrentBegins", testConcurrentBegins},
		{"BadKey", testBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newLedger(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func key() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return notification.Key(hex.EncodeToString(b[:]), "email", "ada@example.com")
}

// A delivery begins, finishes, and is done from then on; another key is
// not.
func testBeginFinish(t *testing.T, l notification.Ledger) {
	c, k := ctx(t), key()
	if done, err := l.Begin(c, k); err != nil || done {
		t.Fatalf("first Begin = %v, %v", done, err)
	}
	if err := l.Finish(c, k); err != nil {
		t.Fatal(err)
	}
	if err := l.Finish(c, k); err != nil {
		t.Fatalf("Finish again: %v", err)
	}
	if done, err := l.Begin(c, k); err != nil || !done {
		t.Fatalf("Begin after Finish = %v, %v", done, err)
	}
	if done, err := l.Begin(c, key()); err != nil || done {
		t.Fatalf("another key: %v, %v", done, err)
	}
}

// A delivery begun and never finished (its sender died) begins again.
func testBeginAgain(t *testing.T, l notification.Ledger) {
	c, k := ctx(t), key()
	for i := range 2 {
		if done, err := l.Begin(c, k); err != nil || done {
			t.Fatalf("Begin %d = %v, %v", i, done, err)
		}
	}
	if err := l.Finish(c, k); err != nil {
		t.Fatal(err)
	}
	if done, _ := l.Begin(c, k); !done {
		t.Fatal("not done after Finish")
	}
}

// Concurrent begins and finishes of one key never lose the finish.
func testConcurrentBegins(t *testing.T, l notification.Ledger) {
	c, k := ctx(t), key()
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if _, err := l.Begin(c, k); err != nil {
				errc <- err
			}
			if i%2 == 0 {
				if err := l.Finish(c, k); err != nil {
					errc <- err
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if done, err := l.Begin(c, k); err != nil || !done {
		t.Fatalf("after concurrent finishes: %v, %v", done, err)
	}
}

func testBadKey(t *testing.T, l notification.Ledger) {
	c := ctx(t)
	for _, k := range []string{"", "x", "ABCDEF" + key()[6:], key() + "0"} {
		if _, err := l.Begin(c, k); !errs.Is(errs.Invalid, err) {
			t.Errorf("Begin(%q): %v", k, err)
		}
		if err := l.Finish(c, k); !errs.Is(errs.Invalid, err) {
			t.Errorf("Finish(%q): %v", k, err)
		}
	}
}
