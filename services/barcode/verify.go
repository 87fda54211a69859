package barcode

import (
	"crypto/ed25519"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Verifier checks barcodes at a gate, offline: all it needs is in its
// fields. It is a value: to take a newer key set or revocation list,
// build a new Verifier rather than change one in use. Verify is safe for
// concurrent use while the Verifier is not changed.
type Verifier struct {
	// Keys are the public keys to verify with: usually the event's. A
	// barcode is checked with the key of its own event and key id, so a
	// genuine barcode of another event whose key is in the set is refused
	// with ReasonWrongEvent, and one whose key is not with
	// ReasonUnknownKey.
	Keys KeySet
	// Revoked is the revocation list; nil revokes nothing.
	Revoked *RevocationList
	// Event is the event this gate admits to.
	Event string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowPrinted accepts the printable static variant (Claims.Printed),
	// which has no rotating code and so can be copied: gates whose policy
	// allows it set this, and apply stricter rules when Verify reports
	// one.
	AllowPrinted bool
	// RotationSecret is the event's rotation master secret, from which
	// every barcode's rotating secret is derived (DeviceSecret); at least
	// MinRotationSecretLen bytes.
	RotationSecret []byte
}

// Verify checks a barcode's text as a gate scanner reads it and returns
// its claims. It checks, in this order: the text is a barcode of this
// format (ReasonMalformed); its key is in Keys for its event and active
// now (ReasonUnknownKey); the signature (ReasonBadSignature); the event
// (ReasonWrongEvent); ValidFrom <= now < ValidUntil (ReasonNotYetValid,
// ReasonExpired); the revocation list (ReasonRevoked); then for a printed
// barcode that it has no code and that AllowPrinted is set
// (ReasonPrintedNotAllowed), for any other that it has a code
// (ReasonCodeMissing) of a step within CodeSkew of now's
// (ReasonStaleCode). Every refusal is an *errs.Error with one of these
// reasons; a verifier without a RotationSecret fails with errs.Other on
// barcodes that have a code.
//
// Verify decodes into stack buffers; a verified barcode's strings cost one
// allocation, and the rotating code's check (pquerna/otp) a few more.
func (v *Verifier) Verify(text string) (Claims, error) {
	static, code, hasCode, f := splitText(text)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	var buf tokenBuf
	msg, payload, sig, f := decodeToken(static, &buf)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	r, f := decodeRaw(payload)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	printed := r.flags&flagPrinted != 0
	if printed && hasCode {
		return Claims{}, decodeErrs[printedCode]
	}
	var now time.Time
	if v.Now != nil {
		now = v.Now()
	} else {
		now = time.Now()
	}

	k := v.Keys.key(r.event.of(payload), r.kid.of(payload), now)
	if k == nil {
		return Claims{}, errUnknownKey
	}
	if !ed25519.Verify(k.Key, msg, sig) {
		return Claims{}, errBadSignature
	}

	// Signed by the event's key: judge the claims.
	if string(r.event.of(payload)) != v.Event {
		return Claims{}, errWrongEvent
	}
	t := now.Unix()
	if t < r.from {
		return Claims{}, errNotYetValid
	}
	if t >= r.until {
		return Claims{}, errExpired
	}
	if v.Revoked != nil && v.Revoked.revoked(r.ticket.of(payload), r.device) {
		return Claims{}, errRevoked
	}
	switch {
	case printed:
		if !v.AllowPrinted {
			return Claims{}, errPrintedNotAllowed
		}
	case !hasCode:
		return Claims{}, errCodeMissing
	case len(v.RotationSecret) < MinRotationSecretLen:
		return Claims{}, errNoRotationSecret
	default:
		ok, err := checkCode(v.RotationSecret, r.ticket.of(payload), r.device, code, now)
		if err != nil {
			return Claims{}, errs.E(opVerify, errs.Other, err)
		}
		if !ok {
			return Claims{}, errStaleCode
		}
	}
	c := r.claims(string(payload))
	c.KeyID, c.EventID = k.ID, v.Event // equal strings, already on the heap
	return c, nil
}
