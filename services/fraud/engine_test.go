package fraud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/fraud/memory"
)

// clock is a manual clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// recorder is a Publisher that keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []fraud.Event
}

func (r *recorder) Publish(_ context.Context, ev fraud.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

func (r *recorder) last() fraud.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[len(r.events)-1]
}

// testConfig has small, round limits, so that scenarios are short.
func testConfig() fraud.Config {
	return fraud.Config{
		VelocityWindow:           time.Minute,
		FailureWindow:            15 * time.Minute,
		KnownWindow:              30 * 24 * time.Hour,
		AccountVelocity:          10,
		AddressVelocity:          30,
		NetworkVelocity:          300,
		DeviceVelocity:           20,
		CardVelocity:             5,
		AddressFailureLimit:      10,
		NetworkFailureLimit:      50,
		AccountChallengeFailures: 3,
		AccountLockFailures:      8,
		LockoutWindow:            10 * time.Minute,
		LockoutCooldown:          24 * time.Hour,
	}
}

// harness is an engine on memory counters and a manual clock.
type harness struct {
	t     testing.TB
	e     *fraud.Engine
	clock *clock
	pub   *recorder
}

func newHarness(t testing.TB, cfg fraud.Config) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{now: time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC)}, pub: &recorder{}}
	cfg.Now = h.clock.Now
	counters, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if h.e, err = fraud.New(cfg, counters, h.pub); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) decide(s fraud.Signals) fraud.Decision {
	h.t.Helper()
	d, err := h.e.Decide(context.Background(), s)
	if err != nil {
		h.t.Fatalf("Decide(%+v): %v", s, err)
	}
	if d.Score < 0 || d.Score > 100 {
		h.t.Fatalf("score %d out of 0-100", d.Score)
	}
	return d
}

