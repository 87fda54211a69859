package httpapi

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/services/identity/auth"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/identity/totp"
)

const formType = "application/x-www-form-urlencoded"

// signIn signs in with a password through the API (a bearer session).
func signIn(t *testing.T, e *env, email, password string) TokenAnswer {
	t.Helper()
	r := e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("sign in: %s %v", r, r.header)
	}
	tok := decode[TokenAnswer](t, r)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
		t.Fatalf("tokens %+v", tok)
	}
	return tok
}

// refresh uses a refresh token at the token endpoint.
func refresh(t *testing.T, e *env, rt string) result {
	t.Helper()
	return e.call(t, "POST", "/v1/auth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), "Content-Type", formType)
}

func wantOAuthError(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got %s, want %d %s", r, status, code)
	}
	if o := decode[OAuthError](t, r); o.Error != code || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("got %+v %v, want %s", o, r.header, code)
	}
}

func bearerOf(at string) []string { return []string{"Authorization", "Bearer " + at} }

// An account's life through the API: sign-up, the mail (as /dev/mail
// shows it), verification, sign-in by bearer and by cookie, the profile,
// the sessions, revoking one from the other, signing out; and a password
// reset.
func TestAccountLifecycle(t *testing.T) {
	e := newEnv(t)
	email := fmt.Sprintf("ada-%d@example.com", time.Now().UnixNano())
	const pw = "correct horse battery staple"
	r := e.call(t, "POST", "/v1/auth/signup", fmt.Sprintf(`{"email":%q,"password":%q,"display_name":"Ada"}`, email, pw))
	if r.status != 202 || decode[Accepted](t, r).Status != "check_your_email" {
		t.Fatal(r)
	}
	// The same answer for an address that has an account: nobody learns
	// which addresses have one.
	if again := e.call(t, "POST", "/v1/auth/signup", fmt.Sprintf(`{"email":%q,"password":%q}`, e.account(t, buyer).Email, pw)); again.status != 202 || string(again.body) != string(r.body) {
		t.Fatalf("sign-up of a taken address: %s", again)
	}
	wantError(t, e.call(t, "POST", "/v1/auth/signup", fmt.Sprintf(`{"email":%q,"password":"short"}`, "x"+email)), 400, "invalid_request", "")
	wantError(t, e.call(t, "POST", "/v1/auth/signup", `{"email":"not an address","password":"correct horse battery staple"}`), 400, "invalid_request", "")
	// Not verified yet.
	wantError(t, e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)), 403, "forbidden", auth.ReasonEmailUnverified)

	secret := e.ids.Link(t, email, "/verify")
	list := e.call(t, "GET", "/dev/mail", "")
	if list.status != 200 || !strings.Contains(string(list.body), "Confirm your e-mail address") {
		t.Fatalf("dev mail: %s", list)
	}
	entries, err := e.ids.Mail.List()
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	for _, m := range entries {
		if len(m.Message.To) == 1 && m.Message.To[0] == email {
			id = m.ID
		}
	}
	m := e.call(t, "GET", "/dev/mail/"+id+"?format=json", "")
	if m.status != 200 || !strings.Contains(string(m.body), `/verify#`+secret) {
		t.Fatalf("dev mail %s: %s", id, m)
	}
	wantError(t, e.call(t, "GET", "/dev/mail/nope", ""), 404, "not_found", "")

	if v := decode[Accepted](t, e.call(t, "POST", "/v1/auth/verify", fmt.Sprintf(`{"token":%q}`, secret))); v.Status != "verified" {
		t.Fatal(v)
	}
	wantError(t, e.call(t, "POST", "/v1/auth/verify", fmt.Sprintf(`{"token":%q}`, secret)), 404, "not_found", auth.ReasonLinkInvalid)

	wantError(t, e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":"wrong password here"}`, email)), 401, "unauthorized", auth.ReasonInvalidCredentials)
	tok := signIn(t, e, email, pw)
	if tok.Scope != auth.BuyerScopes {
		t.Fatalf("scope %q", tok.Scope)
	}
	prof := decode[auth.Profile](t, e.call(t, "GET", "/v1/account", "", bearerOf(tok.AccessToken)...))
	if prof.Email != email || prof.DisplayName != "Ada" || !prof.EmailVerified || len(prof.Roles) != 0 || !prof.HasPassword || prof.TOTP {
		t.Fatalf("profile %+v", prof)
	}
	s, in := wantCookieSession(t, e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q,"cookie":true}`, email, pw)))
	if in.UserID != prof.ID {
		t.Fatalf("cookie session of %s", in.UserID)
	}
	list2 := decode[idapi.Sessions](t, e.call(t, "GET", "/v1/account/sessions", "", bearerOf(tok.AccessToken)...))
	ids := map[string]bool{}
	for _, x := range list2.Sessions {
		ids[x.ID] = true
	}
	bearerSession := sessionOfRefresh(tok.RefreshToken)
	if len(list2.Sessions) != 2 || !ids[in.SessionID] || !ids[bearerSession] {
		t.Fatalf("sessions %+v (cookie %s, bearer %s)", list2, in.SessionID, bearerSession)
	}
	// Revoke the cookie session from the bearer one: its refresh fails.
	if r := e.call(t, "DELETE", "/v1/account/sessions/"+in.SessionID, "", bearerOf(tok.AccessToken)...); r.status != 204 {
		t.Fatal(r)
	}
	r = e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
	wantError(t, r, 401, "unauthorized", "")
	if !cleared(r) {
		t.Fatalf("cookies not cleared: %v", r.header["Set-Cookie"])
	}
	wantError(t, e.call(t, "DELETE", "/v1/account/sessions/"+in.SessionID, "", bearerOf(tok.AccessToken)...), 404, "not_found", "")
	// Sign out the bearer session with its refresh token.
	if r := e.call(t, "POST", "/v1/auth/signout", fmt.Sprintf(`{"refresh_token":%q}`, tok.RefreshToken), bearerOf(tok.AccessToken)...); r.status != 204 {
		t.Fatal(r)
	}
	wantOAuthError(t, refresh(t, e, tok.RefreshToken), 400, "invalid_grant")
	if left := decode[idapi.Sessions](t, e.call(t, "GET", "/v1/account/sessions", "", bearerOf(tok.AccessToken)...)); len(left.Sessions) != 0 {
		t.Fatalf("sessions after signing out: %+v", left)
	}

	// A forgotten password: the same answer for any address; the link
	// resets it once; the old password is refused, the new one works.
	for _, addr := range []string{email, "nobody-" + email} {
		if r := e.call(t, "POST", "/v1/auth/password/forgot", fmt.Sprintf(`{"email":%q}`, addr)); r.status != 202 || decode[Accepted](t, r).Status != "check_your_email" {
			t.Fatal(r)
		}
	}
	reset := e.ids.Link(t, email, "/reset")
	const pw2 = "another correct horse battery"
	if r := decode[Accepted](t, e.call(t, "POST", "/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, reset, pw2))); r.Status != "password_changed" {
		t.Fatal(r)
	}
	wantError(t, e.call(t, "POST", "/v1/auth/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, reset, pw)), 404, "not_found", auth.ReasonLinkInvalid)
	wantError(t, e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)), 401, "unauthorized", auth.ReasonInvalidCredentials)
	signIn(t, e, email, pw2)

	// Without a mail box (production), no /dev/mail.
	e.restart(func(_ *Config, d *Deps) { d.MailBox = nil })
	wantError(t, e.call(t, "GET", "/dev/mail", ""), 404, "not_found", "")
}

// A refresh token is good once: reusing one after its rotation revokes
// the whole session, so the token it was rotated into stops working too
// (by bearer at the token endpoint, and by cookie). The identity service
// answers a retry of the previous token within 30 seconds of its rotation
// with the same successor (a client that lost the answer), so the replay
// here is of a token two rotations old.
func TestRefreshTokenReuse(t *testing.T) {
	e := newEnv(t)
	a := e.account(t, buyer)
	rotate := func(rt string) TokenAnswer {
		t.Helper()
		r := refresh(t, e, rt)
		if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
			t.Fatal(r)
		}
		next := decode[TokenAnswer](t, r)
		if next.RefreshToken == "" || next.RefreshToken == rt || next.AccessToken == "" {
			t.Fatalf("rotation %+v", next)
		}
		return next
	}
	first := signIn(t, e, a.Email, a.Password)
	second := rotate(first.RefreshToken)
	if retry := rotate(first.RefreshToken); retry.RefreshToken != second.RefreshToken {
		t.Fatalf("a retry within the grace window got %q, want the same successor %q", retry.RefreshToken, second.RefreshToken)
	}
	third := rotate(second.RefreshToken)
	wantOAuthError(t, refresh(t, e, first.RefreshToken), 400, "invalid_grant")
	wantOAuthError(t, refresh(t, e, third.RefreshToken), 400, "invalid_grant")
	wantOAuthError(t, refresh(t, e, second.RefreshToken), 400, "invalid_grant")
	for _, x := range decode[idapi.Sessions](t, e.call(t, "GET", "/v1/account/sessions", "", bearerOf(third.AccessToken)...)).Sessions {
		if x.ID == sessionOfRefresh(first.RefreshToken) {
			t.Fatalf("the session is still listed: %+v", x)
		}
	}
	wantOAuthError(t, refresh(t, e, "s_nope.nope"), 400, "invalid_grant")
	wantOAuthError(t, e.call(t, "POST", "/v1/auth/token", "grant_type=refresh_token", "Content-Type", formType), 400, "invalid_grant")
	wantOAuthError(t, e.call(t, "POST", "/v1/auth/token", "grant_type=password&username=a&password=b", "Content-Type", formType), 400, "unsupported_grant_type")
	wantOAuthError(t, e.call(t, "POST", "/v1/auth/token", `{"grant_type":"refresh_token"}`, "Content-Type", "application/json"), 400, "invalid_request")

	// By cookie.
	rotateCookie := func(s session) session {
		t.Helper()
		r := e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
		n, _ := wantCookieSession(t, r)
		if n.refresh == s.refresh {
			t.Fatal("not rotated")
		}
		return n
	}
	s, _ := signInCookie(t, e, buyer)
	s2 := rotateCookie(s)
	s3 := rotateCookie(s2)
	r := e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
	wantError(t, r, 401, "unauthorized", "")
	if !cleared(r) {
		t.Fatalf("cookies not cleared: %v", r.header["Set-Cookie"])
	}
	wantError(t, e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s3.cookie("/v1/auth"), HeaderCSRF, s3.csrf), 401, "unauthorized", "")
	wantError(t, e.call(t, "POST", "/v1/auth/refresh", "", HeaderCSRF, "x"), 401, "unauthorized", "")
}

// TOTP as the second factor: enrolled through the API; a code is good
// once, even within its step (a replay is refused); a recovery code is
// good once; and no answer carries the secret or the codes again.
func TestTOTPSecondFactor(t *testing.T) {
	e := newEnv(t)
	a := e.account(t, buyer)
	me := bearerOf(a.AccessToken)
	r := e.call(t, "POST", "/v1/account/totp", "", me...)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("enrol: %s %v", r, r.header)
	}
	enrol := decode[TOTPBegun](t, r)
	t0 := time.Now()
	code := func(at time.Time) string {
		t.Helper()
		c, err := totp.Code(enrol.Secret, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wantError(t, e.call(t, "POST", "/v1/account/totp/confirm", `{"code":"000000x"}`, me...), 400, "invalid_request", "")
	r = e.call(t, "POST", "/v1/account/totp/confirm", fmt.Sprintf(`{"code":%q}`, code(t0)), me...)
	codes := decode[idapi.RecoveryCodes](t, r)
	if r.status != 200 || len(codes.Codes) < 5 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("confirm: %s", r)
	}
	wantError(t, e.call(t, "POST", "/v1/account/totp", "", me...), 409, "conflict", "")

	mfa := func() string {
		t.Helper()
		r := e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q}`, a.Email, a.Password))
		m := decode[MFARequired](t, r)
		if !m.MFARequired || m.MFAToken == "" || !strings.Contains(strings.Join(m.Methods, " "), "totp") {
			t.Fatalf("sign-in with TOTP on: %s", r)
		}
		return m.MFAToken
	}
	next := code(t0.Add(totp.Period * time.Second)) // the next step's code: newer than the one confirmed
	ticket := mfa()
	r = e.call(t, "POST", "/v1/auth/signin/second-factor", fmt.Sprintf(`{"mfa_token":%q,"code":%q}`, ticket, next))
	if r.status != 200 || decode[TokenAnswer](t, r).AccessToken == "" {
		t.Fatalf("second factor: %s", r)
	}
	// The same code again, within its step: refused.
	wantError(t, e.call(t, "POST", "/v1/auth/signin/second-factor", fmt.Sprintf(`{"mfa_token":%q,"code":%q}`, mfa(), next)),
		401, "unauthorized", totp.ReasonCodeReused)
	wantError(t, e.call(t, "POST", "/v1/auth/signin/second-factor", fmt.Sprintf(`{"mfa_token":%q,"code":%q}`, mfa(), code(t0))),
		401, "unauthorized", totp.ReasonCodeReused)
	// An MFA ticket is good once (with a good recovery code, too), and a
	// made-up one is refused.
	for _, body := range []string{
		fmt.Sprintf(`{"mfa_token":%q,"code":%q,"recovery":true}`, ticket, codes.Codes[2]),
		fmt.Sprintf(`{"mfa_token":"m_made_up","code":%q,"recovery":true}`, codes.Codes[2]),
	} {
		if r := e.call(t, "POST", "/v1/auth/signin/second-factor", body); r.status != 401 && r.status != 404 {
			t.Fatal(r)
		}
	}
	// A recovery code, once, in a cookie session: the body has no token.
	rc := fmt.Sprintf(`{"mfa_token":%q,"code":%q,"recovery":true,"cookie":true}`, mfa(), codes.Codes[0])
	wantCookieSession(t, e.call(t, "POST", "/v1/auth/signin/second-factor", rc))
	wantError(t, e.call(t, "POST", "/v1/auth/signin/second-factor", fmt.Sprintf(`{"mfa_token":%q,"code":%q,"recovery":true}`, mfa(), codes.Codes[0])),
		401, "unauthorized", "")

	// Nothing answers the secret or the codes again.
	prof := e.call(t, "GET", "/v1/account", "", me...)
	if p := decode[auth.Profile](t, prof); !p.TOTP || p.RecoveryLeft != len(codes.Codes)-1 {
		t.Fatalf("profile %+v", p)
	}
	sessions := e.call(t, "GET", "/v1/account/sessions", "", me...)
	for _, r := range []result{prof, sessions} {
		for _, secret := range append([]string{enrol.Secret, a.Password, a.Refresh, strings.SplitN(a.Refresh, ".", 2)[1]}, codes.Codes...) {
			if strings.Contains(string(r.body), secret) {
				t.Fatalf("an answer has a secret: %s", r)
			}
		}
		if regexp.MustCompile(`(?i)argon2|hash|secret|recovery_codes"`).Match(r.body) {
			t.Fatalf("an answer has a secret's field: %s", r)
		}
	}
	// Turning it off needs a step-up.
	wantError(t, e.call(t, "POST", "/v1/account/totp/disable", `{"step_up":{"password":"wrong"}}`, me...), 403, "forbidden", auth.ReasonStepUp)
	stepUp := fmt.Sprintf(`{"step_up":{"password":%q,"code":%q,"recovery":true}}`, a.Password, codes.Codes[1])
	if r := e.call(t, "POST", "/v1/account/totp/disable", stepUp, me...); r.status != 204 {
		t.Fatal(r)
	}
	signIn(t, e, a.Email, a.Password)
}

