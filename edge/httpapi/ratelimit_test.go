package httpapi

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/internal/errs"
)

// TestHoldRateLimit: hold requests are limited per client address; every
// answer carries the RateLimit header fields, a refusal is a documented 429
// with Retry-After, and a refused request never reaches the inventory.
func TestHoldRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := memory.New(memory.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *Config, d *Deps) {
		c.HoldLimit = ratelimit.PerSecond(1, 2)
		d.Limiter = lim
	})
	for i := range 2 {
		r := hold(t, e, fmt.Sprint("rl-", i), `{"zone":"floor","quantity":1}`)
		if r.status != 201 || r.header.Get("RateLimit-Limit") != "2" || r.header.Get("RateLimit-Remaining") != fmt.Sprint(1-i) {
			t.Fatalf("hold %d: %s %v", i, r, r.header)
		}
	}
	calls := len(e.inv.calls)
	r := hold(t, e, "rl-2", `{"zone":"floor","quantity":1}`)
	wantError(t, r, 429, "rate_limited", "rate_limited")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	if len(e.inv.calls) != calls {
		t.Fatalf("a refused request reached the inventory: %v", e.inv.calls[calls:])
	}
	now = now.Add(time.Second)
	if r := hold(t, e, "rl-3", `{"zone":"floor","quantity":1}`); r.status != 201 {
		t.Fatalf("after the retry delay: %s", r)
	}
}

type brokenLimiter struct{}

func (brokenLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errs.E("ratelimit", errs.Unavailable, "redis is down")
}

func (brokenLimiter) AllowN(context.Context, string, ratelimit.Limit, int) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errs.E("ratelimit", errs.Unavailable, "redis is down")
}

// TestHoldRateLimitFailsOpen: a limiter that cannot answer does not stop
// sales.
func TestHoldRateLimitFailsOpen(t *testing.T) {
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Limiter = brokenLimiter{} })
	if r := hold(t, e, "open-1", `{"zone":"floor","quantity":1}`); r.status != 201 {
		t.Fatalf("with the limiter down: %s", r)
	}
}

// Quotes and orders are limited per caller (every quote is stored): a
// refusal is a 429 that never reaches the orders service, and another
// caller is not held back.
func TestCheckoutRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := memory.New(memory.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *Config, d *Deps) {
		c.CheckoutLimit = ratelimit.PerSecond(1, 2)
		c.HoldLimit = ratelimit.PerSecond(100, 100)
		d.Limiter = lim
	})
	h := holdAs(t, e, buyer, "crl-h", `{"seats":["101-A-1"]}`)
	for i := range 2 {
		if r := e.callAs(t, buyer, "POST", quotesPath, cartOf(h)); r.status != 201 {
			t.Fatalf("quote %d: %s", i, r)
		}
	}
	e.orders.mu.Lock()
	calls := len(e.orders.calls)
	e.orders.mu.Unlock()
	wantError(t, e.callAs(t, buyer, "POST", quotesPath, cartOf(h)), 429, "rate_limited", "rate_limited")
	wantError(t, placeOrder(t, e, buyer, "crl-o", cartOf(h)), 429, "rate_limited", "rate_limited")
	e.orders.mu.Lock()
	if n := len(e.orders.calls); n != calls {
		t.Fatalf("refused requests reached the orders service %d times", n-calls)
	}
	e.orders.mu.Unlock()
	other := holdAs(t, e, otherBuyer, "crl-r", `{"seats":["101-A-2"]}`)
	if r := e.callAs(t, otherBuyer, "POST", quotesPath, cartOf(other)); r.status != 201 {
		t.Fatalf("another caller's quote: %s", r)
	}
	now = now.Add(time.Second)
	wantOrder(t, placeOrder(t, e, buyer, "crl-o", cartOf(h)), 201)
}
