package barcode

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/ticketing/ticketing/internal/errs"
)

// The rotating code: RFC 6238 TOTP with HMAC-SHA1 (the RFC's default).
const (
	CodeDigits = 8
	CodePeriod = 15 * time.Second
	// CodeSkew is the number of steps either side of the current one a
	// verifier accepts: a code is good for 15 to 30 seconds after it is
	// first shown, never longer.
	CodeSkew = 1
	// SecretLen is the length of a barcode's rotating secret, in bytes.
	SecretLen = 20
	// MinRotationSecretLen is the shortest rotation master secret
	// accepted; NewRotationSecret makes 32 bytes.
	MinRotationSecretLen = 16
)

var totpOpts = totp.ValidateOpts{
	Period:    uint(CodePeriod / time.Second),
	Skew:      CodeSkew,
	Digits:    otp.DigitsEight,
	Algorithm: otp.AlgorithmSHA1,
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRotationSecret returns a new random rotation master secret for an
// event (32 bytes).
func NewRotationSecret() []byte {
	s := make([]byte, 32)
	_, _ = rand.Read(s) // never fails (crypto/rand)
	return s
}

// DeviceSecret returns the rotating secret of the barcode c, which the
// issuing core hands to the holder's device with the static token:
// HMAC-SHA256(master, ticket id || device binding id), truncated to
// SecretLen bytes. master is the event's rotation master secret, at least
// MinRotationSecretLen bytes; otherwise, or for a printed barcode (it has
// no code), the error is errs.Invalid.
func DeviceSecret(master []byte, c Claims) ([]byte, error) {
	const op = "barcode.devicesecret"
	if len(master) < MinRotationSecretLen {
		return nil, errs.Errorf(op, errs.Invalid, "rotation secret is shorter than %d bytes", MinRotationSecretLen)
	}
	if c.Printed {
		return nil, errs.E(op, errs.Invalid, "a printed barcode has no rotating code")
	}
	s := deviceSecret(master, []byte(c.TicketID), c.Device)
	return s[:SecretLen:SecretLen], nil
}

// deviceSecret returns HMAC-SHA256(master, ticket || device); the secret
// is its first SecretLen bytes. The message is copied into a buffer of
// its own, so that the caller's buffers, which the hash's Write would
// make escape, stay on the stack.
func deviceSecret(master, ticket []byte, device DeviceBinding) []byte {
	m := make([]byte, 0, MaxIDLen+DeviceBindingLen)
	m = append(append(m, ticket...), device[:]...)
	mac := hmac.New(sha256.New, master)
	mac.Write(m)
	return mac.Sum(m[:0])
}

// Code returns the rotating code of secret (SecretLen bytes) at t.
func Code(secret []byte, t time.Time) (string, error) {
	const op = "barcode.code"
	if len(secret) != SecretLen {
		return "", errs.Errorf(op, errs.Invalid, "rotating secret must be %d bytes", SecretLen)
	}
	code, err := totp.GenerateCodeCustom(b32.EncodeToString(secret), t, totpOpts)
	if err != nil {
		return "", errs.E(op, errs.Other, err)
	}
	return code, nil
}

// Show returns the text a ticket page shows at now for the static token
// (what Sign returned) and its rotating secret: "<static>.<code>", to be
// redrawn every CodePeriod. A printed barcode is shown as it is, and
// secret is not used. A static token that does not parse is errs.Invalid.
func Show(static string, secret []byte, now time.Time) (string, error) {
	if strings.Contains(static, ".") {
		return "", errs.E("barcode.show", errs.Invalid, "static token already has a code")
	}
	c, err := Parse(static)
	if err != nil {
		return "", err
	}
	if c.Printed {
		return static, nil
	}
	code, err := Code(secret, now)
	if err != nil {
		return "", err
	}
	return static + "." + code, nil
}

// validCode reports whether s is CodeDigits ASCII digits.
func validCode(s string) bool {
	if len(s) != CodeDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkCode reports whether code is the code of the barcode's rotating
// secret at a step within CodeSkew of now's.
func checkCode(master, ticket []byte, device DeviceBinding, code string, now time.Time) (bool, error) {
	s := deviceSecret(master, ticket, device)
	var enc [32]byte // base32 of SecretLen bytes
	b32.Encode(enc[:], s[:SecretLen])
	return totp.ValidateCustom(code, string(enc[:]), now, totpOpts)
}
