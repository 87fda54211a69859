// Package session keeps signed-in devices and their refresh tokens, in the
// manner of RFC 9700 (OAuth 2.0 Security Best Current Practice) §4.14.2:
// refresh tokens rotate on every use, and a spent token presented again
// revokes the whole session. It is the domain only: what a session is, the
// Store interface that adapters implement (services/identity/session/redis
// in production, services/identity/session/natskv for `ticketing dev`,
// both held to services/identity/session/sessiontest), and the Manager that
// starts sessions and refreshes them. The identity service
// (services/identity/auth) runs it in the core.
//
// # Sessions
//
// A Session is one signed-in device: the user, the OAuth client, when it
// was created and last used, its user agent and IP address (for the user's
// list of devices), an absolute expiry (Config.Lifetime after sign-in,
// never extended by use) and its refresh-token family. A session past its
// expiry is gone: stores answer errs.NotFound for it and leave it out of
// lists, by their own clock (Redis also drops the key then).
//
// # Refresh tokens
//
// A refresh token is "<session id>.<secret>", the secret being 32 random
// bytes in unpadded base64url. Clients treat it as opaque. The session id in
// front lets a presented token find its family in one read, a spent token
// included, which reuse detection needs. Stores keep only the SHA-256 of
// the tokens (Family.Current and Family.Previous), never a usable token.
//
// Refresh (Manager.Refresh) takes the presented token and:
//
//   - if it is the family's current token, issues a new one: the presented
//     token becomes Family.Previous (spent) and the new one Family.Current,
//     written with the store's compare-and-set (Store.Rotate) on the
//     version that was read. Of concurrent refreshes with one token exactly
//     one rotates; the others read again and are judged on the new state.
//   - if it is the immediately previous token, presented again within
//     Config.Grace (30 s) of its rotation (either side of it, for clocks
//     of processes that differ a little), the response that carried the
//     new token was probably lost: the same new token is returned again,
//     nothing rotates. Once the new token has been used it is no longer the
//     successor of the presented one (that is two generations back), so
//     this applies only while the new token is unused.
//   - otherwise (the previous token after the grace window, or any other
//     token for a live session) it is a spent token replayed: the session
//     is revoked and the call fails with errs.Unauthorized, reason
//     ReasonRefreshReused. Both the thief and the rightful client then
//     have to sign in again, as RFC 9700 prescribes, since the server cannot
//     tell which of them is presenting.
//
// A token for no live session, a malformed one or one for another client
// is errs.Unauthorized with reason ReasonRefreshInvalid and changes nothing.
//
// # The grace window and the stored successor
//
// Returning the same new token on a retry means the store must be able to
// produce it, yet it must not hold usable tokens: whoever reads the store
// (a backup, a replica, an operator) could sign in as anyone. So the new
// token is kept sealed (AES-256-GCM, Family.Sealed) under a key derived
// from the token it replaced: SHA-256 of a label and that token, a value the
// store never sees (it keeps a SHA-256 of the token alone, a different
// value). Only a client that presents the previous token can open it, and
// that client could have had the new token anyway by refreshing first. No
// server-side key is needed, nothing has to expire the sealed copy: after
// the grace window it is still in the store but refused by the time check,
// and the next rotation overwrites it. A store leak thus yields hashes and
// ciphertexts, neither usable without a token.
//
// The grace answer is decided on the state read, with no write, so that
// retries do not contend with each other. A rotation of the new token that
// lands between that read and the answer is the one thing it can miss; the
// retrying client then holds a token that was just spent, and its next
// refresh is within the grace window of the rotation that spent it.
//
// # Reuse detection and the session id
//
// Stores keep only the current and the previous token's hash, not every
// spent one; a token that matches neither but names a live session is
// taken for an older spent token of the family and revokes the session.
// That catches a thief who refreshed several times before the rightful
// client came back, at a price: whoever knows a session's id can end that
// session with a made-up secret. Session ids are random (128 bits) and
// shown only to their user (the device list), who can end them anyway;
// they are not to be put in logs or URLs shared with others.
package session

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

