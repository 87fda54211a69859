package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/barcode"
	"github.com/ticketing/ticketing/services/fulfillment"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment"
	paymentpg "github.com/ticketing/ticketing/services/payment/postgres"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// The invariants the checker proves, each a failing assertion.
const (
	invEnded          = "every order ended paid and confirmed, or fully compensated"
	invTickets        = "every sold order fulfilled: one ticket per seat and unit, issued once; none for an order never sold, all revoked for one refunded"
	invDouble         = "no double capture"
	invSeatNoCapture  = "no seat sold without a capture"
	invCaptureNoOrder = "no capture without a paid order or a refund"
	invMoney          = "captures − refunds = paid orders' totals, per event"
	invLedger         = "the ledger, the order and the gateway agree"
	invEvents         = "EVENTS has each order's transitions, in order"
	invPayEvents      = "EVENTS has each payment's money movements and last state"
	invKafka          = "Kafka has exactly the order and payment events of EVENTS"
	invExtras         = "voucher uses and add-ons kept by paid orders only, within caps"
)

var killInvariants = []string{invEnded, invDouble, invSeatNoCapture, invCaptureNoOrder, invMoney, invLedger, invExtras, invEvents, invPayEvents, invKafka, invTickets}

// ktFacts is what the checker reads, once the saga has settled: the
// stores, the simulator's records, EVENTS and the inventory.
type ktFacts struct {
	kinds       map[string]ktKind       // the workload's orders: order → kind
	orders      map[string]orders.Order // the orders' store (PostgreSQL)
	outbox      int                     // entries not relayed
	ledger      map[string]payment.Payment
	intents     map[string][]psp.RecordIntent // the simulator's, by order
	refunds     []psp.Refund
	pending     int                          // webhook deliveries not acknowledged
	orderEvents map[string][]ktEvent         // EVENTS, events.order.<id>, each event once, in stream order
	payEvents   map[string][]payment.Payment // EVENTS, events.payment.<id>, in stream order
	duplicates  int                          // order events met more than once in EVENTS
	eventIDs    map[string]int               // every order and payment event id in EVENTS, with its messages
	kafka       map[string]int               // order and payment event ids in Kafka, with their records; nil: not read
	kafkaName   string                       // which Kafka
	holds       map[string]inventory.Status  // each order's holds, read through the edge
	redeemed    map[string]string            // voucher uses (pricing_redemptions): order → code
	reserved    map[string]map[string]int    // add-on reservations: order → add-on → units
	stock       map[string]int               // add-on units reserved: "<event> <add-on>" → units
	sold        map[string]int               // per event: sold seats and units (availability)
	held        map[string]int
	tickets     map[string][]fulfillment.View // each confirmed order's tickets, read through the edge
	revoked     map[string]bool               // revoked tickets, from the events' gate lists
	unsettled   error                         // what was still moving when the checker gave up waiting
}

type ktEvent struct {
	id, typ string
	data    orders.Summary
}

