// Package orders is the order of a purchase and the saga that carries it
// from a quote to confirmed seats: the domain only. An Order's state
// machine says which transitions exist and what each owes the rest of the
// system (its Todo: void the payment, release the holds, confirm the
// inventory, refund, …); the saga (Saga) works those steps off through
// interfaces to inventory, payment and pricing, and the Store keeps the
// order, its claims on holds, the account's purchase count and the events
// to publish (a transactional outbox) together in one atomic write.
//
// Adapters: services/orders/natskv (JetStream KV: the order's key alone,
// its events in its value, or one atomic batch where claims and counts
// change too) and services/orders/postgres (one transaction per write); both
// pass services/orders/orderstest. The core runs the saga
// (core/checkout.go).
package orders

import (
	"crypto/rand"
	"encoding/base32"
	"slices"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
)

// State is where an order is in its life.
type State string

// The states. An order starts awaiting payment; it ends confirmed (then
// fulfilled, once its tickets exist), refunded, expired, cancelled or
// payment_failed.
const (
	AwaitingPayment State = "awaiting_payment"
	RequiresAction  State = "requires_action" // a 3-D Secure challenge is open
	Paid            State = "paid"            // captured; the seats are being confirmed
	Confirmed       State = "confirmed"       // captured and the seats sold
	Fulfilled       State = "fulfilled"       // the tickets exist
	Refunding       State = "refunding"       // a refund is owed
	Refunded        State = "refunded"
	Expired         State = "expired"        // not paid in time
	Cancelled       State = "cancelled"      // by the buyer before payment
	PaymentFailed   State = "payment_failed" // too many declines, or the gateway refused
)

// Open reports whether the order may still be paid: it holds its seats
// and counts against the account's purchase limit.
func (s State) Open() bool { return s == AwaitingPayment || s == RequiresAction }

// Sold reports whether the order's seats are (being) sold to its buyer.
func (s State) Sold() bool { return s == Paid || s == Confirmed || s == Fulfilled }

// SeatsSold reports whether the inventory sold the order's seats:
// confirmed, or fulfilled since (its tickets issued).
func (s State) SeatsSold() bool { return s == Confirmed || s == Fulfilled }

// Counts reports whether the order's tickets count against the account's
// purchase limit for the event.
func (s State) Counts() bool { return s.Open() || s.Sold() }

// transitions lists each state's successors. Expired and Cancelled may
// still become Paid: a payment that succeeds after the order ended (the
// buyer's 3-D Secure finished as the hold expired) is taken, then the
// seats are held again if they are free or the money is refunded.
var transitions = map[State][]State{
	AwaitingPayment: {RequiresAction, Paid, Expired, Cancelled, PaymentFailed},
	RequiresAction:  {AwaitingPayment, Paid, Expired, Cancelled, PaymentFailed},
	Paid:            {Confirmed, Refunding},
	Confirmed:       {Fulfilled, Refunding},
	Fulfilled:       {Refunding},
	Refunding:       {Refunded},
	Expired:         {Paid},
	Cancelled:       {Paid},
	PaymentFailed:   {Paid},
}

// Step is a side effect an order owes after a transition, done by the saga
// (idempotently: a step may run more than once after a crash).
type Step string

// The steps.
const (
	StepVoid          Step = "void"           // cancel the payment intent if it has not succeeded
	StepReleaseHolds  Step = "release_holds"  // free the held seats
	StepUnredeem      Step = "unredeem"       // give the voucher's use back
	StepReleaseAddOns Step = "release_addons" // give the add-ons' capacity back
	StepConfirm       Step = "confirm"        // sell the held seats (re-hold them if the holds ended)
	StepCancelSale    Step = "cancel_sale"    // free sold seats again (a refund of a confirmed order)
	StepRefund        Step = "refund"         // refund the capture
)

// Late says what happened to a payment that succeeded after its order had
// ended or its holds had expired.
type Late string

// The outcomes of a late payment.
const (
	LateReheld   Late = "reheld"   // the same seats were free and were sold, the voucher's use and add-ons taken again
	LateRefunded Late = "refunded" // some were not to be had: the money went back
)

