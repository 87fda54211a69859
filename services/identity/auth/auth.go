// Package auth is the identity service's flows: sign-up with e-mail
// verification, sign-in with a password and a second factor, sessions and
// their access tokens, password reset, TOTP and recovery codes, roles. It is
// domain logic on interfaces: the account store (identity.Store), the
// sessions (session.Manager), the token issuer (token.Issuer), the password
// hasher and a mailer. services/identity/natsapi serves it to the edges.
//
// # No enumeration
//
// Sign-up and password reset answer the same whether the address has an
// account or not, and take about the same time: every answer costs one
// password hash (or a dummy verification), and mail goes out in the
// background (Mailer.Send is not awaited), so the mail server's speed says
// nothing. A sign-up with a known address mails its owner a note instead of
// a verification link; a reset for an unknown address mails nothing.
// Sign-in answers one error (errs.Unauthorized, ReasonInvalidCredentials)
// for an unknown address and a wrong password, after the same work.
//
// # Second factors and step-up
//
// An account with an enabled TOTP or a passkey signs in in two steps: the
// password answers an MFA ticket (a stored, single-use identity.Link with
// purpose LinkMFA, valid MFATTL), which a TOTP code, a recovery code or a
// passkey assertion turns into a session. A wrong code spends the ticket:
// every guess costs the attacker a password check. Sensitive actions
// (changing the password, disabling TOTP, new recovery codes, removing a
// passkey) need a StepUp in the request itself: the current password, and a
// second factor's code when the account has one; a fresh proof, so no
// "recently authenticated" state is kept.
//
// # Tokens
//
// A session's access tokens (RFC 9068, services/identity/token) carry the
// account's roles as scope tokens next to the buyer's scopes, so the edge
// decides roles from the token alone; a role granted or removed shows in
// the next token (tokens live Config.Tokens.Lifetime, 5 minutes).
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/passkey"
	"github.com/ticketing/ticketing/services/identity/password"
	"github.com/ticketing/ticketing/services/identity/recovery"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/token"
	"github.com/ticketing/ticketing/services/identity/totp"
	"github.com/ticketing/ticketing/services/mail"
)

// Reasons refining the errors of this package.
const (
	// ReasonInvalidCredentials (errs.Unauthorized): unknown address or
	// wrong password, or a wrong or spent second-factor code or ticket.
	ReasonInvalidCredentials = "invalid_credentials"
	// ReasonEmailUnverified (errs.Forbidden): the right password of an
	// account whose address is not confirmed yet.
	ReasonEmailUnverified = "email_unverified"
	// ReasonLinkInvalid (errs.NotFound): a mailed link that is unknown,
	// used or expired.
	ReasonLinkInvalid = "link_invalid"
	// ReasonStepUp (errs.Forbidden): the action needs the current password
	// and, when the account has one, a second factor's code.
	ReasonStepUp = "step_up_required"
	// ReasonNoSecondFactor (errs.Conflict): TOTP is not enrolled or
	// already on.
	ReasonTOTPState = "totp_state"
)

// BuyerScopes are the scopes of every signed-in account's access tokens.
const BuyerScopes = "holds:read holds:write orders:read orders:write tickets:read events:read"

// Config tunes the flows.
type Config struct {
	// BaseURL is where mailed links point: BaseURL + "/verify#<secret>"
	// and "/reset#<secret>", pages of the edge. Required.
	BaseURL string
	// From is the sender of the mails. Default
	// "Ticketing <no-reply@ticketing.localhost>".
	From string
	// VerifyTTL and ResetTTL bound the mailed links' lives; MFATTL the
	// second step of a sign-in. Defaults 24h, 1h, 5m.
	VerifyTTL, ResetTTL, MFATTL time.Duration
	// WebClient is the OAuth client id of the first-party pages and apps
	// that sign in with a password. Default "web".
	WebClient string
	// SendTimeout bounds one mail delivery. Default 30s.
	SendTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.From == "" {
		c.From = "Ticketing <no-reply@ticketing.localhost>"
	}
	if c.VerifyTTL == 0 {
		c.VerifyTTL = 24 * time.Hour
	}
	if c.ResetTTL == 0 {
		c.ResetTTL = time.Hour
	}
	if c.MFATTL == 0 {
		c.MFATTL = 5 * time.Minute
	}
	if c.WebClient == "" {
		c.WebClient = "web"
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "auth.config"
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errs.Errorf(op, errs.Invalid, "base URL %q is not an http(s) URL without query", c.BaseURL)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return errs.Errorf(op, errs.Invalid, "from address %q: %v", c.From, err)
	}
	for _, d := range []time.Duration{c.VerifyTTL, c.ResetTTL, c.MFATTL, c.SendTimeout} {
		if d < time.Second {
			return errs.E(op, errs.Invalid, "link lifetimes and the send timeout must be at least 1s")
		}
	}
	if !session.ValidClientID(c.WebClient) {
		return errs.Errorf(op, errs.Invalid, "web client id %q is not valid", c.WebClient)
	}
	return nil
}

