package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment/psp"
	"github.com/ticketing/ticketing/services/pricing"
)

// A purchase's script: what the buyer does after the order.
type ktKind string

const (
	kFrictionless  ktKind = "frictionless"       // 4242: paid at once
	kChallenge     ktKind = "3ds"                // 3220: challenge completed
	kDeclineRetry  ktKind = "declined-then-paid" // 9995 (insufficient funds), then 4242
	kDecline       ktKind = "declined"           // 0002, then left to expire
	kChallengeFail ktKind = "3ds-then-declined"  // 1629: challenge completed, declined, left to expire
	kAbandon       ktKind = "3ds-abandoned"      // 3220: challenge never answered, the order expires
	kUnpaid        ktKind = "unpaid"             // never paid: the order expires
	kCancel        ktKind = "cancelled"          // cancelled by the buyer
	kLate          ktKind = "paid-at-the-wire"   // a seat paid as its hold ends (4242), a rival after the seat every other time
	kRefund        ktKind = "paid-then-refunded" // 4242, then an admin refunds
)

// The vouchers of the purchases: one for every third, and one of few uses
// (all buyers together) for every seventh, whose cap the compensations'
// give-backs must keep right.
const (
	ktVoucher    = "KILLTEN"
	ktFewVoucher = "KILLFEW"
	ktFewUses    = 8
)

// ktMix is the purchases' kinds, in turn.
var ktMix = []ktKind{kFrictionless, kChallenge, kRefund, kDeclineRetry, kAbandon, kChallenge,
	kUnpaid, kFrictionless, kRefund, kDecline, kChallengeFail, kCancel, kLate}

// short reports whether the kind's hold is short: its order is meant to
// expire.
func (k ktKind) short() bool {
	return k == kAbandon || k == kUnpaid || k == kDecline || k == kChallengeFail || k == kLate
}

func (k ktKind) cards() []string {
	switch k {
	case kFrictionless, kRefund, kLate:
		return []string{"4242424242424242"}
	case kChallenge, kAbandon:
		return []string{"4000000000003220"}
	case kDeclineRetry:
		return []string{"4000000000009995", "4242424242424242"}
	case kDecline:
		return []string{"4000000000000002"}
	case kChallengeFail:
		return []string{"4000008400001629"}
	}
	return nil
}

// ktOrder is an order of the workload as its buyer knows it.
type ktOrder struct {
	id   string
	kind ktKind

	mu    sync.Mutex
	phase string // "pay" while a payment request is in flight, "refund" while a refund is
}

func (o *ktOrder) set(phase string) {
	o.mu.Lock()
	o.phase = phase
	o.mu.Unlock()
}

func (o *ktOrder) get() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.phase
}

// killWorkload is the buyers: each goroutine makes one purchase after
// another until stopped. Every request that may have been lost (no
// answer, a 5xx) is sent again with its idempotency key where it has
// one; no buyer fails the test: the checker judges what they left.
type killWorkload struct {
	t      *testing.T
	r      *killRig
	buyer  *api
	admin  *api
	events []string
	seats  map[string][]string
	next   map[string]*atomic.Int64 // the next unsold seat of each event

	mu     sync.Mutex
	orders map[string]*ktOrder
	notes  map[string]int // what went other than planned, counted

	seq  atomic.Int64
	stop atomic.Bool
	wg   sync.WaitGroup
	ctx  context.Context
}

