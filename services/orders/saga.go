package orders

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/pricing"
)

// Inventory is what the saga asks of the inventory's partition owners.
// Every call is idempotent by hold (and order): a repeat answers the
// state again.
type Inventory interface {
	// Confirm sells a hold for an order; with reclaim, a hold that ended
	// is sold again if its seats are free (inventory.ConfirmRequest).
	// The hold's id names its partition.
	Confirm(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error)
	// Release frees a live hold of holder.
	Release(ctx context.Context, ref inventory.HoldRef) (inventory.Hold, error)
	// CancelSale frees a sold hold of an order.
	CancelSale(ctx context.Context, r inventory.ConfirmRequest) (inventory.Hold, error)
}

// PaymentStatus is the payment service's word for where an order's
// payment is.
type PaymentStatus string

// The payment statuses the saga acts on.
const (
	PaymentNone           PaymentStatus = ""                // no payment was started
	PaymentPending        PaymentStatus = "pending"         // under way at the gateway
	PaymentRequiresAction PaymentStatus = "requires_action" // a 3-D Secure challenge is open
	PaymentSucceeded      PaymentStatus = "succeeded"       // captured
	PaymentDeclined       PaymentStatus = "failed"          // the last attempt was declined
	PaymentCanceled       PaymentStatus = "canceled"        // voided
	PaymentRefunded       PaymentStatus = "refunded"
)

// PaymentResult is an order's payment as the payment service reports it.
type PaymentResult struct {
	Status         PaymentStatus `json:"status"`
	IntentID       string        `json:"intent_id,omitempty"`
	RedirectURL    string        `json:"redirect_url,omitempty"`
	DeclineCode    string        `json:"decline_code,omitempty"`
	DeclineMessage string        `json:"decline_message,omitempty"`
	Captured       int64         `json:"captured"`
	Refunded       int64         `json:"refunded"`
	Brand          string        `json:"brand,omitempty"`
	Last4          string        `json:"last4,omitempty"`
}

