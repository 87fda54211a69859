package fraud

import (
	"net/netip"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Action is what the user is trying to do.
type Action string

// The actions.
const (
	ActionSignIn   Action = "signin"
	ActionSignUp   Action = "signup"
	ActionPurchase Action = "purchase"
)

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool {
	return a == ActionSignIn || a == ActionSignUp || a == ActionPurchase
}

// Join guard verdicts (edge/joinguard), as the edge passes them on.
const (
	// JoinGuardNone: no verdict (the request did not pass the join guard).
	JoinGuardNone = ""
	// JoinGuardPassed: the join guard let the client through untroubled.
	JoinGuardPassed = "passed"
	// JoinGuardSuspect: over a soft limit; it had to solve a harder
	// challenge.
	JoinGuardSuspect = "suspect"
	// JoinGuardLimited: a hard limit refused some of its requests.
	JoinGuardLimited = "limited"
)

// Limits of outside input.
const (
	MaxAddressLen = 64  // bytes of an address as received, port included
	MaxDeviceLen  = 128 // bytes of a device fingerprint
	MaxAccountLen = 128 // bytes of an account id
)

// Signals is what the caller knows about one attempt.
type Signals struct {
	Action Action
	// AccountID is the account acted on or for; empty when there is none
	// (a sign-up, or a sign-in naming an account that does not exist:
	// pass nothing that identifies a person, such as the e-mail address,
	// since it would reach the counters' keys and the events).
	AccountID string
	// AccountAge is how long ago the account was created.
	AccountAge time.Duration
	// Address is the client's address (ParseAddress); the zero value when
	// unknown.
	Address netip.Addr
	// Device is the device fingerprint from the client's cookie or header
	// (ParseDevice); empty when there is none. The known-device rules are
	// only as strong as the fingerprint is unguessable: it should be, or
	// contain, a random identifier the server issued to the device.
	Device string
	// Card is the payment card's fingerprint (purchases; later), opaque.
	Card string
	// FailedSignIns is the account's failed sign-ins since its last good
	// one (identity.Account.Failures).
	FailedSignIns int
	// JoinGuard is the join guard's verdict on the client, if any.
	JoinGuard string
	// SecondFactor says the account has a second factor (TOTP, passkey)
	// to challenge with.
	SecondFactor bool
	// Passed is the challenge this very request has already passed
	// (checked by the caller: a solved proof of work, a second factor),
	// or empty.
	Passed Challenge
}

// ParseAddress parses a client address as a server sees it: an IP
// address, optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443")
// or in brackets. IPv4-mapped IPv6 addresses become IPv4 and zones are
// dropped, so that one client is always one address.
func ParseAddress(s string) (netip.Addr, error) {
	const op = "fraud.parse_address"
	if s == "" || len(s) > MaxAddressLen {
		return netip.Addr{}, errs.Errorf(op, errs.Invalid, "address must be 1-%d bytes, got %d", MaxAddressLen, len(s))
	}
	host := s
	if ap, err := netip.ParseAddrPort(s); err == nil {
		host = ap.Addr().String()
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, errs.E(op, errs.Invalid, "not an IP address", err)
	}
	return a.WithZone("").Unmap(), nil
}

// ValidDevice reports whether s can be a device fingerprint: 1 to
// MaxDeviceLen bytes of letters, digits and "-._~+/=" (what a cookie value
// or a header carries of a random token, base64 included).
func ValidDevice(s string) bool {
	if s == "" || len(s) > MaxDeviceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// ParseDevice checks a device fingerprint received from a client (see
// ValidDevice); an absent one (empty) is not an error.
func ParseDevice(s string) (string, error) {
	if s == "" || ValidDevice(s) {
		return s, nil
	}
	return "", errs.Errorf("fraud.parse_device", errs.Invalid, "not a device fingerprint")
}

// Network is the network prefix of a, of bits4 bits for IPv4 and bits6 for
// IPv6 (e.g. 24 and 64): the granularity at which one network's clients
// are counted together, and all of an address that events carry. The zero
// prefix for an invalid address.
func Network(a netip.Addr, bits4, bits6 int) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	a = a.WithZone("").Unmap()
	bits := bits6
	if a.Is4() {
		bits = bits4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
