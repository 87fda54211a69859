// Package errs gives errors a kind and the operation they came from, so that
// every transport maps them to a status in one place (the edge's Fiber error
// handler, the NATS service error headers) instead of in each handler.
package errs

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error by what the caller can do about it.
type Kind uint8

// The kinds. Their order is part of the wire format (see Code): append only.
const (
	Other        Kind = iota // unclassified: an internal error
	Invalid                  // the request is malformed or out of bounds
	NotFound                 // the thing named does not exist
	Conflict                 // the request conflicts with the current state (seat taken, sold out)
	Unauthorized             // no or bad credentials
	Forbidden                // credentials valid, but not for this
	Mismatch                 // idempotency key reused with a different request
	InFlight                 // idempotency key still being processed
	TooMany                  // rate limited
	Unavailable              // try again: no owner right now, overloaded, shutting down
	TooLarge                 // request body or list too large
	Gone                     // it existed but expired
)

var kindCodes = [...]string{
	Other:        "internal",
	Invalid:      "invalid_request",
	NotFound:     "not_found",
	Conflict:     "conflict",
	Unauthorized: "unauthorized",
	Forbidden:    "forbidden",
	Mismatch:     "idempotency_key_mismatch",
	InFlight:     "idempotency_key_in_flight",
	TooMany:      "rate_limited",
	Unavailable:  "unavailable",
	TooLarge:     "too_large",
	Gone:         "gone",
}

// Code is the kind's stable machine-readable name, used as the "code" of a
// JSON error body and in NATS service error headers.
func (k Kind) Code() string {
	if int(k) < len(kindCodes) {
		return kindCodes[k]
	}
	return kindCodes[Other]
}

func (k Kind) String() string { return k.Code() }

// KindFromCode is the inverse of Code; unknown codes map to Other.
func KindFromCode(code string) Kind {
	for k, c := range kindCodes {
		if c == code {
			return Kind(k)
		}
	}
	return Other
}

// Error is an error with a kind, the operation that failed, an optional
// machine-readable reason refining the kind, and an optional cause.
type Error struct {
	Op     string // the operation, e.g. "inventory.hold"
	Kind   Kind
	Reason string // a finer code than Kind, e.g. "seats_unavailable"; may be empty
	Msg    string // for the caller: what went wrong
	Err    error  // the cause; may be nil
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		if e.Msg == "" {
			s += e.Err.Error()
		} else {
			s += ": " + e.Err.Error()
		}
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error. Arguments are taken by type: a string is the op, a Kind
// the kind, an error the cause; the message is set with Msg or Msgf.
//
//	errs.E("inventory.hold", errs.Conflict, "seat A-1-1 is taken")
//
// The first string is the op and a second string the message.
func E(args ...any) *Error {
	e := &Error{}
	var strs int
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if strs == 0 {
				e.Op = v
			} else {
				e.Msg = v
			}
			strs++
		case Kind:
			e.Kind = v
		case error:
			e.Err = v
		}
	}
	if e.Kind == Other && e.Err != nil {
		e.Kind = KindOf(e.Err)
	}
	return e
}

// Errorf returns an error of the given kind with a formatted message.
func Errorf(op string, k Kind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// WithReason returns a copy of e with a finer-grained reason code.
func (e *Error) WithReason(reason string) *Error {
	c := *e
	c.Reason = reason
	return &c
}

// KindOf reports the kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == Other && e.Err != nil {
			return KindOf(e.Err)
		}
		return e.Kind
	}
	return Other
}

// Is reports whether err has kind k.
func Is(k Kind, err error) bool { return err != nil && KindOf(err) == k }

// ReasonOf reports the reason of the first *Error in err's chain that has one.
func ReasonOf(err error) string {
	for err != nil {
		if e, ok := err.(*Error); ok && e.Reason != "" {
			return e.Reason
		}
		err = errors.Unwrap(err)
	}
	return ""
}

// Message is the text to show a caller: the message of the outermost *Error
// that has one, without ops or internal causes. Errors of kind Other are not
// described to callers.
func Message(err error) string {
	if KindOf(err) == Other {
		return "internal error"
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if x, ok := e.(*Error); ok && x.Msg != "" {
			return x.Msg
		}
	}
	return err.Error()
}

// HTTPStatus is the kind's HTTP status: the one place where kinds become
// statuses, for every HTTP server of the platform.
func (k Kind) HTTPStatus() int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict, InFlight:
		return http.StatusConflict
	case Gone:
		return http.StatusGone
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case Mismatch:
		return http.StatusUnprocessableEntity
	case TooMany:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}