// Hold is one of an order's seat holds, as the inventory reported it when
// the order was made.
type Hold struct {
	Partition string    `json:"partition"`
	ID        string    `json:"hold_id"`
	Seats     []string  `json:"seats,omitempty"`
	Zone      string    `json:"zone,omitempty"`
	Quantity  int       `json:"quantity"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AddOn is a quantity of an add-on without a seat (parking, merchandise).
type AddOn struct {
	ID       string `json:"id"`
	Quantity int    `json:"quantity"`
}

// Line is one line of the order's price, as quoted: tickets per zone,
// add-ons, fees, taxes, discounts (negative). Amounts are minor units of
// the order's currency.
type Line struct {
	Kind        string `json:"kind"`
	Ref         string `json:"ref,omitempty"`
	Description string `json:"description"`
	Quantity    int    `json:"quantity,omitempty"`
	Unit        int64  `json:"unit,omitempty"`
	Amount      int64  `json:"amount"`
}

// Amounts are an order's totals in minor units of Currency. Total =
// Subtotal + Fees + Tax (exclusive taxes only) − Discount; Tax is
// reported also when it is included in the prices.
type Amounts struct {
	Currency string `json:"currency"`
	Subtotal int64  `json:"subtotal"`
	Fees     int64  `json:"fees"`
	Tax      int64  `json:"tax"`
	Discount int64  `json:"discount"`
	Total    int64  `json:"total"`
}

// Payment is what the order knows of its payment (the payment service
// keeps the rest, card data included).
type Payment struct {
	IntentID    string `json:"intent_id,omitempty"`
	Status      string `json:"status,omitempty"` // the payment service's status
	RedirectURL string `json:"redirect_url,omitempty"`
	// Decline is why the last attempt was refused.
	DeclineCode    string `json:"decline_code,omitempty"`
	DeclineMessage string `json:"decline_message,omitempty"`
	Attempts       int    `json:"attempts,omitempty"`
	Brand          string `json:"brand,omitempty"`
	Last4          string `json:"last4,omitempty"`
	Captured       int64  `json:"captured,omitempty"`
	Refunded       int64  `json:"refunded,omitempty"`
}

// Transition is one entry of an order's history.
type Transition struct {
	From  State     `json:"from,omitempty"`
	To    State     `json:"to"`
	At    time.Time `json:"at"`
	Cause string    `json:"cause"`
}

// Order is a purchase: one account's holds of one event, the add-ons and
// voucher that came with them, priced by a quote.
type Order struct {
	ID        string `json:"id"`
	Account   string `json:"account"`
	Event     string `json:"event"`
	Organizer string `json:"organizer,omitempty"`
	Channel   string `json:"channel,omitempty"` // who created it: web, a partner client id
	State     State  `json:"state"`
	Holds     []Hold `json:"holds"`
	// Tickets is the number of seats and GA units, the count the
	// purchase limit applies to.
	Tickets int     `json:"tickets"`
	AddOns  []AddOn `json:"add_ons,omitempty"`
	Voucher string  `json:"voucher,omitempty"`
	QuoteID string  `json:"quote_id"`
	Lines   []Line  `json:"lines"`
	Amounts Amounts `json:"amounts"`
	Payment Payment `json:"payment"`
	// Late is set when the payment succeeded after the order ended or its
	// holds expired.
	Late Late `json:"late,omitempty"`
	// Reason says why the order ended as it did (expired, declined,
	// seats_taken, …).
	Reason string `json:"reason,omitempty"`
	// PayBy is when an open order expires: its holds' first expiry.
	PayBy time.Time `json:"pay_by"`
	// Todo are the steps the saga still owes; NextAt is when it acts next
	// (a step's retry or PayBy), zero when nothing is due.
	Todo    []Step       `json:"todo,omitempty"`
	NextAt  time.Time    `json:"next_at,omitzero"`
	Tries   int          `json:"tries,omitempty"` // failed attempts at the first step of Todo
	History []Transition `json:"history"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	// IdemKey and Fingerprint are the creating request's idempotency key
	// (scoped to the caller, hashed) and the digest of its body.
	IdemKey     string `json:"idem_key,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Version     uint64 `json:"version"`

	// events are the domain events of the transitions made since the
	// order was read, written with it by the store.
	events []Event
}

// Event is a domain event of an order, written to the outbox with the
// order and relayed to EVENTS with ID as its Nats-Msg-Id.
type Event struct {
	ID    string    `json:"id"`
	Type  string    `json:"type"` // ticketing.order.<state>
	Order string    `json:"order"`
	At    time.Time `json:"at"`
	// Data is the order's summary at the transition (Summary).
	Data Summary `json:"data"`
}

// Summary is what an order event says: enough for reports and finance
// (amounts, late payments, refunds), nothing about cards.
type Summary struct {
	Order     string  `json:"order"`
	Account   string  `json:"account"`
	Event     string  `json:"event"`
	Organizer string  `json:"organizer,omitempty"`
	Channel   string  `json:"channel,omitempty"`
	State     State   `json:"state"`
	From      State   `json:"from,omitempty"`
	Cause     string  `json:"cause,omitempty"`
	Tickets   int     `json:"tickets"`
	Amounts   Amounts `json:"amounts"`
	Captured  int64   `json:"captured"`
	Refunded  int64   `json:"refunded"`
	Late      Late    `json:"late,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	Voucher   string  `json:"voucher,omitempty"`
}

