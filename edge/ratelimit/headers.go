package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// The response header fields of the IETF RateLimit header fields draft
// (draft-ietf-httpapi-ratelimit-headers, the RateLimit-Limit / -Remaining /
// -Reset form) and HTTP's Retry-After.
const (
	HeaderLimit      = "RateLimit-Limit"     // the quota: the limit's burst
	HeaderRemaining  = "RateLimit-Remaining" // quota left after this request
	HeaderReset      = "RateLimit-Reset"     // delta-seconds until the quota is full again
	HeaderPolicy     = "RateLimit-Policy"    // "<burst>;w=<seconds to refill a burst>"
	HeaderRetryAfter = "Retry-After"         // delta-seconds; only on a denied request
)

// Header returns the RateLimit header fields for a decision, and Retry-After
// when it was denied. Durations are rounded up to whole seconds, so that a
// client that waits as told is never early.
func (d Decision) Header() http.Header {
	h := make(http.Header, 4)
	d.EachHeader(h.Set)
	return h
}

// Err is nil for an allowed request and an errs.TooMany error (HTTP 429 at
// the edge) for a denied one.
func (d Decision) Err(op string) error {
	if d.Allowed {
		return nil
	}
	return errs.Errorf(op, errs.TooMany, "too many requests: retry in %ds", seconds(d.RetryAfter)).WithReason("rate_limited")
}

// EachHeader calls set with each header field of Header, for HTTP layers
// that set fields on their own response type.
func (d Decision) EachHeader(set func(k, v string)) {
	set(HeaderLimit, strconv.Itoa(d.Limit))
	set(HeaderRemaining, strconv.Itoa(d.Remaining))
	set(HeaderReset, strconv.FormatInt(seconds(d.ResetAfter), 10))
	if !d.Allowed {
		set(HeaderRetryAfter, strconv.FormatInt(max(seconds(d.RetryAfter), 1), 10))
	}
}

// PolicyHeader is the RateLimit-Policy value for a limit: its quota (the
// burst) and, as w, the seconds in which a spent quota comes back.
func PolicyHeader(l Limit) string {
	return strconv.Itoa(l.Burst) + ";w=" + strconv.FormatInt(max(seconds(l.Interval()*time.Duration(l.Burst)), 1), 10)
}

// seconds rounds d up to whole seconds, 0 for d <= 0.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