// Every accounts route takes only its documented fields (OWASP API3, mass
// assignment): a body with another field is 400 and reaches nothing.
func TestMassAssignment(t *testing.T) {
	ids := &countingIdentity{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { ids.Identity = d.Identity; d.Identity = ids })
	me := e.account(t, buyer)
	p := newPartner(t, e, "mass", "holds:write")
	cases := []struct {
		who          who
		method, path string
		body         string
	}{
		{-1, "POST", "/v1/auth/signup", `{"email":"eve@example.com","password":"correct horse battery staple","roles":["admin"]}`},
		{-1, "POST", "/v1/auth/signup", `{"email":"eve@example.com","password":"correct horse battery staple","email_verified":true}`},
		{-1, "POST", "/v1/auth/signup", `{"email":"eve@example.com","password":"correct horse battery staple","id":"u_00000000000000000000000000"}`},
		{-1, "POST", "/v1/auth/verify", `{"token":"x","user_id":"u_1"}`},
		{-1, "POST", "/v1/auth/verify/resend", `{"email":"eve@example.com","verified":true}`},
		{-1, "POST", "/v1/auth/signin", `{"email":"eve@example.com","password":"x","scope":"admin"}`},
		{-1, "POST", "/v1/auth/signin", `{"email":"eve@example.com","password":"x","roles":["admin"]}`},
		{-1, "POST", "/v1/auth/signin/second-factor", `{"mfa_token":"m","code":"1","user_id":"u_1"}`},
		{-1, "POST", "/v1/auth/password/forgot", `{"email":"eve@example.com","admin":true}`},
		{-1, "POST", "/v1/auth/password/reset", `{"token":"x","password":"y","email":"eve@example.com"}`},
		{-1, "POST", "/v1/auth/passkey/finish", `{"state":"x","credential":{},"user_id":"u_1"}`},
		{-1, "POST", "/v1/auth/signin/passkey/begin", `{"mfa_token":"m","user_id":"u_1"}`},
		{-1, "POST", "/v1/auth/signin/passkey/finish", `{"state":"x","credential":{},"mfa_token":"m","roles":[]}`},
		{buyer, "POST", "/v1/auth/signout", `{"refresh_token":"x","all":true}`},
		{buyer, "POST", "/v1/account/password", `{"step_up":{"password":"x"},"new_password":"y","roles":["admin"]}`},
		{buyer, "POST", "/v1/account/password", `{"step_up":{"password":"x","bypass":true},"new_password":"y"}`},
		{buyer, "POST", "/v1/account/totp/confirm", `{"code":"123456","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}`},
		{buyer, "POST", "/v1/account/totp/disable", `{"step_up":{},"force":true}`},
		{buyer, "POST", "/v1/account/recovery-codes", `{"step_up":{},"count":1000}`},
		{buyer, "POST", "/v1/account/passkeys", `{"state":"x","credential":{},"user_id":"u_1"}`},
		{buyer, "POST", "/v1/account/passkeys/pk_1/remove", `{"step_up":{},"user_id":"u_1"}`},
		{adminUser, "PUT", "/v1/admin/accounts/" + me.ID + "/roles", `{"roles":["admin"],"user_id":"u_other"}`},
		{adminUser, "POST", "/v1/admin/clients", `{"name":"x","scopes":["holds:write"],"client_secret":"tks_chosen"}`},
		{adminUser, "POST", "/v1/admin/clients", `{"name":"x","scopes":["holds:write"],"client_id":"c_chosen"}`},
		{adminUser, "POST", "/v1/admin/clients", `{"name":"x","scopes":["holds:write"],"channel":"app"}`},
		{adminUser, "PUT", "/v1/admin/clients/" + p.id + "/disabled", `{"disabled":false,"scopes":["reports:read"]}`},
	}
	before := ids.count()
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			var h []string
			if c.who >= 0 {
				h = e.auth(t, c.who)
			}
			r := e.call(t, c.method, c.path, c.body, h...)
			wantError(t, r, 400, "invalid_request", "")
			if !strings.Contains(string(r.body), "unknown field") {
				t.Fatalf("not refused for its field: %s", r)
			}
		})
	}
	if n := ids.count() - before; n != 0 {
		t.Fatalf("%d refused bodies reached the identity service: %v", n, ids.calls[before:])
	}
	// The same bodies without the field are taken (the field was the
	// reason).
	if r := e.callAs(t, adminUser, "PUT", "/v1/admin/accounts/"+me.ID+"/roles", `{"roles":[]}`); r.status != 200 {
		t.Fatal(r)
	}
	if r := e.call(t, "POST", "/v1/auth/password/forgot", `{"email":"eve@example.com"}`); r.status != 202 {
		t.Fatal(r)
	}
}