// Deps are the service's collaborators.
type Deps struct {
	Accounts identity.Store
	Sessions *session.Manager
	Tokens   *token.Issuer
	Hasher   *password.Hasher
	Mailer   mail.Mailer
	// Passkeys runs the WebAuthn ceremonies; nil: no passkeys.
	Passkeys *passkey.Ceremonies
	// Risk judges sign-ins; nil: none are judged.
	Risk *Risk
	Log  *slog.Logger
}

// Service runs the flows. Safe for concurrent use.
type Service struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	mails sync.WaitGroup // deliveries in flight
}

// New returns a service.
func New(cfg Config, deps Deps) (*Service, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Accounts == nil || deps.Sessions == nil || deps.Tokens == nil || deps.Hasher == nil || deps.Mailer == nil {
		return nil, errs.E("auth.new", errs.Invalid, "accounts, sessions, tokens, hasher and mailer are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, deps: deps, log: log}, nil
}

// Close waits for the mails in flight, at most until ctx ends.
func (s *Service) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.mails.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: mails still in flight: %w", ctx.Err())
	}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Tokens are what a completed sign-in or refresh gives the client.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"` // "Bearer"
	ExpiresIn    int       `json:"expires_in"` // seconds
	RefreshToken string    `json:"refresh_token"`
	Scope        string    `json:"scope"`
	SessionID    string    `json:"session_id"`
	UserID       string    `json:"user_id"`
	ExpiresAt    time.Time `json:"-"`
}

// SignIn is the answer to a password (first) step: Tokens, or an MFA
// ticket with the methods that can complete it; or, when the fraud engine
// stopped the attempt before the password was checked, a proof of work to
// solve (PoW) or how many seconds to wait (RetryAfter).
type SignIn struct {
	Tokens     *Tokens       `json:"tokens,omitempty"`
	MFA        string        `json:"mfa_token,omitempty"`
	Methods    []string      `json:"methods,omitempty"` // "totp", "recovery", "passkey"
	PoW        *PoWChallenge `json:"pow,omitempty"`
	RetryAfter int           `json:"retry_after,omitempty"`
}

// Stopped reports whether the fraud engine stopped the attempt.
func (in SignIn) Stopped() bool { return in.PoW != nil || in.RetryAfter > 0 }

// Profile is the account as its owner sees it: no secrets.
type Profile struct {
	ID            string        `json:"id"`
	Email         string        `json:"email"`
	DisplayName   string        `json:"display_name"`
	Locale        string        `json:"locale,omitempty"`
	EmailVerified bool          `json:"email_verified"`
	Roles         []string      `json:"roles"`
	CreatedAt     time.Time     `json:"created_at"`
	HasPassword   bool          `json:"has_password"`
	TOTP          bool          `json:"totp"`
	RecoveryLeft  int           `json:"recovery_codes_left"`
	Passkeys      []PasskeyInfo `json:"passkeys"`
}

// PasskeyInfo is a passkey as its owner sees it.
type PasskeyInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// ProfileOf is the owner's view of a.
func ProfileOf(a identity.Account) Profile {
	p := Profile{
		ID: a.ID, Email: a.Email, DisplayName: a.DisplayName, Locale: a.Locale, EmailVerified: a.EmailVerified,
		Roles: append([]string{}, a.Roles...), CreatedAt: a.CreatedAt, HasPassword: a.Password != "",
		TOTP: a.TOTP.Enabled, RecoveryLeft: len(a.Recovery), Passkeys: []PasskeyInfo{},
	}
	for _, k := range a.Passkeys {
		p.Passkeys = append(p.Passkeys, PasskeyInfo{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt})
	}
	return p
}

// ScopeOf is the scope of a's access tokens: BuyerScopes and its roles.
func ScopeOf(a identity.Account) string {
	if len(a.Roles) == 0 {
		return BuyerScopes
	}
	return BuyerScopes + " " + strings.Join(a.Roles, " ")
}

