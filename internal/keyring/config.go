package keyring

import (
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// KeyRingConfig configures a KeyRing.
type KeyRingConfig struct {
	// RotateEvery is the age at which Sync replaces the active key.
	// Default 24h; at least 1m.
	RotateEvery time.Duration
	// VerifyFor is how long a retired key still verifies: longer than the
	// lifetime (plus clock skew) of the tokens it signed; the token
	// packages check this against their own limits. Default 1h.
	VerifyFor time.Duration
}

// Defaults fills zero fields.
func (c *KeyRingConfig) Defaults() {
	if c.RotateEvery == 0 {
		c.RotateEvery = 24 * time.Hour
	}
	if c.VerifyFor == 0 {
		c.VerifyFor = time.Hour
	}
}

// Validate checks the config after Defaults.
func (c *KeyRingConfig) Validate() error {
	const op = "keyring.config"
	if c.RotateEvery < time.Minute {
		return errs.Errorf(op, errs.Invalid, "rotate every %v is below 1m", c.RotateEvery)
	}
	if c.VerifyFor < time.Minute {
		return errs.Errorf(op, errs.Invalid, "verify for %v is below 1m", c.VerifyFor)
	}
	return nil
}
