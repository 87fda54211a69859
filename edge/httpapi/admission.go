package httpapi

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/catalog"
)

// AdmissionTokenHeader carries the admission token on hold and order
// requests for an event whose waiting room is on.
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
	// Admitted is admission.Verifier's: the token admitted the session,
	// also some time after its expiry (its holds outlive it); nothing is
	// spent.
	Admitted(ctx context.Context, token, eventID, subject string, now time.Time) (admission.Claims, error)
}

// admit redeems the request's admission token for a hold on e when e's
// waiting room is on; use is the hold's idempotency key. It returns nil
// claims when no token is needed. Every outcome is counted by reason.
func (a *API) admit(c *fiber.Ctx, e catalog.Event, use string) (*admission.Claims, error) {
	if !e.Queue {
		return nil, nil
	}
	subject, err := a.admissionSubject(c, e)
	if err != nil {
		return nil, err
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

// admitted checks, for an order of holds on e when e's waiting room is
// on, that the request's admission token admitted the caller's session
// (the token that let the holds be placed: it is not spent again, and is
// taken for a while after its expiry, see admission.Config.AdmittedFor).
func (a *API) admitted(c *fiber.Ctx, e catalog.Event) error {
	if !e.Queue {
		return nil
	}
	subject, err := a.admissionSubject(c, e)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	if _, err := a.deps.Gate.Admitted(ctx, c.Get(AdmissionTokenHeader), e.ID, subject, time.Now()); err != nil {
		return a.refuse(err)
	}
	a.countAdmission("ok")
	return nil
}

// admissionSubject is the admission-token subject of the request's
// waiting-room session at e.
func (a *API) admissionSubject(c *fiber.Ctx, e catalog.Event) (string, error) {
	const op = "edge.admission"
	if a.deps.Gate == nil {
		return "", a.refuse(errs.E(op, errs.Unavailable, "this edge checks no admission tokens").WithReason("admission_unavailable"))
	}
	session := c.Cookies(SessionCookie)
	if !validSession(session) {
		return "", a.refuse(errs.E(op, errs.Unauthorized,
			"this event has a waiting room: join it first (the queue session cookie is missing)").WithReason("session_missing"))
	}
	subject, ok := a.deps.Gate.Subject(e.ID, session)
	if !ok {
		return "", a.refuse(errs.E(op, errs.Unavailable, "the event's waiting room is not loaded yet").WithReason("admission_unavailable"))
	}
	return subject, nil
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