// SignUpRequest is a new account.
type SignUpRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
	// Locale is the language of the account's mail (BCP 47; "" the
	// platform's default).
	Locale string `json:"locale,omitempty"`
	// Seen and Device are the client, for the fraud engine.
	Seen   session.Seen `json:"seen"`
	Device string       `json:"device,omitempty"`
}

// SignUp creates an unverified account and mails a verification link, or,
// when the address has an account, mails its owner a note. Either way the
// answer is nil after the same work (see the package doc). A password that
// breaks the policy or a malformed address is errs.Invalid; these say
// nothing about other accounts.
func (s *Service) SignUp(ctx context.Context, r SignUpRequest) error {
	const op = "auth.signup"
	email, err := identity.NormalizeEmail(r.Email)
	if err != nil {
		return errs.E(op, err)
	}
	if err := s.judgeSignUp(ctx, op, r); err != nil {
		return err
	}
	hash, err := s.deps.Hasher.Hash(r.Password)
	if err != nil {
		return errs.E(op, err)
	}
	a := identity.Account{
		User:     identity.User{ID: identity.NewID(), Email: email, DisplayName: r.DisplayName, CreatedAt: s.now()},
		Password: hash,
		Locale:   r.Locale,
	}
	if _, err := identity.NormalizeAccount(a); err != nil {
		return errs.E(op, err)
	}
	created, err := s.deps.Accounts.Create(ctx, a)
	switch {
	case errs.ReasonOf(err) == identity.ReasonEmailTaken:
		existing, err := s.deps.Accounts.ByEmail(ctx, email)
		if err != nil {
			return errs.E(op, err)
		}
		s.send(existing.Email, "Someone tried to sign up with your address",
			"Someone, perhaps you, tried to create a Ticketing account with this address, which already has one.\n\n"+
				"To sign in, go to "+s.cfg.BaseURL+"/signin\nForgot your password? "+s.cfg.BaseURL+"/forgot\n\nIf it was not you, you can ignore this message.\n")
		return nil
	case err != nil:
		return errs.E(op, err)
	}
	return s.mailVerification(ctx, op, created)
}

// ResendVerification mails a new verification link to an unverified
// account; it answers nil for every address (no enumeration).
func (s *Service) ResendVerification(ctx context.Context, email string) error {
	const op = "auth.resend"
	a, err := s.deps.Accounts.ByEmail(ctx, email)
	if errs.Is(errs.NotFound, err) || (err == nil && a.EmailVerified) {
		return nil
	}
	if err != nil {
		return errs.E(op, err)
	}
	return s.mailVerification(ctx, op, a)
}

func (s *Service) mailVerification(ctx context.Context, op string, a identity.Account) error {
	secret, err := s.putLink(ctx, identity.LinkVerify, a, s.cfg.VerifyTTL)
	if err != nil {
		return errs.E(op, err)
	}
	s.send(a.Email, "Confirm your e-mail address",
		"Welcome to Ticketing.\n\nConfirm your address by opening this link within "+s.cfg.VerifyTTL.String()+":\n\n"+
			s.cfg.BaseURL+"/verify#"+secret+"\n\nIf you did not sign up, ignore this message.\n")
	return nil
}

func (s *Service) putLink(ctx context.Context, purpose string, a identity.Account, ttl time.Duration) (string, error) {
	secret, hash := identity.NewLinkSecret()
	l := identity.Link{Hash: hash, Purpose: purpose, UserID: a.ID, Email: a.Email, ExpiresAt: s.now().Add(ttl)}
	return secret, s.deps.Accounts.PutLink(ctx, l)
}

// takeLink spends a link of the purpose; anything else is ReasonLinkInvalid.
func (s *Service) takeLink(ctx context.Context, op, purpose, secret string) (identity.Link, error) {
	invalid := errs.E(op, errs.NotFound, "the link is unknown, used or expired").WithReason(ReasonLinkInvalid)
	if len(secret) == 0 || len(secret) > 128 {
		return identity.Link{}, invalid
	}
	l, err := s.deps.Accounts.TakeLink(ctx, identity.LinkHash(secret))
	if errs.Is(errs.NotFound, err) {
		return identity.Link{}, invalid
	}
	if err != nil {
		return identity.Link{}, errs.E(op, err)
	}
	if l.Purpose != purpose || !s.now().Before(l.ExpiresAt) {
		return identity.Link{}, invalid
	}
	return l, nil
}

// send delivers a mail in the background.
func (s *Service) send(to, subject, text string) {
	m := mail.Message{From: s.cfg.From, To: []string{to}, Subject: subject, Text: text}
	s.mails.Add(1)
	go func() {
		defer s.mails.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.SendTimeout)
		defer cancel()
		if err := s.deps.Mailer.Send(ctx, m); err != nil {
			s.log.Error("mail not sent", "subject", subject, "err", err)
		}
	}()
}