func (h *harness) fail(s fraud.Signals) {
	h.t.Helper()
	if err := h.e.RecordFailure(context.Background(), s); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) succeed(s fraud.Signals) {
	h.t.Helper()
	if err := h.e.RecordSuccess(context.Background(), s); err != nil {
		h.t.Fatal(err)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// signIn is a sign-in attempt on an old account (a year) with no
// failures.
func signIn(account, address, device string) fraud.Signals {
	s := fraud.Signals{Action: fraud.ActionSignIn, AccountID: account, AccountAge: 365 * 24 * time.Hour, Device: device}
	if address != "" {
		s.Address = addr(address)
	}
	return s
}

// stuff is a credential stuffing run: n sign-ins to n different accounts
// from address, each failing (the attacker checks the password, fails,
// the handler records it), each from a fresh device.
func (h *harness) stuff(address string, n int) {
	h.t.Helper()
	for i := range n {
		s := signIn(fmt.Sprintf("victim-%s-%d", address, i), address, fmt.Sprintf("bot-%s-%d", address, i))
		h.decide(s)
		h.fail(s)
	}
}

func TestScenarios(t *testing.T) {
	const (
		home     = "198.51.100.20"
		attacker = "203.0.113.7"
		phone    = "device-alice-phone"
	)
	alice := signIn("alice", home, phone)
	from := func(s fraud.Signals, address, device string) fraud.Signals {
		s.Address, s.Device = addr(address), device
		return s
	}
	purchase := func(age time.Duration) fraud.Signals {
		return fraud.Signals{Action: fraud.ActionPurchase, AccountID: "bob", AccountAge: age, Address: addr("192.0.2.50"), Device: "device-bob"}
	}
	repeat := func(h *harness, s fraud.Signals, n int) {
		for range n {
			h.decide(s)
		}
	}
	cases := []struct {
		name      string
		history   func(h *harness)
		attempt   fraud.Signals
		outcome   fraud.Outcome
		challenge fraud.Challenge
		reasons   []string // all present
		absent    []string // none present
	}{
		{
			name:    "a clean sign-in is allowed",
			attempt: alice,
			outcome: fraud.OutcomeAllow,
		},
		{
			name:    "stuffing from one address across many accounts: the address is denied",
			history: func(h *harness) { h.stuff(attacker, 10) },
			attempt: signIn("carol", attacker, "bot-next"),
			outcome: fraud.OutcomeDeny,
			reasons: []string{fraud.ReasonAddressFailures},
		},
		{
			name:    "stuffing: the accounts it tried are not denied from elsewhere",
			history: func(h *harness) { h.stuff(attacker, 10) },
			attempt: signIn("victim-"+attacker+"-3", home, "their-laptop"),
			outcome: fraud.OutcomeAllow,
		},
		{
			name: "stuffing: the real user on the attacked address with a known device is challenged, not denied",
			history: func(h *harness) {
				h.succeed(from(alice, attacker, phone)) // say, a campus network
				h.stuff(attacker, 30)
			},
			attempt:   from(alice, attacker, phone),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonAddressFailures, fraud.ReasonKnownDevice},
		},
		{
			name: "stuffing across a network's addresses: the network is denied",
			history: func(h *harness) {
				for i := range 10 {
					h.stuff(fmt.Sprintf("203.0.113.%d", 100+i), 5) // 5 each: under the address limit
				}
			},
			attempt: signIn("carol", "203.0.113.200", "bot-next"),
			outcome: fraud.OutcomeDeny,
			reasons: []string{fraud.ReasonNetworkFailures},
			absent:  []string{fraud.ReasonAddressFailures},
		},
		{
			name: "failures on one account from many addresses: a proof of work, not a lock",
			history: func(h *harness) {
				for i := range 5 {
					h.fail(signIn("alice", fmt.Sprintf("192.0.%d.1", 10+i), "bot"))
				}
			},
			attempt:   from(alice, "192.0.99.1", "new-laptop"),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonAccountFailures},
		},
		{
			name: "failures on an account with a second factor: challenged with it",
			history: func(h *harness) {
				for i := range 5 {
					h.fail(signIn("alice", fmt.Sprintf("192.0.%d.1", 10+i), "bot"))
				}
			},
			attempt:   func() fraud.Signals { s := alice; s.SecondFactor = true; return s }(),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengeSecondFactor,
			reasons:   []string{fraud.ReasonAccountFailures},
		},
		{
			name:      "the account's own failure count (identity) challenges too",
			attempt:   func() fraud.Signals { s := alice; s.FailedSignIns = 4; return s }(),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonAccountFailures, fraud.ReasonFailedSignIns},
		},
		{
			name: "a solved proof of work gets through",
			history: func(h *harness) {
				for i := range 3 {
					h.fail(signIn("alice", fmt.Sprintf("192.0.%d.1", 10+i), "bot"))
				}
			},
			attempt: func() fraud.Signals { s := alice; s.Passed = fraud.ChallengePoW; return s }(),
			outcome: fraud.OutcomeAllow,
			reasons: []string{fraud.ReasonAccountFailures, fraud.ReasonChallengePassed},
		},
		{
			name: "a proof of work does not stand in for a second factor",
			history: func(h *harness) {
				for range 3 {
					h.fail(signIn("alice", "192.0.10.1", "bot"))
				}
			},
			attempt:   func() fraud.Signals { s := alice; s.SecondFactor, s.Passed = true, fraud.ChallengePoW; return s }(),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengeSecondFactor,
		},
		{
			name: "a good sign-in clears the account's failures",
			history: func(h *harness) {
				for range 3 {
					h.fail(signIn("alice", "192.0.10.1", "bot"))
				}
				h.succeed(alice)
			},
			attempt: alice,
			outcome: fraud.OutcomeAllow,
			reasons: []string{fraud.ReasonKnownDevice, fraud.ReasonKnownNetwork},
		},
		{
			name:    "a fresh account at high velocity: the slow lane",
			history: func(h *harness) { repeat(h, purchase(time.Hour), 10) },
			attempt: purchase(time.Hour),
			outcome: fraud.OutcomeSlow,
			reasons: []string{fraud.ReasonFreshAccount, fraud.ReasonAccountVelocity},
		},
		{
			name:    "an old account at the same velocity: allowed",
			history: func(h *harness) { repeat(h, purchase(365*24*time.Hour), 10) },
			attempt: purchase(365 * 24 * time.Hour),
			outcome: fraud.OutcomeAllow,
			reasons: []string{fraud.ReasonAccountVelocity},
		},
		{
			name:      "a fresh account alone: allowed",
			attempt:   purchase(time.Hour),
			outcome:   fraud.OutcomeAllow,
			reasons:   []string{fraud.ReasonFreshAccount},
			challenge: "",
		},
		{
			name:      "velocity on two dimensions: a challenge",
			history:   func(h *harness) { repeat(h, purchase(365*24*time.Hour), 20) },
			attempt:   purchase(365 * 24 * time.Hour),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonAccountVelocity, fraud.ReasonDeviceVelocity},
		},
		{
			name:    "a fresh account the join guard limited: the slow lane",
			attempt: func() fraud.Signals { s := purchase(time.Hour); s.JoinGuard = fraud.JoinGuardLimited; return s }(),
			outcome: fraud.OutcomeSlow,
			reasons: []string{fraud.ReasonFreshAccount, fraud.ReasonJoinGuardLimited},
		},
		{
			name:    "everything at once: denied",
			history: func(h *harness) { repeat(h, purchase(time.Hour), 40) },
			attempt: func() fraud.Signals { s := purchase(time.Hour); s.JoinGuard = fraud.JoinGuardLimited; return s }(),
			outcome: fraud.OutcomeDeny,
			reasons: []string{fraud.ReasonAccountVelocity, fraud.ReasonAddressVelocity, fraud.ReasonDeviceVelocity, fraud.ReasonJoinGuardLimited},
		},
		{
			name: "a sign-in the score would deny from a known device: a challenge",
			history: func(h *harness) {
				h.succeed(alice)
				repeat(h, alice, 40)
			},
			attempt: func() fraud.Signals {
				s := alice
				s.JoinGuard = fraud.JoinGuardLimited
				s.AccountAge = time.Hour
				return s
			}(),
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonKnownDevice, fraud.ReasonAccountVelocity},
		},
		{
			name: "a sign-up storm from one address: a challenge",
			history: func(h *harness) {
				for i := range 30 {
					h.decide(fraud.Signals{Action: fraud.ActionSignUp, Address: addr("192.0.2.9"), Device: fmt.Sprintf("d%d", i)})
				}
			},
			attempt:   fraud.Signals{Action: fraud.ActionSignUp, Address: addr("192.0.2.9"), Device: "d-new", JoinGuard: fraud.JoinGuardSuspect},
			outcome:   fraud.OutcomeChallenge,
			challenge: fraud.ChallengePoW,
			reasons:   []string{fraud.ReasonAddressVelocity, fraud.ReasonJoinGuardSuspect},
			absent:    []string{fraud.ReasonFreshAccount},
		},
		{
			name:    "a malformed device fingerprint is ignored",
			attempt: signIn("alice", home, "not a fingerprint;"),
			outcome: fraud.OutcomeAllow,
			reasons: []string{fraud.ReasonDeviceInvalid},
		},
		{
			name:    "no address",
			attempt: signIn("alice", "", phone),
			outcome: fraud.OutcomeAllow,
			reasons: []string{fraud.ReasonNoAddress},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			if c.history != nil {
				c.history(h)
			}
			d := h.decide(c.attempt)
			if d.Outcome != c.outcome || d.Challenge != c.challenge {
				t.Fatalf("decision %+v, want %s %s", d, c.outcome, c.challenge)
			}
			for _, r := range c.reasons {
				if !d.HasReason(r) {
					t.Errorf("reasons %v lack %s", d.Reasons, r)
				}
			}
			for _, r := range c.absent {
				if d.HasReason(r) {
					t.Errorf("reasons %v have %s", d.Reasons, r)
				}
			}
			cfg := h.e.Config()
			switch d.Outcome {
			case fraud.OutcomeDeny:
				if d.RetryAfter <= 0 || d.Score < min(cfg.DenyScore, 100) {
					t.Errorf("a denial with RetryAfter %v and score %d", d.RetryAfter, d.Score)
				}
			case fraud.OutcomeChallenge:
				if d.Score < cfg.ChallengeScore {
					t.Errorf("a challenge with score %d", d.Score)
				}
			}
			if d.Outcome != fraud.OutcomeDeny && d.RetryAfter != 0 {
				t.Errorf("RetryAfter %v on %s", d.RetryAfter, d.Outcome)
			}
			if ev := h.pub.last(); ev.Outcome != d.Outcome || ev.Score != d.Score || !slices.Equal(ev.Reasons, d.Reasons) {
				t.Errorf("event %+v for decision %+v", ev, d)
			}
		})
	}
}

