// Package joinguard decides whether a join of an event's waiting room may go
// ahead: hard join limits per client address and per session (429 with the
// RateLimit header fields), and a proof-of-work challenge whose difficulty
// rises for suspect traffic, so that a bot farm pays CPU for every place in
// line while a person in a browser pays nothing or a few seconds. Suspects
// are slowed, never blocked: a suspect who solves the harder challenge gets
// in.
//
// It imports no transport: the edge's HTTP layer calls Challenge for
// GET /v1/events/{id}/queue/challenge and Check before a join, and maps the
// errors (kinds of internal/errs) to statuses in its one error handler.
//
// # Limits
//
// Counts are kept by a ratelimit.Limiter (ratelimit/redis in production,
// shared by a region's edges; ratelimit/memory in `ticketing dev`):
//
//   - hard limits, per address (IPLimit) and per session (SessionLimit):
//     beyond them Check fails with errs.TooMany carrying the limiter's
//     Decision (LimitOf), for the 429's RateLimit and Retry-After fields;
//   - soft limits, per address (SuspectIPLimit) and per session
//     (SuspectSessionLimit): a request beyond one of them is suspect, and
//     Check then wants a solved challenge of SuspectDifficulty bits.
//     Challenge counts its own requests against the same soft limits (in a
//     key space of their own), so a client that asks for many challenges
//     gets hard ones.
//
// A limiter that cannot answer lets the request through (an on-sale must
// not stop because a cache did); Stats counts those.
//
// # Proof of work
//
// A challenge is stateless: base64url (no padding) of
//
//	version(1) | difficulty(1) | expiry, unix seconds (8, big-endian) | nonce(12) | mac(16)
//
// where nonce is random and mac is HMAC-SHA256 under Config.Secret of the
// first 22 bytes followed by the binding: SHA-256 of the event id, of the
// client address and of the session, each length-prefixed. A challenge is
// therefore good only for the event, address and session it was issued to,
// and nothing about them can be read from it.
//
// A solution is "<challenge>.<nonce>" with a nonce of 1-32 characters of
// [0-9A-Za-z_-] that the client chooses so that SHA-256 of the solution's
// bytes begins with at least difficulty zero bits. Check accepts a solution
// when it decodes, its mac is right for this event, address and session, it
// has not expired, its difficulty is at least what the request needs, the
// hash has the zero bits, and it was not used before: accepted challenges
// are remembered until they expire, in a bounded in-process set (so a
// solution can be replayed at most once per edge of a region; each edge
// keeps its own set).
package joinguard

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pow"
)

// Reasons refining the kinds of Check's errors (errs.Error.Reason), the
// "reason" of the JSON error body.
const (
	// ReasonRateLimited: a hard limit refused the join (errs.TooMany).
	ReasonRateLimited = "rate_limited"
	// ReasonPoWRequired: the join needs a solved challenge and came
	// without one, or with one of too low a difficulty (errs.Forbidden).
	ReasonPoWRequired = "pow_required"
	// ReasonPoWInvalid: the solution is malformed, forged, for another
	// event, address or session, expired, not solved, or spent
	// (errs.Forbidden).
	ReasonPoWInvalid = "pow_invalid"
)

// Bounds on the arguments.
const (
	MaxDifficulty = pow.MaxDifficulty
	MaxIDLen      = 128 // bytes of an event id, address or session
	MaxNonceLen   = pow.MaxNonceLen
)

