// Package microerr carries errs errors across NATS micro service replies:
// the kind's code in the Nats-Service-Error-Code header, the message in
// Nats-Service-Error, and a JSON body with code, reason and message. Every
// request/reply service of the core answers errors this way, and every
// client decodes them back into errs errors.
package microerr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
)

// Body is the JSON body of an error answer.
type Body struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

func body(err error) []byte {
	b, _ := json.Marshal(Body{Code: errs.KindOf(err).Code(), Reason: errs.ReasonOf(err), Message: errs.Message(err)})
	return b
}

// Respond answers req with err.
func Respond(req micro.Request, err error) error {
	return req.Error(errs.KindOf(err).Code(), errs.Message(err), body(err))
}

// Decode returns the error an answer carries, or nil if it carries none.
func Decode(op string, m *nats.Msg) error {
	code := m.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		return nil
	}
	var b Body
	_ = json.Unmarshal(m.Data, &b)
	msg := b.Message
	if msg == "" {
		msg = m.Header.Get(micro.ErrorHeader)
	}
	e := errs.E(op, errs.KindFromCode(code), msg)
	if b.Reason != "" {
		e = e.WithReason(b.Reason)
	}
	return e
}

// Call sends req as JSON to subj on nc and decodes the answer into resp,
// within timeout (5s when not positive). An answer carrying an error
// returns it (Decode); no answer, or no responder, is errs.Unavailable
// naming service; an undecodable answer is errs.Other.
func Call(ctx context.Context, nc *nats.Conn, timeout time.Duration, service, op, subj string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return errs.E(op, errs.Invalid, err)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, subj, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return errs.E(op, errs.Unavailable, "the "+service+" service is not answering; try again", err)
		}
		return errs.E(op, errs.Unavailable, "the "+service+" service is not reachable; try again", err)
	}
	if err := Decode(op, m); err != nil {
		return err
	}
	if err := json.Unmarshal(m.Data, resp); err != nil {
		return errs.E(op, errs.Other, fmt.Errorf("decode answer: %w", err))
	}
	return nil
}

// DefaultInFlight is Concurrent's bound when given none.
const DefaultInFlight = 256

// Concurrent serves each request of h on a goroutine of its own, at most
// inFlight at once (DefaultInFlight when not positive); past that,
// requests wait in the endpoint's subscription. A micro service calls an
// endpoint's handler on the goroutine of its subscription, one request
// after another: without Concurrent, one slow request (a payment waiting
// for the gateway) holds up every request of the endpoint behind it. h
// must be safe for concurrent use; it answers on nc, the service's
// connection (the micro service reads its own request once the handler
// returns: it is not handed on), so the service's statistics count the
// requests but not their errors or processing time. After the service
// stops, requests under way still answer (the caller may be gone); a
// process that stops its service, then its stores, may answer those with
// an error.
func Concurrent(nc *nats.Conn, h micro.Handler, inFlight int) micro.HandlerFunc {
	if inFlight <= 0 {
		inFlight = DefaultInFlight
	}
	sem := make(chan struct{}, inFlight)
	return func(req micro.Request) {
		d := Detach(nc, req)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			h.Handle(d)
		}()
	}
}

// Detach returns req as a request that may be answered from any goroutine
// at any time, on nc (its service's connection): micro's own request is
// read by the subscription's goroutine once its handler returns (for the
// endpoint's error stats), so answering it later from another goroutine
// races with that read. Errors answered this way are not counted in the
// endpoint's stats.
func Detach(nc *nats.Conn, req micro.Request) micro.Request {
	return &detached{nc: nc, subject: req.Subject(), reply: req.Reply(), data: req.Data(), headers: req.Headers()}
}

// detached is a request served off its subscription's goroutine: it
// answers as micro's own requests do, on the connection.
type detached struct {
	nc             *nats.Conn
	subject, reply string
	data           []byte
	headers        micro.Headers
}

func (d *detached) Respond(b []byte, opts ...micro.RespondOpt) error {
	m := &nats.Msg{Subject: d.reply, Data: b}
	for _, o := range opts {
		o(m)
	}
	return d.send(m)
}

func (d *detached) RespondJSON(v any, opts ...micro.RespondOpt) error {
	b, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return d.Respond(b, opts...)
}

func (d *detached) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	if code == "" || description == "" {
		return fmt.Errorf("%w: error code and description", micro.ErrArgRequired)
	}
	m := &nats.Msg{Subject: d.reply, Header: nats.Header{micro.ErrorHeader: {description}, micro.ErrorCodeHeader: {code}}}
	for _, o := range opts {
		o(m)
	}
	m.Data = data
	return d.send(m)
}

func (d *detached) send(m *nats.Msg) error {
	if d.reply == "" {
		return nats.ErrMsgNoReply
	}
	return d.nc.PublishMsg(m)
}

func (d *detached) Data() []byte           { return d.data }
func (d *detached) Headers() micro.Headers { return d.headers }
func (d *detached) Subject() string        { return d.subject }
func (d *detached) Reply() string          { return d.reply }

// Handler is a micro service endpoint: it decodes a request of type R
// strictly (unknown fields and trailing data refused, errs.Invalid; a body
// over maxBody bytes errs.TooLarge), runs f within timeout and answers its
// result as JSON, or its error (Respond). op names the operation in
// errors.
func Handler[R any](op string, maxBody int, timeout time.Duration, f func(context.Context, R) (any, error)) micro.HandlerFunc {
	return func(req micro.Request) {
		var r R
		if len(req.Data()) > maxBody {
			_ = Respond(req, errs.E(op, errs.TooLarge, "request too large"))
			return
		}
		if err := DecodeStrict(req.Data(), &r); err != nil {
			_ = Respond(req, errs.E(op, errs.Invalid, "malformed request: "+err.Error()))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := f(ctx, r)
		if err != nil {
			_ = Respond(req, err)
			return
		}
		b, err := json.Marshal(out)
		if err != nil {
			_ = Respond(req, errs.E(op, errs.Other, err))
			return
		}
		_ = req.Respond(b)
	}
}

// DecodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func DecodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}
