package fraud

import (
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Config tunes an Engine. Zero fields get the defaults Defaults documents;
// a limit or a number of points cannot be turned off with 0 (that is the
// default), set it to -1 instead where the field says so.
type Config struct {
	// VelocityWindow is the window of the attempt counters (per account,
	// address, network, device and card, per action). Default 1 minute.
	VelocityWindow time.Duration
	// FailureWindow is the window of the failed sign-in counters (per
	// account, address and network). Default 15 minutes.
	FailureWindow time.Duration
	// KnownWindow is how long a device, or a network, is known to an
	// account after a good sign-in from it: between KnownWindow and twice
	// that (see Counters). Default 30 days.
	KnownWindow time.Duration

	// Velocity limits: attempts in VelocityWindow beyond which each
	// dimension adds VelocityPoints. Defaults: 10 per account, 30 per
	// address, 300 per network, 20 per device, 5 per card. -1 turns one
	// off.
	AccountVelocity, AddressVelocity, NetworkVelocity, DeviceVelocity, CardVelocity int
	// VelocityPoints is what each dimension over its limit adds to the
	// score. Default 20.
	VelocityPoints int

	// FreshAge is the age under which an account is fresh, adding
	// FreshPoints (sign-ins and purchases). Default 24 hours.
	FreshAge time.Duration
	// FreshPoints: default 25.
	FreshPoints int
	// FailurePoints is what each of the account's failed sign-ins since
	// its last good one adds, up to MaxFailurePoints. Defaults 5 and 25.
	FailurePoints, MaxFailurePoints int
	// SuspectPoints and LimitedPoints are what the join guard's verdicts
	// add. Defaults 20 and 40.
	SuspectPoints, LimitedPoints int
	// KnownDeviceCredit and KnownNetworkCredit are taken off the score
	// for a device, or a network, the account signed in from before.
	// Defaults 30 and 10.
	KnownDeviceCredit, KnownNetworkCredit int

	// Score bands: from ChallengeScore the outcome is at least a
	// challenge, from SlowScore the slow lane, from DenyScore a denial.
	// Defaults 30, 45 and 90; 0 < ChallengeScore ≤ SlowScore ≤ DenyScore
	// ≤ 101 (101: the score never denies).
	ChallengeScore, SlowScore, DenyScore int

	// Credential stuffing. AddressFailureLimit and NetworkFailureLimit are
	// the failed sign-ins in FailureWindow from one address, or one
	// network, from which that address or network is denied sign-ins
	// (every account, save the ones it is known to). Defaults 20 and 200;
	// -1 turns one off.
	AddressFailureLimit, NetworkFailureLimit int
	// AccountChallengeFailures is the failed sign-ins of an account (in
	// FailureWindow, or since its last good sign-in) from which signing
	// in to it takes a challenge. Default 3.
	AccountChallengeFailures int
	// AccountLockFailures is the failed sign-ins of an account in
	// FailureWindow that start a lockout: for LockoutWindow to twice that,
	// the account is denied to devices and networks it does not know.
	// A lockout starts at most once per LockoutCooldown (to twice that),
	// so however long an attack lasts, the owner on a new device waits out
	// one lockout and then gets challenges. Default 20; -1: no lockouts.
	AccountLockFailures int
	// LockoutWindow: default 15 minutes.
	LockoutWindow time.Duration
	// LockoutCooldown: default 24 hours.
	LockoutCooldown time.Duration

	// IPv4Prefix and IPv6Prefix are the lengths of a network. Defaults 24
	// and 64.
	IPv4Prefix, IPv6Prefix int

	// HashKey keys the hashes that stand for accounts, addresses and
	// devices in counter keys, and for addresses in events
	// (Event.AddressHash, only when set). Every engine sharing a store
	// must have the same one. Default none: plain SHA-256, and no address
	// hashes in events (an unkeyed hash of an IPv4 address is reversed by
	// trying them all).
	HashKey []byte
	// KeyPrefix is prepended to every counter key. Default "fraud:".
	KeyPrefix string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	dur := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	num := func(p *int, n int) {
		if *p == 0 {
			*p = n
		}
	}
	dur(&c.VelocityWindow, time.Minute)
	dur(&c.FailureWindow, 15*time.Minute)
	dur(&c.KnownWindow, 30*24*time.Hour)
	num(&c.AccountVelocity, 10)
	num(&c.AddressVelocity, 30)
	num(&c.NetworkVelocity, 300)
	num(&c.DeviceVelocity, 20)
	num(&c.CardVelocity, 5)
	num(&c.VelocityPoints, 20)
	dur(&c.FreshAge, 24*time.Hour)
	num(&c.FreshPoints, 25)
	num(&c.FailurePoints, 5)
	num(&c.MaxFailurePoints, 25)
	num(&c.SuspectPoints, 20)
	num(&c.LimitedPoints, 40)
	num(&c.KnownDeviceCredit, 30)
	num(&c.KnownNetworkCredit, 10)
	num(&c.ChallengeScore, 30)
	num(&c.SlowScore, 45)
	num(&c.DenyScore, 90)
	num(&c.AddressFailureLimit, 20)
	num(&c.NetworkFailureLimit, 200)
	num(&c.AccountChallengeFailures, 3)
	num(&c.AccountLockFailures, 20)
	dur(&c.LockoutWindow, 15*time.Minute)
	dur(&c.LockoutCooldown, 24*time.Hour)
	num(&c.IPv4Prefix, 24)
	num(&c.IPv6Prefix, 64)
	if c.KeyPrefix == "" {
		c.KeyPrefix = "fraud:"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	for _, w := range []struct {
		name string
		d    time.Duration
	}{
		{"velocity window", c.VelocityWindow}, {"failure window", c.FailureWindow}, {"known window", c.KnownWindow},
		{"lockout window", c.LockoutWindow}, {"lockout cooldown", c.LockoutCooldown},
	} {
		if w.d < time.Second || w.d > MaxWindow || w.d%time.Millisecond != 0 {
			return errf("%s must be whole milliseconds in [1s, %v], got %v", w.name, MaxWindow, w.d)
		}
	}
	for _, l := range []struct {
		name string
		n    int
	}{
		{"account velocity", c.AccountVelocity}, {"address velocity", c.AddressVelocity},
		{"network velocity", c.NetworkVelocity}, {"device velocity", c.DeviceVelocity},
		{"card velocity", c.CardVelocity}, {"address failure limit", c.AddressFailureLimit},
		{"network failure limit", c.NetworkFailureLimit}, {"account lock failures", c.AccountLockFailures},
	} {
		if l.n < -1 || l.n > MaxCount {
			return errf("%s must be -1 (off) or 1-%d, got %d", l.name, MaxCount, l.n)
		}
	}
	for _, p := range []struct {
		name string
		n    int
	}{
		{"velocity points", c.VelocityPoints}, {"fresh points", c.FreshPoints}, {"failure points", c.FailurePoints},
		{"max failure points", c.MaxFailurePoints}, {"suspect points", c.SuspectPoints}, {"limited points", c.LimitedPoints},
		{"known device credit", c.KnownDeviceCredit}, {"known network credit", c.KnownNetworkCredit},
	} {
		if p.n < -1 || p.n > 100 {
			return errf("%s must be -1 (none) or 1-100, got %d", p.name, p.n)
		}
	}
	switch {
	case c.FreshAge < 0:
		return errf("negative fresh age %v", c.FreshAge)
	case c.ChallengeScore < 1 || c.ChallengeScore > c.SlowScore || c.SlowScore > c.DenyScore || c.DenyScore > 101:
		return errf("score bands must be 0 < challenge (%d) ≤ slow (%d) ≤ deny (%d) ≤ 101",
			c.ChallengeScore, c.SlowScore, c.DenyScore)
	case c.AccountChallengeFailures < 1 || c.AccountChallengeFailures > MaxCount:
		return errf("account challenge failures must be 1-%d, got %d", MaxCount, c.AccountChallengeFailures)
	case c.IPv4Prefix < 8 || c.IPv4Prefix > 32:
		return errf("IPv4 prefix must be 8-32 bits, got %d", c.IPv4Prefix)
	case c.IPv6Prefix < 16 || c.IPv6Prefix > 128:
		return errf("IPv6 prefix must be 16-128 bits, got %d", c.IPv6Prefix)
	case len(c.KeyPrefix) > 64:
		return errf("key prefix longer than 64 bytes")
	}
	return nil
}

func errf(format string, args ...any) error {
	return errs.Errorf("fraud.config", errs.Invalid, format, args...)
}

// points is n, or 0 for -1 (none).
func points(n int) int { return max(n, 0) }

// over reports whether count is beyond limit (-1: never).
func over(count int64, limit int) bool { return limit > 0 && count > int64(limit) }

// atLeast reports whether count has reached limit (-1: never).
func atLeast(count int64, limit int) bool { return limit > 0 && count >= int64(limit) }
