package auth_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/pow"
	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/session"
)

// Credential stuffing from one address is shut out, across accounts; the
// real user from a device they signed in from before still gets in.
func TestStuffingAddressDenied(t *testing.T) {
	f := start(t)
	c := ctx(t)
	svc, events := f.WithRisk(t, fraud.Config{AddressFailureLimit: 5, AccountChallengeFailures: 100, AccountLockFailures: 100}, 4)
	owner := f.SignedIn(t)
	// The owner signs in from their own device and address first.
	home := session.Seen{IP: "198.51.100.7"}
	if in, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: owner.Email, Password: owner.Password, Seen: home, Device: "owner-device-0123456789"}); err != nil || in.Tokens == nil {
		t.Fatalf("owner: %+v %v", in, err)
	}
	attacker := session.Seen{IP: "203.0.113.9"}
	// The attacker solves every proof of work it is given: only the
	// address's failures stop it.
	var denied auth.SignIn
	solutions := map[string]string{}
	for i := range 40 {
		victim := owner.Email
		if i%2 == 1 {
			victim = "someone-else@example.com"
		}
		in, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: victim, Password: "guess-" + string(rune('a'+i)) + "-password",
			Seen: attacker, Device: "attacker-device-000000000", PoW: solutions[victim]})
		delete(solutions, victim)
		if in.RetryAfter > 0 {
			denied = in
			break
		}
		if in.PoW != nil {
			solutions[victim] = pow.Solve(in.PoW.Challenge, in.PoW.Difficulty)
			continue
		}
		if !errs.Is(errs.Unauthorized, err) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if denied.RetryAfter == 0 {
		t.Fatalf("the stuffing address was never denied: %+v", denied)
	}
	if err := auth.Refusal("t", denied); !errs.Is(errs.TooMany, err) || errs.ReasonOf(err) != auth.ReasonDenied {
		t.Fatalf("refusal %v", err)
	}
	// The right password from the attacker's address is denied too...
	if in, _ := svc.PasswordSignIn(c, auth.SignInRequest{Email: owner.Email, Password: owner.Password, Seen: attacker, Device: "attacker-device-000000000"}); in.RetryAfter == 0 {
		t.Fatalf("the right password from the stuffing address went on: %+v", in)
	}
	// ...while the owner, from home, signs in.
	if in, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: owner.Email, Password: owner.Password, Seen: home, Device: "owner-device-0123456789"}); err != nil || in.Tokens == nil {
		t.Fatalf("owner after the attack: %+v %v", in, err)
	}
	var deny int
	for _, e := range events.List() {
		if e.Outcome == fraud.OutcomeDeny {
			deny++
		}
	}
	if deny == 0 {
		t.Fatalf("no deny decision among %d events", len(events.List()))
	}
}

// After failures an account without a second factor is challenged with a
// proof of work, which a solution passes once.
func TestFailuresChallengeWithProofOfWork(t *testing.T) {
	f := start(t)
	c := ctx(t)
	svc, _ := f.WithRisk(t, fraud.Config{AccountChallengeFailures: 2, AddressFailureLimit: -1, NetworkFailureLimit: -1, AccountLockFailures: 100}, 4)
	a := f.SignedIn(t)
	seen := session.Seen{IP: "192.0.2.44"}
	for range 2 {
		_, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: "wrong password!", Seen: seen})
		if !errs.Is(errs.Unauthorized, err) && err != nil {
			t.Fatal(err)
		}
	}
	// Two failures: even the right password is challenged now.
	in, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password, Seen: seen})
	if err != nil || in.PoW == nil || in.Tokens != nil {
		t.Fatalf("want a proof-of-work challenge: %+v %v", in, err)
	}
	if err := auth.Refusal("t", in); errs.ReasonOf(err) != auth.ReasonPoWRequired {
		t.Fatalf("refusal %v", err)
	}
	// A solution of another challenge, or none, is challenged again.
	if in2, _ := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password, Seen: seen, PoW: pow.Solve(in.PoW.Challenge[:len(in.PoW.Challenge)-2]+"AA", 4)}); in2.PoW == nil {
		t.Fatalf("a forged solution passed: %+v", in2)
	}
	sol := pow.Solve(in.PoW.Challenge, in.PoW.Difficulty)
	ok, err := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password, Seen: seen, PoW: sol})
	if err != nil || ok.Tokens == nil {
		t.Fatalf("solved: %+v %v", ok, err)
	}
	// The solution is spent.
	if again, _ := svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: "wrong password!", Seen: seen, PoW: sol}); again.Tokens != nil {
		t.Fatal("a wrong password signed in")
	}
}

// Sign-ups from one address beyond its velocity are refused (429) and
// create nothing.
func TestSignUpVelocityDenied(t *testing.T) {
	f := start(t)
	c := ctx(t)
	svc, _ := f.WithRisk(t, fraud.Config{AddressVelocity: 2, ChallengeScore: 20, SlowScore: 20, DenyScore: 20}, 4)
	seen := session.Seen{IP: "203.0.113.50"}
	var err error
	var n int
	for n = 0; n < 10; n++ {
		err = svc.SignUp(c, auth.SignUpRequest{Email: fmt.Sprintf("velocity-%d@example.com", n), Password: "a fine password", Seen: seen})
		if err != nil {
			break
		}
	}
	if !errs.Is(errs.TooMany, err) || errs.ReasonOf(err) != auth.ReasonDenied {
		t.Fatalf("sign-up %d: %v", n, err)
	}
	if _, err := f.Accounts.ByEmail(c, fmt.Sprintf("velocity-%d@example.com", n)); !errs.Is(errs.NotFound, err) {
		t.Fatalf("the refused sign-up created an account: %v", err)
	}
	// Another address is not affected.
	if err := svc.SignUp(c, auth.SignUpRequest{Email: "elsewhere@example.com", Password: "a fine password", Seen: session.Seen{IP: "198.51.100.1"}}); err != nil {
		t.Fatal(err)
	}
}

// The edge's join guard's verdict on the address weighs in the sign-in's
// decision.
func TestJoinGuardVerdictWeighs(t *testing.T) {
	f := start(t)
	c := ctx(t)
	svc, events := f.WithRisk(t, fraud.Config{}, 4)
	a := f.SignedIn(t)
	_, _ = svc.PasswordSignIn(c, auth.SignInRequest{Email: a.Email, Password: a.Password, Seen: session.Seen{IP: "192.0.2.9"}, JoinGuard: fraud.JoinGuardLimited})
	l := events.List()
	if len(l) == 0 || !slices.Contains(l[len(l)-1].Reasons, fraud.ReasonJoinGuardLimited) {
		t.Fatalf("events %+v", l)
	}
}