// Verify confirms the address a verification link was sent to.
func (s *Service) Verify(ctx context.Context, secret string) error {
	const op = "auth.verify"
	l, err := s.takeLink(ctx, op, identity.LinkVerify, secret)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, op, l.UserID, func(a *identity.Account) error {
		if a.Email != l.Email {
			return errs.E(op, errs.NotFound, "the link is for an address the account no longer has").WithReason(ReasonLinkInvalid)
		}
		a.EmailVerified = true
		return nil
	})
	return err
}

// update reads the account, applies f and writes it, again on a version
// conflict.
func (s *Service) update(ctx context.Context, op, id string, f func(*identity.Account) error) (identity.Account, error) {
	for attempt := 0; ; attempt++ {
		a, err := s.deps.Accounts.ByID(ctx, id)
		if err != nil {
			return identity.Account{}, errs.E(op, err)
		}
		if err := f(&a); err != nil {
			return identity.Account{}, err
		}
		a, err = s.deps.Accounts.Update(ctx, a)
		if errs.ReasonOf(err) == identity.ReasonVersionMismatch && attempt < 8 {
			continue
		}
		if err != nil {
			return identity.Account{}, errs.E(op, err)
		}
		return a, nil
	}
}

// SignInRequest is a password sign-in.
type SignInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// ClientID is the OAuth client signing in; empty: Config.WebClient.
	ClientID string `json:"client_id,omitempty"`
	// PoW is the solution of a proof of work the last attempt was
	// challenged with, or empty.
	PoW  string       `json:"pow,omitempty"`
	Seen session.Seen `json:"-"`
	// Device is the device's identifier (a random value the edge keeps in
	// a cookie), for the fraud engine, and JoinGuard the edge's join
	// guard's verdict on the address (fraud.JoinGuard*).
	Device    string `json:"-"`
	JoinGuard string `json:"-"`
}

func badCredentials(op string) error {
	return errs.E(op, errs.Unauthorized, "the e-mail address or the password is wrong").WithReason(ReasonInvalidCredentials)
}

// PasswordSignIn checks an address and password. An account without a
// second factor gets its session; one with gets an MFA ticket.
func (s *Service) PasswordSignIn(ctx context.Context, r SignInRequest) (SignIn, error) {
	const op = "auth.signin"
	client := r.ClientID
	if client == "" {
		client = s.cfg.WebClient
	}
	if email, err := identity.NormalizeEmail(r.Email); err == nil {
		r.Email = email
	}
	a, err := s.deps.Accounts.ByEmail(ctx, r.Email)
	known := err == nil
	if err != nil && !errs.Is(errs.NotFound, err) {
		return SignIn{}, errs.E(op, err)
	}
	var acct *identity.Account
	if known {
		acct = &a
	}
	stop, sig, err := s.judge(ctx, op, acct, r)
	if err != nil {
		return SignIn{}, err
	}
	if stop != nil {
		return *stop, nil
	}
	if !known || a.Password == "" {
		_ = s.deps.Hasher.VerifyDummy(r.Password)
		s.recordSignIn(ctx, sig, false)
		return SignIn{}, badCredentials(op)
	}
	ok, rehash, err := s.deps.Hasher.Verify(r.Password, a.Password)
	if err != nil {
		return SignIn{}, errs.E(op, err)
	}
	s.recordSignIn(ctx, sig, ok)
	if !ok {
		s.failed(ctx, a.ID)
		return SignIn{}, badCredentials(op)
	}
	if rehash {
		if h, err := s.deps.Hasher.Hash(r.Password); err == nil {
			if _, err := s.update(ctx, op, a.ID, func(x *identity.Account) error {
				if x.Password == a.Password {
					x.Password = h
				}
				return nil
			}); err != nil {
				s.log.Warn("password hash not upgraded", "user", a.ID, "err", err)
			}
		}
	}
	if !a.EmailVerified {
		return SignIn{}, errs.E(op, errs.Forbidden, "confirm your e-mail address first: open the link we sent you").WithReason(ReasonEmailUnverified)
	}
	if a.SecondFactor() {
		secret, err := s.putLink(ctx, identity.LinkMFA, a, s.cfg.MFATTL)
		if err != nil {
			return SignIn{}, errs.E(op, err)
		}
		return SignIn{MFA: client + "." + secret, Methods: methods(a)}, nil
	}
	t, err := s.start(ctx, op, a, client, r.Seen)
	if err != nil {
		return SignIn{}, err
	}
	return SignIn{Tokens: &t}, nil
}