// settle waits until the saga has nothing left to do (every order ended
// and owes no step, the outbox relayed, every webhook delivered, no seat
// held), at most two minutes, then reads the facts.
func (w *killWorkload) settle(start time.Time) ktFacts {
	w.t.Helper()
	var f ktFacts
	began := time.Now()
	err := eventually.Wait(w.ctx, 2*time.Minute, func() error {
		var err error
		f, err = w.readMoving()
		if err != nil {
			return err
		}
		var moving []string
		for _, o := range f.orders {
			// A confirmed order's tickets are still to be issued.
			if o.State.Open() || o.State == orders.Paid || o.State == orders.Confirmed || o.State == orders.Refunding || len(o.Todo) > 0 {
				moving = append(moving, fmt.Sprintf("%s %s owes %v", o.ID, o.State, o.Todo))
			}
		}
		switch {
		case len(moving) > 0:
			return fmt.Errorf("%d orders still moving: %s", len(moving), strings.Join(first(moving, 5), "; "))
		case f.outbox > 0:
			return fmt.Errorf("%d outbox entries not relayed", f.outbox)
		case f.pending > 0:
			return fmt.Errorf("%d webhook deliveries pending", f.pending)
		}
		for ev, n := range f.held {
			if n > 0 {
				return fmt.Errorf("%d seats still held at %s", n, ev)
			}
		}
		return nil
	})
	if err != nil {
		f.unsettled = err
		w.t.Logf("not settled: %v", err)
	}
	w.t.Logf("settled %v after the workload (%v from the start)", time.Since(began).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if err := w.readRest(&f); err != nil {
		w.t.Fatalf("reading the facts: %v", err)
	}
	return f
}

// readMoving reads what settles: the orders, the outbox, the simulator's
// records and the inventory's counts.
func (w *killWorkload) readMoving() (ktFacts, error) {
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	f := ktFacts{kinds: map[string]ktKind{}, orders: map[string]orders.Order{}, intents: map[string][]psp.RecordIntent{},
		sold: map[string]int{}, held: map[string]int{}}
	w.mu.Lock()
	for id, o := range w.orders {
		f.kinds[id] = o.kind
	}
	w.mu.Unlock()
	rows, err := w.r.orders.Query(ctx, `SELECT record FROM orders`)
	if err != nil {
		return f, err
	}
	for rows.Next() {
		var raw []byte
		var o orders.Order
		if err := rows.Scan(&raw); err != nil {
			rows.Close()
			return f, err
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			rows.Close()
			return f, err
		}
		f.orders[o.ID] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return f, err
	}
	if err := w.r.orders.QueryRow(ctx, `SELECT count(*) FROM order_outbox`).Scan(&f.outbox); err != nil {
		return f, err
	}
	b, err := w.r.simGet(ctx, "/_sim/records")
	if err != nil {
		return f, err
	}
	var recs psp.Records
	if err := json.Unmarshal(b, &recs); err != nil {
		return f, err
	}
	for _, in := range recs.Intents {
		f.intents[in.OrderID] = append(f.intents[in.OrderID], in)
	}
	f.refunds, f.pending = recs.Refunds, recs.PendingDeliveries
	for _, ev := range w.events {
		av, err := w.buyer.availability(ev)
		if err != nil {
			return f, err
		}
		for _, z := range av.Zones {
			f.sold[ev] += z.Sold
			f.held[ev] += z.Held
		}
	}
	return f, nil
}

// readRest reads the ledger, EVENTS and each order's holds.
func (w *killWorkload) readRest(f *ktFacts) error {
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	ledger, err := paymentpg.New(w.r.payments, paymentpg.Config{})
	if err != nil {
		return err
	}
	f.ledger = map[string]payment.Payment{}
	for after := ""; ; {
		page, err := ledger.List(ctx, payment.ListFilter{After: after, Limit: payment.MaxListLimit})
		if err != nil {
			return fmt.Errorf("the ledger: %w", err)
		}
		for _, p := range page.Payments {
			f.ledger[p.OrderID] = p
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if err := w.readEvents(ctx, f); err != nil {
		return fmt.Errorf("EVENTS: %w", err)
	}
	if w.r.brokers != nil {
		f.kafkaName = w.r.kafka
		if err := w.readKafka(ctx, f); err != nil {
			return fmt.Errorf("Kafka: %w", err)
		}
	}
	if err := w.readExtras(ctx, f); err != nil {
		return fmt.Errorf("vouchers and add-ons: %w", err)
	}
	f.tickets = map[string][]fulfillment.View{}
	for _, o := range f.orders {
		if !reached(o, orders.Confirmed) {
			continue
		}
		var got ticketsapi.Tickets
		code, err := w.buyer.do("GET", "/v1/orders/"+o.ID+"/tickets", nil, nil, &got)
		if err != nil || code != 200 {
			return fmt.Errorf("tickets of %s: HTTP %d %v", o.ID, code, err)
		}
		f.tickets[o.ID] = got.Tickets
	}
	f.revoked = map[string]bool{}
	for _, ev := range w.events {
		var g ticketsapi.Gate
		code, err := w.admin.do("GET", "/v1/admin/events/"+ev+"/gate", nil, nil, &g)
		if err != nil || code != 200 {
			return fmt.Errorf("gate list of %s: HTTP %d %v", ev, code, err)
		}
		var list barcode.RevocationList
		if err := json.Unmarshal(g.Revoked, &list); err != nil {
			return fmt.Errorf("gate list of %s: %w", ev, err)
		}
		for _, tks := range f.tickets {
			for _, t := range tks {
				if list.Revoked(t.ID, barcode.DeviceBinding{}) {
					f.revoked[t.ID] = true
				}
			}
		}
	}
	f.holds = map[string]inventory.Status{}
	for _, o := range f.orders {
		for _, h := range o.Holds {
			var got inventory.Hold
			code, err := w.buyer.do("GET", "/v1/holds/"+h.ID, nil, nil, &got)
			if err != nil || code != 200 {
				return fmt.Errorf("hold %s of %s: HTTP %d %v", h.ID, o.ID, code, err)
			}
			f.holds[h.ID] = got.Status
		}
	}
	return nil
}

// readExtras reads the pricing store's voucher uses and add-on
// reservations (the orders' database).
func (w *killWorkload) readExtras(ctx context.Context, f *ktFacts) error {
	f.redeemed, f.reserved, f.stock = map[string]string{}, map[string]map[string]int{}, map[string]int{}
	rows, err := w.r.orders.Query(ctx, `SELECT code, order_id FROM pricing_redemptions`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var code, id string
		if err := rows.Scan(&code, &id); err != nil {
			rows.Close()
			return err
		}
		f.redeemed[id] = code
	}
	rows.Close()
	if rows, err = w.r.orders.Query(ctx, `SELECT order_id, items FROM pricing_addon_reservations`); err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var items map[string]int
		if err := rows.Scan(&id, &items); err != nil {
			rows.Close()
			return err
		}
		f.reserved[id] = items
	}
	rows.Close()
	if rows, err = w.r.orders.Query(ctx, `SELECT event, addon, reserved FROM pricing_addon_stock`); err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ev, addon string
		var n int
		if err := rows.Scan(&ev, &addon, &n); err != nil {
			return err
		}
		f.stock[ev+" "+addon] = n
	}
	return rows.Err()
}

// readEvents reads every order and payment event of EVENTS.
func (w *killWorkload) readEvents(ctx context.Context, f *ktFacts) error {
	nc, err := coreConn(testSecrets, w.r.core.natsAddr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	st, err := js.Stream(ctx, jsnames.Events)
	if err != nil {
		return err
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{orders.SubjectPrefix + ">", "events.payment.>"}})
	if err != nil {
		return err
	}
	f.orderEvents, f.payEvents, f.eventIDs = map[string][]ktEvent{}, map[string][]payment.Payment{}, map[string]int{}
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n, pending := 0, uint64(0)
		for m := range batch.Messages() {
			n++
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
			ce, err := cloudevents.Unmarshal(m.Data())
			if err != nil {
				return fmt.Errorf("%s: %w", m.Subject(), err)
			}
			f.eventIDs[ce.ID]++
			if id, ok := strings.CutPrefix(m.Subject(), orders.SubjectPrefix); ok {
				if f.eventIDs[ce.ID] > 1 {
					f.duplicates++
					continue
				}
				e := ktEvent{id: ce.ID, typ: ce.Type}
				if err := json.Unmarshal(ce.Data, &e.data); err != nil {
					return err
				}
				f.orderEvents[id] = append(f.orderEvents[id], e)
				continue
			}
			var p payment.Payment
			if err := json.Unmarshal(ce.Data, &p); err != nil {
				return err
			}
			f.payEvents[p.OrderID] = append(f.payEvents[p.OrderID], p)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if n == 0 || pending == 0 {
			return nil
		}
	}
}

// readKafka reads the bridge's topic until it holds every order and
// payment event EVENTS holds (at most 45 s: what is missing then is
// the checker's to report).
func (w *killWorkload) readKafka(ctx context.Context, f *ktFacts) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.r.brokers...), kgo.ConsumeTopics(w.r.topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()
	f.kafka = map[string]int{}
	missing := func() int {
		n := 0
		for id, want := range f.eventIDs {
			if f.kafka[id] < want {
				n++
			}
		}
		return n
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	for missing() > 0 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			var id, typ string
			for _, h := range r.Headers {
				switch h.Key {
				case "ce_id":
					id = string(h.Value)
				case "ce_type":
					typ = string(h.Value)
				}
			}
			if strings.HasPrefix(typ, orders.EventTypePrefix) || strings.HasPrefix(typ, "ticketing.payment.") {
				f.kafka[id]++
			}
		})
	}
	return nil
}

