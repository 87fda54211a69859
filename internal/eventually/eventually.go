// Package eventually is the one way tests wait for a condition: poll it
// with a deadline, and fail the test with the condition's last answer when
// the deadline passes. Tests never sleep a fixed time to wait for
// something to happen.
package eventually

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Every is how often a condition is polled.
const Every = 10 * time.Millisecond

// Timeout is the deadline of True and Nil when the test gives none.
const Timeout = 10 * time.Second

// Nil polls f until it returns nil, failing t (Fatal) with f's last error
// when timeout passes or the test's context ends. timeout 0 means Timeout.
func Nil(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Wait(contextOf(t), timeout, f); err != nil {
		t.Fatal(err)
	}
}

// True polls cond until it holds, failing t (Fatal) with what when timeout
// passes or the test's context ends. timeout 0 means Timeout.
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := Wait(contextOf(t), timeout, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("still not %s", what)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Wait polls f until it returns nil and returns nil, or returns an error
// naming f's last error once timeout passes or ctx ends. timeout 0 means
// Timeout. It is for helpers that report failures themselves (from
// goroutines other than the test's, say).
func Wait(ctx context.Context, timeout time.Duration, f func() error) error {
	if timeout <= 0 {
		timeout = Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(Every)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done within %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}

func contextOf(t testing.TB) context.Context {
	if c, ok := t.(interface{ Context() context.Context }); ok {
		return c.Context()
	}
	return context.Background()
}