// Config tunes a Guard. Zero fields get the defaults Defaults documents.
type Config struct {
	// Secret is the HMAC key of the challenges, at least 32 bytes. Every
	// edge that may see a client's join must have the same one. Default:
	// 32 random bytes, for a single edge (challenges do not survive a
	// restart, which costs a client one more challenge).
	Secret []byte
	// BaseDifficulty is the difficulty, in leading zero bits, that
	// every join needs. Default 0: no work for normal traffic.
	BaseDifficulty int
	// SuspectDifficulty is the difficulty a suspect join needs. Default 18
	// (a quarter of a million hashes on average: a few seconds in a
	// browser).
	SuspectDifficulty int
	// ChallengeTTL is how long a challenge can be solved and used.
	// Default 2 minutes.
	ChallengeTTL time.Duration
	// IPLimit is the hard limit of joins per client address. Default 120
	// a minute, bursts of 60 (addresses shared by many people, such as a
	// campus NAT, must still get in).
	IPLimit ratelimit.Limit
	// SessionLimit is the hard limit of joins per session. Default 20 a
	// minute, bursts of 10 (a page reconnecting now and then is fine).
	SessionLimit ratelimit.Limit
	// SuspectIPLimit is the soft limit per address beyond which a join
	// is suspect. Default 30 a minute, bursts of 20.
	SuspectIPLimit ratelimit.Limit
	// SuspectSessionLimit is the soft limit per session beyond which a
	// join is suspect. Default 6 a minute, bursts of 4.
	SuspectSessionLimit ratelimit.Limit
	// MaxSpent bounds the set of spent challenges. Default 200,000
	// (about 15 MB). When it is full of unexpired challenges, the ones
	// closest to expiry are forgotten first.
	MaxSpent int
	// KeyPrefix starts every limiter key. Default "join:".
	KeyPrefix string
	// Log receives limiter failures. Default: discarded.
	Log *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if len(c.Secret) == 0 {
		c.Secret = make([]byte, 32)
		if _, err := rand.Read(c.Secret); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	if c.SuspectDifficulty == 0 {
		c.SuspectDifficulty = 18
	}
	if c.ChallengeTTL == 0 {
		c.ChallengeTTL = 2 * time.Minute
	}
	if c.IPLimit == (ratelimit.Limit{}) {
		c.IPLimit = ratelimit.PerMinute(120, 60)
	}
	if c.SessionLimit == (ratelimit.Limit{}) {
		c.SessionLimit = ratelimit.PerMinute(20, 10)
	}
	if c.SuspectIPLimit == (ratelimit.Limit{}) {
		c.SuspectIPLimit = ratelimit.PerMinute(30, 20)
	}
	if c.SuspectSessionLimit == (ratelimit.Limit{}) {
		c.SuspectSessionLimit = ratelimit.PerMinute(6, 4)
	}
	if c.MaxSpent == 0 {
		c.MaxSpent = 200_000
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "join:"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the config (after Defaults).
func (c *Config) Validate() error {
	const op = "joinguard.config"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	switch {
	case len(c.Secret) < 32:
		return bad("the secret must be at least 32 bytes, got %d", len(c.Secret))
	case c.BaseDifficulty < 0 || c.BaseDifficulty > MaxDifficulty:
		return bad("base difficulty must be 0-%d bits, got %d", MaxDifficulty, c.BaseDifficulty)
	case c.SuspectDifficulty < c.BaseDifficulty || c.SuspectDifficulty > MaxDifficulty:
		return bad("suspect difficulty must be %d-%d bits (at least the base), got %d", c.BaseDifficulty, MaxDifficulty, c.SuspectDifficulty)
	case c.ChallengeTTL < time.Second || c.ChallengeTTL > time.Hour:
		return bad("challenge TTL must be 1s-1h, got %v", c.ChallengeTTL)
	case c.MaxSpent < 1:
		return bad("max spent must be positive, got %d", c.MaxSpent)
	case len(c.KeyPrefix) > 32:
		return bad("key prefix longer than 32 bytes")
	}
	for name, l := range map[string]ratelimit.Limit{"ip": c.IPLimit, "session": c.SessionLimit,
		"suspect ip": c.SuspectIPLimit, "suspect session": c.SuspectSessionLimit} {
		if err := l.Validate(); err != nil {
			return errs.E(op, errs.Invalid, name+" limit", err)
		}
	}
	return nil
}

// Guard decides joins. It is safe for concurrent use.
type Guard struct {
	cfg     Config
	limiter ratelimit.Limiter
	spent   *spentSet
	stats   counters
	// verdicts remembers, per address, the last join it limited or found
	// suspect, for the fraud engine's judgement of the address's sign-ins
	// (Verdict).
	verdicts sync.Map // ip → verdict
	stored   atomic.Int64
}

// Verdicts of Verdict, the values of fraud.Signals.JoinGuard.
const (
	VerdictLimited = "limited"
	VerdictSuspect = "suspect"
)

type verdict struct {
	what  string
	until time.Time
}

// verdictFor is how long a verdict is remembered.
const verdictFor = 10 * time.Minute

// Verdict returns what the guard last found of joins from ip within
// verdictFor: VerdictLimited, VerdictSuspect, or "" (nothing against it).
// It is this edge's memory only, kept in the process.
func (g *Guard) Verdict(ip string, now time.Time) string {
	v, ok := g.verdicts.Load(ip)
	if !ok {
		return ""
	}
	if vv := v.(verdict); now.Before(vv.until) {
		return vv.what
	}
	g.verdicts.Delete(ip)
	return ""
}

func (g *Guard) remember(ip, what string, now time.Time) {
	if v, ok := g.verdicts.Load(ip); ok && v.(verdict).what == VerdictLimited && what == VerdictSuspect && now.Before(v.(verdict).until) {
		return // limited is the worse of the two
	}
	g.verdicts.Store(ip, verdict{what: what, until: now.Add(verdictFor)})
	if g.stored.Add(1)%1024 == 0 {
		// Forget the expired ones now and then, so that many addresses
		// seen once do not stay.
		g.verdicts.Range(func(k, v any) bool {
			if !now.Before(v.(verdict).until) {
				g.verdicts.Delete(k)
			}
			return true
		})
	}
}

// New returns a Guard counting with limiter. A nil limiter means no limits:
// nothing is ever rate limited or suspect, and every join needs
// BaseDifficulty only.
func New(cfg Config, limiter ratelimit.Limiter) (*Guard, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	return &Guard{cfg: cfg, limiter: limiter, spent: newSpentSet(cfg.MaxSpent)}, nil
}

// Challenge returns a challenge for a join of eventID from the client ip and
// session, and its difficulty: SuspectDifficulty when this client asks for
// challenges beyond the soft limits, else BaseDifficulty. Difficulty 0
// means no work is needed (the challenge is valid all the same).
func (g *Guard) Challenge(ctx context.Context, ip, session, eventID string, now time.Time) (string, int, error) {
	const op = "joinguard.challenge"
	if err := checkIDs(op, ip, session, eventID); err != nil {
		return "", 0, err
	}
	d := g.cfg.BaseDifficulty
	if g.suspect(ctx, "challenge:", ip, session) {
		d = g.cfg.SuspectDifficulty
		g.stats.suspectChallenges.Add(1)
	}
	g.stats.challenges.Add(1)
	return g.issue(ip, session, eventID, d, now), d, nil
}

// Check decides whether the client ip with session may join eventID now.
// powSolution is the client's solved challenge ("<challenge>.<nonce>"), or
// "" when it sent none.
//
// It returns nil to let the join go ahead, or an *errs.Error:
//
//   - errs.TooMany, reason ReasonRateLimited, beyond a hard limit; LimitOf
//     gives the limiter's decision for the response headers;
//   - errs.Forbidden, reason ReasonPoWRequired or ReasonPoWInvalid, when
//     the join needs a solved challenge it did not bring; ChallengeOf
//     gives a fresh challenge of the difficulty it needs;
//   - errs.Invalid for an empty or too long ip, session or event id.
//
// Every call counts against the limits, refused or not (except a hard
// limit's own refusal, which consumes nothing).
func (g *Guard) Check(ctx context.Context, ip, session, eventID, powSolution string, now time.Time) error {
	const op = "joinguard.check"
	if err := checkIDs(op, ip, session, eventID); err != nil {
		return err
	}
	if err := g.hard(ctx, op, "ip:"+ip, g.cfg.IPLimit); err != nil {
		g.stats.limitedIP.Add(1)
		g.remember(ip, VerdictLimited, now)
		return err
	}
	if session != "" {
		if err := g.hard(ctx, op, "session:"+session, g.cfg.SessionLimit); err != nil {
			g.stats.limitedSession.Add(1)
			g.remember(ip, VerdictLimited, now)
			return err
		}
	}
	need := g.cfg.BaseDifficulty
	if g.suspect(ctx, "soft:", ip, session) {
		need = g.cfg.SuspectDifficulty
		g.stats.suspectJoins.Add(1)
		g.remember(ip, VerdictSuspect, now)
	}
	if need == 0 {
		g.stats.allowed.Add(1)
		return nil
	}
	refuse := func(reason, msg string) error {
		if reason == ReasonPoWRequired {
			g.stats.powRequired.Add(1)
		} else {
			g.stats.powInvalid.Add(1)
		}
		ch := g.issue(ip, session, eventID, need, now)
		return errs.E(op, errs.Forbidden, msg, &ChallengeError{Challenge: ch, Difficulty: need}).WithReason(reason)
	}
	if powSolution == "" {
		return refuse(ReasonPoWRequired, "this join needs a solved proof-of-work challenge")
	}
	c, err := g.verify(powSolution, ip, session, eventID, now)
	if err != nil {
		return refuse(ReasonPoWInvalid, err.Error())
	}
	if c.Difficulty < need {
		return refuse(ReasonPoWRequired, "the challenge solved is easier than this join needs")
	}
	if !g.spent.spend(c.Nonce, c.Expiry, now) {
		return refuse(ReasonPoWInvalid, "the challenge was used before")
	}
	g.stats.powSolved.Add(1)
	g.stats.allowed.Add(1)
	return nil
}

// hard applies a hard limit; nil when allowed or when the limiter cannot
// answer.
func (g *Guard) hard(ctx context.Context, op, key string, l ratelimit.Limit) error {
	if g.limiter == nil {
		return nil
	}
	d, err := g.limiter.Allow(ctx, g.cfg.KeyPrefix+key, l)
	if err != nil {
		g.limiterFailed(key, err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	return errs.E(op, errs.TooMany, errs.Message(d.Err(op)), &LimitError{Decision: d, Limit: l}).WithReason(ReasonRateLimited)
}

// suspect counts a request against the soft limits in the key space space
// and reports whether it went beyond one of them.
func (g *Guard) suspect(ctx context.Context, space, ip, session string) bool {
	if g.limiter == nil {
		return false
	}
	over := func(key string, l ratelimit.Limit) bool {
		d, err := g.limiter.Allow(ctx, g.cfg.KeyPrefix+space+key, l)
		if err != nil {
			g.limiterFailed(space+key, err)
			return false
		}
		return !d.Allowed
	}
	s := over("ip:"+ip, g.cfg.SuspectIPLimit)
	if session != "" && over("session:"+session, g.cfg.SuspectSessionLimit) {
		s = true
	}
	return s
}

func (g *Guard) limiterFailed(key string, err error) {
	g.stats.limiterErrors.Add(1)
	g.cfg.Log.Warn("join limiter unavailable; letting the request through", "key", key, "err", err)
}

func checkIDs(op, ip, session, eventID string) error {
	switch {
	case ip == "" || len(ip) > MaxIDLen:
		return errs.Errorf(op, errs.Invalid, "client address must be 1-%d bytes", MaxIDLen)
	case len(session) > MaxIDLen:
		return errs.Errorf(op, errs.Invalid, "session must be at most %d bytes", MaxIDLen)
	case eventID == "" || len(eventID) > MaxIDLen:
		return errs.Errorf(op, errs.Invalid, "event id must be 1-%d bytes", MaxIDLen)
	}
	return nil
}

// LimitError is the cause of Check's errs.TooMany errors: the decision of
// the limit that refused, for the RateLimit header fields
// (ratelimit.Decision.Header) and the limit itself (ratelimit.PolicyHeader).
type LimitError struct {
	Decision ratelimit.Decision
	Limit    ratelimit.Limit
}

func (e *LimitError) Error() string { return "join limit reached" }

// ChallengeError is the cause of Check's errs.Forbidden errors: a fresh
// challenge of the difficulty the join needs, for the client to solve and
// retry with.
type ChallengeError struct {
	Challenge  string
	Difficulty int
}

func (e *ChallengeError) Error() string { return "proof of work needed" }

// LimitOf returns the rate-limit decision carried by a Check error.
func LimitOf(err error) (ratelimit.Decision, ratelimit.Limit, bool) {
	var le *LimitError
	if errors.As(err, &le) {
		return le.Decision, le.Limit, true
	}
	return ratelimit.Decision{}, ratelimit.Limit{}, false
}

// ChallengeOf returns the challenge carried by a Check error.
func ChallengeOf(err error) (challenge string, difficulty int, ok bool) {
	var ce *ChallengeError
	if errors.As(err, &ce) {
		return ce.Challenge, ce.Difficulty, true
	}
	return "", 0, false
}

// Stats are counts since the Guard was made.
type Stats struct {
	Challenges        uint64 // challenges issued by Challenge
	SuspectChallenges uint64 // of them, of the suspect difficulty
	Allowed           uint64 // joins let through
	LimitedIP         uint64 // joins refused by the per-address limit
	LimitedSession    uint64 // joins refused by the per-session limit
	SuspectJoins      uint64 // joins beyond a soft limit
	PoWRequired       uint64 // joins refused for want of a (hard enough) solution
	PoWInvalid        uint64 // joins refused for a bad solution
	PoWSolved         uint64 // joins let through on a solution
	LimiterErrors     uint64 // limiter failures (requests let through)
}

type counters struct {
	challenges, suspectChallenges, allowed, limitedIP, limitedSession,
	suspectJoins, powRequired, powInvalid, powSolved, limiterErrors atomic.Uint64
}

// Stats returns the counts so far.
func (g *Guard) Stats() Stats {
	s := &g.stats
	return Stats{Challenges: s.challenges.Load(), SuspectChallenges: s.suspectChallenges.Load(),
		Allowed: s.allowed.Load(), LimitedIP: s.limitedIP.Load(), LimitedSession: s.limitedSession.Load(),
		SuspectJoins: s.suspectJoins.Load(), PoWRequired: s.powRequired.Load(), PoWInvalid: s.powInvalid.Load(),
		PoWSolved: s.powSolved.Load(), LimiterErrors: s.limiterErrors.Load()}
}
