package auth

import (
	"context"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pow"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/identity"
)

// Sign-ins and the fraud engine (services/fraud): before the password is
// checked the engine decides on the attempt: allow; challenge (a proof of
// work, or the account's second factor, which it gets anyway); slow lane
// (the answer is held back a little, which costs a stuffing run its
// speed); or deny for a while (the address or network that stuffs, or an
// account locked to devices it does not know). The result is fed back
// (RecordFailure, RecordSuccess), and every decision is an event on
// EVENTS.

// Reasons of sign-in refusals by the fraud engine.
const (
	// ReasonPoWRequired (errs.Unauthorized): solve SignIn.PoW and send the
	// solution with the next attempt.
	ReasonPoWRequired = "pow_required"
	// ReasonDenied (errs.TooMany): no sign-in from here for a while
	// (SignIn.RetryAfter).
	ReasonDenied = "signin_denied"
)

// Risk is the fraud engine and the proof of work its challenges use.
type Risk struct {
	Engine *fraud.Engine
	// PoW issues and checks the sign-in challenges; Spent makes each
	// solution count once.
	PoW   pow.Issuer
	Spent interface {
		Spend(ctx context.Context, jti, use string, until time.Time) (bool, error)
	}
	// Difficulty of the challenges, in leading zero bits. Default 16.
	Difficulty int
	// SlowLane is how long a slow-lane answer is held back. Default 2s.
	SlowLane time.Duration
}

// PoWChallenge is a proof of work to solve: a solution is
// "<challenge>.<nonce>" whose SHA-256 has Difficulty leading zero bits.
type PoWChallenge struct {
	Challenge  string `json:"challenge"`
	Difficulty int    `json:"difficulty"`
}

// signals are what the engine is told of a sign-in attempt.
func (s *Service) signals(a *identity.Account, r SignInRequest, passed fraud.Challenge) fraud.Signals {
	sig := fraud.Signals{Action: fraud.ActionSignIn, Passed: passed}
	if r.JoinGuard == fraud.JoinGuardSuspect || r.JoinGuard == fraud.JoinGuardLimited {
		sig.JoinGuard = r.JoinGuard
	}
	if addr, err := fraud.ParseAddress(r.Seen.IP); err == nil {
		sig.Address = addr
	}
	if d, err := fraud.ParseDevice(r.Device); err == nil {
		sig.Device = d
	}
	if a != nil {
		sig.AccountID, sig.AccountAge = a.ID, s.cfg.Now().Sub(a.CreatedAt)
		sig.FailedSignIns, sig.SecondFactor = a.Failures, a.SecondFactor()
	}
	return sig
}

// judge asks the engine about a sign-in before the password is checked.
// It answers a SignIn to return instead (a challenge or a denial) when
// the attempt may not go on, and the signals to record the result with.
func (s *Service) judge(ctx context.Context, op string, a *identity.Account, r SignInRequest) (*SignIn, fraud.Signals, error) {
	rk := s.deps.Risk
	if rk == nil || rk.Engine == nil {
		return nil, fraud.Signals{}, nil
	}
	bind := "signin:" + r.Email
	passed := fraud.Challenge("")
	if r.PoW != "" {
		solved, err := rk.PoW.Verify(r.PoW, s.cfg.Now(), bind)
		if err == nil {
			ok, serr := rk.Spent.Spend(ctx, "pow."+hex.EncodeToString(solved.Nonce[:]), "signin", time.Unix(solved.Expiry, 0))
			if serr != nil {
				return nil, fraud.Signals{}, errs.E(op, serr)
			}
			if ok && solved.Difficulty >= rk.difficulty() {
				passed = fraud.ChallengePoW
			}
		}
	}
	sig := s.signals(a, r, passed)
	d, err := rk.Engine.Decide(ctx, sig)
	if err != nil {
		// The engine's store is down: sign-ins go on, as rate limits do.
		s.log.Warn("fraud engine unavailable; sign-in not judged", "err", err)
		return nil, fraud.Signals{}, nil
	}
	switch d.Outcome {
	case fraud.OutcomeDeny:
		secs := max(1, int((d.RetryAfter+time.Second-1)/time.Second))
		return &SignIn{RetryAfter: secs}, sig, nil
	case fraud.OutcomeChallenge:
		if d.Challenge == fraud.ChallengePoW {
			return &SignIn{PoW: &PoWChallenge{Challenge: rk.PoW.Issue(rk.difficulty(), s.cfg.Now(), bind), Difficulty: rk.difficulty()}}, sig, nil
		}
		// A second factor: the password step asks for it anyway.
	case fraud.OutcomeSlow:
		t := time.NewTimer(rk.slowLane())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return nil, sig, nil
}

// judgeSignUp asks the engine about a sign-up (the address's, network's
// and device's velocity): a denial is errs.TooMany; the slow lane holds
// the answer back; a challenge lets it through, as mail confirms the
// address anyway.
func (s *Service) judgeSignUp(ctx context.Context, op string, r SignUpRequest) error {
	rk := s.deps.Risk
	if rk == nil || rk.Engine == nil {
		return nil
	}
	sig := fraud.Signals{Action: fraud.ActionSignUp}
	if addr, err := fraud.ParseAddress(r.Seen.IP); err == nil {
		sig.Address = addr
	}
	if d, err := fraud.ParseDevice(r.Device); err == nil {
		sig.Device = d
	}
	d, err := rk.Engine.Decide(ctx, sig)
	if err != nil {
		s.log.Warn("fraud engine unavailable; sign-up not judged", "err", err)
		return nil
	}
	switch d.Outcome {
	case fraud.OutcomeDeny:
		secs := max(1, int((d.RetryAfter+time.Second-1)/time.Second))
		return errs.E(op, errs.TooMany, "too many sign-ups from here: try again in "+strconv.Itoa(secs)+"s").WithReason(ReasonDenied)
	case fraud.OutcomeSlow:
		t := time.NewTimer(rk.slowLane())
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return nil
}

func (rk *Risk) difficulty() int {
	if rk.Difficulty == 0 {
		return 16
	}
	return rk.Difficulty
}

func (rk *Risk) slowLane() time.Duration {
	if rk.SlowLane == 0 {
		return 2 * time.Second
	}
	return rk.SlowLane
}

// recordSignIn tells the engine how the attempt went.
func (s *Service) recordSignIn(ctx context.Context, sig fraud.Signals, ok bool) {
	rk := s.deps.Risk
	if rk == nil || rk.Engine == nil || sig.Action == "" {
		return
	}
	var err error
	if ok {
		err = rk.Engine.RecordSuccess(ctx, sig)
	} else {
		err = rk.Engine.RecordFailure(ctx, sig)
	}
	if err != nil {
		s.log.Warn("fraud engine not told of a sign-in", "ok", ok, "err", err)
	}
}

// Refusal is the error for a sign-in answer the engine stopped
// (SignIn.Stopped).
func Refusal(op string, in SignIn) error {
	if in.PoW != nil {
		return errs.E(op, errs.Unauthorized, "solve the proof-of-work challenge and sign in again").WithReason(ReasonPoWRequired)
	}
	return errs.E(op, errs.TooMany, "too many sign-in attempts from here: try again in "+strconv.Itoa(in.RetryAfter)+"s").WithReason(ReasonDenied)
}