// ktResult is the checker's verdict.
type ktResult struct {
	violations map[string][]string // invariant → what broke it
	bad        map[string]bool     // orders that broke one
	outcome    map[string]string   // order → how it ended
	money      map[string][3]int64 // event → gateway net, ledger net, paid orders' totals
}

// checkKillTable proves the invariants over the facts.
func checkKillTable(f ktFacts) ktResult {
	res := ktResult{violations: map[string][]string{}, bad: map[string]bool{}, outcome: map[string]string{}, money: map[string][3]int64{}}
	fail := func(inv, order, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if order != "" {
			res.bad[order] = true
			msg = order + " (" + string(f.kinds[order]) + "): " + msg
		}
		res.violations[inv] = append(res.violations[inv], msg)
	}
	if f.unsettled != nil {
		fail(invEnded, "", "the saga did not settle: %v", f.unsettled)
	}
	for id := range f.kinds {
		if _, ok := f.orders[id]; !ok {
			fail(invEnded, id, "the buyer was answered with this order, the store has none")
		}
	}
	soldTickets, stock := map[string]int{}, map[string]int{}
	ids := make([]string, 0, len(f.orders))
	for id := range f.orders {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		o := f.orders[id]
		sold := o.State == orders.Confirmed || o.State == orders.Fulfilled
		res.outcome[id] = outcomeOf(o)
		ended := sold || o.State == orders.Expired || o.State == orders.Cancelled || o.State == orders.PaymentFailed || o.State == orders.Refunded
		if !ended || len(o.Todo) > 0 {
			fail(invEnded, id, "%s, owing %v", o.State, o.Todo)
		}
		// The gateway's view.
		var gwNet int64
		var capturedIntents []psp.RecordIntent
		for _, in := range f.intents[id] {
			gwNet += in.AmountReceived - in.AmountRefunded
			if in.AmountReceived > 0 {
				capturedIntents = append(capturedIntents, in)
			}
		}
		p, hasLedger := f.ledger[id]
		captureEntries := 0
		for _, e := range p.Entries {
			if e.Kind == payment.EntryCapture {
				captureEntries++
			}
		}
		if len(capturedIntents) > 1 || captureEntries > 1 {
			fail(invDouble, id, "%d intents captured at the gateway, %d captures in the ledger", len(capturedIntents), captureEntries)
		}
		m := res.money[o.Event]
		m[0] += gwNet
		m[1] += p.Captured - p.Refunded
		if sold {
			m[2] += o.Amounts.Total
			soldTickets[o.Event] += o.Tickets
		}
		res.money[o.Event] = m
		if sold {
			if gwNet != o.Amounts.Total || p.Captured-p.Refunded != o.Amounts.Total {
				fail(invSeatNoCapture, id, "%s with a total of %d, but the gateway holds %d and the ledger %d", o.State, o.Amounts.Total, gwNet, p.Captured-p.Refunded)
			}
		} else if gwNet != 0 {
			fail(invCaptureNoOrder, id, "%s, but the gateway holds %d of it (%d intents)", o.State, gwNet, len(f.intents[id]))
		} else if p.Captured != p.Refunded {
			fail(invEnded, id, "%s, but the ledger holds %d captured, %d refunded", o.State, p.Captured, p.Refunded)
		}
		checkTickets(f, o, func(format string, args ...any) { fail(invTickets, id, format, args...) })
		for _, h := range o.Holds {
			st := f.holds[h.ID]
			switch {
			case sold && st != inventory.Sold:
				fail(invEnded, id, "%s, but its hold %s is %s", o.State, h.ID, st)
			case !sold && st == inventory.Sold:
				fail(invSeatNoCapture, id, "%s, but its hold %s is sold", o.State, h.ID)
			case !sold && st == inventory.Held:
				fail(invEnded, id, "%s, but its hold %s is still held", o.State, h.ID)
			}
		}
		// The ledger, the order and the gateway tell one story.
		if len(capturedIntents) == 1 {
			in := capturedIntents[0]
			if !hasLedger || p.IntentID != in.ID || p.Captured != in.AmountReceived || p.Refunded != in.AmountRefunded {
				fail(invLedger, id, "the gateway captured %d and refunded %d on %s; the ledger (%v) has %d and %d on %q",
					in.AmountReceived, in.AmountRefunded, in.ID, hasLedger, p.Captured, p.Refunded, p.IntentID)
			}
		} else if hasLedger && p.Captured != 0 {
			fail(invLedger, id, "the ledger has a capture of %d the gateway does not", p.Captured)
		}
		if o.Payment.Captured != p.Captured || o.Payment.Refunded != p.Refunded {
			fail(invLedger, id, "the order says captured %d, refunded %d; the ledger %d and %d", o.Payment.Captured, o.Payment.Refunded, p.Captured, p.Refunded)
		}
		// What the order took besides seats is kept if it is sold, given
		// back otherwise.
		if code, ok := f.redeemed[id]; sold && o.Voucher != "" && code != o.Voucher {
			fail(invExtras, id, "%s with voucher %s, but its use is not recorded", o.State, o.Voucher)
		} else if !sold && ok {
			fail(invExtras, id, "%s, but it keeps a use of voucher %s", o.State, code)
		}
		want := map[string]int{}
		for _, a := range o.AddOns {
			want[a.ID] += a.Quantity
			if sold {
				stock[o.Event+" "+a.ID] += a.Quantity
			}
		}
		if got := f.reserved[id]; sold && !maps.Equal(got, want) {
			fail(invExtras, id, "%s with add-ons %v, reserved %v", o.State, want, got)
		} else if !sold && len(got) > 0 {
			fail(invExtras, id, "%s, but it keeps add-ons %v", o.State, got)
		}
		checkOrderEvents(f, o, func(format string, args ...any) { fail(invEvents, id, format, args...) })
		if hasLedger {
			checkPaymentEvents(f.payEvents[id], p, func(format string, args ...any) { fail(invPayEvents, id, format, args...) })
		}
	}
	for id, ins := range f.intents {
		if _, ok := f.orders[id]; ok {
			continue
		}
		for _, in := range ins {
			if in.AmountReceived > 0 {
				fail(invCaptureNoOrder, "", "intent %s captured %d for order %q, which does not exist", in.ID, in.AmountReceived, id)
			}
		}
	}
	uses := map[string]int{}
	for id, code := range f.redeemed {
		uses[code]++
		if _, ok := f.orders[id]; !ok {
			fail(invExtras, "", "voucher %s is used by order %s, which does not exist", code, id)
		}
	}
	if uses[ktFewVoucher] > ktFewUses {
		fail(invExtras, "", "voucher %s has %d uses, at most %d", ktFewVoucher, uses[ktFewVoucher], ktFewUses)
	}
	for id, items := range f.reserved {
		if _, ok := f.orders[id]; !ok {
			fail(invExtras, "", "add-ons %v are reserved for order %s, which does not exist", items, id)
		}
	}
	for k := range maps.Keys(f.stock) {
		stock[k] += 0
	}
	for k, n := range stock {
		if f.stock[k] != n {
			fail(invExtras, "", "add-on %s: %d units reserved, %d in paid orders", k, f.stock[k], n)
		}
	}
	for ev, n := range f.sold {
		if n != soldTickets[ev] {
			fail(invSeatNoCapture, "", "event %s: %d seats and units sold, %d in confirmed orders", ev, n, soldTickets[ev])
		}
	}
	if f.kafka != nil {
		for id, want := range f.eventIDs {
			if got := f.kafka[id]; got != want {
				fail(invKafka, "", "event %s is in EVENTS %d times, in Kafka %d", id, want, got)
			}
		}
		for id, n := range f.kafka {
			if f.eventIDs[id] == 0 {
				fail(invKafka, "", "event %s is in Kafka %d times, not in EVENTS", id, n)
			}
		}
	}
	for ev, m := range res.money {
		if m[0] != m[2] || m[1] != m[2] {
			fail(invMoney, "", "event %s: the gateway holds %d net, the ledger %d, the confirmed orders total %d", ev, m[0], m[1], m[2])
		}
	}
	return res
}

