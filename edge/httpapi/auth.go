package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/skip2/go-qrcode"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
)

// Identity is what the API needs of the identity service: its operations
// (services/identity/natsapi ops) called with a request and decoded into
// resp.
type Identity interface {
	Call(ctx context.Context, op string, req, resp any) error
}

// Bodies of the accounts routes.
type (
	signUpBody struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name,omitempty"`
		// Locale is the language of the account's mail (BCP 47).
		Locale string `json:"locale,omitempty"`
	}
	emailBody struct {
		Email string `json:"email"`
	}
	verifyBody struct {
		Token string `json:"token"`
	}
	resetBody struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	signInBody struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		ClientID string `json:"client_id,omitempty"`
		// Cookie asks for a cookie session (the pages): the tokens are set
		// as HttpOnly cookies and not put in the answer.
		Cookie bool `json:"cookie,omitempty"`
		// PoW is the solution of the proof of work the last attempt was
		// challenged with (HeaderPoWChallenge).
		PoW string `json:"pow,omitempty"`
	}
	secondFactorBody struct {
		MFA      string `json:"mfa_token"`
		Code     string `json:"code"`
		Recovery bool   `json:"recovery,omitempty"`
		Cookie   bool   `json:"cookie,omitempty"`
	}
	signOutBody struct {
		RefreshToken string `json:"refresh_token,omitempty"`
	}
	codeBody struct {
		Code string `json:"code"`
	}
	stepUpBody struct {
		StepUp auth.StepUp `json:"step_up"`
	}
	passwordBody struct {
		StepUp      auth.StepUp `json:"step_up"`
		NewPassword string      `json:"new_password"`
	}
	rolesBody struct {
		Roles []string `json:"roles"`
	}
)

// Accepted answers the requests that must not tell whether an account
// exists.
type Accepted struct {
	Status string `json:"status"`
}

// SignedIn is the answer of a cookie sign-in.
type SignedIn struct {
	UserID    string `json:"user_id"`
	ExpiresIn int    `json:"expires_in"`
	SessionID string `json:"session_id"`
}

// maxAuthBody bounds the accounts routes' bodies.
const maxAuthBody = 8 << 10

// decodeAuth decodes an accounts route's body strictly.
func decodeAuth(c *fiber.Ctx, op string, v any) error {
	raw, err := requestBody(c, op)
	if err != nil {
		return err
	}
	if len(raw) > maxAuthBody {
		return errs.Errorf(op, errs.TooLarge, "the body is larger than %d bytes", maxAuthBody)
	}
	return decodeStrict(op, raw, v)
}

func (a *API) identity(op string) (Identity, error) {
	if a.deps.Identity == nil {
		return nil, errs.E(op, errs.Unavailable, "accounts are not available on this edge")
	}
	return a.deps.Identity, nil
}

// ask calls the identity service's op with req and decodes its answer
// into resp.
func (a *API) ask(c *fiber.Ctx, op string, req, resp any) error {
	id, err := a.identity("edge." + op)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.cfg.AuthTimeout)
	defer cancel()
	return id.Call(ctx, op, req, resp)
}

// callIdentity calls op with req and answers resp as JSON with status.
func (a *API) callIdentity(c *fiber.Ctx, op string, req, resp any, status int) error {
	if err := a.ask(c, op, req, resp); err != nil {
		return err
	}
	if resp == nil {
		return c.SendStatus(status)
	}
	return c.Status(status).JSON(resp)
}

func (a *API) seen(c *fiber.Ctx) idapi.Seen {
	return idapi.Seen{UserAgent: c.Get(fiber.HeaderUserAgent), IP: c.IP()}
}

// limitAuth applies the accounts routes' limit per address, and per
// e-mail address when one is given, so that guessing is slow both from
// one address and against one account.
func (a *API) limitAuth(c *fiber.Ctx, name, email string) error {
	if err := a.limitKey(c, name, "ip:"+c.IP(), a.cfg.AuthLimit); err != nil {
		return err
	}
	if email = strings.ToLower(strings.TrimSpace(email)); email != "" && len(email) <= 254 {
		return a.limitKey(c, name+"_account", "email:"+email, a.cfg.AuthAccountLimit)
	}
	return nil
}

