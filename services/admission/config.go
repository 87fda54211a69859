package admission

import (
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits that do not depend on configuration.
const (
	// MaxIDBytes bounds event and session ids in a token.
	MaxIDBytes = 128
	// maxTokenBytes is the largest MaxTokenBytes may be: the verifier
	// decodes into stack buffers of this size.
	maxTokenBytes = 4096
	// maxNameBytes bounds Issuer and Audience.
	maxNameBytes = 64
)

// Config is shared by the Signer and the Verifier: both must agree on
// issuer, audience and lifetimes.
type Config struct {
	// Issuer is the "iss" claim written and required. Default
	// "ticketing-core".
	Issuer string
	// Audience is the "aud" claim written and required. Default
	// "ticketing-edge".
	Audience string
	// TTL is how long an issued token is valid (exp - iat). Default 10m;
	// between 10s and MaxTTL.
	TTL time.Duration
	// MaxTTL is the longest lifetime (exp - iat) the verifier accepts,
	// whatever a token says. Default 30m; at most 1h.
	MaxTTL time.Duration
	// ClockSkew is the tolerance between the clocks of the node that
	// signed and the node that verifies, applied to nbf, iat and exp.
	// Default 30s; at most 5m. Negative means none.
	ClockSkew time.Duration
	// AdmittedFor is how long after its expiry a token still shows that
	// its session was admitted (Verifier.Admitted): orders name holds the
	// token admitted, and holds outlive it. Default 30m (the longest a
	// hold lives); at most 2h. Negative means not at all.
	AdmittedFor time.Duration
	// MaxTokenBytes refuses longer tokens before anything is decoded.
	// Default 1024; between 512 and 4096. A token with the longest ids
	// (MaxIDBytes) and names needs about 900.
	MaxTokenBytes int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Issuer == "" {
		c.Issuer = "ticketing-core"
	}
	if c.Audience == "" {
		c.Audience = "ticketing-edge"
	}
	if c.TTL == 0 {
		c.TTL = 10 * time.Minute
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = 30 * time.Minute
	}
	switch {
	case c.ClockSkew == 0:
		c.ClockSkew = 30 * time.Second
	case c.ClockSkew < 0:
		c.ClockSkew = 0
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = 1024
	}
	switch {
	case c.AdmittedFor == 0:
		c.AdmittedFor = 30 * time.Minute
	case c.AdmittedFor < 0:
		c.AdmittedFor = 0
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "admission.config"
	switch {
	case !validName(c.Issuer):
		return errs.Errorf(op, errs.Invalid, "issuer must be 1 to %d printable bytes", maxNameBytes)
	case !validName(c.Audience):
		return errs.Errorf(op, errs.Invalid, "audience must be 1 to %d printable bytes", maxNameBytes)
	case c.AdmittedFor > 2*time.Hour:
		return errs.Errorf(op, errs.Invalid, "admitted-for %v is above 2h", c.AdmittedFor)
	case c.MaxTTL > time.Hour:
		return errs.Errorf(op, errs.Invalid, "max TTL %v is above 1h", c.MaxTTL)
	case c.TTL < 10*time.Second || c.TTL > c.MaxTTL:
		return errs.Errorf(op, errs.Invalid, "TTL %v is not within [10s, max TTL %v]", c.TTL, c.MaxTTL)
	case c.TTL%time.Second != 0:
		return errs.Errorf(op, errs.Invalid, "TTL %v is not whole seconds", c.TTL)
	case c.ClockSkew > 5*time.Minute:
		return errs.Errorf(op, errs.Invalid, "clock skew %v is above 5m", c.ClockSkew)
	case c.MaxTokenBytes < 512 || c.MaxTokenBytes > maxTokenBytes:
		return errs.Errorf(op, errs.Invalid, "max token bytes %d is not within [512, %d]", c.MaxTokenBytes, maxTokenBytes)
	}
	return nil
}

func validName(s string) bool { return validID(s) && len(s) <= maxNameBytes }

// validID reports whether s is a usable id: 1 to MaxIDBytes bytes of
// UTF-8 without control characters.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
