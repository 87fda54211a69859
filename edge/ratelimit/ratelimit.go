// Package ratelimit decides whether a caller (a key: a user, a session, a
// client address) may act now under a limit, so that the edge can shed load
// before it reaches the core and answer 429 with the standard RateLimit
// header fields.
//
// The algorithm is GCRA, the generic cell rate algorithm: for each key a
// limiter keeps one number, the theoretical arrival time (TAT) of the next
// request if requests came exactly at the limit's rate. A request is allowed
// when it does not push the TAT more than the burst ahead of now. That is a
// token bucket without a refill timer: one value per key, O(1) per decision,
// and a key whose TAT lies in the past carries no state at all, so idle keys
// can simply be dropped.
//
// This package owns the Limiter interface and the math (gcra.go);
// implementations live beside it: ratelimit/redis (production, shared by all
// edges of a region) and ratelimit/memory (one process, for `ticketing dev`).
// ratelimit/ratelimittest is the contract suite both pass.
package ratelimit

import (
	"context"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Bounds on limits and keys. They keep the arithmetic exact (all
// implementations count in whole microseconds at least) and keys small.
const (
	MaxKeyLen   = 256       // bytes
	MaxBurst    = 1_000_000 // requests
	MaxPeriod   = 7 * 24 * time.Hour
	MaxWindow   = 365 * 24 * time.Hour // Burst × Period/Rate may not be longer
	MinInterval = time.Microsecond     // Period/Rate may not be shorter
)

// Limit is a rate with a burst: on average Rate requests per Period, and up
// to Burst requests at once after a quiet spell. Burst 1 spaces requests
// evenly, Period/Rate apart.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// PerSecond is a limit of rate requests a second with the given burst.
func PerSecond(rate, burst int) Limit { return Limit{Rate: rate, Period: time.Second, Burst: burst} }

// PerMinute is a limit of rate requests a minute with the given burst.
func PerMinute(rate, burst int) Limit { return Limit{Rate: rate, Period: time.Minute, Burst: burst} }

// Validate reports an errs.Invalid error for a limit that cannot be enforced.
func (l Limit) Validate() error {
	const op = "ratelimit.limit"
	switch {
	case l.Rate < 1:
		return errs.Errorf(op, errs.Invalid, "rate must be at least 1, got %d", l.Rate)
	case l.Period <= 0 || l.Period > MaxPeriod:
		return errs.Errorf(op, errs.Invalid, "period must be in (0, %v], got %v", MaxPeriod, l.Period)
	case l.Burst < 1 || l.Burst > MaxBurst:
		return errs.Errorf(op, errs.Invalid, "burst must be 1-%d, got %d", MaxBurst, l.Burst)
	case l.Period/time.Duration(l.Rate) < MinInterval:
		return errs.Errorf(op, errs.Invalid, "%d per %v is faster than one per %v", l.Rate, l.Period, MinInterval)
	case time.Duration(l.Burst) > MaxWindow/l.Interval():
		return errs.Errorf(op, errs.Invalid, "a burst of %d at %d per %v takes longer than %v to refill", l.Burst, l.Rate, l.Period, MaxWindow)
	}
	return nil
}

// Interval is the emission interval: the time one request's worth of quota
// takes to come back, Period/Rate rounded up to a whole microsecond so that
// every implementation does the same exact integer arithmetic and none is
// ever more permissive than the limit.
func (l Limit) Interval() time.Duration {
	iv := (l.Period + time.Duration(l.Rate) - 1) / time.Duration(l.Rate)
	return (iv + time.Microsecond - 1).Truncate(time.Microsecond)
}

// Decision is the answer for one request.
type Decision struct {
	// Allowed says whether the request may go ahead. A denied request
	// consumed nothing.
	Allowed bool
	// Limit is the quota that Remaining counts down from: the limit's Burst.
	Limit int
	// Remaining is how many more requests of cost 1 would be allowed right
	// now, after this one (if it was allowed).
	Remaining int
	// RetryAfter is, for a denied request, how long until the same request
	// would be allowed; zero when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the key is back to its full quota
	// (Remaining == Limit) if no other request comes.
	ResetAfter time.Duration
}

// Limiter decides whether a key may act now.
//
// Implementations are safe for concurrent use by any number of goroutines
// (and, for shared implementations, processes): concurrent requests on one
// key are decided one after the other, so that no more than Burst +
// Rate×elapsed/Period requests are ever allowed for a key in any interval.
//
// The limit is passed with each call; a key should always be used with the
// same limit (keys of different limits belong in different key spaces, e.g.
// "login:" + user and "hold:" + user).
//
// AllowN fails with errs.Invalid for an empty or longer than MaxKeyLen key,
// an invalid limit, or a cost n < 1 or n > Burst (a request that could never
// be allowed). It fails with errs.Unavailable when the backing store cannot
// be reached; what to do then (fail open or closed) is the caller's choice.
//
// Cancelling ctx makes AllowN return an error wrapping ctx.Err(). If ctx is
// done before the call, nothing was counted; if it is cancelled while a
// remote call is in flight, the request may or may not have been counted.
type Limiter interface {
	// Allow is AllowN with n = 1.
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
	// AllowN decides for a request that costs n units of the quota; it is
	// allowed only as a whole.
	AllowN(ctx context.Context, key string, limit Limit, n int) (Decision, error)
}

// CheckRequest validates the arguments of AllowN; implementations call it
// first so that they all reject the same requests the same way.
func CheckRequest(ctx context.Context, op, key string, limit Limit, n int) error {
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, "request cancelled", err)
	}
	if key == "" || len(key) > MaxKeyLen {
		return errs.Errorf(op, errs.Invalid, "key must be 1-%d bytes, got %d", MaxKeyLen, len(key))
	}
	if err := limit.Validate(); err != nil {
		return errs.E(op, err)
	}
	if n < 1 || n > limit.Burst {
		return errs.Errorf(op, errs.Invalid, "cost %d is not in 1..burst (%d)", n, limit.Burst)
	}
	return nil
}