// A denied address is allowed again once its RetryAfter has passed, if it
// tried nothing more.
func TestAddressDenialLifts(t *testing.T) {
	h := newHarness(t, testConfig())
	h.stuff("203.0.113.7", 10)
	s := signIn("carol", "203.0.113.7", "d")
	d := h.decide(s)
	if d.Outcome != fraud.OutcomeDeny {
		t.Fatalf("decision %+v, want a denial", d)
	}
	if max := 2 * h.e.Config().FailureWindow; d.RetryAfter > max {
		t.Fatalf("RetryAfter %v beyond twice the failure window", d.RetryAfter)
	}
	h.clock.Advance(time.Second)
	if d2 := h.decide(s); d2.Outcome != fraud.OutcomeDeny || d2.RetryAfter != d.RetryAfter-time.Second {
		t.Fatalf("a second later: %+v, want still denied, RetryAfter %v", d2, d.RetryAfter-time.Second)
	}
	h.clock.Advance(d.RetryAfter - time.Second)
	if d := h.decide(s); d.Outcome != fraud.OutcomeAllow {
		t.Fatalf("at RetryAfter: %+v, want allowed", d)
	}
}

// An attacker failing on an account without end locks the owner out of
// new devices for one lockout at most per cooldown; the owner's known
// device is never locked out.
func TestLockoutIsBounded(t *testing.T) {
	cfg := testConfig()
	h := newHarness(t, cfg)
	phone := signIn("alice", "198.51.100.20", "alice-phone")
	h.succeed(phone)
	newLaptop := signIn("alice", "192.0.2.77", "alice-new-laptop")
	attack := func(n int) {
		for i := range n {
			h.fail(signIn("alice", fmt.Sprintf("10.%d.%d.1", i/250, i%250), "bot"))
		}
	}

	attack(cfg.AccountLockFailures)
	d := h.decide(newLaptop)
	if d.Outcome != fraud.OutcomeDeny || !d.HasReason(fraud.ReasonAccountLocked) {
		t.Fatalf("new device during the lockout: %+v, want denied (locked)", d)
	}
	if d.RetryAfter > 2*cfg.LockoutWindow {
		t.Fatalf("RetryAfter %v beyond twice the lockout window", d.RetryAfter)
	}
	if d := h.decide(phone); d.Outcome != fraud.OutcomeChallenge {
		t.Fatalf("known device during the lockout: %+v, want a challenge", d)
	}

	// The attack goes on all day, a failure a minute: the lockout ends
	// within twice its window and does not start again.
	lockedUntil := time.Duration(0)
	for m := time.Duration(0); m < 24*time.Hour; m += time.Minute {
		attack(1)
		d := h.decide(newLaptop)
		switch {
		case d.Outcome == fraud.OutcomeDeny:
			lockedUntil = m
		case d.Outcome != fraud.OutcomeChallenge:
			t.Fatalf("at +%v: %+v, want a denial or a challenge", m, d)
		}
		if d := h.decide(phone); d.Outcome != fraud.OutcomeChallenge {
			t.Fatalf("known device at +%v: %+v, want a challenge", m, d)
		}
		h.clock.Advance(time.Minute)
	}
	if lockedUntil >= 2*cfg.LockoutWindow {
		t.Fatalf("new devices were locked out until +%v into the attack, beyond twice the lockout window %v", lockedUntil, cfg.LockoutWindow)
	}

	// The owner signs in with the second factor; the lockout and the
	// account's failures are cleared.
	h.succeed(newLaptop)
	if d := h.decide(newLaptop); d.Outcome != fraud.OutcomeAllow {
		t.Fatalf("after a good sign-in: %+v", d)
	}
}

