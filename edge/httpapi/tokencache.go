package httpapi

import (
	"strings"
	"sync"
	"time"

	"github.com/ticketing/ticketing/services/identity/token"
)

// verifiedTokens remembers the access tokens this edge has verified, until
// they expire: a client sends one token with every request for its five
// minutes, and the signature check (about 45 µs of CPU) was most of what
// the gateway added to a hold. The key is the whole token, so a hit is the
// same bytes the verifier accepted; expiry and not-before are checked on
// every hit. What a hit does not see again is a key retired from the ring
// since (its tokens pass until they expire, at most the token lifetime).
// Bounded: when full it is emptied and refills from the traffic.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[string]token.Claims
}

// maxVerified bounds the remembered tokens (about 1 KiB each).
const maxVerified = 1 << 16

func (v *verifiedTokens) get(at string, now time.Time) (token.Claims, bool) {
	v.mu.RLock()
	c, ok := v.m[at]
	v.mu.RUnlock()
	if !ok || !now.Before(c.Expiry) || (!c.NotBefore.IsZero() && now.Before(c.NotBefore)) {
		return token.Claims{}, false
	}
	return c, true
}

func (v *verifiedTokens) put(at string, c token.Claims) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerified {
		v.m = make(map[string]token.Claims, 1024)
	}
	// at may point into the request's reused buffer: keep a copy.
	v.m[strings.Clone(at)] = c
}
