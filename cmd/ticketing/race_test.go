package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// TestRaceForSeatsSurvivesKill9 races thousands of buyers through the edge's
// HTTP API and leaf node for a few hundred seats and a GA zone, checks that
// no seat went to two holds and the zone is not oversold, confirms some
// holds, kills the core process with SIGKILL, restarts it, and checks that
// every answer given is still true.
func TestRaceForSeatsSurvivesKill9(t *testing.T) {
	cores := newCores(t, 1)
	c := cores[0]
	c.start()
	c.waitReady(60 * time.Second)
	e := startEdge(t, cores)
	a := newAPI(t, e).signIn(testBuyer)
	const gaCap = 200
	seats := a.createEvent("race", 300, gaCap, nil)

	const buyers = 3000
	type win struct {
		holdAnswer
		key  string
		body map[string]any
	}
	var (
		mu        sync.Mutex
		wins      []win
		conflicts int
		wg        sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range buyers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			body := map[string]any{}
			if i%3 == 0 {
				body["zone"], body["quantity"] = "ga", 1+rng.IntN(4)
			} else {
				n := 1 + rng.IntN(3)
				pick := map[string]bool{}
				for len(pick) < n {
					pick[seats[rng.IntN(len(seats))]] = true
				}
				var list []string
				for s := range pick {
					list = append(list, s)
				}
				body["seats"] = list
			}
			<-start
			var h holdAnswer
			key := fmt.Sprintf("buyer-%d", i)
			code, err := a.do("POST", "/v1/events/race/holds", map[string]string{"Idempotency-Key": key}, body, &h)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("buyer %d: %v", i, err)
			case code == 201:
				wins = append(wins, win{h, key, body})
			case code == 409 && h.Error != nil && (h.Error.Reason == inventory.ReasonSeatsUnavailable || h.Error.Reason == inventory.ReasonSoldOut || h.Error.Reason == inventory.ReasonInsufficient):
				conflicts++
			default:
				t.Errorf("buyer %d: HTTP %d %+v", i, code, h.Error)
			}
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d buyers: %d holds, %d refused", buyers, len(wins), conflicts)

	// What the answers promise: no seat twice, GA within capacity.
	owner := map[string]string{}
	gaHeld := 0
	for _, w := range wins {
		for _, s := range w.Seats {
			if prev, dup := owner[s]; dup {
				t.Fatalf("seat %s was given to %s and %s", s, prev, w.HoldID)
			}
			owner[s] = w.HoldID
		}
		if w.Zone == "ga" {
			gaHeld += w.Quantity
		}
	}
	if gaHeld > gaCap {
		t.Fatalf("GA holds acknowledged for %d > capacity %d", gaHeld, gaCap)
	}

	// Sell every third hold (the orders saga will do this; here, a core
	// connection does).
	inv := &natsapi.Client{NC: c.conn(), Timeout: 10 * time.Second}
	sold := map[string]bool{}
	gaSold := 0
	for i, w := range wins {
		if i%3 != 0 {
			continue
		}
		if _, err := inv.Confirm(context.Background(), inventory.ConfirmRequest{HoldID: w.HoldID, OrderID: "order-" + w.HoldID}); err != nil {
			t.Fatalf("confirm %s: %v", w.HoldID, err)
		}
		sold[w.HoldID] = true
		if w.Zone == "ga" {
			gaSold += w.Quantity
		}
	}

	check := func(when string) {
		t.Helper()
		av, err := a.availability("race")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		for _, s := range seats {
			want := "free"
			if id, ok := owner[s]; ok {
				want = "held"
				if sold[id] {
					want = "sold"
				}
			}
			if av.Seats[s] != want {
				t.Fatalf("%s: seat %s is %q, want %q", when, s, av.Seats[s], want)
			}
		}
		for _, z := range av.Zones {
			if z.Held+z.Sold > z.Capacity {
				t.Fatalf("%s: zone %s oversold: %d held + %d sold > %d", when, z.ID, z.Held, z.Sold, z.Capacity)
			}
			if z.ID == "ga" && (z.Held != gaHeld-gaSold || z.Sold != gaSold) {
				t.Fatalf("%s: GA held %d sold %d, answers say %d and %d", when, z.Held, z.Sold, gaHeld-gaSold, gaSold)
			}
		}
	}
	check("before the kill")

	c.kill9()
	c.start()
	c.waitReady(60 * time.Second)
	eventually.Nil(t, 30*time.Second, func() error {
		_, err := a.availability("race")
		return err
	})
	check("after kill -9 and restart")

	// Every hold still answers to its account, with its status.
	for _, w := range wins {
		var h holdAnswer
		code, err := a.do("GET", "/v1/holds/"+w.HoldID, nil, nil, &h)
		want := "held"
		if sold[w.HoldID] {
			want = "sold"
		}
		if err != nil || code != 200 || h.Status != want {
			t.Fatalf("hold %s after restart: HTTP %d %v status %q, want %q", w.HoldID, code, err, h.Status, want)
		}
	}
	// And idempotent replays give the first answers, not new holds.
	for _, w := range wins[:min(len(wins), 50)] {
		var again holdAnswer
		code, err := a.do("POST", "/v1/events/race/holds", map[string]string{"Idempotency-Key": w.key}, w.body, &again)
		if err != nil || code != 201 || again.HoldID != w.HoldID || !again.ExpiresAt.Equal(w.ExpiresAt) {
			t.Fatalf("replay of %s: HTTP %d %v, hold %s, want %s", w.key, code, err, again.HoldID, w.HoldID)
		}
	}
}