// Bodies over the accounts routes' limits are 413 before anything is
// asked of the identity service (OWASP API4, unrestricted resource
// consumption).
func TestAccountBodyLimits(t *testing.T) {
	ids := &countingIdentity{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { ids.Identity = d.Identity; d.Identity = ids })
	p := newPartner(t, e, "limits", "holds:write")
	big := strings.Repeat("x", maxAuthBody)
	huge := strings.Repeat("x", maxPasskeyBody)
	cases := []struct {
		who          who
		method, path string
		body         string
	}{
		{-1, "POST", "/v1/auth/signup", `{"email":"a@example.com","password":"` + big + `"}`},
		{-1, "POST", "/v1/auth/verify", `{"token":"` + big + `"}`},
		{-1, "POST", "/v1/auth/verify/resend", `{"email":"` + big + `"}`},
		{-1, "POST", "/v1/auth/signin", `{"email":"a@example.com","password":"` + big + `"}`},
		{-1, "POST", "/v1/auth/signin/second-factor", `{"mfa_token":"` + big + `","code":"1"}`},
		{-1, "POST", "/v1/auth/password/forgot", `{"email":"` + big + `"}`},
		{-1, "POST", "/v1/auth/password/reset", `{"token":"x","password":"` + big + `"}`},
		{-1, "POST", "/v1/auth/signin/passkey/begin", `{"mfa_token":"` + big + `"}`},
		{-1, "POST", "/v1/auth/passkey/finish", `{"state":"x","credential":"` + huge + `"}`},
		{-1, "POST", "/v1/auth/signin/passkey/finish", `{"state":"x","credential":"` + huge + `"}`},
		{buyer, "POST", "/v1/auth/signout", `{"refresh_token":"` + big + `"}`},
		{buyer, "POST", "/v1/account/password", `{"step_up":{},"new_password":"` + big + `"}`},
		{buyer, "POST", "/v1/account/totp/confirm", `{"code":"` + big + `"}`},
		{buyer, "POST", "/v1/account/totp/disable", `{"step_up":{"password":"` + big + `"}}`},
		{buyer, "POST", "/v1/account/recovery-codes", `{"step_up":{"password":"` + big + `"}}`},
		{buyer, "POST", "/v1/account/passkeys", `{"state":"x","credential":"` + huge + `"}`},
		{buyer, "POST", "/v1/account/passkeys/pk_1/remove", `{"step_up":{"password":"` + big + `"}}`},
		{adminUser, "PUT", "/v1/admin/accounts/u_1/roles", `{"roles":["` + big + `"]}`},
		{adminUser, "POST", "/v1/admin/clients", `{"name":"` + big + `","scopes":[]}`},
		{adminUser, "PUT", "/v1/admin/clients/" + p.id + "/disabled", `{"disabled":true,"x":"` + big + `"}`},
	}
	before := ids.count()
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			var h []string
			if c.who >= 0 {
				h = e.auth(t, c.who)
			}
			wantError(t, e.call(t, c.method, c.path, c.body, h...), 413, "too_large", "")
		})
	}
	for _, path := range []string{"/v1/auth/token", "/v1/auth/introspect"} {
		wantError(t, e.call(t, "POST", path, "grant_type=client_credentials&x="+big, "Content-Type", formType, "Authorization", p.basic()), 413, "too_large", "")
	}
	if n := ids.count() - before; n != 0 {
		t.Fatalf("%d large bodies reached the identity service: %v", n, ids.calls[before:])
	}
}

