package bench

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ticketing/ticketing/core"
	"github.com/ticketing/ticketing/services/catalog"
	ticketsapi "github.com/ticketing/ticketing/services/fulfillment/natsapi"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/psp"
)

// PurchaseCheck is what the checker found in the stores after the run:
// the orders the load generator asked for (by the ids their idempotency
// keys make, whatever the answers were), the payment ledger's payments of
// the event, the gateway simulator's intents and the inventory's counts.
type PurchaseCheck struct {
	Orders           int   `json:"orders"`
	Confirmed        int   `json:"confirmed"`
	ConfirmedTickets int   `json:"confirmed_tickets"`
	ConfirmedTotal   int64 `json:"confirmed_total"` // minor units
	LedgerPayments   int   `json:"ledger_payments"`
	LedgerNet        int64 `json:"ledger_net_captured"` // captures − refunds
	GatewayIntents   int   `json:"gateway_intents"`
	GatewayNet       int64 `json:"gateway_net_captured"` // received − refunded
	Sold             int   `json:"inventory_sold"`
	Held             int   `json:"inventory_held"`
	Capacity         int   `json:"inventory_capacity"`

	// LedgerDoubles: captures beyond the first in one payment's ledger;
	// GatewayDoubles: captured intents beyond the first of one order.
	LedgerDoubles  int `json:"ledger_double_captures"`
	GatewayDoubles int `json:"gateway_double_captures"`
	// OrderLedger: orders whose ledger disagrees with them (a confirmed
	// order without exactly one capture of its total and nothing
	// refunded; money kept for an order that is not sold; a payment of
	// an order that does not exist). OrderGateway: the same against the
	// gateway's intents (a confirmed order without exactly one captured
	// intent of its total, the ledger's; money kept at the gateway for an
	// order not sold). Totals: the event's net captured amount in the
	// ledger, and at the gateway, that is not the confirmed orders'
	// total (one each). Unsettled: orders still paid but not confirmed,
	// or being refunded, when the checker stopped waiting.
	OrderLedger  int `json:"order_ledger_mismatches"`
	OrderGateway int `json:"order_gateway_mismatches"`
	Totals       int `json:"total_mismatches"`
	Unsettled    int `json:"unsettled"`
	// OverCapacity: tickets sold beyond the zone's capacity;
	// SoldUnordered: sold tickets no confirmed order accounts for;
	// OrderedUnsold: confirmed orders' tickets the inventory does not
	// count as sold.
	OverCapacity  int `json:"over_capacity"`
	SoldUnordered int `json:"sold_without_confirmed_order"`
	OrderedUnsold int `json:"confirmed_not_sold"`

	// Fulfilled: sold orders whose tickets are issued (state
	// fulfilled); Tickets: the tickets the tickets service lists for
	// them; TicketMismatches: sold orders not fulfilled when the checker
	// stopped waiting, and fulfilled orders without one ticket per seat
	// and unit.
	Fulfilled        int `json:"fulfilled"`
	Tickets          int `json:"tickets_issued"`
	TicketMismatches int `json:"ticket_mismatches"`

	// StaleStatus: confirmed orders whose payment status (what the order
	// shows of it) is not "succeeded": a payment event older than the
	// capture applied after it. Not money: counted apart.
	StaleStatus int `json:"confirmed_payment_status_stale"`

	FirstProblem string `json:"first_problem,omitempty"`
}

// DoubleCaptures: money taken twice for one order, in the ledger or at
// the gateway.
func (c PurchaseCheck) DoubleCaptures() int { return c.LedgerDoubles + c.GatewayDoubles }

// LedgerMismatches: the orders, the ledger and the gateway disagree on
// money, or an order never settled.
func (c PurchaseCheck) LedgerMismatches() int {
	return c.OrderLedger + c.OrderGateway + c.Totals + c.Unsettled
}

// Oversold: tickets beyond capacity, and tickets on which the inventory
// and the confirmed orders disagree (either way).
func (c PurchaseCheck) Oversold() int { return c.OverCapacity + c.SoldUnordered + c.OrderedUnsold }

func (c *PurchaseCheck) problem(format string, a ...any) {
	if c.FirstProblem == "" {
		c.FirstProblem = fmt.Sprintf(format, a...)
	}
}

// purchaseChecker reads the stores of a purchase run.
type purchaseChecker struct {
	c       *core.Core
	sim     *psp.Server
	inv     *natsapi.Client
	tickets *ticketsapi.Client
	event   string
	seats   bool

	orders map[string]orders.Order // the event's, by id
}

