package token

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits that do not depend on configuration.
const (
	// MaxIDBytes bounds the subject (user id) and the client id.
	MaxIDBytes = 128
	// MaxScopeBytes bounds the scope claim.
	MaxScopeBytes = 512
	// maxNameBytes bounds Issuer and Audience.
	maxNameBytes = 128
	// maxTokenBytes is the largest MaxTokenBytes may be: the verifier
	// splits the token in a stack buffer of this size.
	maxTokenBytes = 4096
)

// Config is shared by the Issuer and the Verifier: both must agree on
// issuer, audience and lifetimes.
type Config struct {
	// Issuer is the "iss" claim written and required, e.g. the identity
	// service's URL. Required.
	Issuer string
	// Audience is the "aud" claim written and required: the resource
	// servers the tokens are for. Required.
	Audience string
	// Lifetime is how long an issued token is valid (exp - iat) unless
	// the Request asks for less. Default 5m; between 10s and MaxLifetime,
	// whole seconds.
	Lifetime time.Duration
	// MaxLifetime is the longest lifetime (exp - iat) the verifier
	// accepts, whatever a token says. Default 30m (the key ring's default
	// VerifyFor, 1h, outlasts it); at most 24h.
	MaxLifetime time.Duration
	// Leeway is the tolerance between the clocks of the issuer and the
	// verifier, applied to exp, nbf and iat. Default 30s; at most 2m.
	// Negative means none.
	Leeway time.Duration
	// MaxTokenBytes refuses longer tokens before anything is decoded.
	// Default 2048; between 512 and 4096. A token with the longest ids,
	// names and scope needs about 1800.
	MaxTokenBytes int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Lifetime == 0 {
		c.Lifetime = 5 * time.Minute
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = 30 * time.Minute
	}
	switch {
	case c.Leeway == 0:
		c.Leeway = 30 * time.Second
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.MaxTokenBytes == 0 {
		c.MaxTokenBytes = 2048
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "token.config"
	switch {
	case !validName(c.Issuer):
		return errs.Errorf(op, errs.Invalid, "issuer must be 1 to %d printable bytes", maxNameBytes)
	case !validName(c.Audience):
		return errs.Errorf(op, errs.Invalid, "audience must be 1 to %d printable bytes", maxNameBytes)
	case c.MaxLifetime > 24*time.Hour:
		return errs.Errorf(op, errs.Invalid, "max lifetime %v is above 24h", c.MaxLifetime)
	case c.Lifetime < 10*time.Second || c.Lifetime > c.MaxLifetime:
		return errs.Errorf(op, errs.Invalid, "lifetime %v is not within [10s, max lifetime %v]", c.Lifetime, c.MaxLifetime)
	case c.Lifetime%time.Second != 0:
		return errs.Errorf(op, errs.Invalid, "lifetime %v is not whole seconds", c.Lifetime)
	case c.Leeway > 2*time.Minute:
		return errs.Errorf(op, errs.Invalid, "leeway %v is above 2m", c.Leeway)
	case c.MaxTokenBytes < 512 || c.MaxTokenBytes > maxTokenBytes:
		return errs.Errorf(op, errs.Invalid, "max token bytes %d is not within [512, %d]", c.MaxTokenBytes, maxTokenBytes)
	}
	return nil
}

func validName(s string) bool { return printable(s, maxNameBytes) }

// printable reports whether s is 1 to max bytes of UTF-8 without control
// characters.
func printable(s string, max int) bool {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// validScope reports whether s is a space-separated list of RFC 6749
// section 3.3 scope tokens (%x21 / %x23-5B / %x5D-7E), each once, within
// MaxScopeBytes. The empty scope is valid.
func validScope(s string) bool {
	if len(s) > MaxScopeBytes {
		return false
	}
	if s == "" {
		return true
	}
	toks := strings.Split(s, " ")
	for i, t := range toks {
		if t == "" || slices.Contains(toks[:i], t) {
			return false // leading, trailing or double space; or twice
		}
		for j := 0; j < len(t); j++ {
			if b := t[j]; b < 0x21 || b == '"' || b == '\\' || b > 0x7e {
				return false
			}
		}
	}
	return true
}
