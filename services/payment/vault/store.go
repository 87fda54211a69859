package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/payment"
)

// Store keeps the vault's sealed records: wrapped data keys, sealed cards
// and sealed CVCs. It sees ciphertext only. Implementations
// (services/payment/vault/natskv for `ticketing dev`,
// services/payment/vault/postgres in production) pass the contract suite
// services/payment/vault/vaulttest and are safe for concurrent use, also
// from several processes on one backing store. Cancelling the context
// abandons the call; a write abandoned midway may or may not have taken
// effect.
//
// Records are checked (their Check methods) before they are written:
// errs.Invalid, nothing written. Data keys are never deleted (a card
// refers to its key for as long as it exists).
type Store interface {
	// CreateKey stores a new wrapped data key and returns it with its
	// Version; an id that exists is errs.Conflict.
	CreateKey(ctx context.Context, k WrappedKey) (WrappedKey, error)
	// Key returns a wrapped data key, or errs.NotFound.
	Key(ctx context.Context, id string) (WrappedKey, error)
	// Keys returns up to limit (1 to 1000) wrapped data keys whose ids
	// sort after after ("" from the first), in id order: Rewrap and KEK
	// usage walk them a page at a time.
	Keys(ctx context.Context, after string, limit int) ([]WrappedKey, error)
	// UpdateKey replaces a data key's KEK and wrapped form if the stored
	// key is still at k.Version, and returns it with its new Version. A
	// key moved on is errs.Conflict (ReasonVersionMismatch); no such key
	// is errs.NotFound; Created cannot change (errs.Invalid).
	UpdateKey(ctx context.Context, k WrappedKey) (WrappedKey, error)

	// PutCard stores a sealed card. A token id that exists is
	// errs.Conflict; a data key that does not exist is errs.Invalid.
	PutCard(ctx context.Context, c SealedCard) error
	// Card returns a sealed card, or errs.NotFound.
	Card(ctx context.Context, tokenID string) (SealedCard, error)

	// PutCVC stores a card's sealed CVC, replacing one stored before. A
	// data key that does not exist is errs.Invalid.
	PutCVC(ctx context.Context, c SealedCVC) error
	// PutCardWithCVC stores a new sealed card and, unless cvc is nil,
	// its sealed CVC (for the card's token), with PutCard's and PutCVC's
	// errors: what Seal writes. The CVC is never missing from a card
	// stored with one: the store writes both at once, or the CVC first.
	// On an error the CVC may have been stored (and expires).
	PutCardWithCVC(ctx context.Context, c SealedCard, cvc *SealedCVC) error
	// CVC returns a card's sealed CVC; errs.NotFound when there is none,
	// it was deleted or it expired (ExpiresAt, by the store's clock).
	// Expired CVCs are deleted by the store eventually.
	CVC(ctx context.Context, tokenID string) (SealedCVC, error)
	// DeleteCVC deletes a card's sealed CVC; deleting one that does not
	// exist is not an error.
	DeleteCVC(ctx context.Context, tokenID string) error
	// CardAndCVC returns a sealed card and its sealed CVC, nil where CVC
	// would be errs.NotFound (none kept, deleted, expired), in one read
	// where the store can: what the vault reads to open a card for a
	// payment. No such card is errs.NotFound.
	CardAndCVC(ctx context.Context, tokenID string) (SealedCard, *SealedCVC, error)

	// FingerprintCheck stores check as the fingerprint key's check value
	// unless one is stored, and returns the stored one: of concurrent
	// first calls one value wins.
	FingerprintCheck(ctx context.Context, check string) (string, error)
}

// ReasonVersionMismatch refines errs.Conflict from Store.UpdateKey.
const ReasonVersionMismatch = "version_mismatch"

// Limits.
const (
	// MaxSealed bounds a sealed card or CVC (nonce, ciphertext, tag).
	MaxSealed = 512
	// wrappedSize is a wrapped data key: nonce, 32 bytes, tag.
	wrappedSize = 12 + KeySize + 16
	// MaxKeysPage bounds Store.Keys's limit.
	MaxKeysPage = 1000
)

// WrappedKey is a data key (DEK) as stored: AES-256-GCM-sealed by the KEK
// named KEK, with associated data binding it to its id and KEK id.
type WrappedKey struct {
	ID      string    `json:"id"`      // "dek_" and 24 hex digits
	KEK     string    `json:"kek"`     // the KEK that wraps it
	Wrapped []byte    `json:"wrapped"` // nonce ‖ ciphertext ‖ tag
	Created time.Time `json:"created"`
	// Version is the store's: it grows with every UpdateKey.
	Version uint64 `json:"-"`
}

// SealedCard is a card as stored: its public part (Token) in the clear,
// its number and expiry sealed under data key KeyID with associated data
// binding them to the token id and KeyID.
type SealedCard struct {
	Token  Token  `json:"token"`
	KeyID  string `json:"key_id"`
	Sealed []byte `json:"sealed"` // nonce ‖ ciphertext ‖ tag
}