// unsettled reports whether an order is still on its way: paid and not
// yet confirmed, being refunded, or owing a step after its sale.
func unsettled(o orders.Order) bool {
	return o.State == orders.Paid || o.State == orders.Refunding || (o.State.Sold() && len(o.Todo) > 0)
}

// settle checks the stores until they agree (the three verdicts 0) and
// the simulator has no webhook left to deliver, or until wait has passed,
// and leaves the last check in c. What the saga and the payment events
// still have to do right after the run (an order paid but not yet
// confirmed; money taken for an order whose write to paid failed, which
// the payment events' consumer applies again) is given that time; what
// is still wrong after it is the verdict.
func (k *purchaseChecker) settle(ctx context.Context, ids []string, wait time.Duration, c *PurchaseCheck) error {
	deadline := time.Now().Add(wait)
	for {
		k.orders = k.read(ctx, ids)
		if err := k.check(ctx, c); err != nil {
			return err
		}
		clean := c.DoubleCaptures() == 0 && c.LedgerMismatches() == 0 && c.Oversold() == 0 && c.Fulfilled == c.Confirmed
		if (clean && k.sim.Records().PendingDeliveries == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			return k.countTickets(ctx, c)
		}
		time.Sleep(250 * time.Millisecond) // polling with a deadline
	}
}

// countTickets reads the tickets of the fulfilled orders through the
// tickets service, a few orders at a time, and counts the sold orders
// without their tickets.
func (k *purchaseChecker) countTickets(ctx context.Context, c *PurchaseCheck) error {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
	)
	work := make(chan orders.Order)
	for range 16 {
		wg.Go(func() {
			for o := range work {
				list, err := k.tickets.OrderTickets(ctx, ticketsapi.OrderRequest{Account: o.Account, Order: o.ID})
				mu.Lock()
				switch {
				case err != nil:
					firstErr = cmp.Or(firstErr, fmt.Errorf("tickets of %s: %w", o.ID, err))
				case len(list.Tickets) != o.Tickets:
					c.TicketMismatches++
					c.problem("fulfilled order %s of %d tickets has %d", o.ID, o.Tickets, len(list.Tickets))
				}
				c.Tickets += len(list.Tickets)
				mu.Unlock()
			}
		})
	}
	for _, o := range k.orders {
		switch {
		case o.State == orders.Fulfilled:
			work <- o
		case o.State.SeatsSold():
			mu.Lock()
			c.TicketMismatches++
			c.problem("order %s is %s: its tickets were not issued", o.ID, o.State)
			mu.Unlock()
		}
	}
	close(work)
	wg.Wait()
	return firstErr
}

// read gets orders from the orders store, a few at a time; those that
// do not exist, or are of another event, are left out.
func (k *purchaseChecker) read(ctx context.Context, ids []string) map[string]orders.Order {
	store := k.c.Checkout.Saga.Store
	out := make(map[string]orders.Order, len(ids))
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				o, err := store.Get(ctx, id)
				if err != nil || o.Event != k.event {
					continue
				}
				mu.Lock()
				out[id] = o
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out
}

// check compares the orders read by settle with the ledger, the
// gateway's records and the inventory.
func (k *purchaseChecker) check(ctx context.Context, c *PurchaseCheck) error {
	// The ledger's payments of the event.
	ledger := map[string]payment.Payment{}
	for after := ""; ; {
		page, err := k.c.Payment.Ledger.List(ctx, payment.ListFilter{Event: k.event, After: after, Limit: payment.MaxListLimit})
		if err != nil {
			return fmt.Errorf("the payment ledger: %w", err)
		}
		for _, p := range page.Payments {
			ledger[p.OrderID] = p
		}
		if after = page.Next; after == "" {
			break
		}
	}
	// The gateway's intents: the simulator serves this run alone.
	recs := k.sim.Records()
	intents := map[string][]psp.RecordIntent{}
	for _, in := range recs.Intents {
		intents[in.OrderID] = append(intents[in.OrderID], in)
	}
	// An order the ledger or the gateway knows but the load generator
	// did not report: read it too.
	var more []string
	for id := range ledger {
		if _, ok := k.orders[id]; !ok {
			more = append(more, id)
		}
	}
	for id := range intents {
		if _, ok := k.orders[id]; !ok && id != "" {
			more = append(more, id)
		}
	}
	for id, o := range k.read(ctx, more) {
		k.orders[id] = o
	}

	// The inventory: what it sold is what the confirmed orders bought,
	// within capacity.
	a, err := k.inv.Availability(ctx, catalog.PartitionKey(k.event, 0))
	if err != nil {
		return fmt.Errorf("the event's availability: %w", err)
	}
	*c = comparePurchases(k.orders, ledger, recs.Intents, a.Zones)
	return nil
}