func newKillWorkload(t *testing.T, r *killRig) *killWorkload {
	t.Helper()
	// A checkout page gives up on a request after some seconds and reads
	// the order instead (a request in flight when the core dies is
	// answered only when the edge's own timeout passes, 40 s).
	hc := &http.Client{Timeout: 12 * time.Second, CheckRedirect: r.tls.CheckRedirect, Transport: r.tls.Transport}
	buyer := (&api{t: t, base: "https://" + r.edgeAddr, hc: hc}).signIn(testBuyer)
	w := &killWorkload{t: t, r: r, buyer: buyer, admin: buyer.asAdmin(), events: []string{"kt-a", "kt-b"},
		seats: map[string][]string{}, next: map[string]*atomic.Int64{}, orders: map[string]*ktOrder{}, notes: map[string]int{}}
	admin := w.admin
	for _, ev := range w.events {
		w.seats[ev] = buyer.createEvent(ev, 400, 5000, nil)
		w.next[ev] = &atomic.Int64{}
		// Fees, a tax and an add-on: what an order gives back when it
		// ends unpaid is more than its seats.
		rules := pricing.Rules{Event: ev, Version: 1, Currency: "USD", Zones: map[string]int64{"std": 5000, "ga": 3000},
			Fees: pricing.Fees{PerTicket: 150, PerOrder: 100}, Tax: pricing.Tax{Region: "US-IL", RateBP: 1025},
			AddOns:   []pricing.AddOn{{ID: "parking", Name: "Parking", Price: 1500, Capacity: 100_000, MaxPerOrder: 2}},
			OnSaleAt: time.Now().Add(-time.Hour)}
		if code, err := admin.do("PUT", "/v1/admin/events/"+ev+"/prices", nil, rules, nil); err != nil || code != 200 {
			t.Fatalf("prices of %s: HTTP %d %v", ev, code, err)
		}
	}
	for _, v := range []pricing.Voucher{{Code: ktVoucher, PercentBP: 1000}, {Code: ktFewVoucher, Amount: 700, Currency: "USD", MaxUses: ktFewUses}} {
		if code, err := admin.do("PUT", "/v1/admin/vouchers/"+v.Code, nil, v, nil); err != nil || code != 200 {
			t.Fatalf("voucher %s: HTTP %d %v", v.Code, code, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w.ctx = ctx
	return w
}

func (w *killWorkload) note(format string, args ...any) {
	w.mu.Lock()
	w.notes[fmt.Sprintf(format, args...)]++
	w.mu.Unlock()
}

// start starts n buyers.
func (w *killWorkload) start(n int) {
	for range n {
		w.wg.Go(func() {
			for !w.stop.Load() && w.ctx.Err() == nil {
				w.purchase(w.seq.Add(1))
			}
		})
	}
}

// stopAndWait lets each buyer finish its purchase, then returns.
func (w *killWorkload) stopAndWait() {
	w.stop.Store(true)
	w.wg.Wait()
}

// summary counts the orders by kind and the notes.
func (w *killWorkload) summary() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := map[ktKind]int{}
	for _, o := range w.orders {
		kinds[o.kind]++
	}
	var parts []string
	for _, k := range ktMix {
		if n, ok := kinds[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
			delete(kinds, k)
		}
	}
	s := fmt.Sprintf("%d purchases, %d orders (%s)", w.seq.Load(), len(w.orders), strings.Join(parts, ", "))
	var notes []string
	for n, c := range w.notes {
		notes = append(notes, fmt.Sprintf("%s ×%d", n, c))
	}
	sort.Strings(notes)
	if len(notes) > 0 {
		s += "; " + strings.Join(notes, "; ")
	}
	return s
}

// answered is a request's outcome: known when the service answered below
// 500.
func answered(code int, err error) bool { return err == nil && code > 0 && code < 500 }

// retry sends a request until it is answered (below 500) or deadline
// passes, and returns the last outcome.
func (w *killWorkload) retry(deadline time.Time, send func() (int, error)) (int, error) {
	for {
		code, err := send()
		if answered(code, err) || !time.Now().Before(deadline) || w.ctx.Err() != nil {
			return code, err
		}
		pause.For(w.ctx, 200*time.Millisecond)
	}
}

// purchase is one buyer's purchase number n.
func (w *killWorkload) purchase(n int64) {
	kind := ktMix[n%int64(len(ktMix))]
	rng := rand.New(rand.NewPCG(uint64(n), 0x6b696c6c))
	ev := w.events[n%int64(len(w.events))]
	ttl := 20
	if kind.short() {
		ttl = 4 + int(n%3)
	}
	body := map[string]any{"zone": "ga", "quantity": 1 + int(n%3), "ttl_seconds": ttl}
	var seat string
	if n%4 == 0 || kind == kLate {
		seat = w.seats[ev][int(w.next[ev].Add(1)-1)%len(w.seats[ev])]
		body = map[string]any{"seats": []string{seat}, "ttl_seconds": ttl}
	}
	deadline := time.Now().Add(time.Duration(ttl) * time.Second / 2)
	var h holdAnswer
	key := fmt.Sprintf("kt-hold-%d", n)
	code, err := w.retry(deadline, func() (int, error) {
		return w.buyer.do("POST", "/v1/events/"+ev+"/holds", map[string]string{"Idempotency-Key": key}, body, &h)
	})
	if code != 201 {
		w.note("hold: HTTP %d %v", code, errText(err))
		return
	}
	var v orders.View
	key = fmt.Sprintf("kt-order-%d", n)
	cart := map[string]any{"holds": []string{h.HoldID}}
	switch {
	case n%7 == 0:
		cart["voucher"] = ktFewVoucher
	case n%3 == 1:
		cart["voucher"] = ktVoucher
	}
	if n%4 == 1 {
		cart["add_ons"] = []map[string]any{{"id": "parking", "quantity": 1 + n%2}}
	}
	var raw json.RawMessage
	code, err = w.retry(deadline, func() (int, error) {
		return w.buyer.do("POST", "/v1/orders", map[string]string{"Idempotency-Key": key}, cart, &raw)
	})
	if (code != 201 && code != 200) || json.Unmarshal(raw, &v) != nil || v.ID == "" {
		w.note("order: HTTP %d %v%s", code, errText(err), reasonOf(raw))
		return
	}
	o := &ktOrder{id: v.ID, kind: kind}
	w.mu.Lock()
	w.orders[o.id] = o
	w.mu.Unlock()
	end := v.PayBy.Add(3 * time.Second)
	switch kind {
	case kUnpaid:
	case kLate:
		// Paid a moment before the hold ends: the payment (slow at the
		// gateway one time in three) may succeed after the order
		// expired, and then the seat is sold again if it is free (late:
		// reheld) or the money goes back (late: refunded): every other
		// time a rival holds the seat as soon as it is free.
		pause.For(w.ctx, time.Until(v.PayBy.Add(-250*time.Millisecond)))
		if n%2 == 0 {
			w.wg.Go(func() { w.rival(ev, seat, n, v.PayBy) })
		}
		w.payFlow(o, rng, end)
	case kCancel:
		pause.For(w.ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
		code, err := w.retry(end, func() (int, error) { return w.buyer.do("POST", "/v1/orders/"+o.id+"/cancel", nil, nil, nil) })
		if code != 200 {
			w.note("cancel: HTTP %d %v", code, errText(err))
		}
	default:
		final := w.payFlow(o, rng, end)
		if kind != kRefund {
			return
		}
		if !final.State.SeatsSold() {
			w.note("to refund, but %s", final.State)
			return
		}
		pause.For(w.ctx, time.Duration(200+rng.IntN(1300))*time.Millisecond)
		o.set("refund")
		var raw json.RawMessage
		code, err := w.retry(time.Now().Add(45*time.Second), func() (int, error) {
			return w.admin.do("POST", "/v1/admin/orders/"+o.id+"/refund", nil, map[string]string{"reason": "kill table"}, &raw)
		})
		o.set("")
		if code != 200 {
			w.note("refund: HTTP %d %v%s", code, errText(err), reasonOf(raw))
		}
	}
}

// reasonOf is an error answer's reason, or its message.
func reasonOf(raw []byte) string {
	var e struct {
		Error struct{ Code, Reason, Message string } `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Code == "" {
		return ""
	}
	if e.Error.Reason != "" {
		return " " + e.Error.Reason
	}
	return " " + e.Error.Message
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, cut := range []string{"connection refused", "EOF", "reset by peer", "Client.Timeout", "timeout"} {
		if strings.Contains(s, cut) {
			return cut
		}
	}
	return s
}

// rival tries to hold a seat from the moment its hold ends, for 3 s.
func (w *killWorkload) rival(ev, seat string, n int64, from time.Time) {
	pause.For(w.ctx, time.Until(from))
	for i := 0; i < 60 && w.ctx.Err() == nil; i++ {
		var h holdAnswer
		code, _ := w.buyer.do("POST", "/v1/events/"+ev+"/holds", map[string]string{"Idempotency-Key": fmt.Sprintf("kt-rival-%d-%d", n, i)},
			map[string]any{"seats": []string{seat}, "ttl_seconds": 4}, &h)
		if code == 201 {
			w.note("rival took the seat")
			return
		}
		pause.For(w.ctx, 50*time.Millisecond)
	}
	w.note("rival did not get the seat")
}

// flow is where paying with one card left the order.
type flow int

const (
	flowDone     flow = iota // the order ended, or the buyer stops here
	flowDeclined             // declined: the next card
	flowUnknown              // no answer and nothing changed: pay again
)

// payFlow pays the order with the kind's cards in turn, answering 3-D
// Secure challenges, until the order ends or end passes, and returns the
// order as last seen.
func (w *killWorkload) payFlow(o *ktOrder, rng *rand.Rand, end time.Time) orders.View {
	cards := o.kind.cards()
	answeredURLs := map[string]bool{}
	var last orders.View
	for ci := 0; ci < len(cards) && time.Now().Before(end) && w.ctx.Err() == nil; {
		tok := w.tokenize(cards[ci], end)
		if tok == "" {
			w.note("card not tokenized before the order's end")
			return last
		}
		o.set("pay")
		var raw json.RawMessage
		code, err := w.buyer.do("POST", "/v1/orders/"+o.id+"/pay", nil, map[string]string{"method": tok}, &raw)
		o.set("")
		var v orders.View
		known := code == 200 && err == nil && json.Unmarshal(raw, &v) == nil
		if !known && code != 409 {
			w.note("pay: HTTP %d %v%s", code, errText(err), reasonOf(raw))
		}
		var f flow
		last, f = w.follow(o, v, known, answeredURLs, rng, end)
		switch f {
		case flowDone:
			return last
		case flowDeclined:
			ci++
		}
	}
	return last
}

// follow watches the order after a payment request (v is its answer when
// known) until it ends, is declined, or seems to have been lost: a
// challenge it meets is answered, as a browser would, once.
func (w *killWorkload) follow(o *ktOrder, v orders.View, known bool, done map[string]bool, rng *rand.Rand, end time.Time) (orders.View, flow) {
	since := time.Now()
	fromPay, challenged := known, false
	for ; w.ctx.Err() == nil; fromPay = false {
		if !known {
			var got orders.View
			if code, err := w.buyer.do("GET", "/v1/orders/"+o.id, nil, nil, &got); code == 200 && err == nil {
				v, known = got, true
			}
		}
		if time.Now().After(end) {
			return v, flowDone
		}
		if known {
			switch v.State {
			case orders.Confirmed, orders.Fulfilled, orders.Expired, orders.Cancelled, orders.PaymentFailed,
				orders.Refunding, orders.Refunded:
				return v, flowDone
			case orders.RequiresAction:
				if o.kind == kAbandon {
					return v, flowDone
				}
				if u := v.Payment.RedirectURL; u != "" && !done[u] {
					pause.For(w.ctx, time.Duration(300+rng.IntN(2200))*time.Millisecond)
					if w.challenge(o, u, end) {
						done[u] = true
						challenged = true
						since = time.Now()
					}
				}
			case orders.AwaitingPayment:
				if v.Payment.Status == string(orders.PaymentDeclined) && (fromPay || challenged) {
					return v, flowDeclined
				}
				if time.Since(since) > 4*time.Second {
					return v, flowUnknown
				}
			}
		}
		known = false
		pause.For(w.ctx, 150*time.Millisecond)
	}
	return v, flowDone
}

// tokenize sends a card to the payment service's tokenization, as its
// card page does, until it answers or end passes.
func (w *killWorkload) tokenize(number string, end time.Time) string {
	body := fmt.Sprintf(`{"number":%q,"exp_month":12,"exp_year":%d,"cvc":"123"}`, number, time.Now().Year()+3)
	for time.Now().Before(end) && w.ctx.Err() == nil {
		resp, err := w.r.plain.Post("http://"+w.r.payAddr+"/v1/cards", "application/json", strings.NewReader(body))
		if err == nil {
			var tok struct {
				ID string `json:"id"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated && derr == nil && tok.ID != "" {
				return tok.ID
			}
		}
		pause.For(w.ctx, 200*time.Millisecond)
	}
	return ""
}

var formAction = regexp.MustCompile(`action="([^"]+)"`)

// challenge answers a 3-D Secure challenge as the buyer's browser does:
// the simulator's page, its Complete button, then the redirect back to
// the edge's return route (which has the order synced). It reports
// whether the challenge was answered (or is no longer there to answer).
func (w *killWorkload) challenge(o *ktOrder, redirect string, end time.Time) bool {
	for time.Now().Before(end) && w.ctx.Err() == nil {
		resp, err := w.r.plain.Get(redirect)
		if err != nil {
			pause.For(w.ctx, 200*time.Millisecond)
			continue
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusNotFound {
			w.note("challenge page: HTTP %d", resp.StatusCode)
			return true
		}
		m := formAction.FindSubmatch(page)
		if resp.StatusCode != 200 || m == nil {
			if resp.StatusCode == 200 {
				return true // answered already
			}
			pause.For(w.ctx, 200*time.Millisecond)
			continue
		}
		u, _ := url.Parse(redirect)
		resp, err = w.r.plain.Post(u.Scheme+"://"+u.Host+string(m[1]), "application/x-www-form-urlencoded", strings.NewReader("result=complete"))
		if err != nil {
			pause.For(w.ctx, 200*time.Millisecond)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 3 {
			pause.For(w.ctx, 200*time.Millisecond)
			continue
		}
		back := resp.Header.Get("Location")
		for range 10 { // the browser's return: it may meet a dead edge
			resp, err := w.r.tls.Get(back)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode < 500 {
					break
				}
			}
			pause.For(w.ctx, 200*time.Millisecond)
		}
		return true
	}
	return false
}

// killWhenStepsFill lets the system run a while (gap), then waits until
// orders are at every step of the saga (at most 20 s; the confirm step
// is awaited 8 s), notes which are where, kills the victim, keeps it down
// 1.5 s and starts it again.
func (w *killWorkload) killWhenStepsFill(victim string, start time.Time, gap time.Duration) killPoint {
	w.t.Helper()
	pause.For(w.ctx, gap)
	began := time.Now()
	var steps map[string][]string
	for {
		steps = w.snapshot()
		full := true
		for _, s := range requiredSteps {
			full = full && len(steps[s]) > 0
		}
		if full && (len(steps[stepConfirm]) > 0 || time.Since(began) > 8*time.Second) || time.Since(began) > 20*time.Second {
			break
		}
		pause.For(w.ctx, 100*time.Millisecond)
	}
	kp := killPoint{victim: victim, at: time.Since(start), waited: time.Since(began), steps: steps}
	for _, s := range killSteps {
		if len(steps[s]) == 0 {
			kp.unfilled = append(kp.unfilled, s)
		}
	}
	killed := time.Now()
	w.r.kill(victim)
	pause.For(w.ctx, 1500*time.Millisecond)
	w.r.restart(victim)
	kp.back = time.Since(killed)
	return kp
}

// snapshot says which orders are at which step of the saga now: from the
// orders' store, the simulator's records and the buyers' requests in
// flight.
func (w *killWorkload) snapshot() map[string][]string {
	ctx, cancel := context.WithTimeout(w.ctx, 3*time.Second)
	defer cancel()
	steps := map[string]map[string]bool{}
	add := func(step, id string) {
		if steps[step] == nil {
			steps[step] = map[string]bool{}
		}
		steps[step][id] = true
	}
	captured := map[string]bool{}
	if b, err := w.r.simGet(ctx, "/_sim/records"); err == nil {
		var recs psp.Records
		if json.Unmarshal(b, &recs) == nil {
			for _, in := range recs.Intents {
				if in.Status == psp.StatusSucceeded {
					captured[in.OrderID] = true
				}
			}
		}
	}
	now := time.Now()
	if rows, err := w.r.orders.Query(ctx, `SELECT record FROM orders WHERE next_at IS NOT NULL OR state IN ('requires_action', 'paid', 'refunding', 'awaiting_payment')`); err == nil {
		for rows.Next() {
			var raw []byte
			var o orders.Order
			if rows.Scan(&raw) != nil || json.Unmarshal(raw, &o) != nil {
				continue
			}
			switch {
			case o.State == orders.RequiresAction:
				add(step3DS, o.ID)
			case o.State == orders.Refunding:
				add(stepRefund, o.ID)
			}
			if o.State == orders.Paid || (captured[o.ID] && !o.State.Sold() && o.State != orders.Refunding && o.State != orders.Refunded) {
				add(stepConfirm, o.ID)
			}
			ended := o.State == orders.Expired || o.State == orders.Cancelled || o.State == orders.PaymentFailed
			if (o.State.Open() && !now.Before(o.PayBy.Add(-time.Second))) || (ended && len(o.Todo) > 0) {
				add(stepExpiry, o.ID)
			}
		}
		rows.Close()
	}
	w.mu.Lock()
	for _, o := range w.orders {
		switch o.get() {
		case "pay":
			add(stepPay, o.id)
		case "refund":
			add(stepRefund, o.id)
		}
	}
	w.mu.Unlock()
	out := map[string][]string{}
	for s, ids := range steps {
		for id := range ids {
			out[s] = append(out[s], id)
		}
		slices.Sort(out[s])
	}
	return out
}
