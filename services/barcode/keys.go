package barcode

import (
	"crypto/ed25519"
	"crypto/rand"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Key is a signing key of one event. It is active from NotBefore
// (inclusive) to NotAfter (exclusive); a zero NotBefore means since ever,
// a zero NotAfter means until further notice. While active it signs if it
// is the event's newest (SigningKey) and its public half verifies; from
// NotAfter on it is retired and verifies nothing.
type Key struct {
	Event     string
	ID        string // 1 to MaxKeyIDLen printable ASCII bytes, unique within the event
	Private   ed25519.PrivateKey
	NotBefore time.Time
	NotAfter  time.Time
}

// NewKey returns a new random key. The event id must be 1 to MaxIDLen
// bytes of text, the key id 1 to MaxKeyIDLen printable ASCII bytes, and
// notAfter, if set, after notBefore; otherwise the error is errs.Invalid.
func NewKey(event, id string, notBefore, notAfter time.Time) (Key, error) {
	const op = "barcode.newkey"
	if err := checkKey(op, event, id, notBefore, notAfter); err != nil {
		return Key{}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, errs.E(op, errs.Other, err)
	}
	return Key{Event: event, ID: id, Private: priv, NotBefore: notBefore, NotAfter: notAfter}, nil
}

func checkKey(op, event, id string, notBefore, notAfter time.Time) error {
	switch {
	case !validID(event):
		return errs.E(op, errs.Invalid, "event id must be 1-128 bytes of text")
	case !validKeyID([]byte(id)):
		return errs.E(op, errs.Invalid, "key id must be 1-16 printable ASCII bytes")
	case !notAfter.IsZero() && !notAfter.After(notBefore):
		return errs.E(op, errs.Invalid, "key must retire after it starts")
	}
	return nil
}

// Public returns the verifying half of k.
func (k Key) Public() PublicKey {
	pub, _ := k.Private.Public().(ed25519.PublicKey)
	return PublicKey{Event: k.Event, ID: k.ID, Key: pub, NotBefore: k.NotBefore, NotAfter: k.NotAfter}
}

// SigningKey returns the key that signs the event's barcodes at now: of
// its keys active at now, the one with the latest NotBefore (the first
// such in keys on a tie). None is errs.NotFound.
func SigningKey(keys []Key, event string, now time.Time) (Key, error) {
	best := -1
	for i, k := range keys {
		if k.Event == event && active(k.NotBefore, k.NotAfter, now) &&
			(best < 0 || k.NotBefore.After(keys[best].NotBefore)) {
			best = i
		}
	}
	if best < 0 {
		return Key{}, errs.E("barcode.signingkey", errs.NotFound, "no active signing key for the event")
	}
	return keys[best], nil
}

func active(notBefore, notAfter, now time.Time) bool {
	return !now.Before(notBefore) && (notAfter.IsZero() || now.Before(notAfter))
}

// PublicKey is the verifying half of a Key, with the same event, id and
// active period.
type PublicKey struct {
	Event     string
	ID        string
	Key       ed25519.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
}

// KeySet is the public keys that scanners verify with, of one event or
// several: a barcode is checked with the key of its event and key id. Its
// JSON form (MarshalJSON) is what scanners download. A key in the set
// verifies while it is active; a retired key (past its NotAfter, or no
// longer in the set) verifies nothing, and its barcodes are refused with
// ReasonUnknownKey. Publish a new key before its NotBefore, so that
// scanners have it when it starts signing.
type KeySet struct {
	Keys []PublicKey
}

// key returns the key of event and kid active at now. Keys of the wrong
// length (a set built by hand) are skipped: ed25519.Verify panics on them.
func (s *KeySet) key(event, kid []byte, now time.Time) *PublicKey {
	for i := range s.Keys {
		k := &s.Keys[i]
		if k.ID == string(kid) && k.Event == string(event) && len(k.Key) == ed25519.PublicKeySize &&
			active(k.NotBefore, k.NotAfter, now) {
			return k
		}
	}
	return nil
}

// validID reports whether s may be an id of a payload: 1 to MaxIDLen
// bytes of UTF-8 without control characters.
func validID(s string) bool {
	return len(s) > 0 && len(s) <= MaxIDLen && validText([]byte(s))
}
