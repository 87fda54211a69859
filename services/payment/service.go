package payment

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Vault is what the service needs of the card vault
// (services/payment/vault): a token's card for one confirm, then its CVC
// forgotten.
type Vault interface {
	// OpenCard returns a token's card, its CVC included while the vault
	// keeps it, and what may be known of it outside the vault (recorded
	// with the payment), from one read of the vault. No such card is
	// errs.NotFound.
	OpenCard(ctx context.Context, token string) (Card, CardSummary, error)
	// ForgetCVC deletes the token's CVC.
	ForgetCVC(ctx context.Context, token string) error
}

// Publisher receives the payment's state after every change, as a domain
// event (services/payment/natsevents). Publish is idempotent by
// (order, version): the event id is made of both. It returns once the
// event is stored.
type Publisher interface {
	Publish(ctx context.Context, p Payment) error
}

// Service is the payment service: it pays orders through the gateway,
// one intent per order, and keeps the ledger of what moved. Every method
// is idempotent by order (and attempt), safe to call again after a crash
// or a lost answer, and safe for concurrent use, from several processes
// too: the ledger's compare-and-set and entry ids make a capture learnt
// twice (the answer, the return page, a webhook, a sync) one entry.
//
// Every version of a payment that a method writes is published (Events)
// before the method answers. A method that writes nothing (a webhook
// repeating what the pay's answer recorded, a sync that finds the same
// state) publishes the payment's version only when this process has not
// published it: a writer killed between its write and its publish left
// that version unpublished, and the next look at the payment (its
// caller's retry, a webhook, a sync) publishes it.
type Service struct {
	Ledger  Ledger
	Vault   Vault
	Gateway Gateway
	Events  Publisher
	Log     *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	published publishedVersions
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// PayRequest pays an order with a card token of the vault.
type PayRequest struct {
	Order    string `json:"order"`
	Account  string `json:"account"`
	Event    string `json:"event,omitempty"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Method   string `json:"method"`
	// ReturnURL is where a 3-D Secure challenge sends the buyer back.
	ReturnURL string `json:"return_url"`
	// Attempt numbers the order's attempts from 1: the confirm's
	// idempotency key.
	Attempt int `json:"attempt"`
}

// Pay creates the order's intent (once), confirms it with the card and
// records the outcome: succeeded (captured), requires_action (a 3-D
// Secure challenge at RedirectURL), failed (Decline says why; another
// card may be tried). A payment captured already answers as it is.
//
// The ledger records the intent before it is ever confirmed: a new
// order's payment is written with its intent, once the gateway made it.
// So a frictionless payment is two ledger writes (the intent, then its
// outcome), each published.
func (s *Service) Pay(ctx context.Context, r PayRequest) (Payment, error) {
	const op = "payment.pay"
	if !ValidOrderID(r.Order) || r.Amount <= 0 || len(r.Currency) != 3 || r.Attempt < 1 || r.Method == "" {
		return Payment{}, errs.E(op, errs.Invalid, "a payment needs an order, a positive amount, a currency, a card and an attempt number")
	}
	notFound := errs.Errorf(op, errs.NotFound, "no payment of order %s", r.Order)
	p, err := s.Ledger.Get(ctx, r.Order)
	switch {
	case errs.Is(errs.NotFound, err):
		// None yet (Version 0): written with its intent below.
		p = Payment{OrderID: r.Order, Event: r.Event, Account: r.Account, Amount: r.Amount,
			Currency: strings.ToUpper(r.Currency), Status: StatusPending}
	case err != nil:
		return Payment{}, err
	case p.Account != r.Account:
		return Payment{}, notFound
	}
	if p.Status.captured() || p.Status == StatusCanceled {
		return p, s.publish(ctx, p)
	}
	card, sum, err := s.Vault.OpenCard(ctx, r.Method)
	if err != nil {
		return p, err
	}
	if p.IntentID == "" {
		// Keyed by attempt: a create whose answer was lost (the gateway
		// keeps a 5xx for its key) is not retried under the same key.
		// An intent made by a lost create is never confirmed: only the
		// one the ledger records is (applyIntent refuses another), so an
		// order has one capturable intent.
		in, err := s.Gateway.CreateIntent(ctx, IntentRequest{Amount: p.Amount, Currency: p.Currency, OrderID: p.OrderID,
			IdempotencyKey: fmt.Sprintf("order:%s:%d", p.OrderID, r.Attempt)})
		if err != nil {
			return p, err
		}
		fresh, from := p, p
		if from.Version == 0 {
			from = Payment{OrderID: r.Order} // UpdateFrom's "none"
		}
		if p, err = s.record(ctx, &from, p.OrderID, func(q *Payment, exists bool) error {
			if !exists {
				*q = fresh
			} else if q.Account != r.Account {
				return notFound
			}
			// The attempt and its card, recorded now, are what its
			// outcome would record (a webhook that records the outcome
			// first leaves the pay's answer nothing to write).
			q.Attempts = max(q.Attempts, r.Attempt)
			return s.applyIntent(q, in, SourceReturn, &sum)
		}); err != nil {
			return p, err
		}
		if p.Status.captured() || p.Status == StatusCanceled {
			return p, nil // a concurrent attempt took it
		}
	}
	// What the pay learnt: the intent's state, the attempt and its card
	// (with the outcome, for a payment that had its intent: an attempt
	// that never reached a confirm changes nothing of the payment).
	outcome := func(in Intent, source string, card *CardSummary) func(q *Payment, exists bool) error {
		return func(q *Payment, _ bool) error {
			q.Attempts = max(q.Attempts, r.Attempt)
			return s.applyIntent(q, in, source, card)
		}
	}
	in, err := s.Gateway.ConfirmIntent(ctx, p.IntentID, ConfirmRequest{Card: card, ReturnURL: r.ReturnURL,
		IdempotencyKey: fmt.Sprintf("confirm:%s:%d", p.OrderID, r.Attempt)})
	if errs.Is(errs.Invalid, err) && errs.ReasonOf(err) == ReasonIntentUnexpectedState {
		// The intent is past confirming: an earlier attempt whose answer
		// was lost captured it (or it was voided). What it is, is the
		// answer.
		if in, gerr := s.Gateway.GetIntent(ctx, p.IntentID); gerr == nil && (in.Status == Succeeded || in.Status == Canceled) {
			defer s.forgetCVC(ctx, p.OrderID, r.Method, card)()
			return s.record(ctx, &p, p.OrderID, outcome(in, SourceSync, nil))
		}
	}
	if err != nil {
		return p, err
	}
	// The authorization was tried: PCI keeps no CVC after it.
	defer s.forgetCVC(ctx, p.OrderID, r.Method, card)()
	return s.record(ctx, &p, p.OrderID, outcome(in, SourceReturn, &sum))
}

// forgetCVC deletes the card's CVC after an authorization was tried
// while the caller records the outcome, and returns the wait for it (the
// CVC is gone before the pay answers). A card opened without a CVC has
// nothing to forget: a token's CVC is sealed with its card, never after.
func (s *Service) forgetCVC(ctx context.Context, order, token string, opened Card) (wait func()) {
	if opened.CVC == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Vault.ForgetCVC(ctx, token); err != nil {
			s.log().Warn("CVC not forgotten", "order", order, "err", err)
		}
	}()
	return func() { <-done }
}

// Status reads the order's intent from the gateway and records what it
// says (the buyer's return from 3-D Secure, the saga's look before an
// expiry). An order without a payment is errs.NotFound.
func (s *Service) Status(ctx context.Context, order string) (Payment, error) {
	p, err := s.Ledger.Get(ctx, order)
	if err != nil || p.IntentID == "" {
		return p, err
	}
	in, err := s.Gateway.GetIntent(ctx, p.IntentID)
	if err != nil {
		return p, err
	}
	return s.apply(ctx, &p, order, in, SourceSync, nil)
}

// Void cancels the order's intent unless it succeeded, and answers where
// the payment is: canceled, or succeeded when the money was taken
// meanwhile (the caller then owns a late payment). An order that never
// started a payment has nothing to void (errs.NotFound).
func (s *Service) Void(ctx context.Context, order string) (Payment, error) {
	p, err := s.Ledger.Get(ctx, order)
	if err != nil {
		return p, err
	}
	if p.IntentID == "" || p.Status.captured() || p.Status == StatusCanceled {
		return p, s.publish(ctx, p)
	}
	in, err := s.Gateway.CancelIntent(ctx, p.IntentID, "void:"+order)
	if errs.Is(errs.Invalid, err) || errs.Is(errs.Conflict, err) {
		// The gateway refuses to cancel an intent that succeeded: read it.
		in, err = s.Gateway.GetIntent(ctx, p.IntentID)
	}
	if err != nil {
		return p, err
	}
	return s.apply(ctx, &p, order, in, SourceSaga, nil)
}

// Refund gives back amount of the order's capture: one refund per order
// (the gateway's idempotency key is the order's), answered again when
// repeated.
func (s *Service) Refund(ctx context.Context, order string, amount int64, reason string) (Payment, error) {
	const op = "payment.refund"
	p, err := s.Status(ctx, order)
	if err != nil {
		return p, err
	}
	if p.Refunded >= amount || p.Status == StatusRefunded {
		return p, s.publish(ctx, p)
	}
	if p.Captured == 0 {
		return p, errs.Errorf(op, errs.Conflict, "order %s has no capture to refund", order)
	}
	rf, err := s.Gateway.Refund(ctx, RefundRequest{IntentID: p.IntentID, Amount: amount, IdempotencyKey: "refund:" + order})
	if err != nil {
		return p, err
	}
	if rf.Status != "succeeded" {
		return p, errs.Errorf(op, errs.Unavailable, "the gateway's refund is %s", rf.Status)
	}
	return s.record(ctx, &p, order, mustExist(order, func(p *Payment) error {
		_, err := p.Apply(Entry{ID: rf.ID, Kind: EntryRefund, Amount: rf.Amount, Currency: rf.Currency, At: s.now(), Source: SourceSaga})
		return err
	}))
}

// Webhook handles a gateway webhook: its signature checked, its intent or
// refund recorded. A delivery repeated or out of order changes nothing
// that is recorded already.
func (s *Service) Webhook(ctx context.Context, body []byte, signature string) error {
	ev, err := s.Gateway.VerifyWebhook(body, signature, s.now())
	if err != nil {
		return err
	}
	switch {
	case ev.Intent != nil && ev.Intent.OrderID != "":
		in := *ev.Intent
		if s.published.settles(in.OrderID, in) {
			// This process published the payment settled: the event
			// can change nothing of it (nor can the gateway's answer).
			return nil
		}
		if in.Status != Succeeded && in.Status != Canceled {
			// Webhooks come out of order and again: the event says
			// which intent changed, the gateway says where it is now
			// (an older requires_action delivered late must not undo a
			// decline). A success or a cancellation is final: what the
			// signed event says is what the gateway would.
			if in, err = s.Gateway.GetIntent(ctx, in.ID); err != nil {
				return err
			}
		}
		_, err = s.apply(ctx, nil, ev.Intent.OrderID, in, SourceWebhook, nil)
		return err
	case ev.Refund != nil:
		err = s.webhookRefund(ctx, *ev.Refund)
	}
	return err
}

func (s *Service) webhookRefund(ctx context.Context, rf Refund) error {
	if rf.Status != "succeeded" {
		return nil
	}
	in, err := s.Gateway.GetIntent(ctx, rf.IntentID)
	if err != nil || in.OrderID == "" {
		return err
	}
	_, err = s.record(ctx, nil, in.OrderID, mustExist(in.OrderID, func(p *Payment) error {
		_, err := p.Apply(Entry{ID: rf.ID, Kind: EntryRefund, Amount: rf.Amount, Currency: rf.Currency, At: s.now(), Source: SourceWebhook})
		return err
	}))
	return err
}

// apply records what an intent says of the order's payment, from the
// copy the caller read (nil: none; the ledger reads it).
func (s *Service) apply(ctx context.Context, from *Payment, order string, in Intent, source string, card *CardSummary) (Payment, error) {
	return s.record(ctx, from, order, mustExist(order, func(p *Payment) error {
		return s.applyIntent(p, in, source, card)
	}))
}

// applyIntent records in p what the intent in says: its id (the first
// time; another intent is errs.Conflict), its capture or void as a ledger
// entry, its status, and the card of the confirm.
func (s *Service) applyIntent(p *Payment, in Intent, source string, card *CardSummary) error {
	if p.IntentID == "" {
		p.IntentID = in.ID
	}
	if in.ID != p.IntentID {
		return errs.Errorf("payment.apply", errs.Conflict, "intent %s is not order %s's", in.ID, p.OrderID)
	}
	if card != nil {
		p.Card = card
	}
	switch in.Status {
	case Succeeded:
		charge := in.ChargeID
		if charge == "" {
			charge = in.ID
		}
		_, err := p.Apply(Entry{ID: charge, Kind: EntryCapture, Amount: in.AmountReceived, Currency: in.Currency, At: s.now(), Source: source})
		return err
	case Canceled:
		if p.Status.captured() {
			return nil
		}
		_, err := p.Apply(Entry{ID: in.ID, Kind: EntryVoid, Amount: in.Amount, Currency: in.Currency, At: s.now(), Source: source})
		return err
	}
	if p.Status.captured() || p.Status == StatusCanceled {
		return nil // a late or repeated report of an earlier state
	}
	switch in.Status {
	case RequiresAction:
		p.Status, p.RedirectURL, p.Decline = StatusRequiresAction, in.RedirectURL, nil
	case RequiresPaymentMethod:
		if in.LastError != nil {
			d := *in.LastError
			p.Status, p.RedirectURL, p.Decline = StatusFailed, "", &d
		}
	default:
		p.Status = StatusPending
	}
	return nil
}

// mustExist is a Ledger.Update function applying fn to the order's
// payment, errs.NotFound when there is none.
func mustExist(order string, fn func(p *Payment) error) func(p *Payment, exists bool) error {
	return func(p *Payment, exists bool) error {
		if !exists {
			return errs.Errorf("payment.record", errs.NotFound, "no payment of order %s", order)
		}
		return fn(p)
	}
}

// record updates the order's payment with fn, from the copy the caller
// read or wrote last (from; nil: the ledger reads it), and publishes what
// it is then (publish: unless this process published that version).
func (s *Service) record(ctx context.Context, from *Payment, order string, fn func(p *Payment, exists bool) error) (Payment, error) {
	var (
		p   Payment
		err error
	)
	if from != nil {
		p, err = s.Ledger.UpdateFrom(ctx, *from, fn)
	} else {
		p, err = s.Ledger.Update(ctx, order, fn)
	}
	if err != nil {
		return p, err
	}
	return p, s.publish(ctx, p)
}

// publish publishes the payment's version unless this process published
// it already (the stream acknowledged it); while another call publishes
// it, it waits for that one.
func (s *Service) publish(ctx context.Context, p Payment) error {
	if s.Events == nil {
		return nil
	}
	for {
		known, wait, mine := s.published.begin(p.OrderID, p.Version)
		if known {
			return nil
		}
		if wait == nil {
			err := s.Events.Publish(ctx, p)
			s.published.end(p, err == nil, mine)
			return err
		}
		select {
		case <-wait: // published, or failed: look again
		case <-ctx.Done():
			return errs.E("payment.publish", errs.Unavailable, ctx.Err())
		}
	}
}
