package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
)

// Keys is the admission public keys the edge verifies with, refreshed
// from the core.
type Keys = keyring.Remote

// NewKeys returns an empty key set fetched from adm.
func NewKeys(adm Admission, log *slog.Logger) *Keys { return keyring.NewRemote("admission", adm, log) }

// Gate is what the hold endpoint needs when an event's waiting room is on
// (httpapi.Gate): the session's ticket, the tokens' subject, and the
// verifier that redeems tokens.
type Gate struct {
	Rooms    *Manager
	Verifier *admission.Verifier
	// Keys, when set, are refreshed once (at most every second) when a
	// token names an unknown key, so a rotation at the core does not
	// refuse the new key's tokens until the next periodic refresh.
	Keys *Keys
}

// Subject is the session's ticket in hex, the subject of its tokens.
func (g *Gate) Subject(eventID, session string) (string, bool) {
	t, ok := g.Rooms.TicketFor(eventID, session)
	if !ok {
		return "", false
	}
	return t.String(), true
}

// Redeem is admission.Verifier.Redeem, checking a token of an unknown key
// again after fetching the keys (see Keys).
func (g *Gate) Redeem(ctx context.Context, token, eventID, subject, use string, now time.Time) (admission.Claims, error) {
	c, err := g.Verifier.Redeem(ctx, token, eventID, subject, use, now)
	if errs.ReasonOf(err) == admission.ReasonUnknownKey && g.Keys != nil && g.Keys.RefreshForUnknown(ctx, now) {
		return g.Verifier.Redeem(ctx, token, eventID, subject, use, now)
	}
	return c, err
}

// Admitted is admission.Verifier.Admitted, checking a token of an unknown
// key again after fetching the keys (see Keys).
func (g *Gate) Admitted(ctx context.Context, token, eventID, subject string, now time.Time) (admission.Claims, error) {
	c, err := g.Verifier.Admitted(token, eventID, subject, now)
	if errs.ReasonOf(err) == admission.ReasonUnknownKey && g.Keys != nil && g.Keys.RefreshForUnknown(ctx, now) {
		return g.Verifier.Admitted(token, eventID, subject, now)
	}
	return c, err
}

// Unredeem is admission.Verifier.Unredeem.
func (g *Gate) Unredeem(ctx context.Context, c admission.Claims, use string) error {
	return g.Verifier.Unredeem(ctx, c, use)
}