// Reasons refining the errors of this package and of stores.
const (
	// ReasonRefreshReused (errs.Unauthorized): a spent refresh token was
	// presented; the session has been revoked.
	ReasonRefreshReused = "refresh_reused"
	// ReasonRefreshInvalid (errs.Unauthorized): malformed, for no live
	// session (expired, revoked, never existed) or for another client.
	ReasonRefreshInvalid = "refresh_invalid"
	// ReasonIDTaken (errs.Conflict from Store.Create): the session id
	// exists.
	ReasonIDTaken = "id_taken"
	// ReasonVersionMismatch (errs.Conflict from Store.Rotate): the session
	// changed since it was read.
	ReasonVersionMismatch = "version_mismatch"
)

// Limits.
const (
	MaxIDLen        = 64
	MaxClientIDLen  = 64
	MaxUserAgentLen = 256 // bytes; longer ones are cut
	SecretLen       = 32  // random bytes of a refresh token
	hashLen         = sha256.Size
)

// Session is one signed-in device.
type Session struct {
	ID         string    `json:"id"`
	UserID     string    `json:"user_id"`
	ClientID   string    `json:"client_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"` // sign-in or last rotation
	ExpiresAt  time.Time `json:"expires_at"`   // absolute, never extended
	UserAgent  string    `json:"user_agent,omitempty"`
	IP         string    `json:"ip,omitempty"`
	Family     Family    `json:"family"`
	// Version is the store's version of what was read, for Store.Rotate's
	// compare-and-set. Set by the store; not part of the stored value.
	Version uint64 `json:"-"`
}

// Family is the refresh-token state of a session.
type Family struct {
	// Generation counts the rotations: 0 for the token issued at sign-in.
	Generation uint64 `json:"generation"`
	// Current is the SHA-256 of the token that the next refresh must
	// present.
	Current []byte `json:"current"`
	// Previous is the SHA-256 of the token Current replaced; nil at
	// generation 0.
	Previous []byte `json:"previous,omitempty"`
	// RotatedAt is when Current was issued.
	RotatedAt time.Time `json:"rotated_at"`
	// Sealed is the current token sealed under a key derived from the
	// previous token (see the package documentation); nil at generation 0.
	Sealed []byte `json:"sealed,omitempty"`
}

// Store keeps sessions. Implementations are safe for concurrent use, also
// from several processes on the same backing store. A session past its
// ExpiresAt (by the store's clock) is treated as absent by every method.
type Store interface {
	// Create stores a new session (Check first: errs.Invalid; an expired
	// one is errs.Invalid too). An id that exists is errs.Conflict, reason
	// ReasonIDTaken. Version is ignored.
	Create(ctx context.Context, s Session) error
	// Get returns the session with its Version, or errs.NotFound.
	Get(ctx context.Context, id string) (Session, error)
	// Rotate replaces the session with s if its stored version is still
	// s.Version, and returns the new version. A changed session is
	// errs.Conflict, reason ReasonVersionMismatch; a revoked or expired
	// one errs.NotFound. Of concurrent calls with one version at most one
	// succeeds. s must keep the ID, UserID, CreatedAt and ExpiresAt it was
	// read with; stores need not check.
	Rotate(ctx context.Context, s Session) (uint64, error)
	// Revoke deletes the session, or answers errs.NotFound.
	Revoke(ctx context.Context, id string) error
	// RevokeAllForUser deletes every session of the user, and returns how
	// many there were. Every session whose Create returned before the call
	// is deleted.
	RevokeAllForUser(ctx context.Context, userID string) (int, error)
	// ListForUser returns the user's live sessions, oldest first (by
	// CreatedAt, then ID).
	ListForUser(ctx context.Context, userID string) ([]Session, error)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidID reports whether s may be a session id: letters, digits, '_' and
// '-', starting with a letter or digit, at most MaxIDLen bytes.
func ValidID(s string) bool { return idPattern.MatchString(s) }

var clientPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)

