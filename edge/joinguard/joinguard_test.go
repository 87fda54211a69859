package joinguard_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/internal/errs"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a manual clock shared by the guard's calls and the limiter.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// testConfig has small limits and an easy suspect difficulty, so that the
// table runs fast; TestSuspectSolvesDefaultDifficulty uses the defaults.
func testConfig() joinguard.Config {
	return joinguard.Config{
		Secret:              bytes.Repeat([]byte{7}, 32),
		SuspectDifficulty:   8,
		ChallengeTTL:        time.Minute,
		IPLimit:             ratelimit.PerMinute(60, 20),
		SessionLimit:        ratelimit.PerMinute(60, 8),
		SuspectIPLimit:      ratelimit.PerMinute(60, 3),
		SuspectSessionLimit: ratelimit.PerMinute(60, 2),
	}
}

func newGuard(t testing.TB, cfg joinguard.Config) (*joinguard.Guard, *clock) {
	t.Helper()
	c := &clock{now: t0}
	lim, err := memory.New(memory.Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	g, err := joinguard.New(cfg, lim)
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*joinguard.Config)
		ok     bool
	}{
		{"defaults", func(*joinguard.Config) {}, true},
		{"short secret", func(c *joinguard.Config) { c.Secret = []byte("short") }, false},
		{"negative base", func(c *joinguard.Config) { c.BaseDifficulty = -1 }, false},
		{"suspect below base", func(c *joinguard.Config) { c.BaseDifficulty = 10; c.SuspectDifficulty = 5 }, false},
		{"suspect too hard", func(c *joinguard.Config) { c.SuspectDifficulty = joinguard.MaxDifficulty + 1 }, false},
		{"base equals suspect", func(c *joinguard.Config) { c.BaseDifficulty = 12; c.SuspectDifficulty = 12 }, true},
		{"short TTL", func(c *joinguard.Config) { c.ChallengeTTL = time.Millisecond }, false},
		{"bad limit", func(c *joinguard.Config) { c.IPLimit = ratelimit.Limit{Rate: 1, Period: time.Second} }, false},
		{"negative spent", func(c *joinguard.Config) { c.MaxSpent = -1 }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cfg joinguard.Config
			c.change(&cfg)
			cfg.Defaults()
			err := cfg.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok %v", err, c.ok)
			}
			if err != nil && !errs.Is(errs.Invalid, err) {
				t.Fatalf("kind %v, want invalid", errs.KindOf(err))
			}
		})
	}
	var cfg joinguard.Config
	cfg.Defaults()
	if cfg.BaseDifficulty != 0 || cfg.SuspectDifficulty != 18 || len(cfg.Secret) != 32 {
		t.Fatalf("defaults: base %d suspect %d secret %d bytes", cfg.BaseDifficulty, cfg.SuspectDifficulty, len(cfg.Secret))
	}
}

// outcome is what a Check returned, in a comparable form.
type outcome struct {
	kind       errs.Kind // errs.Other for nil
	reason     string
	difficulty int // of the challenge carried by a refusal
}

func outcomeOf(t *testing.T, err error) outcome {
	t.Helper()
	if err == nil {
		return outcome{kind: errs.Other}
	}
	var e *errs.Error
	if !asErrs(err, &e) {
		t.Fatalf("%v is not an *errs.Error", err)
	}
	o := outcome{kind: errs.KindOf(err), reason: errs.ReasonOf(err)}
	if ch, d, ok := joinguard.ChallengeOf(err); ok {
		if len(ch) != joinguard.ChallengeLen {
			t.Fatalf("carried challenge %q has length %d", ch, len(ch))
		}
		o.difficulty = d
	}
	if o.kind == errs.TooMany {
		d, _, ok := joinguard.LimitOf(err)
		if !ok || d.Allowed || d.RetryAfter <= 0 || d.Limit == 0 {
			t.Fatalf("rate limit error without a denied decision: %+v %v", d, ok)
		}
	}
	return o
}

func asErrs(err error, target **errs.Error) bool {
	e, ok := err.(*errs.Error)
	*target = e
	return ok
}