// outcomeOf names how an order ended.
func outcomeOf(o orders.Order) string {
	s := string(o.State)
	if o.Late != "" {
		s += " (late: " + string(o.Late) + ")"
	}
	return s
}

// checkOrderEvents compares an order's transitions with its events in
// EVENTS: one event per transition, in order, the last one the order's
// state and money.
// reached reports whether o was ever in state st.
func reached(o orders.Order, st orders.State) bool {
	return slices.ContainsFunc(o.History, func(t orders.Transition) bool { return t.To == st })
}

// checkTickets checks o's tickets: a sold order is fulfilled with one
// ticket per seat and unit, each once and none revoked; an order never
// confirmed has none; an order refunded after its confirmation has every
// ticket it got revoked.
func checkTickets(f ktFacts, o orders.Order, fail func(string, ...any)) {
	got := f.tickets[o.ID]
	if !reached(o, orders.Confirmed) {
		if len(got) > 0 {
			fail("%s and never confirmed, but it has %d tickets", o.State, len(got))
		}
		return
	}
	if !o.State.SeatsSold() {
		for _, t := range got {
			if !f.revoked[t.ID] {
				fail("%s, but its ticket %s is not revoked", o.State, t.ID)
			}
		}
		return
	}
	if o.State != orders.Fulfilled {
		fail("%s, not fulfilled", o.State)
	}
	seen := map[string]bool{}
	for _, t := range got {
		if seen[t.ID] || t.Order != o.ID {
			fail("ticket %s of order %s twice or of another order", t.ID, t.Order)
		}
		if f.revoked[t.ID] {
			fail("its ticket %s is revoked", t.ID)
		}
		seen[t.ID] = true
	}
	if len(got) != o.Tickets {
		fail("%d tickets for %d seats and units", len(got), o.Tickets)
	}
}

