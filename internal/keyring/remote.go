package keyring

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/pause"
)

// Fetcher fetches a key set from the service that signs with it, both as
// served (JWKS JSON) and parsed.
type Fetcher interface {
	JWKS(ctx context.Context) ([]byte, *PublicKeys, error)
}

// Remote is a KeySource for verifiers away from the signer (an edge): the
// public keys fetched from the signer, refreshed periodically (Follow) and
// when a token names a key it does not know (RefreshForUnknown). Before the
// first fetch it holds no key, so every token is refused as from an unknown
// key. Safe for concurrent use.
type Remote struct {
	name  string
	fetch Fetcher
	log   *slog.Logger
	keys  atomic.Pointer[PublicKeys]
	raw   atomic.Pointer[[]byte]

	mu   sync.Mutex // serialises RefreshForUnknown
	last time.Time  // of the last refresh RefreshForUnknown made
}

// NewRemote returns an empty key set fetched from f by Refresh or Follow;
// name says whose keys they are in logs ("admission", "access token").
func NewRemote(name string, f Fetcher, log *slog.Logger) *Remote {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Remote{name: name, fetch: f, log: log}
	r.keys.Store(&PublicKeys{})
	return r
}

// PublicKeys implements KeySource.
func (r *Remote) PublicKeys() *PublicKeys { return r.keys.Load() }

// JWKS is the key set as last fetched, nil before the first fetch.
func (r *Remote) JWKS() []byte {
	if b := r.raw.Load(); b != nil {
		return *b
	}
	return nil
}

// Refresh fetches the keys once.
func (r *Remote) Refresh(ctx context.Context) error {
	raw, keys, err := r.fetch.JWKS(ctx)
	if err != nil {
		return err
	}
	r.keys.Store(keys)
	r.raw.Store(&raw)
	return nil
}

// unknownRefreshEvery bounds the refreshes that tokens of unknown keys
// cause: forged tokens naming random key ids cost one fetch a second.
const unknownRefreshEvery = time.Second

// RefreshForUnknown fetches the keys again because a token named a key id
// this set does not know (the signer may have just rotated), at most once
// per second; it reports whether the keys were fetched, so that the caller
// checks the token once more.
func (r *Remote) RefreshForUnknown(ctx context.Context, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.last) < unknownRefreshEvery {
		return false
	}
	r.last = now
	if err := r.Refresh(ctx); err != nil {
		r.log.Warn(r.name+" keys not refreshed for a token of an unknown key", "err", err)
		return false
	}
	return true
}

// Follow refreshes the keys every period until ctx ends (every second
// until the first fetch succeeds). A new key signs as soon as the signer
// rotates, so the period bounds how long tokens of a key not yet seen are
// refused where RefreshForUnknown is not used: keep it short.
func (r *Remote) Follow(ctx context.Context, period time.Duration) {
	loaded := false
	for {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.Refresh(fctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.log.Warn(r.name+" keys not refreshed", "err", err)
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
