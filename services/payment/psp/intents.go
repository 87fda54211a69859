package psp

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"
)

// The operations on payment intents. Each runs with the intent locked
// (see Server.api) and returns the new state as a record; nothing changes
// until the pipeline has made the record durable.

func (s *Server) create(c *call) outcome {
	p, err := parseCreate(c.form)
	if err != nil {
		return badParams(err)
	}
	in := &intentState{Intent: Intent{ID: newID("pi"), Object: "payment_intent", Amount: p.Amount, Currency: p.Currency,
		Status: StatusRequiresPaymentMethod, CaptureMethod: p.CaptureMethod, Metadata: p.Metadata, Created: c.now.Unix()},
		Seq: s.seq.Add(1)}
	if !p.Confirm {
		s.log.Debug("psp: intent created", "intent", in.ID, "amount", in.Amount, "currency", in.Currency)
		return outcome{status: http.StatusOK, body: &in.Intent, rec: record{Intents: []*intentState{in}}}
	}
	return s.confirmWith(c, in, p.Card, p.ReturnURL)
}

func (s *Server) retrieve(c *call) outcome {
	in := s.st.intent(c.r.PathValue("id"))
	if in == nil {
		return noSuchIntent("intent", c.r.PathValue("id"))
	}
	return outcome{status: http.StatusOK, body: &in.Intent}
}

func (s *Server) confirm(c *call) outcome {
	card, ret, err := parseConfirm(c.form)
	if err != nil {
		return badParams(err)
	}
	in := s.st.intent(c.r.PathValue("id"))
	if in == nil {
		return noSuchIntent("intent", c.r.PathValue("id"))
	}
	return s.confirmWith(c, in, card, ret)
}

// confirmWith confirms in (which it does not change) with card.
func (s *Server) confirmWith(c *call, in *intentState, card *cardParams, returnURL string) outcome {
	switch in.Status {
	case StatusRequiresPaymentMethod, StatusRequiresConfirmation, StatusRequiresAction:
	default:
		return unexpectedState(in, "confirm")
	}
	next := in.clone()
	verdict := judge(card, c.now)
	var o outcome
	switch verdict.Outcome {
	case Approve:
		o = s.approve(next, c.now)
	case Decline:
		o = s.decline(next, verdict, c.now)
	default:
		token := make([]byte, 16)
		_, _ = rand.Read(token)
		next.Status = StatusRequiresAction
		next.LastPaymentError = nil
		next.Challenge = &challenge{Token: hex.EncodeToString(token), ThenDecline: verdict.Outcome == ChallengeThenDecline,
			ReturnURL: returnURL, Last4: card.Last4()}
		next.NextAction = &NextAction{Type: "redirect_to_url", RedirectToURL: &RedirectToURL{
			URL: s.publicURL(c.r) + "/3ds/" + next.Challenge.Token, ReturnURL: returnURL}}
		o = s.changed(http.StatusOK, next, "payment_intent.requires_action", c.now)
	}
	s.log.Debug("psp: intent confirmed", "intent", next.ID, "card_last4", card.Last4(), "status", next.Status)
	return o
}

// approve authorizes next, and captures it unless its capture is manual.
func (s *Server) approve(next *intentState, now time.Time) outcome {
	next.LastPaymentError, next.NextAction = nil, nil
	next.LatestCharge = newID("ch")
	if next.CaptureMethod == "manual" {
		next.Status = StatusRequiresCapture
		next.AmountCapturable = next.Amount
		return s.changed(http.StatusOK, next, "payment_intent.amount_capturable_updated", now)
	}
	next.Status = StatusSucceeded
	next.AmountReceived = next.Amount
	return s.changed(http.StatusOK, next, "payment_intent.succeeded", now)
}

// decline refuses next with card's decline: 402 with the intent.
func (s *Server) decline(next *intentState, card Card, now time.Time) outcome {
	next.Status = StatusRequiresPaymentMethod
	next.NextAction = nil
	next.LastPaymentError = &PaymentError{Type: "card_error", Code: card.Code, DeclineCode: card.DeclineCode, Message: card.Message}
	o := s.changed(http.StatusPaymentRequired, next, "payment_intent.payment_failed", now)
	o.body = errorBody{apiError{Type: "card_error", Code: card.Code, DeclineCode: card.DeclineCode, Message: card.Message,
		PaymentIntent: &next.Intent}}
	return o
}

func (s *Server) capture(c *call) outcome {
	amount, err := parseCapture(c.form)
	if err != nil {
		return badParams(err)
	}
	in := s.st.intent(c.r.PathValue("id"))
	if in == nil {
		return noSuchIntent("intent", c.r.PathValue("id"))
	}
	if in.Status != StatusRequiresCapture {
		return unexpectedState(in, "capture")
	}
	if amount == 0 {
		amount = in.AmountCapturable
	}
	if amount > in.AmountCapturable {
		return outcome{status: http.StatusBadRequest, body: errorBody{apiError{Type: "invalid_request_error", Code: "amount_too_large",
			Param: "amount_to_capture", Message: "The amount to capture is greater than the amount capturable."}}}
	}
	next := in.clone()
	next.Status = StatusSucceeded
	next.AmountReceived = amount
	next.AmountCapturable = 0
	return s.changed(http.StatusOK, next, "payment_intent.succeeded", c.now)
}

func (s *Server) cancelIntent(c *call) outcome {
	reason, err := parseCancel(c.form)
	if err != nil {
		return badParams(err)
	}
	in := s.st.intent(c.r.PathValue("id"))
	if in == nil {
		return noSuchIntent("intent", c.r.PathValue("id"))
	}
	switch in.Status {
	case StatusRequiresPaymentMethod, StatusRequiresConfirmation, StatusRequiresAction, StatusRequiresCapture:
	default:
		return unexpectedState(in, "cancel")
	}
	next := in.clone()
	next.Status = StatusCanceled
	next.AmountCapturable = 0
	next.NextAction = nil
	next.CanceledAt = c.now.Unix()
	next.CancellationReason = reason
	return s.changed(http.StatusOK, next, "payment_intent.canceled", c.now)
}

// changed is the outcome of a change to an intent: the intent answered,
// stored, and announced as eventType.
func (s *Server) changed(status int, next *intentState, eventType string, now time.Time) outcome {
	o := outcome{status: status, body: &next.Intent, rec: record{Intents: []*intentState{next}}}
	if e := s.event(eventType, &next.Intent, now); e != nil {
		o.rec.Events = append(o.rec.Events, e)
	}
	return o
}

// clone copies an intent to change; the parts changes replace (not
// modify) may be shared.
func (in *intentState) clone() *intentState {
	c := *in
	return &c
}

func noSuchIntent(param, id string) outcome {
	return outcome{status: http.StatusNotFound, body: errorBody{apiError{Type: "invalid_request_error", Code: "resource_missing",
		Param: param, Message: "No such payment_intent: '" + id + "'"}}}
}

func unexpectedState(in *intentState, action string) outcome {
	return outcome{status: http.StatusBadRequest, body: errorBody{apiError{Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
		Message:       "You cannot " + action + " this PaymentIntent because it has a status of " + in.Status + ".",
		PaymentIntent: &in.Intent}}}
}