// comparePurchases is the checker's verdict on what it read: the orders
// of the event (by id), the ledger's payments of the event (by order),
// the gateway's intents and the event's zones.
func comparePurchases(all map[string]orders.Order, ledger map[string]payment.Payment, gw []psp.RecordIntent, zones []inventory.ZoneCount) PurchaseCheck {
	var c PurchaseCheck
	intents := map[string][]psp.RecordIntent{}
	for _, in := range gw {
		intents[in.OrderID] = append(intents[in.OrderID], in)
		c.GatewayNet += in.AmountReceived - in.AmountRefunded
	}
	c.GatewayIntents = len(gw)
	c.Orders = len(all)
	for id, o := range all {
		if unsettled(o) {
			c.Unsettled++
			c.problem("order %s is still %s (todo %v)", id, o.State, o.Todo)
		}
		sold := o.State.SeatsSold()
		if o.State == orders.Fulfilled {
			c.Fulfilled++
		}
		if sold {
			if o.Payment.Status != string(orders.PaymentSucceeded) {
				c.StaleStatus++
			}
			c.Confirmed++
			c.ConfirmedTickets += o.Tickets
			c.ConfirmedTotal += o.Amounts.Total
		}
		p, inLedger := ledger[id]
		caps := 0
		for _, e := range p.Entries {
			if e.Kind == payment.EntryCapture {
				caps++
			}
		}
		var captured []psp.RecordIntent
		for _, in := range intents[id] {
			if in.AmountReceived > 0 {
				captured = append(captured, in)
			}
		}
		switch {
		case sold && (!inLedger || caps != 1 || p.Captured != o.Amounts.Total || p.Refunded != 0):
			c.OrderLedger++
			c.problem("confirmed order %s of %d: ledger has %d captures, captured %d, refunded %d", id, o.Amounts.Total, caps, p.Captured, p.Refunded)
		case !sold && p.Captured != p.Refunded:
			c.OrderLedger++
			c.problem("order %s is %s but the ledger keeps %d", id, o.State, p.Captured-p.Refunded)
		}
		switch {
		case sold && (len(captured) != 1 || captured[0].AmountReceived != o.Amounts.Total || captured[0].AmountRefunded != 0 || captured[0].ID != p.IntentID):
			c.OrderGateway++
			c.problem("confirmed order %s of %d: the gateway has %d captured intents (the ledger's is %s)", id, o.Amounts.Total, len(captured), p.IntentID)
		case !sold:
			for _, in := range captured {
				if in.AmountReceived != in.AmountRefunded {
					c.OrderGateway++
					c.problem("order %s is %s but the gateway keeps %d of intent %s", id, o.State, in.AmountReceived-in.AmountRefunded, in.ID)
				}
			}
		}
		if caps > 1 {
			c.LedgerDoubles += caps - 1
			c.problem("order %s: %d captures in the ledger", id, caps)
		}
		if len(captured) > 1 {
			c.GatewayDoubles += len(captured) - 1
			c.problem("order %s: %d captured intents at the gateway", id, len(captured))
		}
	}
	for id, p := range ledger {
		c.LedgerPayments++
		c.LedgerNet += p.Captured - p.Refunded
		if _, ok := all[id]; !ok {
			c.OrderLedger++
			c.problem("the ledger has a payment of order %s, which does not exist", id)
		}
	}
	for id, ins := range intents {
		if _, ok := all[id]; !ok {
			c.OrderGateway++
			c.problem("the gateway has %d intents of order %q, which does not exist", len(ins), id)
		}
	}
	if c.LedgerNet != c.ConfirmedTotal {
		c.Totals++
		c.problem("the ledger's net capture of the event is %d, its confirmed orders' total %d", c.LedgerNet, c.ConfirmedTotal)
	}
	if c.GatewayNet != c.ConfirmedTotal {
		c.Totals++
		c.problem("the gateway's net capture is %d, the confirmed orders' total %d", c.GatewayNet, c.ConfirmedTotal)
	}

	for _, z := range zones {
		c.Sold += z.Sold
		c.Held += z.Held
		c.Capacity += z.Capacity
		c.OverCapacity += max(z.Sold+z.Held-z.Capacity, 0)
	}
	if c.OverCapacity > 0 {
		c.problem("%d tickets sold or held beyond capacity", c.OverCapacity)
	}
	c.SoldUnordered = max(c.Sold-c.ConfirmedTickets, 0)
	c.OrderedUnsold = max(c.ConfirmedTickets-c.Sold, 0)
	if c.Sold != c.ConfirmedTickets {
		c.problem("the inventory sold %d tickets, the confirmed orders bought %d", c.Sold, c.ConfirmedTickets)
	}
	return c
}