func methods(a identity.Account) []string {
	var m []string
	if a.TOTP.Enabled {
		m = append(m, "totp")
	}
	if len(a.Passkeys) > 0 {
		m = append(m, "passkey")
	}
	if len(a.Recovery) > 0 {
		m = append(m, "recovery")
	}
	return m
}

// failed counts a failed sign-in on the account.
func (s *Service) failed(ctx context.Context, id string) {
	now := s.now()
	if _, err := s.update(ctx, "auth.failed", id, func(a *identity.Account) error {
		a.Failures++
		a.FailedAt = now
		return nil
	}); err != nil {
		s.log.Warn("failed sign-in not counted", "user", id, "err", err)
	}
}

// start opens a session for a and issues its first tokens; a successful
// sign-in clears the failure count.
func (s *Service) start(ctx context.Context, op string, a identity.Account, client string, seen session.Seen) (Tokens, error) {
	if a.Failures != 0 {
		if got, err := s.update(ctx, op, a.ID, func(x *identity.Account) error { x.Failures = 0; return nil }); err == nil {
			a = got
		}
	}
	sess, refresh, err := s.deps.Sessions.Start(ctx, a.ID, client, seen)
	if err != nil {
		return Tokens{}, errs.E(op, err)
	}
	return s.issue(op, a, sess, refresh)
}

func (s *Service) issue(op string, a identity.Account, sess session.Session, refresh string) (Tokens, error) {
	at, c, err := s.deps.Tokens.Issue(token.Request{Subject: a.ID, ClientID: sess.ClientID, Scope: ScopeOf(a)}, s.cfg.Now())
	if err != nil {
		return Tokens{}, errs.E(op, err)
	}
	return Tokens{
		AccessToken: at, TokenType: "Bearer", ExpiresIn: int(c.Expiry.Sub(c.IssuedAt) / time.Second),
		RefreshToken: refresh, Scope: c.Scope, SessionID: sess.ID, UserID: a.ID, ExpiresAt: c.Expiry,
	}, nil
}

// takeMFA spends an MFA ticket and returns its account and client.
func (s *Service) takeMFA(ctx context.Context, op, ticket string) (identity.Account, string, error) {
	client, secret, ok := strings.Cut(ticket, ".")
	if !ok || !session.ValidClientID(client) {
		return identity.Account{}, "", badCredentials(op)
	}
	l, err := s.takeLink(ctx, op, identity.LinkMFA, secret)
	if errs.ReasonOf(err) == ReasonLinkInvalid {
		return identity.Account{}, "", badCredentials(op)
	}
	if err != nil {
		return identity.Account{}, "", err
	}
	a, err := s.deps.Accounts.ByID(ctx, l.UserID)
	if err != nil {
		return identity.Account{}, "", errs.E(op, err)
	}
	return a, client, nil
}

// SecondFactorRequest completes a sign-in: the MFA ticket and a TOTP code
// or a recovery code.
type SecondFactorRequest struct {
	MFA      string       `json:"mfa_token"`
	Code     string       `json:"code"`
	Recovery bool         `json:"-"` // Code is a recovery code
	Seen     session.Seen `json:"-"`
}

// SecondFactor spends the ticket and checks the code: a session on
// success, ReasonInvalidCredentials otherwise (sign in again).
func (s *Service) SecondFactor(ctx context.Context, r SecondFactorRequest) (Tokens, error) {
	const op = "auth.second_factor"
	a, client, err := s.takeMFA(ctx, op, r.MFA)
	if err != nil {
		return Tokens{}, err
	}
	a, err = s.checkFactor(ctx, op, a.ID, r.Code, r.Recovery)
	if err != nil {
		return Tokens{}, err
	}
	return s.start(ctx, op, a, client, r.Seen)
}

