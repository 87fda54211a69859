// Package natsapi serves the identity service's flows (services/identity/auth)
// as a NATS micro service ("identity", subjects "identity.<op>") and calls
// them. The edges reach it over their leaf nodes; the signing keys never
// leave the core. A request made for a signed-in user carries the user's
// access token, which the service checks itself: an edge forwards requests
// without holding authority over accounts. Errors travel as internal/microerr
// answers.
package natsapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/session"
	"github.com/ticketing/ticketing/services/identity/token"
)

// Prefix of every subject of the service.
const Prefix = "identity."

// Operations (the subject is Prefix + op).
const (
	OpSignUp        = "signup"
	OpResend        = "resend"
	OpVerify        = "verify"
	OpSignIn        = "signin"
	OpSecondFactor  = "second_factor"
	OpRefresh       = "refresh"
	OpForgot        = "forgot"
	OpReset         = "reset"
	OpKeys          = "keys"
	OpProfile       = "profile"
	OpSignOut       = "signout"
	OpSessions      = "sessions"
	OpRevokeSession = "revoke_session"
	OpTOTPBegin     = "totp_begin"
	OpTOTPConfirm   = "totp_confirm"
	OpTOTPDisable   = "totp_disable"
	OpRecoveryCodes = "recovery_codes"
	OpPassword      = "password"
	OpRoles         = "roles"
)

// Seen is what the edge saw of the device.
type Seen struct {
	UserAgent string `json:"user_agent,omitempty"`
	IP        string `json:"ip,omitempty"`
}

func (s Seen) session() session.Seen { return session.Seen{UserAgent: s.UserAgent, IP: s.IP} }

// Request bodies.
type (
	SignUpRequest struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name,omitempty"`
		Locale      string `json:"locale,omitempty"`
		Device      string `json:"device,omitempty"`
		Seen        Seen   `json:"seen"`
	}
	EmailRequest struct {
		Email string `json:"email"`
	}
	SecretRequest struct {
		Secret   string `json:"secret"`
		Password string `json:"password,omitempty"` // reset: the new one
	}
	SignInRequest struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		ClientID string `json:"client_id,omitempty"`
		PoW      string `json:"pow,omitempty"`
		Device   string `json:"device,omitempty"`
		// JoinGuard is the edge's join guard's verdict on the address.
		JoinGuard string `json:"join_guard,omitempty"`
		Seen      Seen   `json:"seen"`
	}
	SecondFactorRequest struct {
		MFA      string `json:"mfa_token"`
		Code     string `json:"code"`
		Recovery bool   `json:"recovery,omitempty"`
		Seen     Seen   `json:"seen"`
	}
	RefreshRequest struct {
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id,omitempty"`
		Seen         Seen   `json:"seen"`
	}
	// UserRequest is a request of a signed-in user: the access token, and
	// what the operation needs.
	UserRequest struct {
		AccessToken string      `json:"access_token"`
		SessionID   string      `json:"session_id,omitempty"`
		Code        string      `json:"code,omitempty"`
		StepUp      auth.StepUp `json:"step_up"`
		NewPassword string      `json:"new_password,omitempty"`
	}
	// RolesRequest sets an account's roles: by an admin's access token,
	// or by the bootstrap admin token.
	RolesRequest struct {
		AccessToken string   `json:"access_token,omitempty"`
		AdminToken  string   `json:"admin_token,omitempty"`
		UserID      string   `json:"user_id"`
		Roles       []string `json:"roles"`
	}
	// RecoveryCodes are new recovery codes, shown once.
	RecoveryCodes struct {
		Codes []string `json:"recovery_codes"`
	}
	// Sessions are a user's devices.
	Sessions struct {
		Sessions []SessionInfo `json:"sessions"`
	}
)

