package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// TestHoldExpiry: a hold expires on time without anyone asking, the expiry
// is durable (it survives kill -9), and a hold cannot be confirmed after it
// expired; one confirmed in time stays sold.
func TestHoldExpiry(t *testing.T) {
	cores := newCores(t, 1)
	c := cores[0]
	c.start()
	c.waitReady(60 * time.Second)
	a := newAPI(t, startEdge(t, cores)).signIn(testBuyer)
	a.createEvent("exp", 20, 10, nil)
	inv := &natsapi.Client{NC: c.conn(), Timeout: 10 * time.Second}
	ctx := context.Background()

	hold := func(key string, body map[string]any) holdAnswer {
		t.Helper()
		var h holdAnswer
		code, err := a.do("POST", "/v1/events/exp/holds", map[string]string{"Idempotency-Key": key}, body, &h)
		if err != nil || code != 201 {
			t.Fatalf("hold %s: HTTP %d %v %+v", key, code, err, h.Error)
		}
		return h
	}
	short := hold("short", map[string]any{"seats": []string{"s0-r0-1"}, "ttl_seconds": 1})
	if d := time.Until(short.ExpiresAt); d > 2*time.Second || d < -time.Second {
		t.Fatalf("expires_at %v is not about a second away", short.ExpiresAt)
	}
	kept := hold("kept", map[string]any{"zone": "ga", "quantity": 2, "ttl_seconds": 1})
	if _, err := inv.Confirm(ctx, inventory.ConfirmRequest{HoldID: kept.HoldID, OrderID: "o-kept"}); err != nil {
		t.Fatalf("confirm in time: %v", err)
	}

	// Nobody touches the partition: the owner's timer expires the hold.
	eventually.Nil(t, 15*time.Second, func() error {
		var h holdAnswer
		code, err := a.do("GET", "/v1/holds/"+short.HoldID, nil, nil, &h)
		if err != nil || code != 200 || h.Status != "expired" {
			return fmt.Errorf("hold: HTTP %d %v status %q", code, err, h.Status)
		}
		return nil
	})
	if av, err := a.availability("exp"); err != nil || av.Seats["s0-r0-1"] != "free" {
		t.Fatalf("seat of the expired hold: %q %v", av.Seats["s0-r0-1"], err)
	}
	_, err := inv.Confirm(ctx, inventory.ConfirmRequest{HoldID: short.HoldID, OrderID: "o-late"})
	if !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != inventory.ReasonHoldExpired {
		t.Fatalf("confirm after expiry: %v, want conflict %s", err, inventory.ReasonHoldExpired)
	}

	c.kill9()
	c.start()
	c.waitReady(60 * time.Second)
	check := func() error {
		var h holdAnswer
		code, err := a.do("GET", "/v1/holds/"+short.HoldID, nil, nil, &h)
		if err != nil || code != 200 || h.Status != "expired" {
			return fmt.Errorf("expired hold after restart: HTTP %d %v status %q", code, err, h.Status)
		}
		code, err = a.do("GET", "/v1/holds/"+kept.HoldID, nil, nil, &h)
		if err != nil || code != 200 || h.Status != "sold" {
			return fmt.Errorf("sold hold after restart: HTTP %d %v status %q", code, err, h.Status)
		}
		return nil
	}
	eventually.Nil(t, 30*time.Second, check)
	av, err := a.availability("exp")
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range av.Zones {
		if z.ID == "ga" && (z.Sold != 2 || z.Held != 0) {
			t.Fatalf("GA after restart: held %d sold %d, want 0 and 2", z.Held, z.Sold)
		}
	}
}