// checkFactor checks a TOTP or recovery code of the account and records
// it (the TOTP step, the recovery code's removal) in one update, so that
// of two uses of one code exactly one passes.
func (s *Service) checkFactor(ctx context.Context, op, id, code string, isRecovery bool) (identity.Account, error) {
	now := s.cfg.Now()
	a, err := s.update(ctx, op, id, func(a *identity.Account) error {
		if isRecovery {
			i, ok := recovery.Match(code, a.Recovery)
			if !ok {
				return badCredentials(op)
			}
			a.Recovery = append(a.Recovery[:i:i], a.Recovery[i+1:]...)
			return nil
		}
		if !a.TOTP.Enabled {
			return badCredentials(op)
		}
		step, err := totp.Verify(a.TOTP.Secret, code, now, a.TOTP.LastStep)
		if err != nil {
			if errs.Is(errs.Other, err) {
				return errs.E(op, err)
			}
			return errs.E(op, errs.Unauthorized, "the code is wrong or was used already", err).WithReason(errs.ReasonOf(err))
		}
		a.TOTP.LastStep = step
		return nil
	})
	if err != nil && errs.Is(errs.Unauthorized, err) {
		s.failed(ctx, id)
	}
	return a, err
}

// SignInWithAccount opens a session for an account that proved itself by
// other means (a passkey); the caller has checked the proof.
func (s *Service) SignInWithAccount(ctx context.Context, userID, client string, seen session.Seen) (Tokens, error) {
	const op = "auth.signin_account"
	if client == "" {
		client = s.cfg.WebClient
	}
	a, err := s.deps.Accounts.ByID(ctx, userID)
	if err != nil {
		return Tokens{}, errs.E(op, err)
	}
	return s.start(ctx, op, a, client, seen)
}

// MFAAccount spends an MFA ticket for a second factor checked by the
// caller (a passkey assertion) and returns the account and client.
func (s *Service) MFAAccount(ctx context.Context, ticket string) (identity.Account, string, error) {
	return s.takeMFA(ctx, "auth.mfa", ticket)
}

// RefreshRequest exchanges a refresh token.
type RefreshRequest struct {
	RefreshToken string       `json:"refresh_token"`
	ClientID     string       `json:"client_id,omitempty"`
	Seen         session.Seen `json:"-"`
}

// Refresh rotates the refresh token and issues a new access token with the
// account's current roles.
func (s *Service) Refresh(ctx context.Context, r RefreshRequest) (Tokens, error) {
	const op = "auth.refresh"
	client := r.ClientID
	if client == "" {
		client = s.cfg.WebClient
	}
	sess, refresh, err := s.deps.Sessions.Refresh(ctx, client, r.RefreshToken, r.Seen)
	if err != nil {
		return Tokens{}, errs.E(op, err)
	}
	a, err := s.deps.Accounts.ByID(ctx, sess.UserID)
	if err != nil {
		return Tokens{}, errs.E(op, err)
	}
	return s.issue(op, a, sess, refresh)
}

// SignOut ends the session the refresh token belongs to, if it is the
// caller's; an unknown token is not an error (signing out twice is fine).
func (s *Service) SignOut(ctx context.Context, userID, sessionID string) error {
	err := s.deps.Sessions.Revoke(ctx, userID, sessionID)
	if errs.Is(errs.NotFound, err) {
		return nil
	}
	return err
}

// Sessions lists the user's signed-in devices.
func (s *Service) Sessions(ctx context.Context, userID string) ([]session.Session, error) {
	return s.deps.Sessions.List(ctx, userID)
}

// RevokeSession ends one of the user's sessions; another user's session
// is errs.NotFound.
func (s *Service) RevokeSession(ctx context.Context, userID, sessionID string) error {
	return s.deps.Sessions.Revoke(ctx, userID, sessionID)
}

// Profile returns the owner's view of the account.
func (s *Service) Profile(ctx context.Context, userID string) (Profile, error) {
	a, err := s.deps.Accounts.ByID(ctx, userID)
	if err != nil {
		return Profile{}, errs.E("auth.profile", err)
	}
	return ProfileOf(a), nil
}

// ForgotPassword mails a reset link when the address has an account; the
// answer is nil either way, after about the same time.
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	const op = "auth.forgot"
	a, err := s.deps.Accounts.ByEmail(ctx, email)
	if errs.Is(errs.NotFound, err) {
		_, _ = identity.NewLinkSecret() // the same work as a known address, but the write
		return nil
	}
	if err != nil {
		return errs.E(op, err)
	}
	secret, err := s.putLink(ctx, identity.LinkReset, a, s.cfg.ResetTTL)
	if err != nil {
		return errs.E(op, err)
	}
	s.send(a.Email, "Reset your password",
		"To choose a new password, open this link within "+s.cfg.ResetTTL.String()+":\n\n"+
			s.cfg.BaseURL+"/reset#"+secret+"\n\nIf you did not ask for it, ignore this message: your password stays as it is.\n")
	return nil
}

