package passkey

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/ticketing/ticketing/internal/errs"
)

// Config configures the Ceremonies.
type Config struct {
	// RPID is the relying party id: the domain the passkeys are bound to,
	// e.g. "tickets.example" (no scheme, port or path). Required. Every
	// origin's host must be it or a subdomain of it. Changing it makes
	// every registered passkey useless.
	RPID string
	// RPDisplayName is the name the browser shows in its passkey dialogs,
	// e.g. "Ticketing". Required; 1 to 64 printable bytes.
	RPDisplayName string
	// Origins are the origins the ceremonies may run in, e.g.
	// "https://tickets.example": scheme, host and optional port, nothing
	// else. Required. https only, except http on localhost (for
	// `ticketing dev`).
	Origins []string
	// Timeout is how long a ceremony may take, from its begin to its
	// finish: the timeout the browser is given and the lifetime of the
	// sealed state. Default 5m; between 30s and 30m.
	Timeout time.Duration
	// MaxPayloadBytes bounds the browser's JSON read by a finish: larger
	// payloads are refused (errs.TooLarge) before anything is decoded.
	// Default 64 KiB; between 4 KiB and 1 MiB.
	MaxPayloadBytes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = 64 << 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "passkey.config"
	if err := protocol.ValidateRPID(c.RPID); err != nil {
		return errs.E(op, errs.Invalid, "rp id is not a domain", err)
	}
	if !printable(c.RPDisplayName, 64) {
		return errs.E(op, errs.Invalid, "rp display name must be 1 to 64 printable bytes")
	}
	if len(c.Origins) == 0 {
		return errs.E(op, errs.Invalid, "at least one origin is needed")
	}
	for _, o := range c.Origins {
		if err := checkOrigin(o, c.RPID); err != nil {
			return errs.E(op, errs.Invalid, "bad origin", err)
		}
	}
	if c.Timeout < 30*time.Second || c.Timeout > 30*time.Minute {
		return errs.Errorf(op, errs.Invalid, "timeout %v is not within [30s, 30m]", c.Timeout)
	}
	if c.MaxPayloadBytes < 4<<10 || c.MaxPayloadBytes > 1<<20 {
		return errs.Errorf(op, errs.Invalid, "max payload bytes %d is not within [4 KiB, 1 MiB]", c.MaxPayloadBytes)
	}
	return nil
}

// checkOrigin reports why o is not an origin the RP id rpID may serve.
func checkOrigin(o, rpID string) error {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "/") {
		return fmt.Errorf("origin %q is not scheme://host[:port]", o)
	}
	host := u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && host == "localhost":
	default:
		return fmt.Errorf("origin %q is not https (http only on localhost)", o)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("origin %q is not within the rp id %q", o, rpID)
	}
	return nil
}

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
