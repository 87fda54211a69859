package main

import (
	"fmt"
	"testing"

	"github.com/ticketing/ticketing/services/fulfillment"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// killFacts are the facts of a consistent run: o1 paid and confirmed,
// o2 expired unpaid.
func killFacts() ktFacts {
	ev := func(id, typ string, s orders.Summary) ktEvent {
		return ktEvent{id: id, typ: orders.EventTypePrefix + typ, data: s}
	}
	o1 := orders.Order{ID: "o1", Event: "ev", State: orders.Fulfilled, Tickets: 1, Amounts: orders.Amounts{Currency: "USD", Total: 5000},
		Voucher: ktVoucher, AddOns: []orders.AddOn{{ID: "parking", Quantity: 1}},
		Holds: []orders.Hold{{ID: "h1", Quantity: 1}}, Payment: orders.Payment{Captured: 5000},
		History: []orders.Transition{{To: orders.AwaitingPayment}, {To: orders.Paid}, {To: orders.Confirmed}, {To: orders.Fulfilled}}}
	o2 := orders.Order{ID: "o2", Event: "ev", State: orders.Expired, Tickets: 2, Amounts: orders.Amounts{Currency: "USD", Total: 9000},
		Holds:   []orders.Hold{{ID: "h2", Quantity: 2}},
		History: []orders.Transition{{To: orders.AwaitingPayment}, {To: orders.Expired}}}
	pay := payment.Payment{OrderID: "o1", IntentID: "pi_1", Amount: 5000, Currency: "USD", Status: payment.StatusSucceeded, Captured: 5000,
		Entries: []payment.Entry{{ID: "ch_1", Kind: payment.EntryCapture, Amount: 5000}}, Version: 3}
	return ktFacts{
		kinds:   map[string]ktKind{"o1": kFrictionless, "o2": kUnpaid},
		orders:  map[string]orders.Order{"o1": o1, "o2": o2},
		ledger:  map[string]payment.Payment{"o1": pay},
		intents: map[string][]psp.RecordIntent{"o1": {{Intent: psp.Intent{ID: "pi_1", Amount: 5000, AmountReceived: 5000, Status: psp.StatusSucceeded}, OrderID: "o1"}}},
		orderEvents: map[string][]ktEvent{
			"o1": {ev("e1", "created", orders.Summary{}), ev("e2", "paid", orders.Summary{}),
				ev("e3", "confirmed", orders.Summary{State: orders.Confirmed, Captured: 5000}),
				ev("e6", "fulfilled", orders.Summary{State: orders.Fulfilled, Captured: 5000})},
			"o2": {ev("e4", "created", orders.Summary{}), ev("e5", "expired", orders.Summary{State: orders.Expired})},
		},
		payEvents: map[string][]payment.Payment{"o1": {pay}},
		eventIDs:  map[string]int{"e1": 1, "e2": 1, "e3": 1, "e4": 1, "e5": 1, "e6": 1, "pay_o1_3": 1},
		kafka:     map[string]int{"e1": 1, "e2": 1, "e3": 1, "e4": 1, "e5": 1, "e6": 1, "pay_o1_3": 1},
		tickets:   map[string][]fulfillment.View{"o1": {{ID: "t1", Order: "o1", Event: "ev"}}},
		holds:     map[string]inventory.Status{"h1": inventory.Sold, "h2": inventory.Expired},
		sold:      map[string]int{"ev": 1},
		redeemed:  map[string]string{"o1": ktVoucher},
		reserved:  map[string]map[string]int{"o1": {"parking": 1}},
		stock:     map[string]int{"ev parking": 1},
		held:      map[string]int{"ev": 0},
	}
}

// The checker finds each kind of break it is there for, and nothing in a
// consistent run: it cannot pass the kill table by seeing nothing.
func TestKillTableCheckerFindsEachBreak(t *testing.T) {
	order := func(f *ktFacts, id string, change func(*orders.Order)) {
		o := f.orders[id]
		change(&o)
		f.orders[id] = o
	}
	captured := func(order, id string, amount int64) psp.RecordIntent {
		return psp.RecordIntent{Intent: psp.Intent{ID: id, Amount: amount, AmountReceived: amount, Status: psp.StatusSucceeded}, OrderID: order}
	}
	for _, tc := range []struct {
		name  string
		spoil func(*ktFacts)
		want  string
	}{
		{"consistent", func(*ktFacts) {}, ""},
		{"an order still owing a step", func(f *ktFacts) {
			order(f, "o2", func(o *orders.Order) { o.Todo = []orders.Step{orders.StepReleaseHolds} })
		}, invEnded},
		{"an order still open", func(f *ktFacts) { order(f, "o2", func(o *orders.Order) { o.State = orders.AwaitingPayment }) }, invEnded},
		{"a buyer's order not in the store", func(f *ktFacts) { f.kinds["o3"] = kChallenge }, invEnded},
		{"an expired order's hold still held", func(f *ktFacts) { f.holds["h2"] = inventory.Held }, invEnded},
		{"a second captured intent", func(f *ktFacts) { f.intents["o1"] = append(f.intents["o1"], captured("o1", "pi_2", 5000)) }, invDouble},
		{"a second capture in the ledger", func(f *ktFacts) {
			p := f.ledger["o1"]
			p.Entries = append(p.Entries, payment.Entry{ID: "ch_2", Kind: payment.EntryCapture, Amount: 5000})
			f.ledger["o1"] = p
		}, invDouble},
		{"a confirmed order the gateway took nothing for", func(f *ktFacts) { delete(f.intents, "o1") }, invSeatNoCapture},
		{"an expired order's hold sold", func(f *ktFacts) { f.holds["h2"] = inventory.Sold }, invSeatNoCapture},
		{"seats sold that no order confirmed", func(f *ktFacts) { f.sold["ev"] = 3 }, invSeatNoCapture},
		{"a capture kept for an expired order", func(f *ktFacts) { f.intents["o2"] = []psp.RecordIntent{captured("o2", "pi_3", 9000)} }, invCaptureNoOrder},
		{"a capture of an order that does not exist", func(f *ktFacts) { f.intents["o9"] = []psp.RecordIntent{captured("o9", "pi_9", 100)} }, invCaptureNoOrder},
		{"a partial refund of a confirmed order", func(f *ktFacts) {
			f.intents["o1"][0].AmountRefunded = 1000
		}, invMoney},
		{"the ledger misses the capture", func(f *ktFacts) { delete(f.ledger, "o1") }, invLedger},
		{"the order misses the capture", func(f *ktFacts) { order(f, "o1", func(o *orders.Order) { o.Payment.Captured = 0 }) }, invLedger},
		{"an expired order keeps its voucher use", func(f *ktFacts) { f.redeemed["o2"] = ktVoucher }, invExtras},
		{"a confirmed order's voucher use lost", func(f *ktFacts) { delete(f.redeemed, "o1") }, invExtras},
		{"a voucher used past its cap", func(f *ktFacts) {
			for i := range ktFewUses + 1 {
				id := fmt.Sprintf("x%d", i)
				f.orders[id] = orders.Order{ID: id, Event: "ev", State: orders.Confirmed, Voucher: ktFewVoucher,
					History: []orders.Transition{{To: orders.AwaitingPayment}}}
				f.redeemed[id] = ktFewVoucher
			}
		}, invExtras},
		{"an expired order keeps its add-ons", func(f *ktFacts) { f.reserved["o2"] = map[string]int{"parking": 2} }, invExtras},
		{"add-on units not given back", func(f *ktFacts) { f.stock["ev parking"] = 3 }, invExtras},
		{"a transition not in EVENTS", func(f *ktFacts) { f.orderEvents["o1"] = append(f.orderEvents["o1"][:1], f.orderEvents["o1"][2]) }, invEvents},
		{"transitions out of order in EVENTS", func(f *ktFacts) {
			e := f.orderEvents["o1"]
			e[1], e[2] = e[2], e[1]
		}, invEvents},
		{"a capture in no payment event", func(f *ktFacts) { f.payEvents["o1"] = nil }, invPayEvents},
		{"an event EVENTS has, Kafka not", func(f *ktFacts) { delete(f.kafka, "e3") }, invKafka},
		{"an event twice in Kafka", func(f *ktFacts) { f.kafka["e3"] = 2 }, invKafka},
		{"a sold order without its ticket", func(f *ktFacts) { f.tickets["o1"] = nil }, invTickets},
		{"a ticket issued twice", func(f *ktFacts) { f.tickets["o1"] = append(f.tickets["o1"], f.tickets["o1"][0]) }, invTickets},
		{"a confirmed order never fulfilled", func(f *ktFacts) { order(f, "o1", func(o *orders.Order) { o.State = orders.Confirmed }) }, invTickets},
		{"tickets of an order never sold", func(f *ktFacts) { f.tickets["o2"] = []fulfillment.View{{ID: "t2", Order: "o2"}} }, invTickets},
		{"a sold order's ticket revoked", func(f *ktFacts) { f.revoked = map[string]bool{"t1": true} }, invTickets},
		{"a refunded order's ticket still valid", func(f *ktFacts) {
			order(f, "o1", func(o *orders.Order) {
				o.State = orders.Refunded
				o.History = append(o.History, orders.Transition{To: orders.Refunding}, orders.Transition{To: orders.Refunded})
			})
		}, invTickets},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := killFacts()
			tc.spoil(&f)
			res := checkKillTable(f)
			if tc.want == "" {
				for inv, v := range res.violations {
					t.Errorf("%s: %v", inv, v)
				}
				return
			}
			if len(res.violations[tc.want]) == 0 {
				t.Fatalf("not found: %q (found %v)", tc.want, res.violations)
			}
		})
	}
}
