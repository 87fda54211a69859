package bench

import (
	"testing"

	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// TestComparePurchases: the checker finds nothing wrong in a consistent
// run, and each kind of fault it is there for moves its verdict.
func TestComparePurchases(t *testing.T) {
	// A consistent run: o1 and o2 confirmed (one ticket of 5000 each),
	// o3 expired without a payment.
	order := func(id string, st orders.State) orders.Order {
		return orders.Order{ID: id, Event: "ev", State: st, Tickets: 1, Amounts: orders.Amounts{Currency: "USD", Total: 5000}}
	}
	capture := func(id string) payment.Entry {
		return payment.Entry{ID: id, Kind: payment.EntryCapture, Amount: 5000, Currency: "USD"}
	}
	paid := func(order, intent string) payment.Payment {
		return payment.Payment{OrderID: order, Event: "ev", IntentID: intent, Amount: 5000, Currency: "USD",
			Status: payment.StatusSucceeded, Captured: 5000, Entries: []payment.Entry{capture("ch_" + order)}}
	}
	intent := func(order, id string, received int64) psp.RecordIntent {
		return psp.RecordIntent{Intent: psp.Intent{ID: id, Amount: 5000, AmountReceived: received, Currency: "usd", Status: psp.StatusSucceeded}, OrderID: order}
	}
	type run struct {
		orders  map[string]orders.Order
		ledger  map[string]payment.Payment
		intents []psp.RecordIntent
		zones   []inventory.ZoneCount
	}
	good := func() run {
		return run{
			orders:  map[string]orders.Order{"o1": order("o1", orders.Confirmed), "o2": order("o2", orders.Confirmed), "o3": order("o3", orders.Expired)},
			ledger:  map[string]payment.Payment{"o1": paid("o1", "pi_1"), "o2": paid("o2", "pi_2")},
			intents: []psp.RecordIntent{intent("o1", "pi_1", 5000), intent("o2", "pi_2", 5000)},
			zones:   []inventory.ZoneCount{{ID: "ga", GA: true, Capacity: 10, Sold: 2}},
		}
	}
	for _, tc := range []struct {
		name                     string
		fault                    func(r *run)
		doubles, ledger, oversld int
	}{
		{"consistent", func(*run) {}, 0, 0, 0},
		{"a second capture in the ledger", func(r *run) {
			p := r.ledger["o1"]
			p.Entries = append(p.Entries, capture("ch_again"))
			p.Captured = 10000
			r.ledger["o1"] = p
		}, 1, 2, 0}, // the order's ledger and the event's net
		{"a second captured intent at the gateway", func(r *run) {
			r.intents = append(r.intents, intent("o1", "pi_1b", 5000))
		}, 1, 2, 0}, // the order's gateway record and the event's net
		{"a confirmed order the ledger has no capture of", func(r *run) {
			delete(r.ledger, "o2")
		}, 0, 3, 0}, // the ledger, the gateway's intent not the ledger's, the net
		{"a captured amount not the order's", func(r *run) {
			r.intents[1].AmountReceived = 4000
		}, 0, 2, 0},
		{"money kept for an expired order", func(r *run) {
			r.ledger["o3"] = paid("o3", "pi_3")
			r.intents = append(r.intents, intent("o3", "pi_3", 5000))
		}, 0, 4, 0},
		{"a payment of an order that does not exist", func(r *run) {
			r.intents = append(r.intents, intent("o9", "pi_9", 0))
		}, 0, 1, 0},
		{"an order left paid", func(r *run) {
			o := r.orders["o2"]
			o.State = orders.Paid
			r.orders["o2"] = o
		}, 0, 5, 1}, // unsettled, not confirmed yet captured (ledger, gateway), both nets; its ticket sold without a confirmed order
		{"sold beyond capacity", func(r *run) {
			r.zones[0].Capacity = 1
		}, 0, 0, 1},
		{"a seat sold twice over", func(r *run) {
			r.zones[0].Sold = 3
		}, 0, 0, 1},
		{"a confirmed order's seat not sold", func(r *run) {
			r.zones[0].Sold = 1
		}, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.fault(&r)
			c := comparePurchases(r.orders, r.ledger, r.intents, r.zones)
			if c.DoubleCaptures() != tc.doubles || c.LedgerMismatches() != tc.ledger || c.Oversold() != tc.oversld {
				t.Fatalf("double captures %d, ledger mismatches %d, oversold %d; want %d, %d, %d\n%+v",
					c.DoubleCaptures(), c.LedgerMismatches(), c.Oversold(), tc.doubles, tc.ledger, tc.oversld, c)
			}
			if (tc.doubles+tc.ledger+tc.oversld > 0) != (c.FirstProblem != "") {
				t.Fatalf("first problem %q", c.FirstProblem)
			}
		})
	}
}