// Sign-in is limited per client address and per e-mail address, sign-up
// per client address: refusals are 429 with the RateLimit fields and
// Retry-After, and reach nothing (OWASP API4).
func TestAuthRateLimits(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := memory.New(memory.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ids := &countingIdentity{}
	e := newEnvWith(t, func(c *Config, d *Deps) {
		c.AuthLimit = ratelimit.PerMinute(60, 5)
		c.AuthAccountLimit = ratelimit.PerMinute(60, 2)
		d.Limiter = lim
		ids.Identity = d.Identity
		d.Identity = ids
	})
	a := e.account(t, buyer)
	signin := func(email, password string) result {
		t.Helper()
		return e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q}`, email, password))
	}
	limited := func(r result) {
		t.Helper()
		wantError(t, r, 429, "rate_limited", "rate_limited")
		if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("RateLimit-Limit") == "" {
			t.Fatalf("headers %v", r.header)
		}
	}
	// Guessing one account's password: two tries, then refused, the right
	// password too.
	for range 2 {
		r := signin(a.Email, "a wrong guess")
		wantError(t, r, 401, "unauthorized", auth.ReasonInvalidCredentials)
		if r.header.Get("RateLimit-Limit") == "" {
			t.Fatalf("no RateLimit fields: %v", r.header)
		}
	}
	calls := ids.count()
	limited(signin(a.Email, "a wrong guess"))
	limited(signin(strings.ToUpper(a.Email), a.Password))
	if n := ids.count() - calls; n != 0 {
		t.Fatalf("refused sign-ins reached the identity service %d times", n)
	}
	// From this address, one more try (of five: the refused ones count)
	// on another account.
	wantError(t, signin(e.account(t, otherBuyer).Email, "a wrong guess"), 401, "unauthorized", "")
	limited(signin(e.account(t, otherBuyer).Email, e.account(t, otherBuyer).Password))
	// Sign-ups: five from one address.
	for i := range 5 {
		if r := e.call(t, "POST", "/v1/auth/signup", fmt.Sprintf(`{"email":"rl-%d-%d@example.com","password":"correct horse battery staple"}`, i, now.UnixNano())); r.status != 202 {
			t.Fatal(r)
		}
	}
	limited(e.call(t, "POST", "/v1/auth/signup", `{"email":"rl-last@example.com","password":"correct horse battery staple"}`))
	// A minute later, the account may sign in again.
	now = now.Add(time.Minute)
	signIn(t, e, a.Email, a.Password)
}

// Passkey routes: a begin answers the browser's options and the state; a
// garbage credential is a 4xx JSON error and registers nothing. (Whole
// ceremonies are tested in services/identity/passkey and by the pages'
// browser test.)
func TestPasskeyRoutes(t *testing.T) {
	e := newEnv(t)
	a := e.account(t, buyer)
	p := newPartner(t, e, "pk", "holds:write")
	pt := p.accessToken(t, e, "").AccessToken
	me := bearerOf(a.AccessToken)
	begun := func(r result) PasskeyBegun {
		t.Helper()
		b := decode[PasskeyBegun](t, r)
		if r.status != 200 || b.State == "" || !b.ExpiresAt.After(time.Now()) || !strings.Contains(string(b.Options), `"challenge"`) {
			t.Fatalf("begin: %s", r)
		}
		return b
	}
	reg := begun(e.call(t, "POST", "/v1/account/passkeys/begin", "", me...))
	if !strings.Contains(string(reg.Options), `"localhost"`) || !strings.Contains(string(reg.Options), `"user"`) {
		t.Fatalf("registration options %s", reg.Options)
	}
	signin := begun(e.call(t, "POST", "/v1/auth/passkey/begin", ""))
	garbage := []string{`"garbage"`, `{}`, `{"id":"Y3JlZA","rawId":"Y3JlZA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"AA"}}`, `[1,2,3]`}
	for _, cred := range garbage {
		for _, c := range []struct {
			path  string
			state string
			auth  []string
		}{
			{"/v1/account/passkeys", reg.State, me},
			{"/v1/auth/passkey/finish", signin.State, nil},
			{"/v1/auth/passkey/finish", reg.State, nil}, // another ceremony's state
			{"/v1/auth/signin/passkey/finish", signin.State, nil},
		} {
			r := e.call(t, "POST", c.path, fmt.Sprintf(`{"state":%q,"credential":%s}`, c.state, cred), c.auth...)
			if r.status < 400 || r.status >= 500 {
				t.Fatalf("%s with %s: %s", c.path, cred, r)
			}
			if _, err := r.errorBody(); err != nil {
				t.Fatalf("%s with %s: not an error body: %s", c.path, cred, r)
			}
		}
	}
	wantError(t, e.call(t, "POST", "/v1/account/passkeys", `{"state":"x"}`, me...), 400, "invalid_request", "")
	wantError(t, e.call(t, "POST", "/v1/auth/passkey/finish", `{"credential":{}}`), 400, "invalid_request", "")
	if r := e.call(t, "POST", "/v1/auth/signin/passkey/begin", `{"mfa_token":"m_made_up"}`); r.status != 401 && r.status != 404 {
		t.Fatal(r)
	}
	if p := decode[auth.Profile](t, e.call(t, "GET", "/v1/account", "", me...)); len(p.Passkeys) != 0 {
		t.Fatalf("passkeys %+v", p.Passkeys)
	}
	wantError(t, e.call(t, "POST", "/v1/account/passkeys/pk_nope/remove", fmt.Sprintf(`{"step_up":{"password":%q}}`, a.Password), me...), 404, "not_found", "")
	// A partner client is not an account.
	wantError(t, e.call(t, "POST", "/v1/account/passkeys/begin", "", "Authorization", "Bearer "+pt), 403, "forbidden", "")
}
