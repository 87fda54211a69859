package fraud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// Engine decides on attempts and learns from their results. It is safe
// for concurrent use; all its state is in its Counters, so any number of
// engines sharing one store (with one Config) decide as one.
type Engine struct {
	cfg      Config
	counters Counters
	pub      Publisher

	decisions      [4]atomic.Int64 // by Outcome.severity()
	publishFailed  atomic.Int64
	countersFailed atomic.Int64
}

// New returns an engine counting in counters and publishing each
// decision's event to pub (nil: Discard).
func New(cfg Config, counters Counters, pub Publisher) (*Engine, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if counters == nil {
		return nil, errf("no counters")
	}
	if pub == nil {
		pub = Discard{}
	}
	cfg.HashKey = append([]byte(nil), cfg.HashKey...)
	return &Engine{cfg: cfg, counters: counters, pub: pub}, nil
}

// Config returns the engine's configuration, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Stats counts what an engine did since it started.
type Stats struct {
	Allowed, Challenged, Slowed, Denied int64
	// PublishFailed counts decisions whose event the Publisher refused.
	PublishFailed int64
	// CountersFailed counts calls whose counters could not be reached
	// (Decide then decided on the signals alone).
	CountersFailed int64
}

// Stats returns the engine's counts.
func (e *Engine) Stats() Stats {
	return Stats{
		Allowed: e.decisions[0].Load(), Challenged: e.decisions[1].Load(),
		Slowed: e.decisions[2].Load(), Denied: e.decisions[3].Load(),
		PublishFailed: e.publishFailed.Load(), CountersFailed: e.countersFailed.Load(),
	}
}

// subject is one attempt's signals made canonical, with the hashes that
// stand for them in counter keys.
type subject struct {
	s                         Signals
	network                   netip.Prefix
	account, addr, net        string // hashes; empty when absent
	device, card              string
	knownDevice, knownNetwork string
	badDevice                 bool
}

func (e *Engine) subject(op string, s Signals) (subject, error) {
	if !s.Action.Valid() {
		return subject{}, errs.Errorf(op, errs.Invalid, "unknown action %q", s.Action)
	}
	if len(s.AccountID) > MaxAccountLen {
		return subject{}, errs.Errorf(op, errs.Invalid, "account id longer than %d bytes", MaxAccountLen)
	}
	if len(s.Card) > MaxDeviceLen {
		return subject{}, errs.Errorf(op, errs.Invalid, "card fingerprint longer than %d bytes", MaxDeviceLen)
	}
	x := subject{s: s}
	x.s.Address = s.Address.WithZone("").Unmap()
	if s.Device != "" && !ValidDevice(s.Device) {
		x.s.Device, x.badDevice = "", true
	}
	if x.s.Address.IsValid() {
		x.network = Network(x.s.Address, e.cfg.IPv4Prefix, e.cfg.IPv6Prefix)
		x.addr = e.hash("i", x.s.Address.String(), "")
		x.net = e.hash("n", x.network.String(), "")
	}
	if s.AccountID != "" {
		x.account = e.hash("a", s.AccountID, "")
		if x.s.Device != "" {
			x.knownDevice = e.hash("kd", s.AccountID, x.s.Device)
		}
		if x.net != "" {
			x.knownNetwork = e.hash("kn", s.AccountID, x.network.String())
		}
	}
	if x.s.Device != "" {
		x.device = e.hash("d", x.s.Device, "")
	}
	if s.Card != "" {
		x.card = e.hash("c", s.Card, "")
	}
	return x, nil
}

