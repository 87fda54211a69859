// Package totp is the second factor of an account: time-based one-time
// passwords (RFC 6238) as authenticator apps make them, with
// github.com/pquerna/otp computing the codes and the otpauth:// URI. It is
// a domain package, with no storage or transport: the account store is to
// keep the secret and the last accepted time step, and the sign-in to call
// Verify. Neither exists yet; nothing outside the tests uses this package
// so far.
//
// The parameters are the ones every authenticator app supports: HMAC-SHA1,
// 6 digits, a 30-second period, and 160-bit secrets (RFC 4226's
// recommendation). Verify accepts the code of the current step and of one
// step either side, for clocks that are off by up to 30 seconds and codes
// typed as they change.
//
// A code is good once. Verify returns the time step it matched; the caller
// is to store it as the account's last accepted step (in a compare-and-set,
// so that of two concurrent sign-ins with one code only one succeeds) and
// to pass it to the next Verify, which refuses any code of that step or an
// earlier one. So a code seen over a shoulder or captured on its way is
// refused once it has been used, even within its 90-second window. (A
// phishing site that relays a code before the user's own sign-in uses it
// is not stopped by this; nothing in TOTP stops that.)
package totp

import (
	"encoding/base32"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	libtotp "github.com/pquerna/otp/totp"

	"github.com/ticketing/ticketing/internal/errs"
)

// The parameters.
const (
	Issuer     = "Ticketing" // the issuer of the otpauth:// URI, shown by the app
	Digits     = 6
	Period     = 30 // seconds
	Skew       = 1  // steps accepted either side of the current one
	SecretSize = 20 // bytes, 160 bits

	// MaxAccountLen bounds the account name (the user's e-mail address,
	// at most 254 bytes normalized).
	MaxAccountLen = 254
)

// Reasons refining errs.Unauthorized from Verify.
const (
	ReasonWrongCode  = "totp_wrong_code"  // no step in the window has that code
	ReasonCodeReused = "totp_code_reused" // the code is of a step at or before lastStep
)

// Key is a new TOTP secret, for the account store (Secret) and for the
// user's authenticator app (URI, usually shown as a QR code, and Secret
// for typing in).
type Key struct {
	// Secret is the shared secret in unpadded base32 (32 characters).
	Secret string
	// URI is the otpauth://totp/ provisioning URI: issuer "Ticketing", the
	// account name given, SHA1, 6 digits, period 30.
	URI string
}

// Generate makes a new random secret for the account named (the user's
// normalized e-mail address). The account name must be 1 to MaxAccountLen
// bytes without ':' (the separator of the URI's label) or control
// characters; otherwise the error is errs.Invalid.
func Generate(account string) (Key, error) {
	const op = "totp.generate"
	if account == "" || len(account) > MaxAccountLen {
		return Key{}, errs.Errorf(op, errs.Invalid, "account name must be 1-%d bytes", MaxAccountLen)
	}
	for _, r := range account {
		if r == ':' || r < 0x20 || r == 0x7f {
			return Key{}, errs.E(op, errs.Invalid, "account name may not contain ':' or control characters")
		}
	}
	k, err := libtotp.Generate(libtotp.GenerateOpts{
		Issuer:      Issuer,
		AccountName: account,
		Period:      Period,
		SecretSize:  SecretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Key{}, errs.E(op, errs.Other, err)
	}
	return Key{Secret: k.Secret(), URI: k.URL()}, nil
}

// Step returns the RFC 6238 time step of t: the number of whole periods
// since the Unix epoch (negative before it).
func Step(t time.Time) int64 {
	s := t.Unix()
	step := s / Period
	if s%Period < 0 {
		step-- // floor, not truncation, before the epoch
	}
	return step
}

// Code returns the code for secret at time t, as the user's app shows it.
// The account service needs it only in tests; it is exported for those.
func Code(secret string, t time.Time) (string, error) {
	if err := checkSecret("totp.code", secret); err != nil {
		return "", err
	}
	c, err := libtotp.GenerateCodeCustom(secret, t, validateOpts(Digits))
	if err != nil {
		return "", errs.E("totp.code", errs.Other, err)
	}
	return c, nil
}

// Verify checks a code the user typed against secret at time now and
// returns the time step it is the code of. Spaces in the code are ignored
// (apps show "123 456"). Steps up to Skew either side of now's are
// accepted, except steps at or before lastStep, the step the caller last
// accepted for this secret (0 if none: step 0 is in 1970).
//
// A code that is not Digits digits is errs.Invalid. A well-formed code of
// no step in the window is errs.Unauthorized with ReasonWrongCode; one
// whose only steps in the window are at or before lastStep is
// errs.Unauthorized with ReasonCodeReused. A secret that is not a
// SecretSize-byte base32 string is an error of kind errs.Other (the
// store's fault, not the user's).
func Verify(secret, code string, now time.Time, lastStep int64) (step int64, err error) {
	return verify(secret, code, now, lastStep, Digits)
}

// verify is Verify for codes of any number of digits: RFC 6238's test
// vectors are of 8.
func verify(secret, code string, now time.Time, lastStep int64, digits int) (int64, error) {
	const op = "totp.verify"
	if err := checkSecret(op, secret); err != nil {
		return 0, err
	}
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != digits || strings.Trim(code, "0123456789") != "" {
		return 0, errs.Errorf(op, errs.Invalid, "the code must be %d digits", digits)
	}
	opts := validateOpts(digits)
	cur := Step(now)
	// Every step of the window is computed and compared (in constant time,
	// by hotp.ValidateCustom), whatever matches: the time taken does not
	// say which step a code is of. Of two steps with the same code, one in
	// a million windows, the earliest after lastStep is taken.
	matched, reused := int64(-1), false
	for s := cur - Skew; s <= cur+Skew; s++ {
		if s < 0 {
			continue
		}
		ok, err := hotp.ValidateCustom(code, uint64(s), secret, hotp.ValidateOpts{Digits: opts.Digits, Algorithm: opts.Algorithm})
		if err != nil {
			return 0, errs.E(op, errs.Other, err)
		}
		switch {
		case !ok:
		case s <= lastStep:
			reused = true
		case matched < 0:
			matched = s
		}
	}
	switch {
	case matched >= 0:
		return matched, nil
	case reused:
		return 0, errs.E(op, errs.Unauthorized, "this code has been used; wait for the next one").WithReason(ReasonCodeReused)
	}
	return 0, errs.E(op, errs.Unauthorized, "wrong code").WithReason(ReasonWrongCode)
}

func validateOpts(digits int) libtotp.ValidateOpts {
	return libtotp.ValidateOpts{Period: Period, Skew: Skew, Digits: otp.Digits(digits), Algorithm: otp.AlgorithmSHA1}
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// checkSecret checks that secret is what Generate makes: SecretSize bytes
// in unpadded upper-case base32. The library would take shorter secrets,
// padding and lower case; a stored secret is never any of those.
func checkSecret(op, secret string) error {
	b, err := b32.DecodeString(secret)
	if err != nil || len(b) != SecretSize || len(secret) != b32.EncodedLen(SecretSize) {
		return errs.Errorf(op, errs.Other, "the TOTP secret is not %d bytes of unpadded base32", SecretSize)
	}
	return nil
}