// ValidClientID reports whether s may be a client id.
func ValidClientID(s string) bool { return clientPattern.MatchString(s) }

// NewID returns a random session id ("s_" and 32 hex digits, 128 bits).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "s_" + hex.EncodeToString(b[:])
}

// Check returns an errs.Invalid error if s is not a session a store may
// keep: valid ids, times set with ExpiresAt after CreatedAt, a current
// token hash, hashes of SHA-256 length.
func Check(s Session) error {
	const op = "session.check"
	switch {
	case !ValidID(s.ID):
		return errs.E(op, errs.Invalid, "bad session id")
	case !identity.ValidID(s.UserID):
		return errs.E(op, errs.Invalid, "bad user id")
	case !ValidClientID(s.ClientID):
		return errs.E(op, errs.Invalid, "bad client id")
	case s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() || s.Family.RotatedAt.IsZero():
		return errs.E(op, errs.Invalid, "times must be set")
	case !s.ExpiresAt.After(s.CreatedAt):
		return errs.E(op, errs.Invalid, "expiry must be after creation")
	case len(s.Family.Current) != hashLen:
		return errs.E(op, errs.Invalid, "current token hash missing")
	case s.Family.Previous != nil && len(s.Family.Previous) != hashLen:
		return errs.E(op, errs.Invalid, "previous token hash has the wrong length")
	case len(s.UserAgent) > MaxUserAgentLen || !utf8.ValidString(s.UserAgent):
		return errs.E(op, errs.Invalid, "bad user agent")
	}
	if s.IP != "" {
		if _, err := netip.ParseAddr(s.IP); err != nil {
			return errs.E(op, errs.Invalid, "bad IP address")
		}
	}
	return nil
}

// Seen is what a request tells about the device: recorded at sign-in and
// updated on each rotation when not empty.
type Seen struct {
	UserAgent string
	IP        string // an IPv4 or IPv6 address; anything else is dropped
}

func cleanUserAgent(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > MaxUserAgentLen {
		s = s[:MaxUserAgentLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func cleanIP(s string) string {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return a.Unmap().WithZone("").String()
}

// Tokens.

// newToken returns a fresh refresh token for the session.
func newToken(sessionID string) string {
	var b [SecretLen]byte
	_, _ = rand.Read(b[:])
	return sessionID + "." + base64.RawURLEncoding.EncodeToString(b[:])
}

// parseToken returns the session id of a well-formed token.
func parseToken(tok string) (string, bool) {
	i := strings.LastIndexByte(tok, '.')
	if i <= 0 || !ValidID(tok[:i]) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(b) != SecretLen {
		return "", false
	}
	return tok[:i], true
}

// HashToken is the SHA-256 of a token, as stores keep it.
func HashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// sealKey is the key that seals a token's successor: a hash of the token
// with a label, so that it differs from HashToken's value, which stores
// keep.
func sealKey(tok string) []byte {
	h := sha256.Sum256([]byte("ticketing session seal v1\x00" + tok))
	return h[:]
}

func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // 32-byte key: cannot fail
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// seal encrypts next under a key derived from prev, bound to the session
// id. Each key seals one value, so a fixed nonce would do; a random one
// costs 12 bytes and no argument.
func seal(sessionID, prev, next string) []byte {
	a := gcm(sealKey(prev))
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(next)+a.Overhead())
	_, _ = rand.Read(nonce)
	return a.Seal(nonce, nonce, []byte(next), []byte(sessionID))
}

// open is the inverse of seal.
func open(sessionID, prev string, sealed []byte) (string, bool) {
	a := gcm(sealKey(prev))
	if len(sealed) < a.NonceSize() {
		return "", false
	}
	p, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], []byte(sessionID))
	if err != nil {
		return "", false
	}
	return string(p), true
}

func sameHash(a, b []byte) bool {
	return len(a) == hashLen && len(b) == hashLen && subtle.ConstantTimeCompare(a, b) == 1
}