// SessionInfo is a session as its user sees it.
type SessionInfo struct {
	ID         string    `json:"id"`
	ClientID   string    `json:"client_id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	UserAgent  string    `json:"user_agent,omitempty"`
	IP         string    `json:"ip,omitempty"`
}

// Server is what Serve needs.
type Server struct {
	Auth *auth.Service
	// Verifier checks the access tokens of user requests.
	Verifier *token.Verifier
	// Keys are the token signing keys, whose public half OpKeys serves.
	Keys *keyring.KeyRing
	// AdminToken, when set, may set roles (to create the first admin).
	AdminToken string
	// Partners serves the partner clients' operations; nil: they answer
	// errs.Unavailable.
	Partners *Partners
	// Tokens is the issuer and audience of the access tokens (OpConfig).
	Tokens Config
	Now    func() time.Time
	// Timeout bounds one request's work. Default 15s (a sign-up hashes a
	// password, which waits for a core under load).
	Timeout time.Duration
}

// Serve registers the identity service on nc.
func Serve(nc *nats.Conn, srv Server) (micro.Service, error) {
	if srv.Now == nil {
		srv.Now = time.Now
	}
	if srv.Timeout == 0 {
		srv.Timeout = 15 * time.Second
	}
	s, err := micro.AddService(nc, micro.Config{
		Name: "identity", Version: "1.0.0", Description: "accounts, sign-in, sessions and access tokens", QueueGroup: "identity",
	})
	if err != nil {
		return nil, err
	}
	a := srv.Auth
	user := func(r UserRequest) (token.Claims, error) { return srv.user(r.AccessToken) }
	eps := map[string]micro.HandlerFunc{
		OpSignUp: handle(srv, OpSignUp, func(ctx context.Context, r SignUpRequest) (any, error) {
			return ok(a.SignUp(ctx, auth.SignUpRequest{Email: r.Email, Password: r.Password, DisplayName: r.DisplayName,
				Locale: r.Locale, Seen: r.Seen.session(), Device: r.Device}))
		}),
		OpResend: handle(srv, OpResend, func(ctx context.Context, r EmailRequest) (any, error) { return ok(a.ResendVerification(ctx, r.Email)) }),
		OpVerify: handle(srv, OpVerify, func(ctx context.Context, r SecretRequest) (any, error) { return ok(a.Verify(ctx, r.Secret)) }),
		OpSignIn: handle(srv, OpSignIn, func(ctx context.Context, r SignInRequest) (any, error) {
			return a.PasswordSignIn(ctx, auth.SignInRequest{Email: r.Email, Password: r.Password, ClientID: r.ClientID, PoW: r.PoW,
				Device: r.Device, JoinGuard: r.JoinGuard, Seen: r.Seen.session()})
		}),
		OpSecondFactor: handle(srv, OpSecondFactor, func(ctx context.Context, r SecondFactorRequest) (any, error) {
			return a.SecondFactor(ctx, auth.SecondFactorRequest{MFA: r.MFA, Code: r.Code, Recovery: r.Recovery, Seen: r.Seen.session()})
		}),
		OpRefresh: handle(srv, OpRefresh, func(ctx context.Context, r RefreshRequest) (any, error) {
			return a.Refresh(ctx, auth.RefreshRequest{RefreshToken: r.RefreshToken, ClientID: r.ClientID, Seen: r.Seen.session()})
		}),
		OpForgot: handle(srv, OpForgot, func(ctx context.Context, r EmailRequest) (any, error) { return ok(a.ForgotPassword(ctx, r.Email)) }),
		OpReset: handle(srv, OpReset, func(ctx context.Context, r SecretRequest) (any, error) {
			return ok(a.ResetPassword(ctx, r.Secret, r.Password))
		}),
		OpKeys: handle(srv, OpKeys, func(context.Context, struct{}) (any, error) { return srv.Keys.PublicJWKS(), nil }),
		OpProfile: handle(srv, OpProfile, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return a.Profile(ctx, c.Subject)
		}),
		OpSignOut: handle(srv, OpSignOut, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return ok(a.SignOut(ctx, c.Subject, r.SessionID))
		}),
		OpSessions: handle(srv, OpSessions, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			list, err := a.Sessions(ctx, c.Subject)
			out := Sessions{Sessions: []SessionInfo{}}
			for _, x := range list {
				out.Sessions = append(out.Sessions, SessionInfo{ID: x.ID, ClientID: x.ClientID, CreatedAt: x.CreatedAt,
					LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt, UserAgent: x.UserAgent, IP: x.IP})
			}
			return out, err
		}),
		OpRevokeSession: handle(srv, OpRevokeSession, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return ok(a.RevokeSession(ctx, c.Subject, r.SessionID))
		}),
		OpTOTPBegin: handle(srv, OpTOTPBegin, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return a.BeginTOTP(ctx, c.Subject)
		}),
		OpTOTPConfirm: handle(srv, OpTOTPConfirm, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			codes, err := a.ConfirmTOTP(ctx, c.Subject, r.Code)
			return RecoveryCodes{Codes: codes}, err
		}),
		OpTOTPDisable: handle(srv, OpTOTPDisable, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return ok(a.DisableTOTP(ctx, c.Subject, r.StepUp))
		}),
		OpRecoveryCodes: handle(srv, OpRecoveryCodes, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			codes, err := a.NewRecoveryCodes(ctx, c.Subject, r.StepUp)
			return RecoveryCodes{Codes: codes}, err
		}),
		OpPassword: handle(srv, OpPassword, func(ctx context.Context, r UserRequest) (any, error) {
			c, err := user(r)
			if err != nil {
				return nil, err
			}
			return ok(a.ChangePassword(ctx, c.Subject, r.SessionID, r.StepUp, r.NewPassword))
		}),
		OpConfig:        handle(srv, OpConfig, func(context.Context, struct{}) (any, error) { return srv.Tokens, nil }),
		OpClientToken:   handle(srv, OpClientToken, srv.clientToken),
		OpIntrospect:    handle(srv, OpIntrospect, srv.introspect),
		OpClientCreate:  handle(srv, OpClientCreate, srv.createClient),
		OpClientDisable: handle(srv, OpClientDisable, srv.disableClient),
		OpRoles: handle(srv, OpRoles, func(ctx context.Context, r RolesRequest) (any, error) {
			if err := srv.admin(r); err != nil {
				return nil, err
			}
			return a.SetRoles(ctx, r.UserID, r.Roles)
		}),
	}
	for op, f := range srv.passkeyHandlers() {
		eps[op] = handle(srv, op, f)
	}
	// Requests are served concurrently (a sign-in hashing a password does
	// not hold up a token refresh); password.Hasher bounds the hashing.
	for op, h := range eps {
		if err := s.AddEndpoint(op, microerr.Concurrent(nc, h, 0), micro.WithEndpointSubject(Prefix+op)); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// user checks a user request's access token.
func (srv Server) user(at string) (token.Claims, error) {
	c, err := srv.Verifier.Verify(at, srv.Now())
	if err != nil {
		return token.Claims{}, errs.E("identity.user", errs.Unauthorized, "sign in again: the access token is not valid", err).WithReason(errs.ReasonOf(err))
	}
	if !identity.ValidID(c.Subject) {
		return token.Claims{}, errs.E("identity.user", errs.Forbidden, "the token is not a user's")
	}
	return c, nil
}

// admin authorizes a roles request.
func (srv Server) admin(r RolesRequest) error {
	const op = "identity.roles"
	if r.AdminToken != "" {
		if srv.AdminToken != "" && subtle.ConstantTimeCompare([]byte(r.AdminToken), []byte(srv.AdminToken)) == 1 {
			return nil
		}
		return errs.E(op, errs.Unauthorized, "the admin token is wrong")
	}
	c, err := srv.user(r.AccessToken)
	if err != nil {
		return err
	}
	if !c.HasScope(identity.RoleAdmin) {
		return errs.E(op, errs.Forbidden, "only an admin may set roles")
	}
	return nil
}

// ok turns an error-only result into a handler result.
func ok(err error) (any, error) { return struct{}{}, err }

// maxRequest bounds a request body.
const maxRequest = 16 << 10

// handle is microerr.Handler for the identity service's operations.
func handle[R any](srv Server, op string, f func(context.Context, R) (any, error)) micro.HandlerFunc {
	return microerr.Handler("identity."+op, maxRequest, srv.Timeout, f)
}

// Client calls the identity service.
type Client struct {
	NC      *nats.Conn
	Timeout time.Duration // per call; default 20s
}

// Call sends the request of op and decodes the answer into resp (nil:
// ignore it).
func (c *Client) Call(ctx context.Context, op string, req, resp any) error {
	t := c.Timeout
	if t == 0 {
		t = 20 * time.Second
	}
	if resp == nil {
		resp = &json.RawMessage{}
	}
	return microerr.Call(ctx, c.NC, t, "identity", "identity."+op, Prefix+op, req, resp)
}

// JWKS fetches the access tokens' public keys.
func (c *Client) JWKS(ctx context.Context) ([]byte, *keyring.PublicKeys, error) {
	var raw json.RawMessage
	if err := c.Call(ctx, OpKeys, struct{}{}, &raw); err != nil {
		return nil, nil, err
	}
	keys, err := keyring.ParseJWKS(raw)
	if err != nil {
		return nil, nil, errs.E("identity.keys", errs.Other, err)
	}
	return raw, keys, nil
}