// hash is the keyed hash that stands for (a, b) of a kind: 16 bytes of
// SHA-256 over the hash key and the values, base64url.
func (e *Engine) hash(kind, a, b string) string {
	var buf [320]byte
	p := append(buf[:0], e.cfg.HashKey...)
	p = append(p, 0)
	p = append(p, kind...)
	p = append(p, 0)
	p = append(p, a...)
	p = append(p, 0)
	p = append(p, b...)
	sum := sha256.Sum256(p)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// plan is a batch of counter ops with the index of each (-1: not in it).
type plan struct {
	ops [16]Op
	n   int
}

func (p *plan) add(key string, window time.Duration, add bool) int {
	if key == "" || p.n == len(p.ops) {
		return -1
	}
	p.ops[p.n] = Op{Key: key, Window: window, Add: add}
	p.n++
	return p.n - 1
}

func (p *plan) result(i int) int64 {
	if i < 0 {
		return 0
	}
	return p.ops[i].Result
}

// key is a counter key: prefix, purpose, hash; "" when the hash is.
func (e *Engine) key(purpose, hash string) string {
	if hash == "" {
		return ""
	}
	return e.cfg.KeyPrefix + purpose + hash
}

// Decide decides on an attempt and counts it (the attempt counters of
// every dimension it has), and publishes the decision's event. The rules
// are the package's.
//
// It fails with errs.Invalid for an unknown action or an overlong account
// id or card fingerprint. When the counters cannot be reached it returns,
// with an error of kind errs.Unavailable, the decision the signals alone
// give (no velocity, failure counts or known devices; reason
// ReasonCountersDown): the caller chooses between using it and failing
// closed.
func (e *Engine) Decide(ctx context.Context, s Signals) (Decision, error) {
	const op = "fraud.decide"
	x, err := e.subject(op, s)
	if err != nil {
		return Decision{}, err
	}
	now := e.cfg.Now()
	c := &e.cfg
	var p plan
	act := "v:" + string(s.Action) + ":"
	vAccount := p.add(e.key(act+"a:", x.account), c.VelocityWindow, true)
	vAddr := p.add(e.key(act+"i:", x.addr), c.VelocityWindow, true)
	vNet := p.add(e.key(act+"n:", x.net), c.VelocityWindow, true)
	vDevice := p.add(e.key(act+"d:", x.device), c.VelocityWindow, true)
	vCard := p.add(e.key(act+"c:", x.card), c.VelocityWindow, true)
	kDevice := p.add(e.key("k:d:", x.knownDevice), c.KnownWindow, false)
	kNet := p.add(e.key("k:n:", x.knownNetwork), c.KnownWindow, false)
	fAccount, fAddr, fNet, lock := -1, -1, -1, -1
	if s.Action == ActionSignIn {
		fAccount = p.add(e.key("f:a:", x.account), c.FailureWindow, false)
		fAddr = p.add(e.key("f:i:", x.addr), c.FailureWindow, false)
		fNet = p.add(e.key("f:n:", x.net), c.FailureWindow, false)
		lock = p.add(e.key("l:", x.account), c.LockoutWindow, false)
	}
	var down error
	if p.n > 0 {
		if down = e.counters.Do(ctx, now, p.ops[:p.n]); down != nil {
			e.countersFailed.Add(1)
			for i := range p.ops[:p.n] {
				p.ops[i].Result = 0
			}
		}
	}

	reasons := make([]string, 0, 8)
	hard := OutcomeAllow
	var retry time.Duration
	raise := func(o Outcome) {
		if o.severity() > hard.severity() {
			hard = o
		}
	}
	knownDevice, knownNetwork := p.result(kDevice) > 0, p.result(kNet) > 0
	known := knownDevice || knownNetwork

	if s.Action == ActionSignIn {
		// Credential stuffing: a failing address or network is denied
		// (never the account), save to accounts it is known to.
		if atLeast(p.result(fAddr), c.AddressFailureLimit) {
			reasons = append(reasons, ReasonAddressFailures)
		}
		if atLeast(p.result(fNet), c.NetworkFailureLimit) {
			reasons = append(reasons, ReasonNetworkFailures)
		}
		if len(reasons) > 0 {
			if known {
				raise(OutcomeChallenge)
			} else {
				raise(OutcomeDeny)
				retry = ClearedAfter(c.FailureWindow, now)
			}
		}
		if p.result(lock) > 0 {
			reasons = append(reasons, ReasonAccountLocked)
			if known {
				raise(OutcomeChallenge)
			} else {
				raise(OutcomeDeny)
				retry = max(retry, ClearedAfter(c.LockoutWindow, now))
			}
		}
		if max(p.result(fAccount), int64(s.FailedSignIns)) >= int64(c.AccountChallengeFailures) && s.AccountID != "" {
			reasons = append(reasons, ReasonAccountFailures)
			raise(OutcomeChallenge)
		}
	}

	score := 0
	for _, v := range [...]struct {
		i      int
		limit  int
		reason string
	}{
		{vAccount, c.AccountVelocity, ReasonAccountVelocity}, {vAddr, c.AddressVelocity, ReasonAddressVelocity},
		{vNet, c.NetworkVelocity, ReasonNetworkVelocity}, {vDevice, c.DeviceVelocity, ReasonDeviceVelocity},
		{vCard, c.CardVelocity, ReasonCardVelocity},
	} {
		if over(p.result(v.i), v.limit) {
			score += points(c.VelocityPoints)
			reasons = append(reasons, v.reason)
		}
	}
	if s.AccountID != "" && s.Action != ActionSignUp && s.AccountAge < c.FreshAge {
		score += points(c.FreshPoints)
		reasons = append(reasons, ReasonFreshAccount)
	}
	if s.FailedSignIns > 0 && s.AccountID != "" {
		score += min(min(s.FailedSignIns, 100)*points(c.FailurePoints), points(c.MaxFailurePoints))
		reasons = append(reasons, ReasonFailedSignIns)
	}
	switch s.JoinGuard {
	case JoinGuardSuspect:
		score += points(c.SuspectPoints)
		reasons = append(reasons, ReasonJoinGuardSuspect)
	case JoinGuardLimited:
		score += points(c.LimitedPoints)
		reasons = append(reasons, ReasonJoinGuardLimited)
	}
	if knownDevice {
		score -= points(c.KnownDeviceCredit)
		reasons = append(reasons, ReasonKnownDevice)
	}
	if knownNetwork {
		score -= points(c.KnownNetworkCredit)
		reasons = append(reasons, ReasonKnownNetwork)
	}
	if x.badDevice {
		reasons = append(reasons, ReasonDeviceInvalid)
	}
	if !x.s.Address.IsValid() {
		reasons = append(reasons, ReasonNoAddress)
	}
	if down != nil {
		reasons = append(reasons, ReasonCountersDown)
	}
	score = min(max(score, 0), 100)

	// The hard rules' outcome lifts the score into its band, so that
	// score and outcome agree.
	switch hard {
	case OutcomeDeny:
		score = max(score, min(c.DenyScore, 100))
	case OutcomeChallenge:
		score = max(score, c.ChallengeScore)
	}
	outcome := hard
	switch {
	case score >= c.DenyScore:
		outcome = OutcomeDeny
	case score >= c.SlowScore && hard.severity() < OutcomeSlow.severity():
		outcome = OutcomeSlow
	case score >= c.ChallengeScore && hard == OutcomeAllow:
		outcome = OutcomeChallenge
	}
	// A device or network the account signed in from before always keeps
	// a way in: at worst a challenge.
	if s.Action == ActionSignIn && known && outcome.severity() > OutcomeChallenge.severity() {
		outcome = OutcomeChallenge
	}
	d := Decision{Outcome: outcome, Score: score, Reasons: reasons}
	switch outcome {
	case OutcomeDeny:
		if retry == 0 {
			retry = ClearedAfter(c.VelocityWindow, now)
		}
		d.RetryAfter = retry
	case OutcomeChallenge:
		d.Challenge = ChallengePoW
		if s.SecondFactor && s.AccountID != "" {
			d.Challenge = ChallengeSecondFactor
		}
		if s.Passed.satisfies(d.Challenge) {
			d.Outcome, d.Challenge = OutcomeAllow, ""
			d.Reasons = append(d.Reasons, ReasonChallengePassed)
		}
	}
	e.decisions[d.Outcome.severity()].Add(1)
	e.publish(ctx, &x, &d, now, knownDevice, knownNetwork)
	if down != nil {
		return d, errs.E(op, errs.Unavailable, "fraud counters unreachable: decided on the signals alone", down)
	}
	return d, nil
}

func (e *Engine) publish(ctx context.Context, x *subject, d *Decision, now time.Time, knownDevice, knownNetwork bool) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	ev := Event{
		ID: hex.EncodeToString(id[:]), At: now.UTC(), Action: x.s.Action, Account: x.s.AccountID,
		KnownDevice: knownDevice, KnownNetwork: knownNetwork,
		Outcome: d.Outcome, Challenge: d.Challenge, Score: d.Score, Reasons: slices.Clone(d.Reasons),
		RetryAfterMS: d.RetryAfter.Milliseconds(),
	}
	if x.network.IsValid() {
		ev.Network = x.network.String()
		if len(e.cfg.HashKey) > 0 {
			ev.AddressHash = x.addr
		}
	}
	switch {
	case ev.Account != "":
		ev.Subject = "account:" + ev.Account
	case ev.Network != "":
		ev.Subject = "network:" + ev.Network
	default:
		ev.Subject = "unknown"
	}
	if err := e.pub.Publish(ctx, ev); err != nil {
		e.publishFailed.Add(1)
	}
}