// PayRequest asks the payment service to pay an order with a card token
// (the vault's, from the card-entry page).
type PayRequest struct {
	Order     string `json:"order"`
	Account   string `json:"account"`
	Event     string `json:"event,omitempty"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Method    string `json:"method"`
	ReturnURL string `json:"return_url"`
	// Attempt numbers the order's payment attempts (from 1): the
	// gateway's idempotency key of the confirm.
	Attempt int `json:"attempt"`
}

// Payments is what the saga asks of the payment service. Every call is
// idempotent by order (and attempt).
type Payments interface {
	Pay(ctx context.Context, r PayRequest) (PaymentResult, error)
	// Status reads the payment from the gateway.
	Status(ctx context.Context, order string) (PaymentResult, error)
	// Void cancels the payment if it has not succeeded, and reports
	// where it is: succeeded means the money was taken after all.
	Void(ctx context.Context, order string) (PaymentResult, error)
	// Refund refunds amount of the capture (once per order: a repeat
	// answers the refund again).
	Refund(ctx context.Context, order string, amount int64, reason string) (PaymentResult, error)
}

// Extras gives back what an order took besides seats.
type Extras interface {
	Unredeem(ctx context.Context, voucher, order string) error
	ReleaseAddOns(ctx context.Context, event, order string) error
	// Redeem takes a use of the voucher for the account's order (again:
	// a late payment of an order whose end gave it back), as at at; a
	// repeat is a no-op (pricing.Store.Redeem).
	Redeem(ctx context.Context, voucher, account, order string, at time.Time) error
	// ReserveAddOns reserves the order's add-ons (again) within the
	// capacity of each; a repeat is a no-op (pricing.Store.ReserveAddOns).
	ReserveAddOns(ctx context.Context, event, order string, items []pricing.AddOnItem, capacity map[string]int) error
	// Rules is the event's price list, whose add-ons' capacity the
	// reservation keeps to.
	Rules(ctx context.Context, event string) (pricing.Rules, error)
}

// Saga carries orders through their steps. Its methods may run on any
// core node at once, for the same order too: every write is a
// compare-and-set of the order (Store.Update) and every step idempotent.
type Saga struct {
	Store     Store
	Inventory Inventory
	Payments  Payments
	Extras    Extras
	Log       *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// MaxAttempts is how many declined payments an order takes before it
	// fails. Default 5.
	MaxAttempts int
	// StepsInFlight bounds the due orders Run steps at once. Default 32.
	StepsInFlight int
}

func (s *Saga) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Saga) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Saga) stepsInFlight() int {
	if s.StepsInFlight > 0 {
		return s.StepsInFlight
	}
	return 32
}

func (s *Saga) maxAttempts() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return 5
}

// Reasons refining errs.Conflict from the saga.
const (
	ReasonNotOpen   = "order_not_open"   // the order can no longer be paid or cancelled
	ReasonPayByOver = "payment_too_late" // its holds expired
)

// Owned returns the order if account owns it; any other account gets
// errs.NotFound, as if it did not exist.
func (s *Saga) Owned(ctx context.Context, id, account string) (Order, error) {
	o, err := s.Store.Get(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.Account != account {
		return Order{}, errs.Errorf("orders.get", errs.NotFound, "no order %s", id)
	}
	return o, nil
}

// Fulfill marks a confirmed order fulfilled: its tickets exist. A
// fulfilled order stays so (a repeat changes nothing); an order that is
// not confirmed, or no longer (refunding), is errs.Conflict.
func (s *Saga) Fulfill(ctx context.Context, id string) (Order, error) {
	return s.Store.Update(ctx, id, func(o *Order) error {
		if o.State == Fulfilled {
			return nil
		}
		return o.Move(Fulfilled, "tickets_issued", s.now())
	})
}

// Pay starts a payment attempt of the account's order with a card token
// and applies the answer: paid (then the seats are confirmed at once), a
// 3-D Secure challenge to open, or a decline to show.
func (s *Saga) Pay(ctx context.Context, id, account, method, returnURL string) (Order, error) {
	const op = "orders.pay"
	var req PayRequest
	o, err := s.Store.Update(ctx, id, func(o *Order) error {
		if o.Account != account {
			return errs.Errorf(op, errs.NotFound, "no order %s", id)
		}
		if !o.State.Open() {
			return errs.Errorf(op, errs.Conflict, "the order is %s", o.State).WithReason(ReasonNotOpen)
		}
		if !s.now().Before(o.PayBy) {
			return errs.E(op, errs.Conflict, "the order's seats are no longer held").WithReason(ReasonPayByOver)
		}
		o.Payment.Attempts++
		o.Updated = s.now()
		req = PayRequest{Order: o.ID, Account: o.Account, Event: o.Event, Amount: o.Amounts.Total, Currency: o.Amounts.Currency,
			Method: method, ReturnURL: returnURL, Attempt: o.Payment.Attempts}
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	res, err := s.Payments.Pay(ctx, req)
	if err != nil {
		// The outcome is unknown: the payment service's events, or the
		// saga's next look at the gateway, will tell.
		return o, err
	}
	return s.OnPayment(ctx, id, res, "pay")
}

// OnPayment applies what the payment service reports of an order's
// payment (the answer to Pay, a webhook's event, a sync on the buyer's
// return), in any order and any number of times: a capture is taken once
// whatever the order's state, and then the seats are confirmed.
func (s *Saga) OnPayment(ctx context.Context, id string, res PaymentResult, source string) (Order, error) {
	now := s.now()
	o, err := s.Store.Update(ctx, id, func(o *Order) error {
		s.record(o, res)
		switch res.Status {
		case PaymentSucceeded:
			if o.State.Sold() || o.State == Refunding || o.State == Refunded {
				return nil // taken already
			}
			if !o.State.Open() {
				o.Late = LateRefunded // until the seats are held again (confirm)
			}
			return o.Move(Paid, "payment_succeeded:"+source, now)
		case PaymentRequiresAction:
			if o.State == AwaitingPayment {
				return o.Move(RequiresAction, "3ds_required:"+source, now)
			}
		case PaymentDeclined:
			if !o.State.Open() {
				return nil
			}
			o.Note("payment_declined", res.DeclineCode, now)
			if o.Payment.Attempts >= s.maxAttempts() {
				o.Reason = "declined"
				return o.Move(PaymentFailed, "declined:"+res.DeclineCode, now)
			}
			if o.State == RequiresAction {
				return o.Move(AwaitingPayment, "3ds_failed:"+source, now)
			}
		}
		return nil
	})
	if err != nil || !o.Owes(StepConfirm) {
		return o, err
	}
	return s.Step(ctx, id)
}

// Sync reads the order's payment from the gateway and applies it: the
// buyer's browser back from 3-D Secure does not wait for the gateway's
// webhook. With an account, another account's order is errs.NotFound;
// without one (the return, which may carry no session), any order is
// synced.
func (s *Saga) Sync(ctx context.Context, id, account string) (Order, error) {
	o, err := s.Store.Get(ctx, id)
	if err == nil && account != "" && o.Account != account {
		err = errs.Errorf("orders.sync", errs.NotFound, "no order %s", id)
	}
	if err != nil {
		return Order{}, err
	}
	if o.Payment.IntentID == "" {
		return o, nil
	}
	res, err := s.Payments.Status(ctx, id)
	if err != nil {
		return o, err
	}
	return s.OnPayment(ctx, id, res, "return")
}

// record copies the payment's facts into the order.
func (s *Saga) record(o *Order, res PaymentResult) {
	p := &o.Payment
	if res.Status != PaymentNone {
		p.Status = string(res.Status)
	}
	if res.IntentID != "" {
		p.IntentID = res.IntentID
	}
	p.RedirectURL = ""
	if res.Status == PaymentRequiresAction {
		p.RedirectURL = res.RedirectURL
	}
	switch res.Status {
	case PaymentDeclined:
		p.DeclineCode, p.DeclineMessage = res.DeclineCode, res.DeclineMessage
	case PaymentSucceeded:
		// The last attempt was not refused: an earlier one's decline
		// is no longer the order's.
		p.DeclineCode, p.DeclineMessage = "", ""
	}
	p.Captured = max(p.Captured, res.Captured)
	p.Refunded = max(p.Refunded, res.Refunded)
	if res.Brand != "" {
		p.Brand, p.Last4 = res.Brand, res.Last4
	}
}

// Cancel ends the account's open order before payment.
func (s *Saga) Cancel(ctx context.Context, id, account string) (Order, error) {
	const op = "orders.cancel"
	if _, err := s.Store.Update(ctx, id, func(o *Order) error {
		if o.Account != account {
			return errs.Errorf(op, errs.NotFound, "no order %s", id)
		}
		if o.State == Cancelled {
			return nil
		}
		if !o.State.Open() {
			return errs.Errorf(op, errs.Conflict, "the order is %s", o.State).WithReason(ReasonNotOpen)
		}
		o.Reason = "cancelled_by_buyer"
		return o.Move(Cancelled, "buyer", s.now())
	}); err != nil {
		return Order{}, err
	}
	return s.Step(ctx, id)
}

// Refund refunds a sold order in full (an organizer's or an admin's
// decision): its seats are freed and its capture refunded.
func (s *Saga) Refund(ctx context.Context, id, reason string) (Order, error) {
	const op = "orders.refund"
	if _, err := s.Store.Update(ctx, id, func(o *Order) error {
		if o.State == Refunding || o.State == Refunded {
			return nil
		}
		if o.State != Confirmed && o.State != Fulfilled && o.State != Paid {
			return errs.Errorf(op, errs.Conflict, "the order is %s: only a paid order is refunded", o.State).WithReason(ReasonNotOpen)
		}
		o.Reason = reason
		return o.Move(Refunding, "refund:"+reason, s.now())
	}); err != nil {
		return Order{}, err
	}
	return s.Step(ctx, id)
}

// Step does what the order owes now: an open order past PayBy expires,
// and the owed steps are worked off in order until one fails (it is
// retried later, with backoff) or none is left. It is what the saga's
// timer runs for each due order.
func (s *Saga) Step(ctx context.Context, id string) (Order, error) {
	o, err := s.Store.Get(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.State.Open() && !s.now().Before(o.PayBy) {
		if o, err = s.Store.Update(ctx, id, func(o *Order) error {
			if !o.State.Open() || s.now().Before(o.PayBy) {
				return nil
			}
			o.Reason = "not_paid_in_time"
			return o.Move(Expired, "pay_by", s.now())
		}); err != nil {
			return o, err
		}
	}
	for len(o.Todo) > 0 {
		step := o.Todo[0]
		res, err := s.do(ctx, &o, step)
		if err != nil {
			s.log().Warn("order step failed; retrying later", "order", id, "step", step, "tries", o.Tries+1, "err", err)
			return s.Store.Update(ctx, id, func(o *Order) error {
				if len(o.Todo) > 0 && o.Todo[0] == step {
					o.Retry(s.now())
				}
				return nil
			})
		}
		if o, err = s.Store.Update(ctx, id, func(o *Order) error {
			if !o.Owes(step) {
				return nil // another node did it
			}
			return s.finish(o, step, res)
		}); err != nil {
			return o, err
		}
	}
	return o, nil
}

// outcome is what a step learnt, applied to the order when it is marked
// done.
type outcome struct {
	payment   *PaymentResult
	lost      string // confirm: why the order cannot be sold (seats_taken, extras_taken); "" when it can
	reclaimed bool   // confirm: a hold that had ended was sold again
}

// do performs one step against the other services.
func (s *Saga) do(ctx context.Context, o *Order, step Step) (outcome, error) {
	var out outcome
	switch step {
	case StepVoid:
		res, err := s.Payments.Void(ctx, o.ID)
		if errs.Is(errs.NotFound, err) {
			break // no payment was started: nothing to void
		}
		if err != nil {
			return out, err
		}
		out.payment = &res
	case StepReleaseHolds:
		for _, h := range o.Holds {
			_, err := s.Inventory.Release(ctx, inventory.HoldRef{HoldID: h.ID, Holder: o.Account})
			if err != nil && !errs.Is(errs.NotFound, err) && !errs.Is(errs.Conflict, err) {
				return out, err
			}
		}
	case StepUnredeem:
		if o.Voucher != "" {
			if err := s.Extras.Unredeem(ctx, o.Voucher, o.ID); err != nil {
				return out, err
			}
		}
	case StepReleaseAddOns:
		if len(o.AddOns) > 0 {
			if err := s.Extras.ReleaseAddOns(ctx, o.Event, o.ID); err != nil {
				return out, err
			}
		}
	case StepConfirm:
		if o.Late != "" {
			// Paid after the order ended: what its end gave back (or was
			// about to), its voucher's use and its add-ons, is taken
			// again as its seats are, or the money goes back.
			lost, err := s.retake(ctx, o)
			if err != nil {
				return out, err
			}
			if lost {
				out.lost = "extras_taken"
				break
			}
		}
		now := s.now()
		for _, h := range o.Holds {
			_, err := s.Inventory.Confirm(ctx, inventory.ConfirmRequest{HoldID: h.ID, OrderID: o.ID, Reclaim: true})
			switch {
			case err == nil:
				if !now.Before(h.ExpiresAt) {
					out.reclaimed = true
				}
			case errs.Is(errs.Conflict, err) || errs.Is(errs.NotFound, err):
				out.lost = "seats_taken"
			default:
				return out, err
			}
		}
	case StepCancelSale:
		for _, h := range o.Holds {
			_, err := s.Inventory.CancelSale(ctx, inventory.ConfirmRequest{HoldID: h.ID, OrderID: o.ID})
			if err != nil && !errs.Is(errs.Conflict, err) && !errs.Is(errs.NotFound, err) {
				return out, err
			}
		}
	case StepRefund:
		if o.Payment.Captured == 0 && o.Payment.Status != string(PaymentSucceeded) {
			break // nothing was taken
		}
		res, err := s.Payments.Refund(ctx, o.ID, o.Payment.Captured, o.Reason)
		if err != nil {
			return out, err
		}
		if res.Status != PaymentRefunded && res.Refunded < o.Payment.Captured {
			return out, errs.Errorf("orders.refund", errs.Unavailable, "the refund is %s", res.Status)
		}
		out.payment = &res
	}
	return out, nil
}

// retake takes a late-paid order's voucher use (as when the order was
// made) and add-ons again. It reports lost when they are no longer to be
// had: the voucher used up by others meanwhile or gone, the add-ons sold
// out or gone from the price list.
func (s *Saga) retake(ctx context.Context, o *Order) (lost bool, err error) {
	// A refusal is an answer (lost), any other error a failure to retry.
	answer := func(err error) (bool, error) {
		for _, k := range []errs.Kind{errs.Conflict, errs.NotFound, errs.Invalid, errs.Mismatch, errs.Gone, errs.Forbidden} {
			if errs.Is(k, err) {
				return true, nil
			}
		}
		return false, err
	}
	if o.Voucher != "" {
		if err := s.Extras.Redeem(ctx, o.Voucher, o.Account, o.ID, o.Created); err != nil {
			return answer(err)
		}
	}
	if len(o.AddOns) > 0 {
		rules, err := s.Extras.Rules(ctx, o.Event)
		if err != nil {
			return answer(err)
		}
		items := make([]pricing.AddOnItem, len(o.AddOns))
		for i, a := range o.AddOns {
			items[i] = pricing.AddOnItem{ID: a.ID, Quantity: a.Quantity}
		}
		if err := s.Extras.ReserveAddOns(ctx, o.Event, o.ID, items, rules.AddOnCapacity()); err != nil {
			return answer(err)
		}
	}
	return false, nil
}

// finish marks step done on the freshest order with what it learnt, and
// makes the transition it leads to.
func (s *Saga) finish(o *Order, step Step, out outcome) error {
	now := s.now()
	if out.payment != nil {
		s.record(o, *out.payment)
	}
	o.Done(step, now)
	switch step {
	case StepVoid:
		if out.payment != nil && out.payment.Status == PaymentSucceeded && !o.State.Sold() {
			// Taken after all: a late payment.
			o.Late = LateRefunded
			return o.Move(Paid, "payment_succeeded:void", now)
		}
	case StepConfirm:
		if out.lost != "" {
			// Some seat, the voucher's use or an add-on is gone: whatever
			// this order took is given back and so is the money.
			o.Late, o.Reason = LateRefunded, out.lost
			return o.Move(Refunding, out.lost, now)
		}
		if o.Late != "" || out.reclaimed {
			o.Late = LateReheld
		}
		return o.Move(Confirmed, "seats_sold", now)
	}
	if o.State == Refunding && len(o.Todo) == 0 {
		return o.Move(Refunded, "refunded", now)
	}
	return nil
}

// Run works off due orders until ctx ends: every tick it lists what is
// due and steps each on a goroutine of its own, at most StepsInFlight at
// once and an order not again while its step is under way, so that a
// step waiting on a slow or lost call (a void the gateway does not
// answer, a payment service that died with the request) holds up no
// other order's expiry or compensation. Due orders past the bound wait
// for a later tick. Run returns once ctx has ended and its steps have.
func (s *Saga) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	sem := make(chan struct{}, s.stepsInFlight())
	var (
		mu   sync.Mutex
		busy = map[string]bool{}
		wg   sync.WaitGroup
	)
	defer wg.Wait()
	for {
		ids, err := s.Store.Due(ctx, s.now(), 256)
		if err != nil && ctx.Err() == nil {
			s.log().Warn("listing due orders failed", "err", err)
		}
	steps:
		for _, id := range ids {
			mu.Lock()
			if busy[id] {
				mu.Unlock()
				continue
			}
			select {
			case sem <- struct{}{}:
			default:
				mu.Unlock()
				break steps // all steppers busy: the rest at a later tick
			}
			busy[id] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(busy, id)
					mu.Unlock()
					<-sem
				}()
				if _, err := s.Step(ctx, id); err != nil && ctx.Err() == nil {
					s.log().Warn("order step failed", "order", id, "err", err)
				}
			})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