// Events name the account or the network, never the address; the keyed
// address hash appears only with a HashKey.
func TestEventsCarryNoAddress(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("0123456789abcdef0123456789abcdef")} {
		cfg := testConfig()
		cfg.HashKey = key
		h := newHarness(t, cfg)
		h.decide(signIn("alice", "198.51.100.20", "dev-1"))
		ev := h.pub.last()
		if ev.Subject != "account:alice" || ev.Network != "198.51.100.0/24" || ev.ID == "" || ev.At.IsZero() {
			t.Fatalf("event %+v", ev)
		}
		if (ev.AddressHash != "") != (key != nil) {
			t.Fatalf("hash key %q: address hash %q", key, ev.AddressHash)
		}
		h.decide(fraud.Signals{Action: fraud.ActionSignUp, Address: addr("2001:db8:1:2:3:4:5:6"), Device: "dev-2"})
		ev2 := h.pub.last()
		if ev2.Subject != "network:2001:db8:1:2::/64" || ev2.ID == ev.ID {
			t.Fatalf("event %+v", ev2)
		}
		for _, e := range []fraud.Event{ev, ev2} {
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"198.51.100.20", "2001:db8:1:2:3:4:5:6", "dev-1", "dev-2"} {
				if strings.Contains(string(b), secret) {
					t.Fatalf("event %s holds %s", b, secret)
				}
			}
		}
	}
}

// failing is Counters that cannot be reached.
type failing struct{ fraud.Counters }

func (failing) Do(context.Context, time.Time, []fraud.Op) error {
	return errs.E("test", errs.Unavailable, "down")
}