// ResetPassword sets a new password with a reset link, confirms the
// address (the link reached it) and ends every session of the account.
func (s *Service) ResetPassword(ctx context.Context, secret, newPassword string) error {
	const op = "auth.reset"
	hash, err := s.deps.Hasher.Hash(newPassword)
	if err != nil {
		return errs.E(op, err)
	}
	l, err := s.takeLink(ctx, op, identity.LinkReset, secret)
	if err != nil {
		return err
	}
	if _, err := s.update(ctx, op, l.UserID, func(a *identity.Account) error {
		a.Password = hash
		a.Failures = 0
		if a.Email == l.Email {
			a.EmailVerified = true
		}
		return nil
	}); err != nil {
		return err
	}
	_, err = s.deps.Sessions.RevokeAll(ctx, l.UserID)
	return err
}

// StepUp is the fresh proof a sensitive action carries: the current
// password (when the account has one) and, when it has a second factor, a
// TOTP or recovery code.
type StepUp struct {
	Password string `json:"password,omitempty"`
	Code     string `json:"code,omitempty"`
	Recovery bool   `json:"recovery,omitempty"` // Code is a recovery code
}

// stepUp checks a step-up proof and returns the account as it is after
// the proof was recorded.
func (s *Service) stepUp(ctx context.Context, op, id string, p StepUp) (identity.Account, error) {
	a, err := s.deps.Accounts.ByID(ctx, id)
	if err != nil {
		return identity.Account{}, errs.E(op, err)
	}
	need := errs.E(op, errs.Forbidden, "confirm it is you: give your password and, if you have one, a second factor's code").WithReason(ReasonStepUp)
	if a.Password != "" {
		if p.Password == "" {
			return identity.Account{}, need
		}
		ok, _, err := s.deps.Hasher.Verify(p.Password, a.Password)
		if err != nil {
			return identity.Account{}, errs.E(op, err)
		}
		if !ok {
			s.failed(ctx, id)
			return identity.Account{}, need
		}
	}
	if a.TOTP.Enabled || (p.Recovery && len(a.Recovery) > 0) || (a.Password == "" && len(a.Recovery) > 0) {
		if p.Code == "" {
			return identity.Account{}, need
		}
		if a, err = s.checkFactor(ctx, op, id, p.Code, p.Recovery); err != nil {
			if errs.Is(errs.Unauthorized, err) {
				return identity.Account{}, need
			}
			return identity.Account{}, err
		}
	} else if a.Password == "" {
		// Passkeys only, no recovery codes: the passkey assertion is the
		// step-up, checked by the caller (passkey routes).
		return identity.Account{}, need
	}
	return a, nil
}

// ChangePassword sets a new password after a step-up and ends the other
// sessions of the account (keep: the caller's own session, if any).
func (s *Service) ChangePassword(ctx context.Context, userID, keep string, p StepUp, newPassword string) error {
	const op = "auth.change_password"
	hash, err := s.deps.Hasher.Hash(newPassword)
	if err != nil {
		return errs.E(op, err)
	}
	if _, err := s.stepUp(ctx, op, userID, p); err != nil {
		return err
	}
	if _, err := s.update(ctx, op, userID, func(a *identity.Account) error { a.Password = hash; return nil }); err != nil {
		return err
	}
	return s.revokeOthers(ctx, userID, keep)
}

func (s *Service) revokeOthers(ctx context.Context, userID, keep string) error {
	list, err := s.deps.Sessions.List(ctx, userID)
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.ID != keep {
			if err := s.deps.Sessions.Revoke(ctx, userID, x.ID); err != nil && !errs.Is(errs.NotFound, err) {
				return err
			}
		}
	}
	return nil
}

// TOTPEnrolment is a new authenticator secret to confirm.
type TOTPEnrolment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
}

// BeginTOTP starts (or restarts) enrolling an authenticator app; TOTP on
// already is errs.Conflict (disable it first).
func (s *Service) BeginTOTP(ctx context.Context, userID string) (TOTPEnrolment, error) {
	const op = "auth.totp_begin"
	var k totp.Key
	_, err := s.update(ctx, op, userID, func(a *identity.Account) error {
		if a.TOTP.Enabled {
			return errs.E(op, errs.Conflict, "an authenticator app is on already").WithReason(ReasonTOTPState)
		}
		var err error
		if k, err = totp.Generate(a.Email); err != nil {
			return errs.E(op, err)
		}
		a.TOTP = identity.TOTP{Secret: k.Secret}
		return nil
	})
	if err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{Secret: k.Secret, URI: k.URI}, nil
}

