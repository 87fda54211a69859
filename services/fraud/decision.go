package fraud

import "time"

// Outcome is what to do with an attempt, from the mildest to the most
// severe.
type Outcome string

// The outcomes.
const (
	// OutcomeAllow: go ahead.
	OutcomeAllow Outcome = "allow"
	// OutcomeChallenge: go ahead once the client has passed
	// Decision.Challenge.
	OutcomeChallenge Outcome = "challenge"
	// OutcomeSlow: go ahead in the slow lane: the caller adds friction
	// that costs a person little and a bot much (a delayed sign-in
	// answer, a purchase held for review or served behind the others).
	OutcomeSlow Outcome = "slow"
	// OutcomeDeny: refuse; try again after Decision.RetryAfter.
	OutcomeDeny Outcome = "deny"
)

func (o Outcome) severity() int {
	switch o {
	case OutcomeChallenge:
		return 1
	case OutcomeSlow:
		return 2
	case OutcomeDeny:
		return 3
	}
	return 0
}

// Challenge is what a client must pass.
type Challenge string

// The challenges.
const (
	// ChallengePoW: a proof of work (the join guard's kind of puzzle).
	ChallengePoW Challenge = "pow"
	// ChallengeSecondFactor: the account's second factor (TOTP, passkey).
	// It satisfies a proof-of-work challenge too.
	ChallengeSecondFactor Challenge = "second_factor"
)

// satisfies reports whether having passed c meets a demand for want.
func (c Challenge) satisfies(want Challenge) bool {
	return c != "" && (c == want || c == ChallengeSecondFactor)
}

// Reasons of decisions: each names a rule that fired or a signal that
// counted (Decision.Reasons, in the order below).
const (
	ReasonAddressFailures  = "address_failures"     // failed sign-ins from the address over the limit
	ReasonNetworkFailures  = "network_failures"     // failed sign-ins from the network over the limit
	ReasonAccountLocked    = "account_locked"       // the account is locked to unknown devices and networks
	ReasonAccountFailures  = "account_failures"     // failed sign-ins of the account over the challenge limit
	ReasonAccountVelocity  = "account_velocity"     // attempts on the account over its limit
	ReasonAddressVelocity  = "address_velocity"     // attempts from the address over its limit
	ReasonNetworkVelocity  = "network_velocity"     // attempts from the network over its limit
	ReasonDeviceVelocity   = "device_velocity"      // attempts from the device over its limit
	ReasonCardVelocity     = "card_velocity"        // attempts with the card over its limit
	ReasonFreshAccount     = "fresh_account"        // the account is younger than FreshAge
	ReasonFailedSignIns    = "failed_signins"       // the account's failures since its last good sign-in
	ReasonJoinGuardSuspect = "joinguard_suspect"    // the join guard found the client suspect
	ReasonJoinGuardLimited = "joinguard_limited"    // the join guard's hard limits refused the client
	ReasonKnownDevice      = "known_device"         // the device signed in to the account before
	ReasonKnownNetwork     = "known_network"        // the account signed in from the network before
	ReasonDeviceInvalid    = "device_invalid"       // the fingerprint was malformed and was ignored
	ReasonNoAddress        = "no_address"           // the caller gave no address
	ReasonCountersDown     = "counters_unavailable" // the counters could not be reached (Engine.Decide)
	ReasonChallengePassed  = "challenge_passed"     // the request had passed the challenge it needed
)

// Decision is the engine's answer for one attempt.
type Decision struct {
	Outcome Outcome
	// Challenge is what to pass, when Outcome is OutcomeChallenge.
	Challenge Challenge
	// Score is the risk, 0 (none) to 100.
	Score int
	// Reasons name the rules and signals behind the decision.
	Reasons []string
	// RetryAfter is, when Outcome is OutcomeDeny, how long until the
	// denial surely lifts if nothing more happens (an upper bound: it may
	// lift sooner); zero otherwise.
	RetryAfter time.Duration
}

// HasReason reports whether r is among d's reasons.
func (d *Decision) HasReason(r string) bool {
	for _, x := range d.Reasons {
		if x == r {
			return true
		}
	}
	return false
}