// EventTypePrefix starts the type of every order event.
const EventTypePrefix = "ticketing.order."

// SubjectPrefix starts the EVENTS subject of every order event:
// events.order.<order id>.
const SubjectPrefix = "events.order."

// Subject is the EVENTS subject of an order's events.
func Subject(order string) string { return SubjectPrefix + order }

// CloudEvent is the envelope of an order event from source: the order is
// its subject and partition key (the Kafka record key), so that one
// order's events stay in order.
func CloudEvent(e Event, source string) cloudevents.Event {
	return cloudevents.Event{
		SpecVersion: cloudevents.SpecVersion, ID: e.ID, Source: source, Type: e.Type,
		Subject: e.Order, Time: e.At.UTC(), DataContentType: "application/json", PartitionKey: e.Order,
	}
}

// NewID returns a new order id: "o_" and 26 random base32 characters
// (130 bits), unguessable.
func NewID() string { return "o_" + random(16) }

// NewEventID returns a new event id.
func NewEventID() string { return "evt_" + random(16) }

var lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return lower.EncodeToString(b)
}

// Start makes o a new order awaiting payment at now, with its first event
// (ticketing.order.created). Its PayBy is its holds' first expiry.
func (o *Order) Start(now time.Time) error {
	const op = "orders.start"
	if o.ID == "" || o.Account == "" || o.Event == "" || len(o.Holds) == 0 {
		return errs.Errorf(op, errs.Invalid, "an order needs an id, an account, an event and holds")
	}
	o.State = AwaitingPayment
	o.Created, o.Updated = now, now
	o.PayBy = time.Time{}
	o.Tickets = 0
	for _, h := range o.Holds {
		if o.PayBy.IsZero() || h.ExpiresAt.Before(o.PayBy) {
			o.PayBy = h.ExpiresAt
		}
		o.Tickets += h.Quantity
	}
	o.NextAt = o.PayBy
	o.History = []Transition{{To: AwaitingPayment, At: now, Cause: "created"}}
	o.events = append(o.events, o.event("created", "", "created", now))
	return nil
}

// Move makes the transition to state at now for cause, with the steps it
// owes, and records its event. A transition the state machine does not
// have is errs.Conflict (reason "state"); moving to the current state is
// not a transition and returns errs.Conflict too, so callers can tell a
// repeated step from a new one.
func (o *Order) Move(to State, cause string, now time.Time) error {
	if !slices.Contains(transitions[o.State], to) {
		return errs.Errorf("orders.move", errs.Conflict, "an order %s cannot become %s", o.State, to).WithReason("state")
	}
	from := o.State
	o.State = to
	o.Updated = now
	o.History = append(o.History, Transition{From: from, To: to, At: now, Cause: cause})
	if to == Paid {
		// The money is taken: what the order took is kept (a late
		// payment stops the compensations of its end).
		o.Todo = slices.DeleteFunc(o.Todo, func(s Step) bool {
			return s == StepVoid || s == StepReleaseHolds || s == StepUnredeem || s == StepReleaseAddOns
		})
	}
	for _, s := range owes(from, to) {
		if !slices.Contains(o.Todo, s) {
			o.Todo = append(o.Todo, s)
		}
	}
	o.Tries = 0
	o.schedule(now)
	o.events = append(o.events, o.event(string(to), from, cause, now))
	return nil
}

// Note records an event that is not a transition (a declined attempt, a
// 3-D Secure challenge opened again) with the order's state unchanged.
func (o *Order) Note(kind, cause string, now time.Time) {
	o.Updated = now
	o.events = append(o.events, o.event(kind, o.State, cause, now))
}

