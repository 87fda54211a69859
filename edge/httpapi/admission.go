package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/catalog"
)

// AdmissionTokenHeader carries the admission token on hold requests for an
// event whose waiting room is on.
const AdmissionTokenHeader = "Admission-Token"

// Gate is what the hold endpoint needs when an event's waiting room is on:
// the session's queue ticket (the tokens' subject) and the admission
// verifier.
type Gate interface {
	// Subject is the admission-token subject of session at a queue-on
	// event (its queue ticket, hex); false when the edge has not loaded
	// the event's queue yet.
	Subject(eventID, session string) (string, bool)
	// Redeem and Unredeem are admission.Verifier's.
	Redeem(ctx context.Context, token, eventID, subject, use string, now time.Time) (admission.Claims, error)
	Unredeem(ctx context.Context, c admission.Claims, use string) error
}

// admit redeems the request's admission token for a hold on e when e's
// waiting room is on; use is the hold's idempotency key. It returns nil
// claims when no token is needed. Every outcome is counted by reason.
func (a *API) admit(c *fiber.Ctx, e catalog.Event, use string) (*admission.Claims, error) {
	const op = "edge.admission"
	if !e.Queue {
		return nil, nil
	}
	if a.deps.Gate == nil {
		return nil, a.refuse(errs.E(op, errs.Unavailable, "this edge checks no admission tokens").WithReason("admission_unavailable"))
	}
	session := c.Cookies(SessionCookie)
	if !validSession(session) {
		return nil, a.refuse(errs.E(op, errs.Unauthorized,
			"this event has a waiting room: join it first (the queue session cookie is missing)").WithReason("session_missing"))
	}
	subject, ok := a.deps.Gate.Subject(e.ID, session)
	if !ok {
		return nil, a.refuse(errs.E(op, errs.Unavailable, "the event's waiting room is not loaded yet").WithReason("admission_unavailable"))
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	claims, err := a.deps.Gate.Redeem(ctx, c.Get(AdmissionTokenHeader), e.ID, subject, use, time.Now())
	if err != nil {
		return nil, a.refuse(err)
	}
	a.countAdmission("ok")
	return &claims, nil
}

// giveBack returns a redeemed token after the core refused the hold for
// want of seats (or as malformed): the hold did not happen, so the shopper
// may try again with the same token. A failure to give it back is logged;
// the shopper then needs a new admission.
func (a *API) giveBack(c *fiber.Ctx, claims *admission.Claims, use string, holdErr error) {
	if claims == nil || !(errs.Is(errs.Conflict, holdErr) || errs.Is(errs.Invalid, holdErr)) {
		return
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if err := a.deps.Gate.Unredeem(ctx, *claims, use); err != nil {
		a.log.Warn("admission token not given back after a refused hold", "jti", claims.ID, "err", err)
	}
}

func (a *API) refuse(err error) error {
	reason := errs.ReasonOf(err)
	if reason == "" {
		reason = errs.KindOf(err).Code()
	}
	a.countAdmission(reason)
	return err
}

func (a *API) countAdmission(outcome string) {
	if a.admissions != nil {
		a.admissions.WithLabelValues(outcome).Inc()
	}
}

// SessionCookie names the waiting-room session: 22 characters, base64url of
// 16 random bytes, set by the edge on the first queue request without one.
const SessionCookie = "tq_session"

// validSession reports whether s has the shape of a session id.
func validSession(s string) bool {
	if len(s) != 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
