package passkey

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/ticketing/ticketing/internal/errs"
)

// Purposes of a ceremony. A state records the purpose it was begun for,
// and each finish accepts only its own: the state of a registration does
// not finish a login.
const (
	PurposeRegister     = "register"
	PurposeLogin        = "login"
	PurposeSecondFactor = "second_factor"
)

var purposeCodes = [...]string{1: PurposeRegister, 2: PurposeLogin, 3: PurposeSecondFactor}

func purposeCode(p string) byte {
	for i, x := range purposeCodes {
		if x == p && i != 0 {
			return byte(i)
		}
	}
	return 0
}

// KeySize is the size of a state key: AES-256.
const KeySize = 32

// MaxStateLen bounds the sealed states Open reads. A second-factor state
// lists the account's credential ids: with MaxPasskeys ids of 64 bytes it
// is about 2.4 KB.
const MaxStateLen = 16 << 10

const (
	stateVersion = 1
	// stateAAD binds a sealed state to this use of the key.
	stateAAD = "ticketing passkey ceremony state v1"
	// headerLen is the version byte; then comes GCM's nonce, prepended by
	// NewGCMWithRandomNonce.
	headerLen = 1
)

// Sealer seals the state of ceremonies, so that the client carries it
// between begin and finish and the service keeps nothing per ceremony:
// AES-256-GCM with a random nonce under the current key, opened with the
// current or the previous key. Rotate by making the current key the
// previous one and a new key current; states sealed under the key before
// the previous one are refused, so rotate no faster than the ceremonies'
// Timeout. Safe for concurrent use.
type Sealer struct {
	aeads []cipher.AEAD // current first
}

// NewSealer returns a sealer with the current key and, if not nil, the
// previous one. Keys are KeySize random bytes (errs.Invalid otherwise).
func NewSealer(current, previous []byte) (*Sealer, error) {
	s := &Sealer{}
	for i, k := range [][]byte{current, previous} {
		if i == 1 && k == nil {
			break
		}
		if len(k) != KeySize {
			return nil, errs.Errorf("passkey.sealer", errs.Invalid, "state keys must be %d bytes", KeySize)
		}
		b, err := aes.NewCipher(k) // copies the key
		if err != nil {
			return nil, errs.E("passkey.sealer", errs.Invalid, err)
		}
		a, err := cipher.NewGCMWithRandomNonce(b)
		if err != nil {
			return nil, errs.E("passkey.sealer", err)
		}
		s.aeads = append(s.aeads, a)
	}
	return s, nil
}

// ceremony is what a sealed state carries.
type ceremony struct {
	purpose string
	expires time.Time // the state is refused from then on
	session webauthn.SessionData
}

// seal returns c as an unpadded base64url string:
//
//	version (1) | nonce (12) | AES-GCM(purpose (1) | expiry, unix ms (8) | msgpack(SessionData)) | tag (16)
func (s *Sealer) seal(c ceremony) (string, error) {
	p := purposeCode(c.purpose)
	if p == 0 {
		return "", errs.Errorf("passkey.seal", errs.Other, "unknown purpose %q", c.purpose)
	}
	plain := make([]byte, 9, 512)
	plain[0] = p
	binary.BigEndian.PutUint64(plain[1:], uint64(c.expires.UnixMilli()))
	plain, err := c.session.MarshalMsg(plain)
	if err != nil {
		return "", errs.E("passkey.seal", errs.Other, err)
	}
	out := append(make([]byte, 0, headerLen+len(plain)+s.aeads[0].Overhead()), stateVersion)
	out = s.aeads[0].Seal(out, nil, plain, []byte(stateAAD))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open is the inverse of seal. Every failure is errs.Unauthorized with
// ReasonStateInvalid; whether the state has expired is the caller's to
// check.
func (s *Sealer) open(state string) (ceremony, error) {
	bad := func(msg string) (ceremony, error) {
		return ceremony{}, errs.E("passkey.state", errs.Unauthorized, msg).WithReason(ReasonStateInvalid)
	}
	if state == "" {
		return bad("passkey ceremony state missing")
	}
	if len(state) > MaxStateLen {
		return bad("passkey ceremony state too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(raw) < headerLen || raw[0] != stateVersion {
		return bad("passkey ceremony state malformed")
	}
	var plain []byte
	for _, a := range s.aeads {
		if plain, err = a.Open(nil, nil, raw[headerLen:], []byte(stateAAD)); err == nil {
			break
		}
	}
	if err != nil {
		return bad("passkey ceremony state not sealed by this service")
	}
	// From here the bytes are ours: a failure is a bug, but it is still
	// refused rather than trusted.
	if len(plain) < 9 || int(plain[0]) >= len(purposeCodes) || plain[0] == 0 {
		return bad("passkey ceremony state malformed")
	}
	c := ceremony{
		purpose: purposeCodes[plain[0]],
		expires: time.UnixMilli(int64(binary.BigEndian.Uint64(plain[1:9]))),
	}
	rest, err := c.session.UnmarshalMsg(plain[9:])
	if err != nil || len(rest) != 0 || c.session.Challenge == "" {
		return bad("passkey ceremony state malformed")
	}
	return c, nil
}