// SealedCVC is a card's CVC as stored, sealed apart from the card so that
// it can be deleted after authorization (ForgetCVC), and dropped by
// ExpiresAt if it never is.
type SealedCVC struct {
	TokenID   string    `json:"token_id"`
	KeyID     string    `json:"key_id"`
	Sealed    []byte    `json:"sealed"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Token is a stored card's public part: what the buyer's browser gets
// back for the card it posted, and what may be shown, logged and stored
// outside the vault.
type Token struct {
	ID       string        `json:"id"` // "pm_" and 32 hex digits (128 random bits)
	Brand    payment.Brand `json:"brand"`
	Last4    string        `json:"last4"`
	ExpMonth int           `json:"exp_month"`
	ExpYear  int           `json:"exp_year"`
	// Fingerprint is the same for every token of one card number: the
	// first 16 bytes of HMAC-SHA256(number) under the fingerprint key, in
	// hex (see Keyring).
	Fingerprint string    `json:"fingerprint"`
	Created     time.Time `json:"created"`
}

// Summary is the token as payment.CardSummary.
func (t Token) Summary() payment.CardSummary {
	return payment.CardSummary{Brand: t.Brand, Last4: t.Last4, Fingerprint: t.Fingerprint}
}

var (
	tokenIDPattern     = regexp.MustCompile(`^pm_[0-9a-f]{32}$`)
	keyIDPattern       = regexp.MustCompile(`^dek_[0-9a-f]{24}$`)
	fingerprintPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ValidTokenID reports whether s may be a token id ("pm_" and 32 lower
// case hex digits). Ids appear in storage keys: nothing else is looked up.
func ValidTokenID(s string) bool { return tokenIDPattern.MatchString(s) }

// ValidKeyID reports whether s may be a data key id ("dek_" and 24 lower
// case hex digits).
func ValidKeyID(s string) bool { return keyIDPattern.MatchString(s) }

// NewTokenID returns a random token id.
func NewTokenID() string { return "pm_" + randomHex(16) }

// NewKeyID returns a random data key id.
func NewKeyID() string { return "dek_" + randomHex(12) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// timestamp is t in UTC, truncated to microseconds (what every store
// keeps).
func timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Check reports whether k may be stored (errs.Invalid) and returns it with
// Created as stores keep it.
func (k WrappedKey) Check() (WrappedKey, error) {
	const op = "vault.key"
	switch {
	case !ValidKeyID(k.ID):
		return k, errs.E(op, errs.Invalid, "data key id malformed")
	case !ValidKEKID(k.KEK):
		return k, errs.E(op, errs.Invalid, "KEK id malformed")
	case len(k.Wrapped) != wrappedSize:
		return k, errs.Errorf(op, errs.Invalid, "a wrapped data key is %d bytes", wrappedSize)
	case k.Created.IsZero():
		return k, errs.E(op, errs.Invalid, "a data key needs its creation time")
	}
	k.Created = timestamp(k.Created)
	return k, nil
}

// Check reports whether t is a well-formed token (errs.Invalid) and
// returns it with Created as stores keep it.
func (t Token) Check() (Token, error) {
	const op = "vault.token"
	switch {
	case !ValidTokenID(t.ID):
		return t, errs.E(op, errs.Invalid, "token id malformed")
	case t.Brand != payment.BrandVisa && t.Brand != payment.BrandMastercard && t.Brand != payment.BrandAmex &&
		t.Brand != payment.BrandDiscover && t.Brand != payment.BrandUnknown:
		return t, errs.E(op, errs.Invalid, "unknown brand")
	case len(t.Last4) != 4 || !digits(t.Last4):
		return t, errs.E(op, errs.Invalid, "last4 must be 4 digits")
	case t.ExpMonth < 1 || t.ExpMonth > 12 || t.ExpYear < 2000 || t.ExpYear > 9999:
		return t, errs.E(op, errs.Invalid, "expiry out of range")
	case !fingerprintPattern.MatchString(t.Fingerprint):
		return t, errs.E(op, errs.Invalid, "fingerprint malformed")
	case t.Created.IsZero():
		return t, errs.E(op, errs.Invalid, "a token needs its creation time")
	}
	t.Created = timestamp(t.Created)
	return t, nil
}

// Check reports whether c may be stored (errs.Invalid) and returns it as
// stores keep it.
func (c SealedCard) Check() (SealedCard, error) {
	const op = "vault.card"
	t, err := c.Token.Check()
	if err != nil {
		return c, err
	}
	c.Token = t
	switch {
	case !ValidKeyID(c.KeyID):
		return c, errs.E(op, errs.Invalid, "data key id malformed")
	case len(c.Sealed) < 12+16 || len(c.Sealed) > MaxSealed:
		return c, errs.Errorf(op, errs.Invalid, "a sealed card is %d to %d bytes", 12+16, MaxSealed)
	}
	return c, nil
}

// Check reports whether c may be stored (errs.Invalid) and returns it as
// stores keep it.
func (c SealedCVC) Check() (SealedCVC, error) {
	const op = "vault.cvc"
	switch {
	case !ValidTokenID(c.TokenID):
		return c, errs.E(op, errs.Invalid, "token id malformed")
	case !ValidKeyID(c.KeyID):
		return c, errs.E(op, errs.Invalid, "data key id malformed")
	case len(c.Sealed) < 12+16 || len(c.Sealed) > MaxSealed:
		return c, errs.Errorf(op, errs.Invalid, "a sealed CVC is %d to %d bytes", 12+16, MaxSealed)
	case c.ExpiresAt.IsZero():
		return c, errs.E(op, errs.Invalid, "a CVC needs its expiry")
	}
	c.ExpiresAt = timestamp(c.ExpiresAt)
	return c, nil
}
