package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/owner"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
	invapi "github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/orders"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/process"
	"github.com/ticketing/ticketing/services/payment/psp"
	"github.com/ticketing/ticketing/services/pricing"
)

// shop is a core with the checkout: the payment service inside it, the
// gateway simulator (its own HTTP server) behind it.
type shop struct {
	t       *testing.T
	core    *core.Core
	sim     *psp.Server
	orders  *ordersapi.Client
	inv     *invapi.Client
	payURL  string
	held    atomic.Int64
	capture func() int64 // the simulator's captured total
}

const (
	shopEvent = "shop-night"
	shopVenue = "shop-hall"
	// shopTonight starts within the hour: its tickets admit now.
	shopTonight = "shop-tonight"
)

func shopData(limit int) *catalog.Dataset {
	now := time.Now()
	v := catalog.Venue{ID: shopVenue, Name: "Shop Hall", City: "Springfield",
		Zones: []catalog.Zone{
			{ID: "floor", Name: "Floor", Kind: catalog.GA, Capacity: 5000, PriceCents: 5000, Currency: "USD"},
			{ID: "stalls", Name: "Stalls", Kind: catalog.Reserved, PriceCents: 8000, Currency: "USD"},
		},
		Sections: []catalog.Section{{ID: "s", Name: "Stalls", Rows: []catalog.Row{{ID: "A", Seats: 20, Zone: "stalls"}}}},
	}
	e := catalog.Event{ID: shopEvent, Name: "Shop Night", VenueID: shopVenue, OrganizerID: "org-shop",
		StartsAt: now.Add(30 * 24 * time.Hour), OnSaleAt: now.Add(-time.Hour), PurchaseLimit: limit}
	tonight := catalog.Event{ID: shopTonight, Name: "Shop Tonight", VenueID: shopVenue, OrganizerID: "org-shop",
		StartsAt: now.Add(time.Hour), OnSaleAt: now.Add(-time.Hour), PurchaseLimit: limit}
	return &catalog.Dataset{Venues: []catalog.Venue{v}, Events: []catalog.Event{e, tonight}}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func startShop(t *testing.T, limit int) *shop {
	t.Helper()
	return startShopLogging(t, limit, io.Discard)
}

// startShopLogging starts a shop whose core and simulator log to w.
func startShopLogging(t *testing.T, limit int, w io.Writer) *shop {
	t.Helper()
	return startShopWith(t, limit, w, nil)
}

// startShopWith starts a shop whose core's config change makes first.
func startShopWith(t *testing.T, limit int, w io.Writer, change func(*core.Config)) *shop {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	payAddr := freePort(t)
	simCfg := psp.Config{DataDir: t.TempDir(), SecretKey: "sk_test_shop", WebhookSecrets: []string{"whsec_shop"},
		WebhookURLs: []string{"http://" + payAddr + "/v1/webhooks/gateway"}, Log: quiet}
	simCfg.Defaults()
	simCfg.Webhook.RetryInitial = 100 * time.Millisecond
	simCfg.Webhook.RetryMax = time.Second
	sim, err := psp.New(simCfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(func() { ts.Close(); _ = sim.Close() })

	sup, err := supervisor.New(supervisor.Config{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	limits := inventory.DefaultLimits()
	limits.MinTTL = time.Second
	cfg := core.Config{
		Node:       node.Config{Name: "shop", DataDir: t.TempDir(), ClientAddr: "-", LeafAddr: "127.0.0.1:0"},
		AdminToken: "core-test-admin-token-0123456789",
		Demo:       shopData(limit),
		Owner:      owner.Config{Limits: limits},
		Checkout: core.CheckoutConfig{SagaTick: 50 * time.Millisecond, RepriceTick: 100 * time.Millisecond, Payment: &process.Config{
			HTTPAddr: payAddr, Origins: []string{"http://localhost:8080"}, GenerateKeyring: true, DataDir: t.TempDir(),
			Gateway: gateway.Config{BaseURL: ts.URL, SecretKey: "sk_test_shop", WebhookSecret: "whsec_shop"},
		}},
	}
	if change != nil {
		change(&cfg)
	}
	c, err := core.Start(ctx, cfg, sup, quiet, prometheus.NewRegistry())
	if err != nil {
		_ = sup.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sup.Shutdown() })
	s := &shop{t: t, core: c, sim: sim, orders: &ordersapi.Client{NC: c.NC},
		inv: &invapi.Client{NC: c.NC}, payURL: "http://" + payAddr}
	s.capture = func() int64 {
		var n int64
		for _, in := range sim.Records().Intents {
			n += in.AmountReceived - in.AmountRefunded
		}
		return n
	}
	// The owner of the event's partition is up once a hold answers.
	eventually.Nil(t, 30*time.Second, func() error {
		_, err := s.inv.Availability(context.Background(), catalog.PartitionKey(shopEvent, 0))
		return err
	})
	return s
}

// hold holds GA units (zone "floor") or seats for account.
func (s *shop) hold(account string, quantity int, seats ...string) inventory.Hold {
	s.t.Helper()
	return s.holdTTL(account, 600, quantity, seats...)
}

func (s *shop) holdTTL(account string, ttl int, quantity int, seats ...string) inventory.Hold {
	s.t.Helper()
	r := inventory.HoldRequest{Holder: account, TTLSeconds: ttl,
		IdempotencyKey: fmt.Sprintf("%s:hold-%d", account, s.held.Add(1)), Fingerprint: fmt.Sprint(quantity, seats)}
	if len(seats) > 0 {
		r.Seats = seats
	} else {
		r.Zone, r.Quantity = "floor", quantity
	}
	h, err := s.inv.Hold(context.Background(), catalog.PartitionKey(shopEvent, 0), r)
	if err != nil {
		s.t.Fatalf("hold for %s: %v", account, err)
	}
	return h
}

func (s *shop) order(account string, voucher string, holds ...inventory.Hold) (orders.View, error) {
	r := orders.CreateRequest{QuoteRequest: orders.QuoteRequest{Account: account, Voucher: voucher},
		IdemKey: fmt.Sprintf("%s:order-%d", account, s.held.Add(1)), Fingerprint: "fp", Channel: "web"}
	for _, h := range holds {
		r.Holds = append(r.Holds, h.HoldID)
	}
	out, err := s.orders.Create(context.Background(), r)
	return out.Order, err
}

func (s *shop) mustOrder(account string, holds ...inventory.Hold) orders.View {
	s.t.Helper()
	o, err := s.order(account, "", holds...)
	if err != nil {
		s.t.Fatalf("order for %s: %v", account, err)
	}
	return o
}

// card tokenizes a card at the payment service's HTTP endpoint, as the
// card page does.
func (s *shop) card(number string) string {
	s.t.Helper()
	body := fmt.Sprintf(`{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}`, number, time.Now().Year()+3)
	resp, err := http.Post(s.payURL+"/v1/cards", "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusCreated {
		s.t.Fatalf("tokenize: HTTP %d %v", resp.StatusCode, err)
	}
	return tok.ID
}

func (s *shop) pay(account, id, number string) (orders.View, error) {
	return s.orders.Pay(context.Background(), ordersapi.PayRequest{Account: account, ID: id, Method: s.card(number),
		ReturnURL: "http://localhost:8080/v1/orders/" + id + "/return"})
}

func (s *shop) get(account, id string) orders.View {
	s.t.Helper()
	o, err := s.orders.Get(context.Background(), ordersapi.OrderRequest{Account: account, ID: id})
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

func (s *shop) waitState(account, id string, want orders.State) orders.View {
	s.t.Helper()
	var o orders.View
	eventually.True(s.t, 30*time.Second, fmt.Sprintf("order %s %s", id, want), func() bool {
		o = s.get(account, id)
		// Confirmed is reached by a fulfilled order too: its tickets are
		// issued at once.
		return o.State == want || want == orders.Confirmed && o.State.SeatsSold()
	})
	return o
}

// challenge answers the simulator's 3-D Secure page as a browser would:
// the form's button posted, the redirect to the return URL not followed.
func (s *shop) challenge(redirect, result string) {
	s.t.Helper()
	resp, err := http.Get(redirect)
	if err != nil {
		s.t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`action="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		s.t.Fatalf("no form on the challenge page: %s", page)
	}
	u, _ := url.Parse(redirect)
	target := u.Scheme + "://" + u.Host + string(m[1])
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noFollow.Post(target, "application/x-www-form-urlencoded", bytes.NewBufferString("result="+result))
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		s.t.Fatalf("challenge %s: HTTP %d", result, resp.StatusCode)
	}
}

// ledger is the payment service's record of an order.
func (s *shop) ledger(id string) payment.Payment {
	s.t.Helper()
	p, err := s.core.Payment.Ledger.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *shop) holdStatus(account, id string) inventory.Status {
	s.t.Helper()
	h, err := s.core.Checkout.Holds.Get(context.Background(), inventory.HoldRef{HoldID: id, Holder: account})
	if err != nil {
		s.t.Fatal(err)
	}
	return h.Status
}

func captures(p payment.Payment) int {
	n := 0
	for _, e := range p.Entries {
		if e.Kind == payment.EntryCapture {
			n++
		}
	}
	return n
}

func TestCheckoutFrictionlessWithVoucher(t *testing.T) {
	s := startShop(t, 0)
	ctx := context.Background()
	if err := s.core.Checkout.Prices.Store.PutVoucher(ctx, pricing.Voucher{Code: "TENOFF", PercentBP: 1000}); err != nil {
		t.Fatal(err)
	}
	h := s.hold("u_alice", 2)
	q, err := s.orders.Quote(ctx, orders.QuoteRequest{Account: "u_alice", Holds: []string{h.HoldID}, Voucher: "tenoff"})
	if err != nil || q.Total.Amount != 9000 || q.Discount.Amount != 1000 {
		t.Fatalf("quote: %+v %v", q, err)
	}
	o, err := s.order("u_alice", "tenoff", h)
	if err != nil || o.State != orders.AwaitingPayment || o.Amounts.Total != 9000 || o.Tickets != 2 {
		t.Fatalf("order: %+v %v", o, err)
	}
	// Another account sees nothing.
	if _, err := s.orders.Get(ctx, ordersapi.OrderRequest{Account: "u_mallory", ID: o.ID}); !errs.Is(errs.NotFound, err) {
		t.Fatalf("another account's read: %v", err)
	}
	if _, err := s.pay("u_mallory", o.ID, "4242424242424242"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("another account's payment: %v", err)
	}
	paid, err := s.pay("u_alice", o.ID, "4242424242424242")
	if err != nil {
		t.Fatal(err)
	}
	if !paid.State.SeatsSold() {
		paid = s.waitState("u_alice", o.ID, orders.Confirmed)
	}
	if paid.Payment.Captured != 9000 || paid.Payment.Last4 != "4242" || paid.Late != "" {
		t.Fatalf("confirmed order: %+v", paid)
	}
	if st := s.holdStatus("u_alice", h.HoldID); st != inventory.Sold {
		t.Fatalf("the hold is %s, not sold", st)
	}
	if p := s.ledger(o.ID); captures(p) != 1 || p.Captured != 9000 {
		t.Fatalf("ledger: %+v", p)
	}
	eventually.True(t, 10*time.Second, "the capture at the gateway", func() bool { return s.capture() == 9000 })
	// Paying again changes nothing.
	if again, err := s.pay("u_alice", o.ID, "4242424242424242"); !errs.Is(errs.Conflict, err) {
		t.Fatalf("a second payment: %+v %v", again.State, err)
	}
	if s.capture() != 9000 || captures(s.ledger(o.ID)) != 1 {
		t.Fatal("a second payment moved money")
	}
	// Its events reach EVENTS: the order's and the payment's.
	eventually.True(t, 10*time.Second, "the order's events in EVENTS", func() bool {
		return countEvents(t, s, "events.order."+o.ID) >= 3 && countEvents(t, s, "events.payment."+o.ID) >= 1
	})
}

func countEvents(t *testing.T, s *shop, subject string) int {
	t.Helper()
	st, err := s.core.JS.Stream(context.Background(), "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return int(info.State.Msgs)
}

func TestCheckoutDeclineThenAnotherCard(t *testing.T) {
	s := startShop(t, 0)
	o := s.mustOrder("u_bob", s.hold("u_bob", 1))
	declined, err := s.pay("u_bob", o.ID, "4000000000009995")
	if err != nil {
		t.Fatal(err)
	}
	if declined.State != orders.AwaitingPayment || declined.Payment.DeclineCode != "insufficient_funds" {
		t.Fatalf("after a decline: %s %+v", declined.State, declined.Payment)
	}
	paid, err := s.pay("u_bob", o.ID, "4242424242424242")
	if err != nil {
		t.Fatal(err)
	}
	if !paid.State.SeatsSold() {
		paid = s.waitState("u_bob", o.ID, orders.Confirmed)
	}
	if paid.Payment.Attempts != 2 || paid.Payment.Captured != 5000 {
		t.Fatalf("paid on the second attempt: %+v", paid.Payment)
	}
	if p := s.ledger(o.ID); captures(p) != 1 {
		t.Fatalf("ledger %+v", p)
	}
}

// The buyer's return page and the gateway's webhook report one 3-D
// Secure payment at once: one capture, one confirmed order.
func TestCheckoutChallengeReturnRacesWebhook(t *testing.T) {
	s := startShop(t, 0)
	if err := s.sim.SetFaults(psp.Faults{Seed: 1, WebhookDuplicate: 1}); err != nil {
		t.Fatal(err)
	}
	o := s.mustOrder("u_carol", s.hold("u_carol", 3))
	ra, err := s.pay("u_carol", o.ID, "4000000000003220")
	if err != nil {
		t.Fatal(err)
	}
	if ra.State != orders.RequiresAction || ra.Payment.RedirectURL == "" {
		t.Fatalf("a challenge card: %s %+v", ra.State, ra.Payment)
	}
	s.challenge(ra.Payment.RedirectURL, "complete")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.orders.Sync(context.Background(), ordersapi.OrderRequest{ID: o.ID})
		}()
	}
	wg.Wait()
	done := s.waitState("u_carol", o.ID, orders.Confirmed)
	if done.Payment.Captured != 15000 {
		t.Fatalf("captured %d", done.Payment.Captured)
	}
	eventually.True(t, 10*time.Second, "duplicated webhooks delivered", func() bool { return s.sim.Records().PendingDeliveries == 0 })
	if p := s.ledger(o.ID); captures(p) != 1 || p.Captured != 15000 {
		t.Fatalf("ledger after the race: %+v", p)
	}
	if s.capture() != 15000 {
		t.Fatalf("the gateway captured %d", s.capture())
	}
}

// A payment that waits for a slow gateway holds up no other buyer's: the
// orders and payment services serve requests concurrently (a NATS micro
// service serves an endpoint one request at a time unless told
// otherwise: every payment then waited for all those before it).
func TestCheckoutSlowGatewayHoldsUpNoOtherPayment(t *testing.T) {
	s := startShop(t, 0)
	const buyers, latency = 4, 3 * time.Second
	placed := make([]orders.View, buyers)
	cards := make([]string, buyers)
	for i := range placed {
		account := fmt.Sprintf("u_slow%d", i)
		placed[i] = s.mustOrder(account, s.hold(account, 1))
		cards[i] = s.card("4242424242424242")
	}
	if err := s.sim.SetFaults(psp.Faults{Seed: 1, Ops: []string{"confirm"}, Slow: 1, SlowLatency: psp.Duration(latency)}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, o := range placed {
		wg.Go(func() {
			v, err := s.orders.Pay(context.Background(), ordersapi.PayRequest{Account: fmt.Sprintf("u_slow%d", i), ID: o.ID, Method: cards[i],
				ReturnURL: "http://localhost:8080/v1/orders/" + o.ID + "/return"})
			if err != nil || !v.State.SeatsSold() {
				t.Errorf("payment %d: %s %v", i, v.State, err)
			}
		})
	}
	wg.Wait()
	// One after another they would take buyers × latency.
	if took := time.Since(start); took > 2*latency {
		t.Fatalf("%d payments, each %v at the gateway, took %v together", buyers, latency, took)
	}
}

// A void the gateway does not answer holds up no other order's expiry:
// the saga steps due orders concurrently (one after another, every
// expiry waited for the stuck void).
func TestCheckoutExpiriesDoNotWaitForAStuckVoid(t *testing.T) {
	s := startShop(t, 0)
	const n = 3
	ids := make([]string, n)
	for i := range ids {
		account := fmt.Sprintf("u_stuck%d", i)
		o := s.mustOrder(account, s.holdTTL(account, 2+i, 1))
		ra, err := s.pay(account, o.ID, "4000000000003220")
		if err != nil || ra.State != orders.RequiresAction {
			t.Fatalf("challenge: %s %v", ra.State, err)
		}
		ids[i] = o.ID
	}
	// Every void is done at the gateway, its answer never comes.
	if err := s.sim.SetFaults(psp.Faults{Seed: 1, Ops: []string{"cancel"}, Timeout: 1, TimeoutHold: psp.Duration(8 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		account := fmt.Sprintf("u_stuck%d", i)
		var o orders.View
		eventually.True(t, 8*time.Second, "order "+id+" expired", func() bool {
			o = s.get(account, id)
			return o.State == orders.Expired
		})
		if late := o.History[len(o.History)-1].At.Sub(o.PayBy); late > 4*time.Second {
			t.Errorf("order %d expired %v after its holds", i, late)
		}
	}
}

// A payment tried again while the first attempt's capture is unknown
// (the gateway took the money, its answer was lost, its webhook is late)
// finds the capture, not an error: the order is confirmed, once.
func TestCheckoutPayAgainAfterALostCapture(t *testing.T) {
	s := startShop(t, 0)
	o := s.mustOrder("u_lost", s.hold("u_lost", 1))
	if err := s.sim.SetFaults(psp.Faults{Seed: 1, Ops: []string{"confirm"}, ErrorAfter: 1,
		WebhookDelay: 1, WebhookDelayBy: psp.Duration(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pay("u_lost", o.ID, "4242424242424242"); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("the first payment, its answer lost: %v", err)
	}
	if n := s.capture(); n != 5000 {
		t.Fatalf("the gateway captured %d", n)
	}
	if err := s.sim.SetFaults(psp.Faults{Seed: 1, WebhookDelay: 1, WebhookDelayBy: psp.Duration(30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	again, err := s.pay("u_lost", o.ID, "4242424242424242")
	if err != nil {
		t.Fatalf("paying again: %v", err)
	}
	if !again.State.SeatsSold() {
		again = s.waitState("u_lost", o.ID, orders.Confirmed)
	}
	if p := s.ledger(o.ID); captures(p) != 1 || p.Captured != 5000 || s.capture() != 5000 {
		t.Fatalf("ledger %+v, the gateway %d", p, s.capture())
	}
}

// An order not paid before its holds expire ends expired: its seats,
// voucher use and purchase count are given back.
func TestCheckoutExpiry(t *testing.T) {
	s := startShop(t, 2)
	ctx := context.Background()
	if err := s.core.Checkout.Prices.Store.PutVoucher(ctx, pricing.Voucher{Code: "ONCE", Amount: 500, Currency: "USD", MaxUses: 1}); err != nil {
		t.Fatal(err)
	}
	h := s.holdTTL("u_dave", 2, 2)
	o, err := s.order("u_dave", "once", h)
	if err != nil {
		t.Fatal(err)
	}
	expired := s.waitState("u_dave", o.ID, orders.Expired)
	if expired.Reason != "not_paid_in_time" {
		t.Fatalf("expired: %+v", expired)
	}
	// The voucher's one use and the account's two tickets are free again.
	h2 := s.hold("u_dave", 2)
	eventually.Nil(t, 10*time.Second, func() error {
		o2, err := s.order("u_dave", "once", h2)
		if err == nil && o2.Voucher != "ONCE" {
			err = fmt.Errorf("the new order has voucher %q", o2.Voucher)
		}
		return err
	})
	if _, err := s.pay("u_dave", o.ID, "4242424242424242"); !errs.Is(errs.Conflict, err) {
		t.Fatalf("paying an expired order: %v", err)
	}
}

// A payment that succeeds after its order expired: the same seats are
// sold if they are free (reheld), else the money goes back once
// (refunded).
func TestCheckoutLatePayment(t *testing.T) {
	for _, tc := range []struct {
		name     string
		taken    bool
		want     orders.State
		late     orders.Late
		captured int64
	}{
		{"seats free: reheld", false, orders.Confirmed, orders.LateReheld, 16000},
		{"seats taken: refunded", true, orders.Refunded, orders.LateRefunded, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startShop(t, 0)
			h := s.holdTTL("u_erin", 2, 0, "s-A-1", "s-A-2")
			o := s.mustOrder("u_erin", h)
			ra, err := s.pay("u_erin", o.ID, "4000000000003220")
			if err != nil || ra.State != orders.RequiresAction {
				t.Fatalf("challenge: %s %v", ra.State, err)
			}
			// The gateway refuses the void, so the expired order's
			// intent stays open for the buyer's late challenge.
			if err := s.sim.SetFaults(psp.Faults{Seed: 1, Ops: []string{"cancel"}, ErrorBefore: 1}); err != nil {
				t.Fatal(err)
			}
			s.waitState("u_erin", o.ID, orders.Expired)
			if tc.taken {
				s.hold("u_frank", 0, "s-A-2")
			}
			s.challenge(ra.Payment.RedirectURL, "complete")
			done := s.waitState("u_erin", o.ID, tc.want)
			if done.Late != tc.late {
				t.Fatalf("late %q, want %q: %+v", done.Late, tc.late, done)
			}
			eventually.True(t, 20*time.Second, "the gateway's net capture", func() bool { return s.capture() == tc.captured })
			p := s.ledger(o.ID)
			if captures(p) != 1 || p.Captured-p.Refunded != tc.captured {
				t.Fatalf("ledger: %+v", p)
			}
			want := inventory.Sold
			if tc.taken {
				want = inventory.Expired
			}
			if st := s.holdStatus("u_erin", h.HoldID); st != want {
				t.Fatalf("the hold is %s, want %s", st, want)
			}
		})
	}
}

// A late payment takes again what its order's end gave back, its
// voucher's use and its add-ons, as it takes its seats again; when they
// are gone meanwhile (another order used the voucher's one use, or took
// the add-on's last unit) the money goes back.
func TestCheckoutLatePaymentTakesItsExtrasAgain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rival  string // what another order takes once the late order has expired
		want   orders.State
		reason string
	}{
		{"voucher and add-on free: reheld", "", orders.Confirmed, ""},
		{"voucher used meanwhile: refunded", "voucher", orders.Refunded, "extras_taken"},
		{"add-on sold meanwhile: refunded", "add-on", orders.Refunded, "extras_taken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startShop(t, 0)
			ctx := context.Background()
			store := s.core.Checkout.Prices.Store
			if err := store.PutRules(ctx, pricing.Rules{Event: shopEvent, Version: 1, Currency: "USD",
				Zones:    map[string]int64{"floor": 5000, "stalls": 8000},
				AddOns:   []pricing.AddOn{{ID: "locker", Name: "Locker", Price: 700, Capacity: 1, MaxPerOrder: 1}},
				OnSaleAt: time.Now().Add(-time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := store.PutVoucher(ctx, pricing.Voucher{Code: "ONCE", Amount: 500, Currency: "USD", MaxUses: 1}); err != nil {
				t.Fatal(err)
			}
			order := func(account, voucher string, locker bool, h inventory.Hold) (orders.View, error) {
				r := orders.CreateRequest{QuoteRequest: orders.QuoteRequest{Account: account, Voucher: voucher, Holds: []string{h.HoldID}},
					IdemKey: fmt.Sprintf("%s:order-%d", account, s.held.Add(1)), Fingerprint: "fp", Channel: "web"}
				if locker {
					r.AddOns = []pricing.AddOnItem{{ID: "locker", Quantity: 1}}
				}
				out, err := s.orders.Create(ctx, r)
				return out.Order, err
			}
			h := s.holdTTL("u_erin", 2, 0, "s-A-1")
			o, err := order("u_erin", "once", true, h)
			if err != nil || o.Voucher != "ONCE" || len(o.AddOns) != 1 {
				t.Fatalf("order: %+v %v", o, err)
			}
			// The payment's intent is made slowly: the order expires
			// meanwhile, with no intent to void, and gives back its seat,
			// voucher use and add-on; then the payment succeeds.
			if err := s.sim.SetFaults(psp.Faults{Seed: 1, Ops: []string{"create"}, Slow: 1, SlowLatency: psp.Duration(6 * time.Second)}); err != nil {
				t.Fatal(err)
			}
			paid := make(chan error, 1)
			go func() {
				_, err := s.pay("u_erin", o.ID, "4242424242424242")
				paid <- err
			}()
			eventually.Nil(t, 10*time.Second, func() error {
				got, err := s.core.Checkout.Saga.Store.Get(ctx, o.ID)
				if err == nil && (got.State != orders.Expired || len(got.Todo) > 0) {
					err = fmt.Errorf("order %s owing %v", got.State, got.Todo)
				}
				return err
			})
			switch tc.rival {
			case "voucher":
				if _, err := order("u_frank", "once", false, s.hold("u_frank", 1)); err != nil {
					t.Fatalf("the voucher's freed use: %v", err)
				}
			case "add-on":
				if _, err := order("u_frank", "", true, s.hold("u_frank", 1)); err != nil {
					t.Fatalf("the freed add-on: %v", err)
				}
			}
			if err := <-paid; err != nil {
				t.Fatalf("the late payment: %v", err)
			}
			done := s.waitState("u_erin", o.ID, tc.want)
			if done.Reason != tc.reason && tc.reason != "" {
				t.Fatalf("reason %q, want %q: %+v", done.Reason, tc.reason, done)
			}
			// Whoever holds the voucher's one use and the add-on's one
			// unit, nobody else gets them.
			if _, err := order("u_gail", "once", false, s.hold("u_gail", 1)); errs.ReasonOf(err) != pricing.ReasonVoucherExhausted && tc.rival != "add-on" {
				t.Fatalf("the voucher's one use taken twice: %v", err)
			}
			if _, err := order("u_gail", "", true, s.hold("u_gail", 1)); errs.ReasonOf(err) != orders.ReasonAddOnsSoldOut && tc.rival != "voucher" {
				t.Fatalf("the add-on's one unit taken twice: %v", err)
			}
			if tc.want == orders.Confirmed {
				if st := s.holdStatus("u_erin", h.HoldID); st != inventory.Sold || done.Late != orders.LateReheld {
					t.Fatalf("late %q, the hold %s", done.Late, st)
				}
			} else if done.Late != orders.LateRefunded || done.Payment.Refunded != done.Payment.Captured {
				t.Fatalf("refunded: late %q, %+v", done.Late, done.Payment)
			}
		})
	}
}

// One account's concurrent orders never pass the event's purchase limit.
func TestCheckoutPurchaseLimitUnderConcurrency(t *testing.T) {
	s := startShop(t, 4)
	holds := make([]inventory.Hold, 12)
	for i := range holds {
		holds[i] = s.hold("u_gina", 1)
	}
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for _, h := range holds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.order("u_gina", "", h)
			switch {
			case err == nil:
				ok.Add(1)
			case errs.ReasonOf(err) == orders.ReasonPurchaseLimit:
				limited.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 4 || limited.Load() != 8 {
		t.Fatalf("%d orders, %d refused, under a limit of 4", ok.Load(), limited.Load())
	}
}

// Of 1,000 concurrent orders with a voucher of 100 uses, exactly 100
// get it; the others are refused and leave nothing behind.
func TestCheckoutVoucherRedemptionsUnderConcurrency(t *testing.T) {
	s := startShop(t, 0)
	ctx := context.Background()
	if err := s.core.Checkout.Prices.Store.PutVoucher(ctx, pricing.Voucher{Code: "HUNDRED", PercentBP: 5000, MaxUses: 100}); err != nil {
		t.Fatal(err)
	}
	const buyers = 1000
	holds := make([]inventory.Hold, buyers)
	var hw sync.WaitGroup
	for i := range holds {
		hw.Add(1)
		go func() {
			defer hw.Done()
			holds[i] = s.hold(fmt.Sprintf("u_buyer%d", i), 1)
		}()
	}
	hw.Wait()
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, h := range holds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := s.order(fmt.Sprintf("u_buyer%d", i), "hundred", h)
			switch {
			case err == nil:
				ok.Add(1)
			case errs.ReasonOf(err) == pricing.ReasonVoucherExhausted:
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 100 || refused.Load() != buyers-100 {
		t.Fatalf("%d orders with the voucher, %d refused; want 100 and %d", ok.Load(), refused.Load(), buyers-100)
	}
}

// The demo's price lists and vouchers are valid, and price every zone of
// their events.
func TestDemoPrices(t *testing.T) {
	b, err := conf.Files.ReadFile("demo/pricing.json")
	if err != nil {
		t.Fatal(err)
	}
	var d core.DemoPrices
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	raw, _ := conf.Files.ReadFile("demo/demo.json")
	demo, err := catalog.ParseDataset(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Rules {
		if err := r.Validate(); err != nil {
			t.Errorf("rules of %s: %v", r.Event, err)
		}
		found := false
		for _, e := range demo.Events {
			if e.ID != r.Event {
				continue
			}
			found = true
			for _, v := range demo.Venues {
				if v.ID != e.VenueID {
					continue
				}
				for _, z := range v.Zones {
					if _, ok := r.Zones[z.ID]; !ok {
						t.Errorf("%s: zone %s has no price", r.Event, z.ID)
					}
				}
			}
		}
		if !found {
			t.Errorf("rules of an event the demo has not: %s", r.Event)
		}
	}
	for _, v := range d.Vouchers {
		if err := v.Validate(); err != nil {
			t.Errorf("voucher %s: %v", v.Code, err)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// Card numbers of a whole run (frictionless, challenged, declined, a
// refund) are nowhere but in the vault, and there only sealed: not in any
// JetStream stream or bucket (orders, payments, events, prices, …), not in
// the logs, not in any answer of the orders service.
func TestCardNumbersStayInTheVault(t *testing.T) {
	logs := &syncBuffer{}
	s := startShopLogging(t, 0, logs)
	ctx := context.Background()
	pans := []string{"4242424242424242", "4000000000003220", "4000000000009995", "5555555555554444"}
	var answers bytes.Buffer
	keep := func(v any) {
		b, _ := json.Marshal(v)
		answers.Write(b)
	}
	// Frictionless, then refunded by an admin.
	o := s.mustOrder("u_pan", s.hold("u_pan", 1))
	v, err := s.pay("u_pan", o.ID, pans[0])
	keep(v)
	if err != nil {
		t.Fatal(err)
	}
	s.waitState("u_pan", o.ID, orders.Confirmed)
	r, err := s.orders.Refund(ctx, ordersapi.RefundRequest{ID: o.ID, Reason: "test", Admin: true})
	keep(r)
	if err != nil {
		t.Fatal(err)
	}
	keep(s.waitState("u_pan", o.ID, orders.Refunded))
	// Challenged.
	o2 := s.mustOrder("u_pan", s.hold("u_pan", 1))
	v, err = s.pay("u_pan", o2.ID, pans[1])
	keep(v)
	if err != nil {
		t.Fatal(err)
	}
	s.challenge(v.Payment.RedirectURL, "complete")
	keep(s.waitState("u_pan", o2.ID, orders.Confirmed))
	// Declined, then another brand.
	o3 := s.mustOrder("u_pan", s.hold("u_pan", 1))
	v, err = s.pay("u_pan", o3.ID, pans[2])
	keep(v)
	if err != nil {
		t.Fatal(err)
	}
	v, err = s.pay("u_pan", o3.ID, pans[3])
	keep(v)
	if err != nil {
		t.Fatal(err)
	}
	keep(s.waitState("u_pan", o3.ID, orders.Confirmed))
	l, err := s.orders.List(ctx, ordersapi.ListRequest{Account: "u_pan"})
	keep(l)
	if err != nil {
		t.Fatal(err)
	}

	found := func(where string, b []byte) {
		for _, pan := range pans {
			if bytes.Contains(b, []byte(pan)) || bytes.Contains(b, []byte(pan[:4]+" "+pan[4:8])) {
				t.Errorf("card %s…%s found in %s", pan[:4], pan[12:], where)
			}
		}
	}
	found("the orders service's answers", answers.Bytes())
	found("the logs", logs.Bytes())
	// Every message of every stream, the key-value buckets included (the
	// vault's too: its cards are sealed).
	sealed := 0
	for name := range s.core.JS.StreamNames(ctx).Name() {
		st, err := s.core.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // deleted or expired
			}
			found("stream "+name+" subject "+m.Subject, m.Data)
			for k, vs := range m.Header {
				for _, v := range vs {
					found("stream "+name+" header "+k, []byte(v))
				}
			}
			if strings.HasPrefix(name, "KV_payment-vault") && len(m.Data) > 0 {
				sealed++
			}
		}
	}
	if sealed == 0 {
		t.Fatal("the vault's bucket holds nothing: the search looked in the wrong place")
	}
	// The vault opens what it sealed.
	tok := s.card(pans[0])
	card, err := s.core.Payment.Vault.Open(ctx, tok)
	if err != nil || card.Number != pans[0] {
		t.Fatalf("the vault does not open its card: %v", err)
	}
}

// Dynamic pricing, switched on in an event's price list, raises the floor
// zone's price with its sell-through, a bounded step at a time, up to the
// ceiling; a quote given before keeps its price, and the change is an
// event.
func TestDynamicPricing(t *testing.T) {
	s := startShop(t, 0)
	ctx := context.Background()
	store := s.core.Checkout.Prices.Store
	eventually.Nil(t, 10*time.Second, func() error {
		_, err := s.orders.Quote(ctx, orders.QuoteRequest{Account: "u_dyn", Holds: []string{s.hold("u_dyn", 1).HoldID}})
		return err
	})
	r, err := store.Rules(ctx, shopEvent)
	if err != nil {
		t.Fatal(err)
	}
	before := s.hold("u_early", 1)
	early, err := s.orders.Quote(ctx, orders.QuoteRequest{Account: "u_early", Holds: []string{before.HoldID}})
	if err != nil || early.Total.Amount != 5000 {
		t.Fatalf("the quote before: %+v %v", early, err)
	}
	r.Version++
	r.Dynamic = &pricing.Dynamic{Enabled: true, Base: r.Zones,
		SellThrough: []pricing.SellThroughStep{{AtBP: 1, MultiplierBP: 15000}},
		Floor:       pricing.Bound{BP: 8000}, Ceiling: pricing.Bound{BP: 14000}, MaxStep: pricing.Bound{Amount: 500}}
	if err := store.PutRules(ctx, r); err != nil {
		t.Fatal(err)
	}
	// Sell some: the sell-through step applies.
	o := s.mustOrder("u_dyn2", s.hold("u_dyn2", 4))
	if _, err := s.pay("u_dyn2", o.ID, "4242424242424242"); err != nil {
		t.Fatal(err)
	}
	var prices []int64
	eventually.True(t, 20*time.Second, "the floor zone at its ceiling (7000)", func() bool {
		got, err := store.Rules(ctx, shopEvent)
		if err != nil {
			return false
		}
		if n := len(prices); n == 0 || prices[n-1] != got.Zones["floor"] {
			prices = append(prices, got.Zones["floor"])
		}
		return got.Zones["floor"] == 7000
	})
	for i := 1; i < len(prices); i++ {
		if step := prices[i] - prices[i-1]; step <= 0 || step > 500 {
			t.Fatalf("prices %v: a step of %d (at most 500 up)", prices, step)
		}
	}
	// The early quote keeps its price: an order from it charges 5000.
	eo, err := s.orders.Create(ctx, orders.CreateRequest{QuoteRequest: orders.QuoteRequest{Account: "u_early", Holds: []string{before.HoldID}},
		QuoteID: early.ID, IdemKey: "u_early:k", Fingerprint: "fp"})
	if err != nil || eo.Order.Amounts.Total != 5000 {
		t.Fatalf("an order from the early quote: %+v %v", eo.Order.Amounts, err)
	}
	late, err := s.orders.Quote(ctx, orders.QuoteRequest{Account: "u_late", Holds: []string{s.hold("u_late", 1).HoldID}})
	if err != nil || late.Total.Amount != 7000 {
		t.Fatalf("a quote after: %+v %v", late.Total, err)
	}
	eventually.True(t, 10*time.Second, "the price changes in EVENTS", func() bool {
		return countEvents(t, s, "events.pricing."+shopEvent) >= 2
	})
}