func (failing) Reset(context.Context, string) error { return errs.E("test", errs.Unavailable, "down") }

// Without counters, Decide decides on the signals alone and says so.
func TestCountersUnavailable(t *testing.T) {
	pub := &recorder{}
	e, err := fraud.New(testConfig(), failing{}, pub)
	if err != nil {
		t.Fatal(err)
	}
	s := signIn("alice", "198.51.100.20", "d")
	s.FailedSignIns = 5
	d, err := e.Decide(context.Background(), s)
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("err = %v, want kind %v", err, errs.Unavailable)
	}
	if d.Outcome != fraud.OutcomeChallenge || !d.HasReason(fraud.ReasonCountersDown) || !d.HasReason(fraud.ReasonAccountFailures) {
		t.Fatalf("decision %+v", d)
	}
	if err := e.RecordFailure(context.Background(), s); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("RecordFailure: %v", err)
	}
	if err := e.RecordSuccess(context.Background(), s); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("RecordSuccess: %v", err)
	}
	if st := e.Stats(); st.CountersFailed != 3 || st.Challenged != 1 || len(pub.events) != 1 {
		t.Fatalf("stats %+v, %d events", st, len(pub.events))
	}
}

func TestInvalidSignals(t *testing.T) {
	h := newHarness(t, testConfig())
	for _, s := range []fraud.Signals{
		{Action: "login"},
		{Action: fraud.ActionSignIn, AccountID: strings.Repeat("a", fraud.MaxAccountLen+1)},
		{Action: fraud.ActionPurchase, Card: strings.Repeat("c", fraud.MaxDeviceLen+1)},
	} {
		if _, err := h.e.Decide(context.Background(), s); !errs.Is(errs.Invalid, err) {
			t.Errorf("Decide(%.40v): %v, want kind %v", s, err, errs.Invalid)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*fraud.Config)
		ok     bool
	}{
		{"defaults", func(*fraud.Config) {}, true},
		{"limits off", func(c *fraud.Config) { c.AddressFailureLimit, c.AccountLockFailures, c.CardVelocity = -1, -1, -1 }, true},
		{"never deny on score", func(c *fraud.Config) { c.DenyScore = 101 }, true},
		{"sub-second window", func(c *fraud.Config) { c.VelocityWindow = time.Millisecond }, false},
		{"fractional window", func(c *fraud.Config) { c.FailureWindow = time.Minute + time.Microsecond }, false},
		{"huge window", func(c *fraud.Config) { c.KnownWindow = fraud.MaxWindow + time.Hour }, false},
		{"negative limit", func(c *fraud.Config) { c.AddressVelocity = -2 }, false},
		{"points over 100", func(c *fraud.Config) { c.FreshPoints = 101 }, false},
		{"bands out of order", func(c *fraud.Config) { c.SlowScore = 20 }, false},
		{"deny band beyond 101", func(c *fraud.Config) { c.DenyScore = 102 }, false},
		{"negative fresh age", func(c *fraud.Config) { c.FreshAge = -time.Hour }, false},
		{"IPv4 prefix", func(c *fraud.Config) { c.IPv4Prefix = 33 }, false},
		{"IPv6 prefix", func(c *fraud.Config) { c.IPv6Prefix = 8 }, false},
		{"long key prefix", func(c *fraud.Config) { c.KeyPrefix = strings.Repeat("p", 65) }, false},
	}
	for _, c := range cases {
		cfg := fraud.Config{}
		c.change(&cfg)
		cfg.Defaults()
		err := cfg.Validate()
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want kind %v", c.name, err, errs.Invalid)
		}
	}
}

// Engines sharing counters decide as one: a second engine sees what the
// first recorded.
func TestEnginesShareCounters(t *testing.T) {
	counters, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2030, 3, 4, 10, 0, 0, 0, time.UTC)}
	cfg := testConfig()
	cfg.Now = c.Now
	cfg.HashKey = []byte("shared-key")
	a, _ := fraud.New(cfg, counters, nil)
	b, _ := fraud.New(cfg, counters, nil)
	for i := range 10 {
		if err := a.RecordFailure(context.Background(), signIn(fmt.Sprint("v", i), "203.0.113.7", "")); err != nil {
			t.Fatal(err)
		}
	}
	d, err := b.Decide(context.Background(), signIn("carol", "203.0.113.7", ""))
	if err != nil || d.Outcome != fraud.OutcomeDeny {
		t.Fatalf("%+v %v", d, err)
	}
}