func (a *API) signUp(c *fiber.Ctx) error {
	const op = "edge.signup"
	var b signUpBody
	if err := decodeAuth(c, op, &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signup", ""); err != nil {
		return err
	}
	req := idapi.SignUpRequest{Email: b.Email, Password: b.Password, DisplayName: b.DisplayName, Locale: b.Locale,
		Device: a.device(c), Seen: a.seen(c)}
	if err := a.callIdentity(c, idapi.OpSignUp, req, &struct{}{}, 0); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(Accepted{Status: "check_your_email"})
}

// mailing answers the routes that only take an address and mail it
// (op: resend a verification link, a password reset link): 202 whether or
// not the address has an account.
func (a *API) mailing(op string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var b emailBody
		if err := decodeAuth(c, "edge."+op, &b); err != nil {
			return err
		}
		if err := a.limitAuth(c, "signup", b.Email); err != nil {
			return err
		}
		if err := a.callIdentity(c, op, idapi.EmailRequest(b), &struct{}{}, 0); err != nil {
			return err
		}
		return c.Status(fiber.StatusAccepted).JSON(Accepted{Status: "check_your_email"})
	}
}

func (a *API) verifyEmail(c *fiber.Ctx) error {
	var b verifyBody
	if err := decodeAuth(c, "edge.verify", &b); err != nil {
		return err
	}
	if err := a.callIdentity(c, idapi.OpVerify, idapi.SecretRequest{Secret: b.Token}, &struct{}{}, 0); err != nil {
		return err
	}
	return c.JSON(Accepted{Status: "verified"})
}

func (a *API) resetPassword(c *fiber.Ctx) error {
	var b resetBody
	if err := decodeAuth(c, "edge.reset", &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	if err := a.callIdentity(c, idapi.OpReset, idapi.SecretRequest{Secret: b.Token, Password: b.Password}, &struct{}{}, 0); err != nil {
		return err
	}
	return c.JSON(Accepted{Status: "password_changed"})
}

func (a *API) signIn(c *fiber.Ctx) error {
	const op = "edge.signin"
	var b signInBody
	if err := decodeAuth(c, op, &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", b.Email); err != nil {
		return err
	}
	var out auth.SignIn
	verdict := ""
	if a.deps.JoinGuard != nil {
		verdict = a.deps.JoinGuard.Verdict(c.IP(), time.Now())
	}
	err := a.ask(c, idapi.OpSignIn, idapi.SignInRequest{Email: b.Email, Password: b.Password, ClientID: b.ClientID, PoW: b.PoW,
		Device: a.device(c), JoinGuard: verdict, Seen: a.seen(c)}, &out)
	if err != nil {
		return err
	}
	if out.Stopped() {
		// The fraud engine's answer: a proof of work to solve, or a wait.
		if out.PoW != nil {
			c.Set(HeaderPoWChallenge, out.PoW.Challenge)
			c.Set(HeaderPoWDifficulty, strconv.Itoa(out.PoW.Difficulty))
		} else {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(out.RetryAfter))
		}
		return auth.Refusal(op, out)
	}
	if out.Tokens == nil {
		return c.JSON(MFARequired{MFARequired: true, MFAToken: out.MFA, Methods: out.Methods})
	}
	return a.answerTokens(c, *out.Tokens, b.Cookie)
}

// Header fields of a sign-in challenged with a proof of work: the
// challenge and its difficulty in leading zero bits; the client signs in
// again with the solution in the body's "pow".
const (
	HeaderPoWChallenge  = "PoW-Challenge"
	HeaderPoWDifficulty = "PoW-Difficulty"
	// CookieDevice identifies the browser to the fraud engine: a random
	// value the edge sets once (HttpOnly), so a device the account signed
	// in from before keeps a way in during an attack on the account.
	CookieDevice = "tk_dev"
)

