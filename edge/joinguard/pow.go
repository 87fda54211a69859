package joinguard

import (
	"time"

	"github.com/ticketing/ticketing/internal/pow"
)

// ChallengeLen is the length of a challenge string.
const ChallengeLen = pow.ChallengeLen

// issuer is the guard's proof-of-work issuer.
func (g *Guard) issuer() pow.Issuer { return pow.Issuer{Secret: g.cfg.Secret, TTL: g.cfg.ChallengeTTL} }

func (g *Guard) issue(ip, session, eventID string, difficulty int, now time.Time) string {
	return g.issuer().Issue(difficulty, now, eventID, ip, session)
}

// verify checks a solution for this client and event; the error says why
// it is not good (its text is shown to the client).
func (g *Guard) verify(solution, ip, session, eventID string, now time.Time) (pow.Solved, error) {
	return g.issuer().Verify(solution, now, eventID, ip, session)
}

// ParseSolution splits a solution "<challenge>.<nonce>" (pow.ParseSolution).
func ParseSolution(s string) (challenge, nonce string, err error) { return pow.ParseSolution(s) }

// LeadingZeroBits is the number of leading zero bits of SHA-256(s).
func LeadingZeroBits(s string) int { return pow.LeadingZeroBits(s) }

// Solve finds a solution (pow.Solve), for Go clients (benchmarks, tests).
func Solve(challenge string, difficulty int) string { return pow.Solve(challenge, difficulty) }