// ConfirmTOTP turns TOTP on with a first code from the app, and returns
// new recovery codes (shown once) when the account had none.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, code string) ([]string, error) {
	const op = "auth.totp_confirm"
	now := s.cfg.Now()
	var codes []string
	_, err := s.update(ctx, op, userID, func(a *identity.Account) error {
		if a.TOTP.Enabled || a.TOTP.Secret == "" {
			return errs.E(op, errs.Conflict, "start enrolling an authenticator app first").WithReason(ReasonTOTPState)
		}
		step, err := totp.Verify(a.TOTP.Secret, code, now, 0)
		if err != nil {
			if errs.Is(errs.Other, err) {
				return errs.E(op, err)
			}
			return errs.E(op, errs.Invalid, "the code does not match the app", err).WithReason(errs.ReasonOf(err))
		}
		a.TOTP.Enabled, a.TOTP.LastStep = true, step
		if len(a.Recovery) == 0 {
			var hashes []string
			if codes, hashes, err = recovery.Generate(10); err != nil {
				return errs.E(op, err)
			}
			a.Recovery = hashes
		}
		return nil
	})
	return codes, err
}

// DisableTOTP turns TOTP off after a step-up.
func (s *Service) DisableTOTP(ctx context.Context, userID string, p StepUp) error {
	const op = "auth.totp_disable"
	if _, err := s.stepUp(ctx, op, userID, p); err != nil {
		return err
	}
	_, err := s.update(ctx, op, userID, func(a *identity.Account) error {
		a.TOTP = identity.TOTP{}
		if !a.SecondFactor() {
			a.Recovery = nil
		}
		return nil
	})
	return err
}

// NewRecoveryCodes replaces the recovery codes after a step-up and
// returns the new ones (shown once).
func (s *Service) NewRecoveryCodes(ctx context.Context, userID string, p StepUp) ([]string, error) {
	const op = "auth.recovery_codes"
	if _, err := s.stepUp(ctx, op, userID, p); err != nil {
		return nil, err
	}
	codes, hashes, err := recovery.Generate(10)
	if err != nil {
		return nil, errs.E(op, err)
	}
	_, err = s.update(ctx, op, userID, func(a *identity.Account) error {
		if !a.SecondFactor() {
			return errs.E(op, errs.Conflict, "recovery codes stand in for a second factor: turn one on first").WithReason(ReasonTOTPState)
		}
		a.Recovery = hashes
		return nil
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// SetRoles replaces an account's roles (the caller is an admin, or holds
// the bootstrap admin token). The change shows in its next access token.
func (s *Service) SetRoles(ctx context.Context, userID string, roles []string) (Profile, error) {
	const op = "auth.roles"
	for _, r := range roles {
		if !identity.ValidRole(r) {
			return Profile{}, errs.Errorf(op, errs.Invalid, "%q is not a role (admin, or staff:<organizer id>)", r)
		}
	}
	a, err := s.update(ctx, op, userID, func(a *identity.Account) error { a.Roles = roles; return nil })
	if err != nil {
		return Profile{}, err
	}
	return ProfileOf(a), nil
}

// DefaultAudience is the access tokens' audience unless configured: the
// platform's API, the same in the core that issues them and the edges that
// check them.
const DefaultAudience = "urn:ticketing:api"

// TokenDefaults fills c's issuer (with issuer: the platform's public URL,
// which is also the authorization server's issuer identifier, RFC 8414)
// and audience when they are empty, then its other defaults.
func TokenDefaults(c *token.Config, issuer string) {
	if c.Issuer == "" {
		c.Issuer = issuer
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	c.Defaults()
}

// SeedAccount is an account made by the operator (demo data, the first
// admin of a fresh system): verified at once.
type SeedAccount struct {
	Email       string
	Password    string
	DisplayName string
	Roles       []string
	Locale      string
}

// Seed creates the account unless its address has one already, and
// reports whether it did.
func (s *Service) Seed(ctx context.Context, r SeedAccount) (bool, error) {
	const op = "auth.seed"
	hash, err := s.deps.Hasher.Hash(r.Password)
	if err != nil {
		return false, errs.E(op, err)
	}
	a := identity.Account{
		User:          identity.User{ID: identity.NewID(), Email: r.Email, DisplayName: r.DisplayName, CreatedAt: s.now()},
		EmailVerified: true, Roles: r.Roles, Password: hash, Locale: r.Locale,
	}
	_, err = s.deps.Accounts.Create(ctx, a)
	if errs.ReasonOf(err) == identity.ReasonEmailTaken {
		return false, nil
	}
	if err != nil {
		return false, errs.E(op, err)
	}
	return true, nil
}