// RecordFailure counts a failed sign-in (a wrong password or second
// factor) against the account, the address and the network, and starts
// the account's lockout when its failures reach AccountLockFailures and no
// lockout started within LockoutCooldown. Only the account id, the
// address and the device of s are used.
func (e *Engine) RecordFailure(ctx context.Context, s Signals) error {
	const op = "fraud.record_failure"
	s.Action = ActionSignIn
	x, err := e.subject(op, s)
	if err != nil {
		return err
	}
	now := e.cfg.Now()
	c := &e.cfg
	var p plan
	fAccount := p.add(e.key("f:a:", x.account), c.FailureWindow, true)
	p.add(e.key("f:i:", x.addr), c.FailureWindow, true)
	p.add(e.key("f:n:", x.net), c.FailureWindow, true)
	cooldown := -1
	if c.AccountLockFailures > 0 {
		cooldown = p.add(e.key("lc:", x.account), c.LockoutCooldown, false)
	}
	if p.n == 0 {
		return nil
	}
	if err := e.counters.Do(ctx, now, p.ops[:p.n]); err != nil {
		e.countersFailed.Add(1)
		return errs.E(op, err)
	}
	if cooldown < 0 || !atLeast(p.result(fAccount), c.AccountLockFailures) || p.result(cooldown) > 0 {
		return nil
	}
	// Concurrent failures may both get here: both count in the same
	// buckets, so it is still one lockout.
	lock := []Op{
		{Key: e.key("l:", x.account), Window: c.LockoutWindow, Add: true},
		{Key: e.key("lc:", x.account), Window: c.LockoutCooldown, Add: true},
	}
	if err := e.counters.Do(ctx, now, lock); err != nil {
		e.countersFailed.Add(1)
		return errs.E(op, err)
	}
	return nil
}

// RecordSuccess records a good sign-in (every factor passed): the device
// and the network become known to the account for KnownWindow, and the
// account's failure count and lockout are cleared (the address's and the
// network's failures stay). Only the account id, the address and the
// device of s are used; without an account it does nothing.
func (e *Engine) RecordSuccess(ctx context.Context, s Signals) error {
	const op = "fraud.record_success"
	s.Action = ActionSignIn
	x, err := e.subject(op, s)
	if err != nil || x.account == "" {
		return err
	}
	now := e.cfg.Now()
	c := &e.cfg
	var p plan
	p.add(e.key("k:d:", x.knownDevice), c.KnownWindow, true)
	p.add(e.key("k:n:", x.knownNetwork), c.KnownWindow, true)
	if p.n > 0 {
		if err := e.counters.Do(ctx, now, p.ops[:p.n]); err != nil {
			e.countersFailed.Add(1)
			return errs.E(op, err)
		}
	}
	for _, k := range []string{e.key("f:a:", x.account), e.key("l:", x.account)} {
		if err := e.counters.Reset(ctx, k); err != nil {
			e.countersFailed.Add(1)
			return errs.E(op, err)
		}
	}
	return nil
}