func checkOrderEvents(f ktFacts, o orders.Order, fail func(string, ...any)) {
	var got []string
	var last *ktEvent
	for i, e := range f.orderEvents[o.ID] {
		if e.typ == orders.EventTypePrefix+"payment_declined" {
			continue
		}
		got = append(got, strings.TrimPrefix(e.typ, orders.EventTypePrefix))
		last = &f.orderEvents[o.ID][i]
	}
	want := []string{"created"}
	for _, h := range o.History[1:] {
		want = append(want, string(h.To))
	}
	if !slices.Equal(got, want) {
		fail("EVENTS has %v, the order went %v", got, want)
		return
	}
	if last.data.State != o.State || last.data.Captured != o.Payment.Captured || last.data.Refunded != o.Payment.Refunded {
		fail("the last event says %s captured %d refunded %d; the order is %s, %d, %d", last.data.State, last.data.Captured,
			last.data.Refunded, o.State, o.Payment.Captured, o.Payment.Refunded)
	}
}

// checkPaymentEvents checks that every entry of the ledger reached EVENTS
// and that its newest event is the ledger's last state.
func checkPaymentEvents(evs []payment.Payment, p payment.Payment, fail func(string, ...any)) {
	published := map[string]bool{}
	var newest payment.Payment
	for _, e := range evs {
		for _, en := range e.Entries {
			published[string(en.Kind)+" "+en.ID] = true
		}
		if e.Version > newest.Version {
			newest = e
		}
	}
	for _, en := range p.Entries {
		if !published[string(en.Kind)+" "+en.ID] {
			fail("the ledger's %s %s (%d) is in no payment event", en.Kind, en.ID, en.Amount)
		}
	}
	if newest.Version != p.Version || newest.Status != p.Status {
		fail("the newest payment event is version %d (%s); the ledger is at %d (%s)", newest.Version, newest.Status, p.Version, p.Status)
	}
}