// device returns the request's device cookie, setting a new one when it
// has none.
func (a *API) device(c *fiber.Ctx) string {
	if d := c.Cookies(CookieDevice); d != "" && len(d) <= 64 {
		return d
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	d := base64.RawURLEncoding.EncodeToString(b[:])
	c.Cookie(&fiber.Cookie{Name: CookieDevice, Value: d, Path: "/v1/auth", HTTPOnly: true, Secure: a.cfg.Gateway.SecureCookies,
		SameSite: fiber.CookieSameSiteStrictMode, MaxAge: int((400 * 24 * time.Hour) / time.Second)})
	return d
}

// MFARequired is the answer to a password that needs a second factor.
type MFARequired struct {
	MFARequired bool     `json:"mfa_required"`
	MFAToken    string   `json:"mfa_token"`
	Methods     []string `json:"methods"`
}

func (a *API) secondFactor(c *fiber.Ctx) error {
	const op = "edge.second_factor"
	var b secondFactorBody
	if err := decodeAuth(c, op, &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	var t auth.Tokens
	if err := a.ask(c, idapi.OpSecondFactor, idapi.SecondFactorRequest{MFA: b.MFA, Code: b.Code, Recovery: b.Recovery, Seen: a.seen(c)}, &t); err != nil {
		return err
	}
	return a.answerTokens(c, t, b.Cookie)
}

// TokenAnswer is an OAuth 2.0 token response (RFC 6749 §5.1).
type TokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// answerTokens answers a session's tokens: in the body, or as cookies.
func (a *API) answerTokens(c *fiber.Ctx, t auth.Tokens, cookie bool) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !cookie {
		return c.JSON(TokenAnswer{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken, Scope: t.Scope})
	}
	a.setSessionCookies(c, t)
	return c.JSON(SignedIn{UserID: t.UserID, ExpiresIn: t.ExpiresIn, SessionID: t.SessionID})
}

func (a *API) setSessionCookies(c *fiber.Ctx, t auth.Tokens) {
	secure := a.cfg.Gateway.SecureCookies
	c.Cookie(&fiber.Cookie{Name: CookieAccess, Value: t.AccessToken, Path: "/", HTTPOnly: true, Secure: secure,
		SameSite: fiber.CookieSameSiteStrictMode, MaxAge: t.ExpiresIn})
	c.Cookie(&fiber.Cookie{Name: CookieRefresh, Value: t.RefreshToken, Path: "/v1/auth", HTTPOnly: true, Secure: secure,
		SameSite: fiber.CookieSameSiteStrictMode, MaxAge: int((30 * 24 * time.Hour) / time.Second)})
	var b [18]byte
	_, _ = rand.Read(b[:])
	c.Cookie(&fiber.Cookie{Name: CookieCSRF, Value: base64.RawURLEncoding.EncodeToString(b[:]), Path: "/", Secure: secure,
		SameSite: fiber.CookieSameSiteStrictMode, MaxAge: int((30 * 24 * time.Hour) / time.Second)})
	c.Cookie(&fiber.Cookie{Name: CookieSession, Value: t.SessionID, Path: "/", Secure: secure,
		SameSite: fiber.CookieSameSiteStrictMode, MaxAge: int((30 * 24 * time.Hour) / time.Second)})
}

func clearSessionCookies(c *fiber.Ctx, secure bool) {
	for _, k := range []struct{ name, path string }{{CookieAccess, "/"}, {CookieRefresh, "/v1/auth"}, {CookieCSRF, "/"}, {CookieSession, "/"}} {
		c.Cookie(&fiber.Cookie{Name: k.name, Value: "", Path: k.path, HTTPOnly: k.name == CookieAccess || k.name == CookieRefresh, Secure: secure,
			SameSite: fiber.CookieSameSiteStrictMode, MaxAge: -1, Expires: time.Unix(0, 0)})
	}
}

// cookieSession is the session id of a cookie caller: from the refresh
// token on the /v1/auth routes, from CookieSession on the others (the
// refresh cookie is not sent there). Empty for other callers.
func cookieSession(c *fiber.Ctx) string {
	if sid := sessionOfRefresh(c.Cookies(CookieRefresh)); sid != "" {
		return sid
	}
	if callerOf(c).Cookie {
		return c.Cookies(CookieSession)
	}
	return ""
}

// refreshCookie rotates a cookie session's refresh token (the pages call
// it before the access token expires).
func (a *API) refreshCookie(c *fiber.Ctx) error {
	const op = "edge.refresh"
	rt := c.Cookies(CookieRefresh)
	if rt == "" {
		return errs.E(op, errs.Unauthorized, "no session cookie: sign in")
	}
	if want := c.Cookies(CookieCSRF); want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(c.Get(HeaderCSRF))) != 1 {
		return errs.E(op, errs.Forbidden, "a request signed in by cookie needs the X-CSRF-Token header").WithReason("csrf")
	}
	if err := a.limitAuth(c, "refresh", ""); err != nil {
		return err
	}
	t, err := a.refresh(c, rt, "")
	if err != nil {
		if errs.Is(errs.Unauthorized, err) {
			clearSessionCookies(c, a.cfg.Gateway.SecureCookies)
		}
		return err
	}
	return a.answerTokens(c, t, true)
}

