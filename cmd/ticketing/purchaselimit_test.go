package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/tlsconf"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/pricing"
)

// The purchase limit holds across channels: one account, signed in at two
// edges of the same core, orders its holds through both at once, and the
// orders that count never pass the event's limit. Each edge is its own
// process; the decision is the orders store's atomic write.
func TestPurchaseLimitAcrossTwoEdges(t *testing.T) {
	if testing.Short() {
		t.Skip("a multi-process test")
	}
	const limit, holds = 4, 12
	core := newCores(t, 1, "--purchase-limit", fmt.Sprint(limit))[0]
	core.start()
	core.waitReady(120 * time.Second)
	tc, err := tlsconf.Client(tlsconf.Files{CA: testSecrets.CA()})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 32}}
	t.Cleanup(hc.CloseIdleConnections)
	var buyers []*api
	for i := range 2 {
		addr := freeAddr(t)
		edge := startProc(t, "edge", nil, "edge", "--name", fmt.Sprintf("edge-limit-%d", i), "--http", addr,
			"--hubs", "nats-leaf://"+core.leafAddr, "--secrets", testSecrets.Dir, "--no-limits", "--log-format", "text")
		waitReadyz(t, edge.cmd, "https://"+addr+"/readyz", testSecrets)
		// A session of its own at each edge: two devices, two channels.
		buyers = append(buyers, (&api{t: t, base: "https://" + addr, hc: hc}).signIn(testBuyer))
	}
	const ev = "limit-two-edges"
	buyers[0].createEvent(ev, 0, 100, nil)
	rules := pricing.Rules{Event: ev, Version: 1, Currency: "USD", Zones: map[string]int64{"std": 5000, "ga": 3000},
		OnSaleAt: time.Now().Add(-time.Hour)}
	if code, err := buyers[0].asAdmin().do("PUT", "/v1/admin/events/"+ev+"/prices", nil, rules, nil); err != nil || code != 200 {
		t.Fatalf("prices: HTTP %d %v", code, err)
	}
	// More holds than the limit allows, one ticket each.
	ids := make([]string, holds)
	for i := range ids {
		var h holdAnswer
		code, err := buyers[i%2].do("POST", "/v1/events/"+ev+"/holds", map[string]string{"Idempotency-Key": fmt.Sprintf("limit-hold-%d", i)},
			map[string]any{"zone": "ga", "quantity": 1}, &h)
		if err != nil || code != 201 {
			t.Fatalf("hold %d: HTTP %d %v", i, code, err)
		}
		ids[i] = h.HoldID
	}
	// Every hold ordered at once, half through each edge.
	type answer struct {
		code   int
		reason string
		err    error
	}
	answers := make([]answer, holds)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var raw json.RawMessage
			code, err := buyers[i%2].do("POST", "/v1/orders", map[string]string{"Idempotency-Key": fmt.Sprintf("limit-order-%d", i)},
				map[string]any{"holds": []string{id}}, &raw)
			answers[i] = answer{code, strings.TrimSpace(reasonOf(raw)), err}
		}()
	}
	close(start)
	wg.Wait()
	created, refused := 0, 0
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("order %d: %v", i, a.err)
		case a.code == 201:
			created++
		case a.code == 409 && a.reason == orders.ReasonPurchaseLimit:
			refused++
		default:
			t.Errorf("order %d: HTTP %d %s", i, a.code, a.reason)
		}
	}
	if created != limit || refused != holds-limit {
		t.Fatalf("%d orders created and %d refused for the limit, want %d and %d", created, refused, limit, holds-limit)
	}
	// The account's orders, read at either edge, agree.
	for i, b := range buyers {
		var page struct {
			Orders []orders.View `json:"orders"`
		}
		if code, err := b.do("GET", "/v1/me/orders?limit=100", nil, nil, &page); err != nil || code != 200 {
			t.Fatalf("edge %d: my orders: HTTP %d %v", i, code, err)
		}
		tickets := 0
		for _, o := range page.Orders {
			if o.Event == ev && o.State.Counts() {
				tickets += o.Tickets
			}
		}
		if tickets != limit {
			t.Errorf("edge %d: the account's open orders hold %d tickets, want %d", i, tickets, limit)
		}
	}
}
