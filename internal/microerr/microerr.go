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