func (a *API) refresh(c *fiber.Ctx, rt, client string) (auth.Tokens, error) {
	var t auth.Tokens
	err := a.ask(c, idapi.OpRefresh, idapi.RefreshRequest{RefreshToken: rt, ClientID: client, Seen: a.seen(c)}, &t)
	return t, err
}

// OAuthError is an OAuth 2.0 error response (RFC 6749 §5.2).
type OAuthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// oauthError answers the token and introspection endpoints' errors in
// RFC 6749's form: the partner clients' errors carry their code as reason
// (services/identity/client), a refresh token's refusal is invalid_grant.
func oauthError(c *fiber.Ctx, err error) error {
	code, desc, ok := client.OAuthError(err)
	status := fiber.StatusBadRequest
	switch {
	case ok:
		if code == client.ReasonInvalidClient {
			status = fiber.StatusUnauthorized
			c.Set(fiber.HeaderWWWAuthenticate, `Basic realm="ticketing"`)
		}
	case errs.Is(errs.Unauthorized, err):
		code, desc = "invalid_grant", errs.Message(err)
	case errs.Is(errs.Invalid, err):
		code, desc = client.ReasonInvalidRequest, errs.Message(err)
	default:
		// Limits, an unavailable service, a failure: the general answer,
		// with its status and Retry-After.
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(status).JSON(OAuthError{Error: code, Description: desc})
}

// oauthForm checks a token or introspection request's form body.
func oauthForm(c *fiber.Ctx, op string) error {
	if !strings.HasPrefix(c.Get(fiber.HeaderContentType), fiber.MIMEApplicationForm) {
		return errs.E(op, errs.Invalid, "the body must be application/x-www-form-urlencoded")
	}
	if len(c.Body()) > client.MaxBodyBytes {
		return errs.Errorf(op, errs.TooLarge, "the body is larger than %d bytes", client.MaxBodyBytes)
	}
	return nil
}

// token is the OAuth 2.0 token endpoint (RFC 6749 §3.2): grant types
// refresh_token (users' sessions) and client_credentials (partners).
func (a *API) token(c *fiber.Ctx) error {
	const op = "edge.token"
	if err := oauthForm(c, op); err != nil {
		return oauthError(c, err)
	}
	if err := a.limitAuth(c, "refresh", ""); err != nil {
		return err
	}
	switch grant := c.FormValue("grant_type"); grant {
	case "refresh_token":
		t, err := a.refresh(c, c.FormValue("refresh_token"), c.FormValue("client_id"))
		if err != nil {
			return oauthError(c, err)
		}
		return a.answerTokens(c, t, false)
	case client.GrantClientCredentials:
		var t idapi.ClientToken
		req := idapi.OAuthRequest{Authorization: c.Get(fiber.HeaderAuthorization), Body: c.Body()}
		if err := a.ask(c, idapi.OpClientToken, req, &t); err != nil {
			return oauthError(c, err)
		}
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(TokenAnswer{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn, Scope: t.Scope})
	default:
		return oauthError(c, errs.Errorf(op, errs.Invalid, "grant_type %q is not supported", grant).WithReason(client.ReasonUnsupportedGrantType))
	}
}

// introspect is token introspection (RFC 7662) for partner clients.
func (a *API) introspect(c *fiber.Ctx) error {
	const op = "edge.introspect"
	if err := oauthForm(c, op); err != nil {
		return oauthError(c, err)
	}
	if err := a.limitAuth(c, "refresh", ""); err != nil {
		return err
	}
	var out client.Introspection
	req := idapi.OAuthRequest{Authorization: c.Get(fiber.HeaderAuthorization), Body: c.Body()}
	if err := a.ask(c, idapi.OpIntrospect, req, &out); err != nil {
		return oauthError(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// metadata is the authorization server's metadata (RFC 8414).
func (a *API) metadata(c *fiber.Ctx) error {
	if a.cfg.Issuer == "" {
		return errs.E("edge.metadata", errs.NotFound, "this edge publishes no authorization server metadata")
	}
	m, err := client.NewMetadata(client.MetadataConfig{Issuer: a.cfg.Issuer, TokenPath: "/v1/auth/token",
		IntrospectionPath: "/v1/auth/introspect", JWKSPath: "/v1/auth/jwks.json"})
	if err != nil {
		return errs.E("edge.metadata", errs.Other, err)
	}
	// The token endpoint also rotates the users' refresh tokens.
	m.GrantTypesSupported = append(m.GrantTypesSupported, "refresh_token")
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(m)
}

type clientBody struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

type disabledBody struct {
	Disabled bool `json:"disabled"`
}

func (a *API) createClient(c *fiber.Ctx) error {
	var b clientBody
	if err := decodeAuth(c, "edge.create_client", &b); err != nil {
		return err
	}
	req := idapi.ClientRequest{AccessToken: callerOf(c).Token, Name: b.Name, Scopes: b.Scopes}
	c.Set(fiber.HeaderCacheControl, "no-store") // the secret
	return a.callIdentity(c, idapi.OpClientCreate, req, &idapi.ClientCreated{}, fiber.StatusCreated)
}

func (a *API) disableClient(c *fiber.Ctx) error {
	var b disabledBody
	if err := decodeAuth(c, "edge.disable_client", &b); err != nil {
		return err
	}
	req := idapi.ClientRequest{AccessToken: callerOf(c).Token, ClientID: c.Params("id"), Disabled: b.Disabled}
	if err := a.callIdentity(c, idapi.OpClientDisable, req, &struct{}{}, 0); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// sessionOfRefresh is the session id a refresh token names.
func sessionOfRefresh(rt string) string {
	id, _, _ := strings.Cut(rt, ".")
	return id
}

func (a *API) signOut(c *fiber.Ctx) error {
	var b signOutBody
	if len(c.Body()) > 0 {
		if err := decodeAuth(c, "edge.signout", &b); err != nil {
			return err
		}
	}
	rt := b.RefreshToken
	if rt == "" {
		rt = c.Cookies(CookieRefresh)
	}
	who := callerOf(c)
	if sid := sessionOfRefresh(rt); sid != "" {
		if err := a.callIdentity(c, idapi.OpSignOut, idapi.UserRequest{AccessToken: who.Token, SessionID: sid}, &struct{}{}, 0); err != nil {
			return err
		}
	}
	clearSessionCookies(c, a.cfg.Gateway.SecureCookies)
	return c.SendStatus(fiber.StatusNoContent)
}

// userCall calls a signed-in user's operation with their token.
func (a *API) userCall(c *fiber.Ctx, op string, req idapi.UserRequest, resp any) error {
	req.AccessToken = callerOf(c).Token
	return a.callIdentity(c, op, req, resp, fiber.StatusOK)
}

func (a *API) profile(c *fiber.Ctx) error {
	return a.userCall(c, idapi.OpProfile, idapi.UserRequest{}, &auth.Profile{})
}

func (a *API) sessions(c *fiber.Ctx) error {
	return a.userCall(c, idapi.OpSessions, idapi.UserRequest{}, &idapi.Sessions{})
}

func (a *API) revokeSession(c *fiber.Ctx) error {
	id := c.Params("id")
	if len(id) > 64 {
		return errs.E("edge.revoke_session", errs.NotFound, "no such session")
	}
	req := idapi.UserRequest{AccessToken: callerOf(c).Token, SessionID: id}
	if err := a.callIdentity(c, idapi.OpRevokeSession, req, &struct{}{}, 0); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// TOTPBegun is an authenticator app's secret to confirm, with its
// otpauth URI drawn as a QR code for the account page to show: a PNG as a
// data: URL.
type TOTPBegun struct {
	auth.TOTPEnrolment
	QRCode string `json:"qr_code"`
}

func (a *API) totpBegin(c *fiber.Ctx) error {
	const op = "edge.totp_begin"
	var out TOTPBegun
	req := idapi.UserRequest{AccessToken: callerOf(c).Token}
	if err := a.ask(c, idapi.OpTOTPBegin, req, &out.TOTPEnrolment); err != nil {
		return err
	}
	png, err := qrcode.Encode(out.URI, qrcode.Medium, 256)
	if err != nil {
		return errs.E(op, errs.Other, err)
	}
	out.QRCode = "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

func (a *API) totpConfirm(c *fiber.Ctx) error {
	var b codeBody
	if err := decodeAuth(c, "edge.totp_confirm", &b); err != nil {
		return err
	}
	var out idapi.RecoveryCodes
	if err := a.ask(c, idapi.OpTOTPConfirm, idapi.UserRequest{AccessToken: callerOf(c).Token, Code: b.Code}, &out); err != nil {
		return err
	}
	if out.Codes == nil {
		// No new codes: the account's recovery codes stay (it had a
		// second factor already). A list, as documented, not null.
		out.Codes = []string{}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

func (a *API) totpDisable(c *fiber.Ctx) error {
	var b stepUpBody
	if err := decodeAuth(c, "edge.totp_disable", &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	req := idapi.UserRequest{AccessToken: callerOf(c).Token, StepUp: b.StepUp}
	if err := a.callIdentity(c, idapi.OpTOTPDisable, req, &struct{}{}, 0); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) recoveryCodes(c *fiber.Ctx) error {
	var b stepUpBody
	if err := decodeAuth(c, "edge.recovery_codes", &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return a.userCall(c, idapi.OpRecoveryCodes, idapi.UserRequest{StepUp: b.StepUp}, &idapi.RecoveryCodes{})
}

func (a *API) changePassword(c *fiber.Ctx) error {
	var b passwordBody
	if err := decodeAuth(c, "edge.password", &b); err != nil {
		return err
	}
	if err := a.limitAuth(c, "signin", ""); err != nil {
		return err
	}
	req := idapi.UserRequest{AccessToken: callerOf(c).Token, StepUp: b.StepUp, NewPassword: b.NewPassword,
		SessionID: cookieSession(c)}
	if err := a.callIdentity(c, idapi.OpPassword, req, &struct{}{}, 0); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// setRoles sets an account's roles: an admin's request, or one with the
// bootstrap admin token (Config.AdminToken) to make the first admin.
func (a *API) setRoles(c *fiber.Ctx) error {
	const op = "edge.roles"
	var b rolesBody
	if err := decodeAuth(c, op, &b); err != nil {
		return err
	}
	req := idapi.RolesRequest{UserID: c.Params("id"), Roles: b.Roles}
	who := callerOf(c)
	switch {
	case !who.Anonymous():
		if !who.HasScope("admin") {
			return errs.E(op, errs.Forbidden, "this needs the admin role")
		}
		req.AccessToken = who.Token
	default:
		if err := a.requireAdmin(c, op); err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer`)
			return err
		}
		tok, _ := bearer(op, c.Get(fiber.HeaderAuthorization))
		req.AdminToken = tok
	}
	if req.Roles == nil {
		req.Roles = []string{}
	}
	return a.callIdentity(c, idapi.OpRoles, req, &auth.Profile{}, fiber.StatusOK)
}

// accessKeys serves the access tokens' public keys (JWKS), distinct from
// the admission keys at /.well-known/jwks.json.
func (a *API) accessKeys(c *fiber.Ctx) error {
	if a.deps.TokenKeys == nil || a.deps.TokenKeys.JWKS() == nil {
		return errs.E("edge.access_keys", errs.Unavailable, "the access token keys are not loaded yet")
	}
	c.Set(fiber.HeaderContentType, "application/jwk-set+json")
	c.Set(fiber.HeaderCacheControl, "public, max-age=60")
	return c.Send(a.deps.TokenKeys.JWKS())
}

// limitKey applies limit l to key under name; a limiter that cannot
// answer lets the request through (see limit).
func (a *API) limitKey(c *fiber.Ctx, name, key string, l ratelimit.Limit) error {
	if a.deps.Limiter == nil || l == (ratelimit.Limit{}) {
		return nil
	}
	d, err := a.deps.Limiter.Allow(c.UserContext(), name+":"+key, l)
	if err != nil {
		a.log.Warn("rate limiter unavailable; letting the request through", "limit", name, "err", err)
		a.count(name, "limiter_error")
		return nil
	}
	setRateLimitHeaders(c, d)
	if !d.Allowed {
		a.count(name, "refused")
		return d.Err("edge." + name)
	}
	return nil
}