// owes lists the steps a transition owes.
func owes(from, to State) []Step {
	switch to {
	case Expired, Cancelled, PaymentFailed:
		return []Step{StepVoid, StepReleaseHolds, StepUnredeem, StepReleaseAddOns}
	case Paid:
		// After a late payment too: the saga holds the seats again if
		// they are free, else refunds.
		return []Step{StepConfirm}
	case Refunding:
		// Seats sold are freed first, then what is still held, then the
		// money goes back.
		return []Step{StepCancelSale, StepReleaseHolds, StepRefund, StepUnredeem, StepReleaseAddOns}
	}
	return nil
}

// Done removes step from Todo (the saga did it) and schedules the next.
func (o *Order) Done(step Step, now time.Time) {
	o.Todo = slices.DeleteFunc(o.Todo, func(s Step) bool { return s == step })
	o.Tries = 0
	o.Updated = now
	o.schedule(now)
}

// Retry records a failed attempt at the first step and schedules the next
// one with exponential backoff (100 ms doubling to a minute).
func (o *Order) Retry(now time.Time) {
	o.Tries++
	backoff := 100 * time.Millisecond << min(o.Tries-1, 10)
	o.NextAt = now.Add(min(backoff, time.Minute))
	o.Updated = now
}

// schedule sets NextAt: now when steps are owed, PayBy while the order is
// open, else nothing.
func (o *Order) schedule(now time.Time) {
	switch {
	case len(o.Todo) > 0:
		o.NextAt = now
	case o.State.Open():
		o.NextAt = o.PayBy
	default:
		o.NextAt = time.Time{}
	}
}

// Owes reports whether step is still to be done.
func (o *Order) Owes(step Step) bool { return slices.Contains(o.Todo, step) }

// Due reports whether the saga should act on the order at now.
func (o *Order) Due(now time.Time) bool { return !o.NextAt.IsZero() && !now.Before(o.NextAt) }

// Events returns the events recorded since the order was read and forgets
// them (the store calls it once, when it writes them).
func (o *Order) Events() []Event {
	ev := o.events
	o.events = nil
	return ev
}

// Summary is the order's summary for its events.
func (o *Order) Summary() Summary {
	return Summary{
		Order: o.ID, Account: o.Account, Event: o.Event, Organizer: o.Organizer, Channel: o.Channel,
		State: o.State, Tickets: o.Tickets, Amounts: o.Amounts,
		Captured: o.Payment.Captured, Refunded: o.Payment.Refunded,
		Late: o.Late, Reason: o.Reason, Voucher: o.Voucher,
	}
}

func (o *Order) event(kind string, from State, cause string, now time.Time) Event {
	s := o.Summary()
	s.From, s.Cause = from, cause
	return Event{ID: NewEventID(), Type: EventTypePrefix + kind, Order: o.ID, At: now, Data: s}
}

// View is an order as its buyer sees it (the public API's body): no
// idempotency key, no saga bookkeeping.
type View struct {
	ID      string       `json:"id"`
	State   State        `json:"state"`
	Event   string       `json:"event"`
	Holds   []Hold       `json:"holds"`
	Tickets int          `json:"tickets"`
	AddOns  []AddOn      `json:"add_ons"`
	Voucher string       `json:"voucher,omitempty"`
	QuoteID string       `json:"quote_id"`
	Lines   []Line       `json:"lines"`
	Amounts Amounts      `json:"amounts"`
	Payment Payment      `json:"payment"`
	Late    Late         `json:"late,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	PayBy   time.Time    `json:"pay_by"`
	Created time.Time    `json:"created"`
	Updated time.Time    `json:"updated"`
	History []Transition `json:"history"`
}

// View is the order's public view.
func (o *Order) View() View {
	v := View{ID: o.ID, State: o.State, Event: o.Event, Holds: o.Holds, Tickets: o.Tickets, AddOns: o.AddOns,
		Voucher: o.Voucher, QuoteID: o.QuoteID, Lines: o.Lines, Amounts: o.Amounts, Payment: o.Payment,
		Late: o.Late, Reason: o.Reason, PayBy: o.PayBy, Created: o.Created, Updated: o.Updated, History: o.History}
	if v.AddOns == nil {
		v.AddOns = []AddOn{}
	}
	if v.Lines == nil {
		v.Lines = []Line{}
	}
	return v
}
