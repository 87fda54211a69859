package auth

import (
	"context"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/passkey"
	"github.com/ticketing/ticketing/services/identity/session"
)

// Passkeys: registering one (a signed-in user), signing in with one
// without a password (it must have verified the user: a PIN or a
// biometric, which with possession of the device makes two factors), and
// one as the second step of a password sign-in.

// ReasonUserNotVerified (errs.Unauthorized): a password-less sign-in with
// a passkey that did not verify the user.
const ReasonUserNotVerified = "passkey_user_not_verified"

func (s *Service) ceremonies(op string) (*passkey.Ceremonies, error) {
	if s.deps.Passkeys == nil {
		return nil, errs.E(op, errs.Unavailable, "passkeys are not available")
	}
	return s.deps.Passkeys, nil
}

// BeginPasskeyRegistration starts registering a passkey for the user.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, userID string) (passkey.Started, error) {
	const op = "auth.passkey_register_begin"
	p, err := s.ceremonies(op)
	if err != nil {
		return passkey.Started{}, err
	}
	a, err := s.deps.Accounts.ByID(ctx, userID)
	if err != nil {
		return passkey.Started{}, errs.E(op, err)
	}
	return p.BeginRegistration(a)
}

// FinishPasskeyRegistration checks the browser's new credential and adds
// the passkey to the account.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, userID, state string, body []byte, name string) (PasskeyInfo, error) {
	const op = "auth.passkey_register_finish"
	p, err := s.ceremonies(op)
	if err != nil {
		return PasskeyInfo{}, err
	}
	a, err := s.deps.Accounts.ByID(ctx, userID)
	if err != nil {
		return PasskeyInfo{}, errs.E(op, err)
	}
	k, err := p.FinishRegistration(ctx, a, state, body, name)
	if err != nil {
		return PasskeyInfo{}, err
	}
	_, err = s.update(ctx, op, userID, func(a *identity.Account) error {
		for _, x := range a.Passkeys {
			if x.ID == k.ID {
				return errs.E(op, errs.Conflict, "this passkey is registered already")
			}
		}
		if len(a.Passkeys) >= identity.MaxPasskeys {
			return errs.Errorf(op, errs.Conflict, "an account has at most %d passkeys", identity.MaxPasskeys)
		}
		a.Passkeys = append(a.Passkeys, k)
		return nil
	})
	if err != nil {
		return PasskeyInfo{}, err
	}
	return PasskeyInfo{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt}, nil
}

// BeginPasskeySignIn starts a password-less sign-in.
func (s *Service) BeginPasskeySignIn() (passkey.Started, error) {
	p, err := s.ceremonies("auth.passkey_signin_begin")
	if err != nil {
		return passkey.Started{}, err
	}
	return p.BeginLogin()
}

// FinishPasskeySignIn checks the assertion and opens a session for its
// account.
func (s *Service) FinishPasskeySignIn(ctx context.Context, state string, body []byte, client string, seen session.Seen) (Tokens, error) {
	const op = "auth.passkey_signin_finish"
	p, err := s.ceremonies(op)
	if err != nil {
		return Tokens{}, err
	}
	l, err := p.FinishLogin(ctx, state, body, s.deps.Accounts.ByID)
	if err != nil {
		return Tokens{}, err
	}
	if !l.UserVerified {
		return Tokens{}, errs.E(op, errs.Unauthorized, "the passkey did not verify you (PIN or biometric): sign in with your password").WithReason(ReasonUserNotVerified)
	}
	if !l.Account.EmailVerified {
		return Tokens{}, errs.E(op, errs.Forbidden, "confirm your e-mail address first").WithReason(ReasonEmailUnverified)
	}
	a, err := s.usedPasskey(ctx, op, l)
	if err != nil {
		return Tokens{}, err
	}
	if client == "" {
		client = s.cfg.WebClient
	}
	return s.start(ctx, op, a, client, seen)
}

// usedPasskey records the passkey's new sign count and use.
func (s *Service) usedPasskey(ctx context.Context, op string, l passkey.Login) (identity.Account, error) {
	return s.update(ctx, op, l.Account.ID, func(a *identity.Account) error {
		b, ok := l.Apply(*a)
		if !ok {
			return errs.E(op, errs.Unauthorized, "the passkey was removed").WithReason(ReasonInvalidCredentials)
		}
		*a = b
		return nil
	})
}

// PasskeyChallenge is a passkey second factor begun: the browser's
// options and the ceremony's state, and the sign-in's new MFA ticket (the
// one given was spent; its successor finishes the sign-in).
type PasskeyChallenge struct {
	passkey.Started
	MFA string `json:"mfa_token"`
}

// BeginPasskeySecondFactor starts a passkey second factor for the MFA
// ticket of a password sign-in.
func (s *Service) BeginPasskeySecondFactor(ctx context.Context, ticket string) (PasskeyChallenge, error) {
	const op = "auth.passkey_mfa_begin"
	p, err := s.ceremonies(op)
	if err != nil {
		return PasskeyChallenge{}, err
	}
	a, client, err := s.takeMFA(ctx, op, ticket)
	if err != nil {
		return PasskeyChallenge{}, err
	}
	st, err := p.BeginSecondFactor(a)
	if err != nil {
		return PasskeyChallenge{}, err
	}
	secret, err := s.putLink(ctx, identity.LinkMFA, a, s.cfg.MFATTL)
	if err != nil {
		return PasskeyChallenge{}, errs.E(op, err)
	}
	return PasskeyChallenge{Started: st, MFA: client + "." + secret}, nil
}

// FinishPasskeySecondFactor spends the ticket, checks the assertion and
// opens the session.
func (s *Service) FinishPasskeySecondFactor(ctx context.Context, ticket, state string, body []byte, seen session.Seen) (Tokens, error) {
	const op = "auth.passkey_mfa_finish"
	p, err := s.ceremonies(op)
	if err != nil {
		return Tokens{}, err
	}
	a, client, err := s.takeMFA(ctx, op, ticket)
	if err != nil {
		return Tokens{}, err
	}
	l, err := p.FinishSecondFactor(ctx, a, state, body)
	if err != nil {
		s.failed(ctx, a.ID)
		return Tokens{}, err
	}
	if a, err = s.usedPasskey(ctx, op, l); err != nil {
		return Tokens{}, err
	}
	return s.start(ctx, op, a, client, seen)
}

// RemovePasskey removes one of the user's passkeys after a step-up.
func (s *Service) RemovePasskey(ctx context.Context, userID, id string, p StepUp) error {
	const op = "auth.passkey_remove"
	if _, err := s.stepUp(ctx, op, userID, p); err != nil {
		return err
	}
	_, err := s.update(ctx, op, userID, func(a *identity.Account) error {
		for i, k := range a.Passkeys {
			if k.ID == id {
				a.Passkeys = append(a.Passkeys[:i:i], a.Passkeys[i+1:]...)
				if !a.SecondFactor() {
					a.Recovery = nil
				}
				return nil
			}
		}
		return errs.E(op, errs.NotFound, "no such passkey")
	})
	return err
}