// TestIdempotencyOverHTTP: replays return the stored answer, another body
// under the same key is refused with 422, and concurrent requests with one
// key never make two holds.
func TestIdempotencyOverHTTP(t *testing.T) {
	cores := newCores(t, 1)
	cores[0].start()
	cores[0].waitReady(60 * time.Second)
	a := newAPI(t, startEdge(t, cores)).signIn(testBuyer)
	a.createEvent("idem", 40, 100, nil)
	post := func(key string, body map[string]any) (int, holdAnswer) {
		var h holdAnswer
		code, err := a.do("POST", "/v1/events/idem/holds", map[string]string{"Idempotency-Key": key}, body, &h)
		if err != nil {
			t.Fatal(err)
		}
		return code, h
	}
	body := map[string]any{"seats": []string{"s0-r0-1", "s0-r0-2"}}
	code, first := post("k-1", body)
	if code != 201 {
		t.Fatalf("first: %d", code)
	}
	// Seat order and formatting do not make another request.
	code, again := post("k-1", map[string]any{"seats": []string{"s0-r0-2", "s0-r0-1"}})
	if code != 201 || again.HoldID != first.HoldID || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("replay: %d %+v, want %+v", code, again, first)
	}
	code, other := post("k-1", map[string]any{"seats": []string{"s0-r0-3"}})
	if code != 422 || other.Error == nil || other.Error.Code != "idempotency_key_mismatch" {
		t.Fatalf("same key, other body: %d %+v", code, other.Error)
	}
	code, missing := post("", body)
	if code != 400 || missing.Error == nil || missing.Error.Reason != "idempotency_key_missing" {
		t.Fatalf("no key: %d %+v", code, missing.Error)
	}
	// A refusal is replayed too, even once the seat is free again.
	code, refused := post("k-2", map[string]any{"seats": []string{"s0-r0-1"}})
	if code != 409 || refused.Error.Reason != inventory.ReasonSeatsUnavailable {
		t.Fatalf("taken seat: %d %+v", code, refused.Error)
	}
	// Keys are scoped to the caller: another account's request under the
	// same key is its own (the seats are taken), not the buyer's replay.
	admin := a.asAdmin()
	var h holdAnswer
	if code, err := admin.do("POST", "/v1/events/idem/holds", map[string]string{"Idempotency-Key": "k-1"}, body, &h); err != nil ||
		code != 409 || h.Error == nil || h.Error.Reason != inventory.ReasonSeatsUnavailable {
		t.Fatalf("another account, the buyer's key: %d %v %+v, want 409 %s", code, err, h.Error, inventory.ReasonSeatsUnavailable)
	}
	// Holds answer their account only: nobody else may read or release
	// them, and they are not told the hold exists.
	for _, who := range []struct {
		name string
		c    *api
		want int
	}{{"another account", admin, 404}, {"an anonymous caller", a.anonymous(), 401}} {
		for _, method := range []string{"GET", "DELETE"} {
			if code, err := who.c.do(method, "/v1/holds/"+first.HoldID, nil, nil, nil); err != nil || code != who.want {
				t.Fatalf("%s by %s: HTTP %d %v, want %d", method, who.name, code, err, who.want)
			}
		}
	}
	if code, err := a.do("DELETE", "/v1/holds/"+first.HoldID, nil, nil, nil); err != nil || code != 200 {
		t.Fatalf("release: %d %v", code, err)
	}
	if code, again := post("k-2", map[string]any{"seats": []string{"s0-r0-1"}}); code != 409 || again.Error.Reason != inventory.ReasonSeatsUnavailable {
		t.Fatalf("replayed refusal: %d %+v", code, again.Error)
	}

	// Fifty concurrent requests with one key: one hold, and every answer is
	// it or "still in flight".
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	inFlight := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, h := post("k-burst", map[string]any{"zone": "ga", "quantity": 1})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case code == 201:
				ids[h.HoldID]++
			case code == 409 && h.Error != nil && h.Error.Code == "idempotency_key_in_flight":
				inFlight++
			default:
				t.Errorf("burst: HTTP %d %+v", code, h.Error)
			}
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("one key made holds %v", ids)
	}
	av, err := a.availability("idem")
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range av.Zones {
		if z.ID == "ga" && z.Held != 1 {
			t.Fatalf("GA held %d after the burst, want 1", z.Held)
		}
	}
	t.Logf("burst: %v, %d answered in flight", ids, inFlight)
}

// TestHoldRateLimitInRedis: an edge pointed at Redis keeps its per-client
// hold limits there: beyond the burst, a 429 with Retry-After.
func TestHoldRateLimitInRedis(t *testing.T) {
	addr := testservers.RedisAddr(t)
	cores := newCores(t, 1)
	cores[0].start()
	cores[0].waitReady(60 * time.Second)
	a := newAPI(t, startEdgeWith(t, cores, edge.RateLimitConfig{RedisAddr: addr})).signIn(testBuyer)
	a.createEvent("rl", 20, 1000, nil)
	statuses := map[int]int{}
	for i := range 30 {
		var h holdAnswer
		code, err := a.do("POST", "/v1/events/rl/holds", map[string]string{"Idempotency-Key": fmt.Sprintf("rl-%d-%d", time.Now().UnixNano(), i)},
			map[string]any{"zone": "ga", "quantity": 1}, &h)
		if err != nil {
			t.Fatal(err)
		}
		statuses[code]++
		if code == 429 && (h.Error == nil || h.Error.Code != "rate_limited") {
			t.Fatalf("429 body: %+v", h.Error)
		}
	}
	// The default limit is 10 a second with bursts of 20: thirty quick
	// requests cannot all pass, and at least the burst does.
	if statuses[429] == 0 || statuses[201] < 20 {
		t.Fatalf("statuses %v", statuses)
	}
}
