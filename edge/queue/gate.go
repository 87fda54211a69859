package queue

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/admission"
)

// Keys is the admission public keys the edge verifies with: a
// keyring.KeySource refreshed from the core. Before the first fetch it
// holds no key (every token is refused as from an unknown key).
type Keys struct {
	adm  Admission
	keys atomic.Pointer[keyring.PublicKeys]
	log  *slog.Logger

	mu   sync.Mutex // serialises RefreshForUnknown
	last time.Time  // of the last refresh RefreshForUnknown made
}

// unknownRefreshEvery bounds the refreshes that tokens of unknown keys
// cause: forged tokens naming random key ids cost one fetch a second.
const unknownRefreshEvery = time.Second

// RefreshForUnknown fetches the keys again because a token named a key id
// this edge does not know (the core may have just rotated), at most once
// per unknownRefreshEvery; it reports whether the keys were fetched, so
// the caller checks the token once more.
func (k *Keys) RefreshForUnknown(ctx context.Context, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.last) < unknownRefreshEvery {
		return false
	}
	k.last = now
	if err := k.Refresh(ctx); err != nil {
		k.log.Warn("admission keys not refreshed for a token of an unknown key", "err", err)
		return false
	}
	return true
}

// NewKeys returns an empty key set fetched from adm by Refresh or Follow.
func NewKeys(adm Admission, log *slog.Logger) *Keys {
	k := &Keys{adm: adm, log: log}
	k.keys.Store(&keyring.PublicKeys{})
	return k
}

// PublicKeys implements keyring.KeySource.
func (k *Keys) PublicKeys() *keyring.PublicKeys { return k.keys.Load() }

// Refresh fetches the keys once.
func (k *Keys) Refresh(ctx context.Context) error {
	_, keys, err := k.adm.JWKS(ctx)
	if err != nil {
		return err
	}
	k.keys.Store(keys)
	return nil
}

// Follow refreshes the keys every period until ctx ends (every second
// until the first fetch succeeds). A new key signs as soon as the core
// rotates, so the period bounds how long this edge refuses tokens of a
// key it has not seen: keep it short.
func (k *Keys) Follow(ctx context.Context, period time.Duration) {
	loaded := false
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := k.Refresh(fctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			k.log.Warn("admission keys not refreshed", "err", err)
		}
		loaded = loaded || err == nil
		wait := period
		if !loaded {
			wait = time.Second
		}
		if !pause.For(ctx, wait) {
			return
		}
	}
}

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

// Unredeem is admission.Verifier.Unredeem.
func (g *Gate) Unredeem(ctx context.Context, c admission.Claims, use string) error {
	return g.Verifier.Unredeem(ctx, c, use)
}
