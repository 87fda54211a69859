package psp

import (
	"fmt"
	"net/http"
)

// refund refunds part or all of what an intent captured, never more: the
// intent is locked (Server.api locks payment_intent), so concurrent
// refunds of one intent add up against the same captured amount.
func (s *Server) refund(c *call) outcome {
	p, err := parseRefund(c.form)
	if err != nil {
		return badParams(err)
	}
	in := s.st.intent(p.Intent)
	if in == nil {
		return noSuchIntent("payment_intent", p.Intent)
	}
	if in.Status != StatusSucceeded {
		return outcome{status: http.StatusBadRequest, body: errorBody{apiError{Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
			Param: "payment_intent", Message: "This PaymentIntent has a status of " + in.Status + ": only a succeeded one has a charge to refund.",
			PaymentIntent: &in.Intent}}}
	}
	left := in.AmountReceived - in.AmountRefunded
	if left <= 0 {
		return outcome{status: http.StatusBadRequest, body: errorBody{apiError{Type: "invalid_request_error", Code: "charge_already_refunded",
			Message: "Charge " + in.LatestCharge + " has already been refunded."}}}
	}
	amount := p.Amount
	if amount == 0 {
		amount = left
	}
	if amount > left {
		return outcome{status: http.StatusBadRequest, body: errorBody{apiError{Type: "invalid_request_error", Code: "amount_too_large", Param: "amount",
			Message: fmt.Sprintf("Refund amount (%d) is greater than unrefunded amount on charge (%d).", amount, left)}}}
	}
	next := in.clone()
	next.AmountRefunded += amount
	rf := &Refund{ID: newID("re"), Object: "refund", Amount: amount, Currency: in.Currency, PaymentIntent: in.ID,
		Charge: in.LatestCharge, Status: "succeeded", Created: c.now.Unix()}
	o := outcome{status: http.StatusOK, body: rf, rec: record{Intents: []*intentState{next}, Refunds: []*Refund{rf}}}
	if e := s.event("charge.refunded", rf, c.now); e != nil {
		o.rec.Events = append(o.rec.Events, e)
	}
	s.log.Debug("psp: refunded", "intent", in.ID, "refund", rf.ID, "amount", amount)
	return o
}

func (s *Server) retrieveRefund(c *call) outcome {
	rf := s.st.refund(c.r.PathValue("id"))
	if rf == nil {
		return outcome{status: http.StatusNotFound, body: errorBody{apiError{Type: "invalid_request_error", Code: "resource_missing",
			Param: "id", Message: "No such refund: '" + c.r.PathValue("id") + "'"}}}
	}
	return outcome{status: http.StatusOK, body: rf}
}