var (
	allowed     = outcome{kind: errs.Other}
	limited     = outcome{kind: errs.TooMany, reason: joinguard.ReasonRateLimited}
	powRequired = outcome{kind: errs.Forbidden, reason: joinguard.ReasonPoWRequired, difficulty: 8}
	powInvalid  = outcome{kind: errs.Forbidden, reason: joinguard.ReasonPoWInvalid, difficulty: 8}
	invalid     = outcome{kind: errs.Invalid}
)

// TestCheck runs scripts of requests against one guard each.
func TestCheck(t *testing.T) {
	type env struct {
		g     *joinguard.Guard
		clock *clock
		ctx   context.Context
	}
	// solved is a solution of a fresh suspect-difficulty challenge for the
	// client, obtained the way a page does: a refused join carries it.
	solved := func(e *env, ip, session, event string) string {
		err := e.g.Check(e.ctx, ip, session, event, "", e.clock.Now())
		ch, d, ok := joinguard.ChallengeOf(err)
		if !ok {
			panic("no challenge carried by " + errString(err))
		}
		return joinguard.Solve(ch, d)
	}
	// suspect makes ip a suspect: it joins with fresh sessions up to its
	// soft limit (3).
	suspect := func(e *env, ip string) {
		for i := range 3 {
			if err := e.g.Check(e.ctx, ip, "warm"+string(rune('a'+i)), "ev", "", e.clock.Now()); err != nil {
				panic(err)
			}
		}
	}
	cases := []struct {
		name string
		base int // BaseDifficulty
		cfg  func(*joinguard.Config)
		run  func(t *testing.T, e *env) []outcome
		want []outcome
	}{
		{"normal traffic needs no work", 0, nil, func(t *testing.T, e *env) []outcome {
			var out []outcome
			for _, s := range []string{"s1", "s2", "s1"} {
				out = append(out, outcomeOf(t, e.g.Check(e.ctx, "10.0.0.1", s, "ev", "", e.clock.Now())))
			}
			return out
		}, []outcome{allowed, allowed, allowed}},
		{"hard per-address limit", 0, func(c *joinguard.Config) {
			c.IPLimit = ratelimit.PerMinute(60, 6)
			c.SuspectIPLimit = ratelimit.PerMinute(60, 100)
		}, func(t *testing.T, e *env) []outcome {
			// Six joins from one address (its burst): the seventh is
			// refused.
			var out []outcome
			for i := range 7 {
				s := "s" + string(rune('a'+i))
				err := e.g.Check(e.ctx, "10.0.0.2", s, "ev", "", e.clock.Now())
				if ch, d, ok := joinguard.ChallengeOf(err); ok {
					err = e.g.Check(e.ctx, "10.0.0.2", s, "ev", joinguard.Solve(ch, d), e.clock.Now())
				}
				out = append(out, outcomeOf(t, err))
			}
			return out
		}, []outcome{allowed, allowed, allowed, allowed, allowed, allowed, limited}},
		{"hard per-session limit", 0, func(c *joinguard.Config) {
			c.SessionLimit = ratelimit.PerMinute(60, 4)
			c.SuspectSessionLimit = ratelimit.PerMinute(60, 100)
		}, func(t *testing.T, e *env) []outcome {
			var out []outcome
			for i := range 5 {
				ip := "10.0.1." + string(rune('0'+i)) // fresh addresses
				err := e.g.Check(e.ctx, ip, "one-session", "ev", "", e.clock.Now())
				if ch, d, ok := joinguard.ChallengeOf(err); ok {
					err = e.g.Check(e.ctx, ip, "one-session", "ev", joinguard.Solve(ch, d), e.clock.Now())
				}
				out = append(out, outcomeOf(t, err))
			}
			return out
		}, []outcome{allowed, allowed, allowed, allowed, limited}},
		{"a session joining repeatedly becomes suspect", 0, nil, func(t *testing.T, e *env) []outcome {
			var out []outcome
			for i := range 3 {
				out = append(out, outcomeOf(t, e.g.Check(e.ctx, "10.0.2."+string(rune('0'+i)), "again", "ev", "", e.clock.Now())))
			}
			return out
		}, []outcome{allowed, allowed, powRequired}},
		{"suspect address must solve, and may", 0, nil, func(t *testing.T, e *env) []outcome {
			suspect(e, "10.0.0.3")
			first := outcomeOf(t, e.g.Check(e.ctx, "10.0.0.3", "x", "ev", "", e.clock.Now()))
			sol := solved(e, "10.0.0.3", "x", "ev")
			return []outcome{first, outcomeOf(t, e.g.Check(e.ctx, "10.0.0.3", "x", "ev", sol, e.clock.Now()))}
		}, []outcome{powRequired, allowed}},
		{"a solution is good once", 0, nil, func(t *testing.T, e *env) []outcome {
			suspect(e, "10.0.0.4")
			sol := solved(e, "10.0.0.4", "y", "ev")
			a := outcomeOf(t, e.g.Check(e.ctx, "10.0.0.4", "y", "ev", sol, e.clock.Now()))
			b := outcomeOf(t, e.g.Check(e.ctx, "10.0.0.4", "y", "ev", sol, e.clock.Now()))
			return []outcome{a, b}
		}, []outcome{allowed, powInvalid}},
		{"bound to event, address and session", 0, nil, func(t *testing.T, e *env) []outcome {
			for _, ip := range []string{"10.0.0.5", "10.0.0.6"} {
				suspect(e, ip)
			}
			sol := solved(e, "10.0.0.5", "z", "ev")
			return []outcome{
				outcomeOf(t, e.g.Check(e.ctx, "10.0.0.5", "z", "other-ev", sol, e.clock.Now())),
				outcomeOf(t, e.g.Check(e.ctx, "10.0.0.6", "z", "ev", sol, e.clock.Now())),
				outcomeOf(t, e.g.Check(e.ctx, "10.0.0.5", "not-z", "ev", sol, e.clock.Now())),
				outcomeOf(t, e.g.Check(e.ctx, "10.0.0.5", "z", "ev", sol, e.clock.Now())),
			}
		}, []outcome{powInvalid, powInvalid, powInvalid, allowed}},
		{"expired", 0, nil, func(t *testing.T, e *env) []outcome {
			suspect(e, "10.0.0.7")
			sol := solved(e, "10.0.0.7", "w", "ev")
			return []outcome{outcomeOf(t, e.g.Check(e.ctx, "10.0.0.7", "w", "ev", sol, e.clock.Now().Add(time.Minute)))}
		}, []outcome{powInvalid}},
		{"an easy challenge does not do for a suspect", 0, nil, func(t *testing.T, e *env) []outcome {
			ch, d, err := e.g.Challenge(e.ctx, "10.0.0.8", "v", "ev", e.clock.Now())
			if err != nil || d != 0 {
				t.Fatalf("challenge: %d %v", d, err)
			}
			suspect(e, "10.0.0.8")
			return []outcome{outcomeOf(t, e.g.Check(e.ctx, "10.0.0.8", "v", "ev", joinguard.Solve(ch, 0), e.clock.Now()))}
		}, []outcome{powRequired}},
		{"tampered difficulty, forged and malformed solutions", 0, nil, func(t *testing.T, e *env) []outcome {
			suspect(e, "10.0.0.9")
			sol := solved(e, "10.0.0.9", "u", "ev")
			ch, _, _ := joinguard.ParseSolution(sol)
			raw, _ := base64.RawURLEncoding.DecodeString(ch)
			raw[1] = 0 // claim difficulty 0
			easy := base64.RawURLEncoding.EncodeToString(raw) + ".0"
			var out []outcome
			for _, s := range []string{easy, "garbage", ch + ".", ch + ".a b", strings.Repeat("A", joinguard.ChallengeLen) + ".1", ch[:10] + "." + ch} {
				out = append(out, outcomeOf(t, e.g.Check(e.ctx, "10.0.0.9", "u", "ev", s, e.clock.Now())))
			}
			return out
		}, []outcome{powInvalid, powInvalid, powInvalid, powInvalid, powInvalid, powInvalid}},
		{"base difficulty asks everyone", 8, nil, func(t *testing.T, e *env) []outcome {
			err := e.g.Check(e.ctx, "10.0.0.10", "t", "ev", "", e.clock.Now())
			ch, d, _ := joinguard.ChallengeOf(err)
			return []outcome{outcomeOf(t, err), outcomeOf(t, e.g.Check(e.ctx, "10.0.0.10", "t", "ev", joinguard.Solve(ch, d), e.clock.Now()))}
		}, []outcome{powRequired, allowed}},
		{"bad arguments", 0, nil, func(t *testing.T, e *env) []outcome {
			long := strings.Repeat("x", joinguard.MaxIDLen+1)
			var out []outcome
			for _, a := range [][3]string{{"", "s", "ev"}, {"ip", "s", ""}, {long, "s", "ev"}, {"ip", long, "ev"}, {"ip", "s", long}} {
				out = append(out, outcomeOf(t, e.g.Check(e.ctx, a[0], a[1], a[2], "", e.clock.Now())))
			}
			_, _, err := e.g.Challenge(e.ctx, "", "s", "ev", e.clock.Now())
			return append(out, outcomeOf(t, err))
		}, []outcome{invalid, invalid, invalid, invalid, invalid, invalid}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.BaseDifficulty = c.base
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			if c.base > cfg.SuspectDifficulty {
				cfg.SuspectDifficulty = c.base
			}
			g, clk := newGuard(t, cfg)
			got := c.run(t, &env{g: g, clock: clk, ctx: context.Background()})
			if len(got) != len(c.want) {
				t.Fatalf("got %d outcomes %+v, want %+v", len(got), got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("request %d: %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestSuspectSolvesDefaultDifficulty: with the default configuration, a
// client that asks for challenges too fast gets the suspect difficulty (18
// bits) instead of none, and gets in by solving it; a client at a normal
// pace is asked for nothing. The limits refill, and the client is normal
// again.
func TestSuspectSolvesDefaultDifficulty(t *testing.T) {
	g, clk := newGuard(t, joinguard.Config{})
	ctx := context.Background()
	const ip, session = "192.0.2.1", "sess-1"
	var ch string
	var d int
	// The default soft limit per session is a burst of 4.
	for i := range 5 {
		var err error
		ch, d, err = g.Challenge(ctx, ip, session, "ev", clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 0, false: 18}[i < 4]; d != want {
			t.Fatalf("challenge %d: difficulty %d, want %d", i, d, want)
		}
	}
	// The page solves what it was given and joins. Joins count against
	// their own soft limits, so this first join is not suspect, and needs no
	// solution; bring one anyway.
	sol := joinguard.Solve(ch, d)
	if n := joinguard.LeadingZeroBits(sol); n < 18 {
		t.Fatalf("solution has %d zero bits", n)
	}
	if err := g.Check(ctx, ip, session, "ev", sol, clk.Now()); err != nil {
		t.Fatalf("join with a solved challenge: %v", err)
	}
	// A join-happy session: its fifth join is suspect and needs 18 bits.
	for range 3 {
		if err := g.Check(ctx, ip, session, "ev", "", clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	err := g.Check(ctx, ip, session, "ev", "", clk.Now())
	ch, d, ok := joinguard.ChallengeOf(err)
	if !errs.Is(errs.Forbidden, err) || !ok || d != 18 {
		t.Fatalf("suspect join: %v (difficulty %d), want a refusal carrying an 18-bit challenge", err, d)
	}
	if err := g.Check(ctx, ip, session, "ev", joinguard.Solve(ch, d), clk.Now()); err != nil {
		t.Fatalf("suspect with a solved challenge: %v", err)
	}
	// A minute later the soft limits have refilled.
	clk.Advance(time.Minute)
	if _, d, _ := g.Challenge(ctx, ip, session, "ev", clk.Now()); d != 0 {
		t.Fatalf("after a quiet minute: difficulty %d", d)
	}
	if err := g.Check(ctx, ip, session, "ev", "", clk.Now()); err != nil {
		t.Fatalf("after a quiet minute: %v", err)
	}
	st := g.Stats()
	if st.SuspectChallenges != 1 || st.PoWSolved != 1 || st.PoWRequired != 1 || st.Allowed != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// TestLimiterFailureLetsThrough: a limiter that cannot answer does not stop
// the on-sale; the failures are counted.
func TestLimiterFailureLetsThrough(t *testing.T) {
	g, err := joinguard.New(testConfig(), failingLimiter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 20 {
		if err := g.Check(ctx, "10.9.9.9", "s", "ev", "", t0); err != nil {
			t.Fatalf("check with a failing limiter: %v", err)
		}
	}
	if _, d, err := g.Challenge(ctx, "10.9.9.9", "s", "ev", t0); err != nil || d != 0 {
		t.Fatalf("challenge: %d %v", d, err)
	}
	if st := g.Stats(); st.LimiterErrors == 0 || st.Allowed != 20 {
		t.Fatalf("stats %+v", st)
	}
}

type failingLimiter struct{}

func (failingLimiter) Allow(ctx context.Context, key string, l ratelimit.Limit) (ratelimit.Decision, error) {
	return ratelimit.Decision{}, errs.E("test.limiter", errs.Unavailable, "down")
}

func (f failingLimiter) AllowN(ctx context.Context, key string, l ratelimit.Limit, n int) (ratelimit.Decision, error) {
	return f.Allow(ctx, key, l)
}

// TestNoLimiter: without a limiter nothing is limited or suspect, and the
// base difficulty still holds.
func TestNoLimiter(t *testing.T) {
	cfg := testConfig()
	g, err := joinguard.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if err := g.Check(context.Background(), "10.0.0.1", "s", "ev", "", t0); err != nil {
			t.Fatal(err)
		}
	}
	cfg.BaseDifficulty = 4
	g, _ = joinguard.New(cfg, nil)
	err = g.Check(context.Background(), "10.0.0.1", "s", "ev", "", t0)
	ch, d, ok := joinguard.ChallengeOf(err)
	if !ok || d != 4 {
		t.Fatalf("base difficulty 4: %v", err)
	}
	if err := g.Check(context.Background(), "10.0.0.1", "s", "ev", joinguard.Solve(ch, d), t0); err != nil {
		t.Fatal(err)
	}
}

// TestSpentSetBounded: the spent set never holds more than MaxSpent
// challenges, and a replay inside its bound is refused.
func TestSpentSetBounded(t *testing.T) {
	cfg := testConfig()
	cfg.BaseDifficulty, cfg.SuspectDifficulty = 1, 1
	cfg.MaxSpent = 64
	g, err := joinguard.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var first string
	for i := range 1000 {
		ch, d, err := g.Challenge(ctx, "10.0.0.1", "s", "ev", t0)
		if err != nil {
			t.Fatal(err)
		}
		sol := joinguard.Solve(ch, d)
		if i == 999 {
			first = sol
		}
		if err := g.Check(ctx, "10.0.0.1", "s", "ev", sol, t0); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if n := joinguard.SpentLen(g); n > 64 {
		t.Fatalf("spent set holds %d, bound 64", n)
	}
	if err := g.Check(ctx, "10.0.0.1", "s", "ev", first, t0); errs.ReasonOf(err) != joinguard.ReasonPoWInvalid {
		t.Fatalf("replay of the latest: %v", err)
	}
}

func TestLeadingZeroBits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0},    // e3b0c442…
		{"abc", 0}, // ba7816bf…
	} {
		if got := joinguard.LeadingZeroBits(c.in); got != c.want {
			t.Errorf("LeadingZeroBits(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	// Solve's answers have the bits asked for.
	for d := range 13 {
		if s := joinguard.Solve("AAAA", d); joinguard.LeadingZeroBits(s) < d || !strings.HasPrefix(s, "AAAA.") {
			t.Errorf("Solve(AAAA, %d) = %q", d, s)
		}
	}
}