// killTable writes the table: for each step (rows) and each process
// killed (columns) the orders that were at that step at the kill, how
// they ended and how many broke an invariant; then each cell's outcomes,
// the totals and the invariants.
func killTable(kills []killPoint, f ktFacts, res ktResult) string {
	var b strings.Builder
	b.WriteString("\nKILL TABLE: orders at each step of the saga when each process was killed → how they ended (✗: breaking an invariant)\n\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "step \\ killed")
	for _, kp := range kills {
		fmt.Fprintf(tw, "\t%s", kp.victim)
	}
	fmt.Fprintln(tw)
	for _, s := range killSteps {
		fmt.Fprint(tw, s)
		for _, kp := range kills {
			n, bad := len(kp.steps[s]), 0
			for _, id := range kp.steps[s] {
				if res.bad[id] {
					bad++
				}
			}
			cell := fmt.Sprintf("%d ✓", n)
			if bad > 0 {
				cell = fmt.Sprintf("%d, %d ✗", n, bad)
			} else if n == 0 {
				cell = "-"
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	for _, kp := range kills {
		fmt.Fprintf(&b, "\n%s killed %v into the run (steps filled in %v, answering again %v later):\n", kp.victim,
			kp.at.Round(100*time.Millisecond), kp.waited.Round(100*time.Millisecond), kp.back.Round(100*time.Millisecond))
		for _, s := range killSteps {
			fmt.Fprintf(&b, "  %-40s %s\n", s, countOutcomes(kp.steps[s], res))
		}
	}
	all := make([]string, 0, len(f.orders))
	for id := range f.orders {
		all = append(all, id)
	}
	fmt.Fprintf(&b, "\nall %d orders: %s\n", len(all), countOutcomes(all, res))
	byKind := map[ktKind][]string{}
	for id, k := range f.kinds {
		byKind[k] = append(byKind[k], id)
	}
	listed := map[ktKind]bool{}
	for _, k := range ktMix {
		if !listed[k] {
			listed[k] = true
			fmt.Fprintf(&b, "  %-22s %s\n", k, countOutcomes(byKind[k], res))
		}
	}
	intents, refunds := 0, len(f.refunds)
	for _, ins := range f.intents {
		intents += len(ins)
	}
	events, payEvents := 0, 0
	for _, e := range f.orderEvents {
		events += len(e)
	}
	for _, e := range f.payEvents {
		payEvents += len(e)
	}
	kafka := "Kafka not read"
	if f.kafka != nil {
		records := 0
		for _, n := range f.kafka {
			records += n
		}
		kafka = fmt.Sprintf("Kafka (%s): %d records of %d order and payment events", f.kafkaName, records, len(f.kafka))
	}
	fmt.Fprintf(&b, "gateway: %d intents, %d refunds; ledger: %d payments; EVENTS: %d order events (%d repeated deliveries of one id), %d payment events; %s\n",
		intents, refunds, len(f.ledger), events, f.duplicates, payEvents, kafka)
	evs := make([]string, 0, len(res.money))
	for ev := range res.money {
		evs = append(evs, ev)
	}
	sort.Strings(evs)
	for _, ev := range evs {
		m := res.money[ev]
		fmt.Fprintf(&b, "money of %s: gateway net %d, ledger net %d, confirmed orders %d; %d seats and units sold\n", ev, m[0], m[1], m[2], f.sold[ev])
	}
	fmt.Fprintf(&b, "saga: an unpaid order expired %s after its pay_by; an ended order's compensations done %s after its end\n",
		lagOf(f, func(o orders.Order, h orders.Transition) (time.Duration, bool) {
			return h.At.Sub(o.PayBy), h.To == orders.Expired && h.Cause == "pay_by"
		}),
		lagOf(f, func(o orders.Order, h orders.Transition) (time.Duration, bool) {
			ended := h.To == orders.Expired || h.To == orders.Cancelled || h.To == orders.PaymentFailed
			return o.Updated.Sub(h.At), ended && o.State == h.To
		}))
	b.WriteString("\ninvariants:\n")
	for _, inv := range killInvariants {
		if inv == invKafka && f.kafka == nil {
			fmt.Fprintf(&b, "  %-62s %s\n", inv, "not checked")
			continue
		}
		mark := "✓"
		if n := len(res.violations[inv]); n > 0 {
			mark = fmt.Sprintf("✗ %d", n)
		}
		fmt.Fprintf(&b, "  %-62s %s\n", inv, mark)
	}
	return b.String()
}

// countOutcomes counts how the orders ended: "n orders: confirmed 3, …".
func countOutcomes(ids []string, res ktResult) string {
	if len(ids) == 0 {
		return "-"
	}
	counts := map[string]int{}
	bad := 0
	for _, id := range ids {
		o := res.outcome[id]
		if o == "" {
			o = "(not in the store)"
		}
		counts[o]++
		if res.bad[id] {
			bad++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return counts[keys[i]] > counts[keys[j]] || counts[keys[i]] == counts[keys[j]] && keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	s := fmt.Sprintf("%d: %s", len(ids), strings.Join(parts, ", "))
	if bad > 0 {
		s += fmt.Sprintf(" — %d ✗", bad)
	}
	return s
}

// lagOf summarises a delay over the orders' transitions that lag selects:
// its median and its largest.
func lagOf(f ktFacts, lag func(orders.Order, orders.Transition) (time.Duration, bool)) string {
	var ds []time.Duration
	for _, o := range f.orders {
		for _, h := range o.History {
			if d, ok := lag(o, h); ok {
				ds = append(ds, d)
			}
		}
	}
	if len(ds) == 0 {
		return "(none)"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%v at the median, %v at most (%d orders)", ds[len(ds)/2].Round(10*time.Millisecond), ds[len(ds)-1].Round(10*time.Millisecond), len(ds))
}
