package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/client"
	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
	"github.com/ticketing/ticketing/services/identity/token"
)

// partner is a partner client, made through the admin route.
type partner struct {
	id, secret string
}

// basic is the client's HTTP Basic credentials (RFC 6749 section 2.3.1).
func (p partner) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(p.id)+":"+url.QueryEscape(p.secret)))
}

// newPartner creates a partner client allowed the scopes, as e's admin.
func newPartner(tb testing.TB, e *env, name string, scopes ...string) partner {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	req := request("POST", "/v1/admin/clients", string(body), e.auth(tb, adminUser)...)
	r := e.send(tb, req)
	loadContract(tb).check(tb, req, r)
	var c idapi.ClientCreated
	if r.status != 201 || json.Unmarshal(r.body, &c) != nil || c.ClientID == "" || c.ClientSecret == "" {
		tb.Fatalf("create client: %s", r)
	}
	return partner{c.ClientID, c.ClientSecret}
}

// accessToken gets an access token for p with the client credentials
// grant, for scope ("" all it is allowed).
func (p partner) accessToken(tb testing.TB, e *env, scope string) TokenAnswer {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req := request("POST", "/v1/auth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", p.basic())
	r := e.send(tb, req)
	loadContract(tb).check(tb, req, r)
	var t TokenAnswer
	if r.status != 200 || json.Unmarshal(r.body, &t) != nil || t.AccessToken == "" {
		tb.Fatalf("client credentials grant: %s", r)
	}
	return t
}

// countingIdentity counts the calls that reach the identity service.
type countingIdentity struct {
	Identity
	mu    sync.Mutex
	calls []string
}

func (c *countingIdentity) Call(ctx context.Context, op string, req, resp any) error {
	c.mu.Lock()
	c.calls = append(c.calls, op)
	c.mu.Unlock()
	return c.Identity.Call(ctx, op, req, resp)
}

func (c *countingIdentity) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

// cookiesOf are the cookies an answer sets, by name.
func cookiesOf(r result) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// cleared reports whether the answer clears the session cookies (empty,
// expired).
func cleared(r result) bool {
	cs := cookiesOf(r)
	for _, name := range []string{CookieAccess, CookieRefresh, CookieCSRF} {
		c, ok := cs[name]
		if !ok || c.Value != "" || c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(time.Now())) {
			return false
		}
	}
	return true
}

// session is a cookie session: what a browser sends back.
type session struct {
	access, refresh, csrf string
}

// cookie is the Cookie header of the session's cookies for path (tk_rt
// only goes to /v1/auth).
func (s session) cookie(path string) string {
	h := CookieAccess + "=" + s.access + "; " + CookieCSRF + "=" + s.csrf
	if strings.HasPrefix(path, "/v1/auth") {
		h += "; " + CookieRefresh + "=" + s.refresh
	}
	return h
}

// signInCookie signs w in with a cookie session through the API.
func signInCookie(t *testing.T, e *env, w who) (session, SignedIn) {
	t.Helper()
	a := e.account(t, w)
	r := e.call(t, "POST", "/v1/auth/signin", fmt.Sprintf(`{"email":%q,"password":%q,"cookie":true}`, a.Email, a.Password))
	s, in := wantCookieSession(t, r)
	if in.UserID != a.ID {
		t.Fatalf("signed in as %s, want %s", in.UserID, a.ID)
	}
	return s, in
}

// wantCookieSession checks a cookie session's sign-in answer: 200, the
// cookies with their attributes, no token in the body.
func wantCookieSession(t *testing.T, r result) (session, SignedIn) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("cookie sign-in: %s", r)
	}
	in := decode[SignedIn](t, r)
	cs := cookiesOf(r)
	at, rt, csrf := cs[CookieAccess], cs[CookieRefresh], cs[CookieCSRF]
	if at == nil || rt == nil || csrf == nil {
		t.Fatalf("cookies %v", r.header["Set-Cookie"])
	}
	if !at.HttpOnly || at.Path != "/" || at.SameSite != http.SameSiteStrictMode || at.MaxAge != in.ExpiresIn ||
		!rt.HttpOnly || rt.Path != "/v1/auth" || rt.SameSite != http.SameSiteStrictMode ||
		csrf.HttpOnly || csrf.Path != "/" || csrf.SameSite != http.SameSiteStrictMode || len(csrf.Value) < 20 {
		t.Fatalf("cookie attributes: %+v %+v %+v", at, rt, csrf)
	}
	// Cookie mode: no token in the body.
	for _, secret := range []string{at.Value, rt.Value} {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("the body has a token of the cookies: %s", r.body)
		}
	}
	if in.UserID == "" || in.SessionID == "" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("signed in %+v %v", in, r.header)
	}
	return session{at.Value, rt.Value, csrf.Value}, in
}

// Holds belong to their caller (OWASP API1, broken object level
// authorization): another account's or client's hold does not exist for
// the caller, whatever it does with the id, and nothing changes.
func TestBrokenObjectLevelAuthorization(t *testing.T) {
	e := newEnv(t)
	mine := decode[HoldCreated](t, hold(t, e, "bola-1", `{"seats":["101-A-1"]}`))
	p := newPartner(t, e, "bola", client.ScopeHoldsWrite, client.ScopeHoldsRead)
	pt := p.accessToken(t, e, "")
	theirs := decode[HoldCreated](t, e.call(t, "POST", holdsPath, `{"seats":["101-A-2"]}`, "Authorization", "Bearer "+pt.AccessToken, "Idempotency-Key", "bola-1"))
	if got := e.inv.holder(theirs.HoldID); got != p.id {
		t.Fatalf("the partner's hold is %q's", got)
	}
	for _, c := range []struct {
		name string
		auth []string
		id   string
	}{
		{"another buyer, a buyer's hold", e.auth(t, otherBuyer), mine.HoldID},
		{"an admin, a buyer's hold", e.auth(t, adminUser), mine.HoldID},
		{"a partner, a buyer's hold", []string{"Authorization", "Bearer " + pt.AccessToken}, mine.HoldID},
		{"a buyer, a partner's hold", e.auth(t, buyer), theirs.HoldID},
	} {
		for _, m := range []string{"GET", "DELETE"} {
			r := e.call(t, m, "/v1/holds/"+c.id, "", c.auth...)
			wantError(t, r, 404, "not_found", "")
			// The same answer as for a hold that does not exist.
			if strings.Contains(string(r.body), c.id) || strings.Contains(string(r.body), "101-A") {
				t.Fatalf("%s %s: the answer tells of the hold: %s", c.name, m, r)
			}
		}
	}
	for _, h := range []struct {
		id   string
		auth []string
	}{{mine.HoldID, e.auth(t, buyer)}, {theirs.HoldID, []string{"Authorization", "Bearer " + pt.AccessToken}}} {
		if v := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.id, "", h.auth...)); v.Status != "held" {
			t.Fatalf("the holder's hold after the others tried: %+v", v)
		}
	}

	// A session of another account does not exist either.
	sessions := decode[idapi.Sessions](t, e.callAs(t, buyer, "GET", "/v1/account/sessions", ""))
	if len(sessions.Sessions) != 1 {
		t.Fatalf("sessions %+v", sessions)
	}
	sid := sessions.Sessions[0].ID
	wantError(t, e.callAs(t, otherBuyer, "DELETE", "/v1/account/sessions/"+sid, ""), 404, "not_found", "")
	if again := decode[idapi.Sessions](t, e.callAs(t, buyer, "GET", "/v1/account/sessions", "")); len(again.Sessions) != 1 || again.Sessions[0].ID != sid {
		t.Fatalf("the session after another account revoked it: %+v", again)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {e.account(t, buyer).Refresh}}.Encode()
	if r := e.call(t, "POST", "/v1/auth/token", form, "Content-Type", "application/x-www-form-urlencoded"); r.status != 200 {
		t.Fatalf("the buyer's session was revoked by another account: %s", r)
	}
}

// The admin routes need the admin role (OWASP API5, broken function level
// authorization): a buyer and a partner client are 403 on every one, and
// nothing reaches the services behind them.
func TestBrokenFunctionLevelAuthorization(t *testing.T) {
	ids := &countingIdentity{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { ids.Identity = d.Identity; d.Identity = ids })
	me := e.account(t, buyer)
	p := newPartner(t, e, "bfla", client.KnownScopes()...)
	pt := p.accessToken(t, e, "")
	routes := []struct{ method, target, body string }{
		{"POST", "/v1/admin/venues", clubVenue},
		{"POST", "/v1/admin/events", `{"id":"x","name":"X","venue_id":"arena","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-12-01T10:00:00Z"}`},
		{"GET", reportPath, ""},
		{"GET", funnelPath, ""},
		{"PUT", "/v1/admin/accounts/" + me.ID + "/roles", `{"roles":["admin"]}`},
		{"POST", "/v1/admin/clients", `{"name":"mine","scopes":["holds:write"]}`},
		{"PUT", "/v1/admin/clients/" + p.id + "/disabled", `{"disabled":true}`},
	}
	before := ids.count()
	for _, c := range routes {
		for _, auth := range [][]string{e.auth(t, buyer), {"Authorization", "Bearer " + pt.AccessToken}} {
			wantError(t, e.call(t, c.method, c.target, c.body, auth...), 403, "forbidden", "")
		}
	}
	if n := e.admin.callCount() + e.reports.readCount() + e.funnels.readCount(); n != 0 {
		t.Fatalf("%d calls reached the catalog and reporting services", n)
	}
	if n := ids.count() - before; n != 0 {
		t.Fatalf("%d calls reached the identity service: %v", n, ids.calls[before:])
	}
	// Still a buyer, and the client still works.
	if prof := decode[auth.Profile](t, e.callAs(t, buyer, "GET", "/v1/account", "")); len(prof.Roles) != 0 {
		t.Fatalf("roles %v", prof.Roles)
	}
	p.accessToken(t, e, "")
	// The admin may.
	admin := e.auth(t, adminUser)
	if r := e.call(t, "GET", reportPath, "", admin...); r.status != 200 {
		t.Fatal(r)
	}
	if r := e.call(t, "POST", "/v1/admin/venues", clubVenue, admin...); r.status != 201 {
		t.Fatal(r)
	}
}

// Every route that needs a caller answers an anonymous one 401 with a
// Bearer challenge (RFC 6750 section 3), before anything is asked of the
// services behind it. The routes are the document's operations whose
// security has no anonymous alternative.
func TestAnonymousIsUnauthorized(t *testing.T) {
	ids := &countingIdentity{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { ids.Identity = d.Identity; d.Identity = ids })
	c := loadContract(t)
	n := 0
	for path, item := range c.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			anonymous := len(op.Security) == 0
			bearer := false
			for _, req := range op.Security {
				if req.Requirements == nil || req.Requirements.Len() == 0 {
					anonymous = true
				}
				if req.Requirements != nil {
					if _, ok := req.Requirements.Get("accessToken"); ok {
						bearer = true
					}
				}
			}
			if anonymous {
				continue
			}
			target := strings.NewReplacer("/v1/holds/{id}", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", "/events/{id}", "/events/arena-finals", "{id}", "x").Replace(path)
			body := ""
			if op.RequestBody != nil {
				body = "{}"
			}
			t.Run(strings.ToUpper(method)+" "+path, func(t *testing.T) {
				r := e.call(t, strings.ToUpper(method), target, body, "Idempotency-Key", "anon")
				wantError(t, r, 401, "unauthorized", "")
				if got := r.header.Get("WWW-Authenticate"); bearer && got != "Bearer" {
					t.Fatalf("WWW-Authenticate %q", got)
				}
			})
			n++
		}
	}
	if n < 23 {
		t.Fatalf("only %d routes need a caller", n)
	}
	if calls := e.inv.callCount() + e.admin.callCount() + e.reports.readCount() + e.funnels.readCount() + ids.count(); calls != 0 {
		t.Fatalf("%d calls reached the services: %v", calls, ids.calls)
	}
}

// signToken signs claims as an access token of type typ with ring: a
// genuine signature, whatever the claims say.
func signToken(ring *keyring.KeyRing, typ string, claims map[string]any) string {
	b, _ := json.Marshal(claims)
	tok, _ := ring.Sign(keyring.NewHeaders(typ), b)
	return string(tok)
}

func b64(v any) string {
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Attacks on access tokens through the edge: each is 401 invalid_token
// with the verifier's reason, on a route that needs a caller and on a
// public one, by header and by cookie (whose session cookies are
// cleared), and nothing reaches the inventory.
func TestAccessTokenAttacks(t *testing.T) {
	e := newEnv(t)
	me := e.account(t, buyer)
	h := decode[HoldCreated](t, hold(t, e, "t-1", `{"seats":["101-A-1"]}`))
	now := time.Now()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	good := map[string]any{"iss": e.ids.Tokens.Issuer, "aud": e.ids.Tokens.Audience, "sub": me.ID, "client_id": "web",
		"scope": auth.BuyerScopes, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": b64(jti[:])}
	with := func(change map[string]any) map[string]any {
		c := maps.Clone(good)
		for k, v := range change {
			c[k] = v
		}
		return c
	}
	ring := e.ids.Ring
	genuine := signToken(ring, token.Typ, good)
	// The claims above, signed with the identity service's key, are a
	// good token: what is refused below is refused for what was changed.
	if v := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", "Authorization", "Bearer "+genuine)); v.HoldID != h.HoldID {
		t.Fatalf("the genuine token: %+v", v)
	}
	parts := strings.Split(genuine, ".")
	kid := ring.ActiveKID()
	var x string
	for _, k := range ring.PublicJWKS().Keys {
		if k.KID == kid {
			x = k.X
		}
	}
	pub, err := base64.RawURLEncoding.DecodeString(x)
	if err != nil || len(pub) != 32 {
		t.Fatalf("public key %q: %v", x, err)
	}
	hs256 := func(key []byte) string {
		signed := b64(map[string]string{"alg": "HS256", "typ": token.Typ, "kid": kid}) + "." + parts[1]
		m := hmac.New(sha256.New, key)
		m.Write([]byte(signed))
		return signed + "." + b64(m.Sum(nil))
	}
	other, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, now)
	if err != nil {
		t.Fatal(err)
	}
	attacks := []struct{ name, token, reason string }{
		{"alg none", b64(map[string]string{"alg": "none", "typ": token.Typ, "kid": kid}) + "." + parts[1] + ".", token.ReasonAlgorithm},
		{"alg none with the signature", b64(map[string]string{"alg": "none", "typ": token.Typ, "kid": kid}) + "." + parts[1] + "." + parts[2], token.ReasonAlgorithm},
		{"HS256 keyed with the public key", hs256(pub), token.ReasonAlgorithm},
		{"HS256 keyed with the JWK's x", hs256([]byte(x)), token.ReasonAlgorithm},
		{"wrong audience", signToken(ring, token.Typ, with(map[string]any{"aud": "another-api"})), token.ReasonWrongAudience},
		{"wrong issuer", signToken(ring, token.Typ, with(map[string]any{"iss": "https://evil.example"})), token.ReasonWrongIssuer},
		{"wrong typ", signToken(ring, "JWT", good), token.ReasonWrongType},
		{"an admission token's typ", signToken(ring, "adm+jwt", good), token.ReasonWrongType},
		{"expired", signToken(ring, token.Typ, with(map[string]any{"iat": now.Add(-20 * time.Minute).Unix(), "exp": now.Add(-10 * time.Minute).Unix()})), token.ReasonExpired},
		{"not yet valid", signToken(ring, token.Typ, with(map[string]any{"nbf": now.Add(10 * time.Minute).Unix(), "exp": now.Add(15 * time.Minute).Unix()})), token.ReasonNotYetValid},
		{"unknown key", signToken(other, token.Typ, good), token.ReasonUnknownKey},
		{"tampered payload", parts[0] + "." + b64(with(map[string]any{"scope": auth.BuyerScopes + " admin"})) + "." + parts[2], token.ReasonBadSignature},
		{"another subject", parts[0] + "." + b64(with(map[string]any{"sub": e.account(t, otherBuyer).ID})) + "." + parts[2], token.ReasonBadSignature},
		{"a key in the header", b64(map[string]any{"alg": "EdDSA", "typ": token.Typ, "kid": kid, "jwk": map[string]string{"kty": "OKP", "crv": "Ed25519", "x": x}}) + "." + parts[1] + "." + parts[2], token.ReasonHeaderRefused},
		{"no signature", parts[0] + "." + parts[1] + ".", token.ReasonMalformed},
	}
	calls := e.inv.callCount()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for _, target := range []string{"/v1/holds/" + h.HoldID, "/v1/events"} {
				r := e.call(t, "GET", target, "", "Authorization", "Bearer "+a.token)
				wantError(t, r, 401, "unauthorized", a.reason)
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Fatalf("WWW-Authenticate %q", got)
				}
				r = e.call(t, "GET", target, "", "Cookie", CookieAccess+"="+a.token)
				wantError(t, r, 401, "unauthorized", a.reason)
				if !cleared(r) {
					t.Fatalf("the session cookies are not cleared: %v", r.header["Set-Cookie"])
				}
			}
			wantError(t, e.call(t, "POST", holdsPath, `{"seats":["101-A-3"]}`, "Authorization", "Bearer "+a.token, "Idempotency-Key", "t-2"),
				401, "unauthorized", a.reason)
		})
	}
	if n := e.inv.callCount() - calls; n != 0 {
		t.Fatalf("%d calls reached the inventory", n)
	}
	// The escalation did not happen either: the tampered admin token
	// opens no report.
	wantError(t, e.call(t, "GET", reportPath, "", "Authorization", "Bearer "+attacks[11].token), 401, "unauthorized", token.ReasonBadSignature)
}

// A cookie session's writes need the CSRF header (double submit); its
// reads do not; a bearer token's writes need none.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	me := e.account(t, buyer)
	s, in := signInCookie(t, e, buyer)
	if in.UserID != me.ID {
		t.Fatalf("signed in as %s", in.UserID)
	}
	calls := e.inv.callCount()
	for name, extra := range map[string][]string{
		"no header":                 nil,
		"a wrong header":            {HeaderCSRF, s.csrf + "x"},
		"the access token":          {HeaderCSRF, s.access},
		"a header but no cookie":    {HeaderCSRF, s.csrf, "Cookie", CookieAccess + "=" + s.access},
		"an empty header and token": {HeaderCSRF, "", "Cookie", CookieAccess + "=" + s.access + "; " + CookieCSRF + "="},
	} {
		t.Run(name, func(t *testing.T) {
			h := append([]string{"Cookie", s.cookie(holdsPath), "Idempotency-Key", "c-1"}, extra...)
			wantError(t, e.call(t, "POST", holdsPath, `{"seats":["101-A-1"]}`, h...), 403, "forbidden", "csrf")
		})
	}
	if n := e.inv.callCount() - calls; n != 0 {
		t.Fatalf("%d refused writes reached the inventory", n)
	}
	r := e.call(t, "POST", holdsPath, `{"seats":["101-A-1"]}`, "Cookie", s.cookie(holdsPath), HeaderCSRF, s.csrf, "Idempotency-Key", "c-1")
	if r.status != 201 {
		t.Fatal(r)
	}
	h := decode[HoldCreated](t, r)
	if got := e.inv.holder(h.HoldID); got != me.ID {
		t.Fatalf("holder %q", got)
	}
	// Reads need no header.
	if v := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", "Cookie", s.cookie("/v1/holds"))); v.Status != "held" {
		t.Fatalf("read by cookie: %+v", v)
	}
	if p := decode[auth.Profile](t, e.call(t, "GET", "/v1/account", "", "Cookie", s.cookie("/v1/account"))); p.ID != me.ID {
		t.Fatalf("profile by cookie: %+v", p)
	}
	wantError(t, e.call(t, "DELETE", "/v1/holds/"+h.HoldID, "", "Cookie", s.cookie("/v1/holds")), 403, "forbidden", "csrf")
	if v := decode[HoldView](t, e.call(t, "DELETE", "/v1/holds/"+h.HoldID, "", "Cookie", s.cookie("/v1/holds"), HeaderCSRF, s.csrf)); v.Status != "released" {
		t.Fatalf("release by cookie: %+v", v)
	}
	// A bearer token needs no CSRF header.
	if r := hold(t, e, "c-2", `{"seats":["101-A-2"]}`); r.status != 201 {
		t.Fatal(r)
	}
	// Refreshing and signing out by cookie need it too.
	wantError(t, e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth")), 403, "forbidden", "csrf")
	r = e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
	if r.status != 200 {
		t.Fatal(r)
	}
	rotated := cookiesOf(r)
	if rotated[CookieRefresh] == nil || rotated[CookieRefresh].Value == s.refresh || strings.Contains(string(r.body), rotated[CookieRefresh].Value) {
		t.Fatalf("refresh: %s %v", r, r.header["Set-Cookie"])
	}
	s = session{rotated[CookieAccess].Value, rotated[CookieRefresh].Value, rotated[CookieCSRF].Value}
	wantError(t, e.call(t, "POST", "/v1/auth/signout", "", "Cookie", s.cookie("/v1/auth")), 403, "forbidden", "csrf")
	r = e.call(t, "POST", "/v1/auth/signout", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
	if r.status != 204 || !cleared(r) {
		t.Fatalf("sign out: %s %v", r, r.header["Set-Cookie"])
	}
	// The session is over: its refresh token is refused.
	r = e.call(t, "POST", "/v1/auth/refresh", "", "Cookie", s.cookie("/v1/auth"), HeaderCSRF, s.csrf)
	wantError(t, r, 401, "unauthorized", "")
	if !cleared(r) {
		t.Fatalf("cookies of a refused refresh: %v", r.header["Set-Cookie"])
	}
}

// 405 with Allow for a method a path does not have, methods HTTP does not
// define included (Fiber would answer those 400 in plain text); 404 JSON
// for an unknown path, whatever the method.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, target, allow string }{
		{"PUT", "/v1/events", "GET, HEAD"},
		{"FOO", "/v1/events", "GET, HEAD"},
		{"BREW", "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", "DELETE, GET, HEAD"},
		{"GET", "/v1/auth/token", "POST"},
		{"DELETE", "/v1/account", "GET, HEAD"},
		{"GET", "/v1/admin/accounts/u_1/roles", "PUT"},
		{"PROPFIND", "/v1/account/sessions/s_1", "DELETE"},
		{"POST", client.WellKnownPath, "GET, HEAD"},
	} {
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			r := e.call(t, c.method, c.target, "")
			wantError(t, r, 405, "method_not_allowed", "")
			if got := r.header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
		})
	}
	for _, c := range []struct{ method, target string }{{"FOO", "/nope"}, {"GET", "/v1/nope"}, {"FOO", "/v1/auth"}, {"GET", "/v1/account/nope"}} {
		wantError(t, e.call(t, c.method, c.target, ""), 404, "not_found", "")
	}
	// Credentials the gateway refuses do not turn a request no route
	// takes into a 401 or a 403: it is still 404 or 405 (found by
	// FuzzApp), without a challenge or cleared cookies.
	s, _ := signInCookie(t, e, buyer)
	for _, cred := range [][]string{
		{"Authorization", "Bearer a.b.c"},
		{"Authorization", "BeArer"},
		{"Cookie", CookieAccess + "=a.b.c"},
		{"Cookie", s.cookie("/")}, // a write without the CSRF header
	} {
		for _, c := range []struct {
			method, target string
			status         int
		}{{"POST", "/v1/nope", 404}, {"POST", "/V1/EVENTS/arena-finals/nope", 404}, {"PUT", "/v1/events", 405}, {"DELETE", "/v1/auth/token", 405}} {
			r := e.call(t, c.method, c.target, "", cred...)
			if r.status != c.status || r.header.Get("WWW-Authenticate") != "" || len(r.header["Set-Cookie"]) != 0 {
				t.Fatalf("%s %s with %q: %s %v", c.method, c.target, cred, r, r.header)
			}
		}
	}
	// The route table matches as Fiber routes: a request of a route in
	// other case is refused for its credentials like the route (the
	// document has the route in lower case only: not checked against it).
	wantError(t, e.send(t, request("POST", "/V1/Events/arena-finals/HOLDS", `{"seats":["101-A-1"]}`, "Authorization", "Bearer a.b.c", "Idempotency-Key", "x")),
		401, "unauthorized", token.ReasonMalformed)
	if n := e.inv.callCount(); n != 0 {
		t.Fatalf("%d calls to the inventory", n)
	}
}

// Channels: a partner token on a route outside its channel's list is
// 403, on every route of the API (public ones too); the channel's limit
// counts the partner's requests; other channels are not concerned.
func TestChannels(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := memory.New(memory.Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *Config, d *Deps) {
		d.Limiter = lim
		c.Gateway.Channels = map[string]ChannelConfig{ChannelPartner: {
			Routes: []string{"POST /v1/events/:id/holds", "GET /v1/holds/:id", "GET /v1/events/:id"},
			Limit:  ratelimit.PerMinute(60, 6),
		}}
	})
	p := newPartner(t, e, "channels", client.ScopeHoldsWrite, client.ScopeHoldsRead, client.ScopeEventsRead)
	pt := "Bearer " + p.accessToken(t, e, "").AccessToken
	h := decode[HoldCreated](t, e.call(t, "POST", holdsPath, `{"seats":["101-A-1"]}`, "Authorization", pt, "Idempotency-Key", "ch-1"))
	if v := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", "Authorization", pt)); v.Status != "held" {
		t.Fatal(v)
	}
	if r := e.call(t, "HEAD", finals, "", "Authorization", pt); r.status != 200 {
		t.Fatalf("HEAD of a GET route of the list: %s", r)
	}
	for _, c := range []struct{ method, target string }{
		{"DELETE", "/v1/holds/" + h.HoldID},
		{"GET", "/v1/events"},
		{"GET", finals + "/availability"},
	} {
		r := e.call(t, c.method, c.target, "", "Authorization", pt)
		wantError(t, r, 403, "forbidden", "")
		if !strings.Contains(string(r.body), "partner channel") {
			t.Fatalf("%s %s: %s", c.method, c.target, r)
		}
	}
	if r := e.callAs(t, buyer, "GET", finals+"/availability", ""); r.status != 200 {
		t.Fatalf("another channel: %s", r)
	}
	// Six requests a minute: the seventh is refused with the RateLimit
	// fields, and another channel's caller is not.
	r := e.call(t, "GET", finals, "", "Authorization", pt)
	wantError(t, r, 429, "rate_limited", "rate_limited")
	if r.header.Get("RateLimit-Limit") != "6" || r.header.Get("RateLimit-Remaining") != "0" || r.header.Get("Retry-After") == "" {
		t.Fatalf("limit headers %v", r.header)
	}
	if r := e.callAs(t, buyer, "GET", finals, ""); r.status != 200 {
		t.Fatal(r)
	}
	now = now.Add(time.Minute)
	if r := e.call(t, "GET", finals, "", "Authorization", pt); r.status != 200 {
		t.Fatalf("a minute later: %s", r)
	}
}

// A partner client end to end: created by the admin, a token by the
// client credentials grant with HTTP Basic, seats held with it, the token
// introspected active by another client; once the client is disabled its
// token is inactive and it gets no other.
func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	p := newPartner(t, e, "Resale Partner", client.ScopeHoldsWrite, client.ScopeHoldsRead)
	inspector := newPartner(t, e, "Inspector", client.ScopeEventsRead)
	form := "application/x-www-form-urlencoded"
	grant := url.Values{"grant_type": {"client_credentials"}}.Encode()

	r := e.call(t, "POST", "/v1/auth/token", grant, "Content-Type", form, "Authorization", p.basic())
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %s %v", r, r.header)
	}
	tok := decode[TokenAnswer](t, r)
	if tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Scope != "holds:write holds:read" || tok.ExpiresIn <= 0 {
		t.Fatalf("token %+v", tok)
	}
	pt := []string{"Authorization", "Bearer " + tok.AccessToken}
	h := decode[HoldCreated](t, e.call(t, "POST", holdsPath, `{"zone":"floor","quantity":2}`, append(pt, "Idempotency-Key", "cc-1")...))
	if got := e.inv.holder(h.HoldID); got != p.id {
		t.Fatalf("the hold's holder is %q, want the client %q", got, p.id)
	}
	if v := decode[HoldView](t, e.call(t, "GET", "/v1/holds/"+h.HoldID, "", pt...)); v.Quantity != 2 {
		t.Fatal(v)
	}
	// A client is not an account.
	wantError(t, e.call(t, "GET", "/v1/account", "", pt...), 403, "forbidden", "")
	// A narrower scope asked for is what is granted.
	narrow := p.accessToken(t, e, "holds:read")
	wantError(t, e.call(t, "POST", holdsPath, `{"zone":"floor","quantity":1}`, "Authorization", "Bearer "+narrow.AccessToken, "Idempotency-Key", "cc-2"), 403, "forbidden", "")
	// Wrong secret: 401 invalid_client with a Basic challenge.
	wrong := partner{p.id, p.secret[:len(p.secret)-1] + "x"}
	r = e.call(t, "POST", "/v1/auth/token", grant, "Content-Type", form, "Authorization", wrong.basic())
	if o := decode[OAuthError](t, r); r.status != 401 || o.Error != "invalid_client" || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("wrong secret: %s %v", r, r.header)
	}
	// A scope it is not allowed.
	r = e.call(t, "POST", "/v1/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"reports:read"}}.Encode(), "Content-Type", form, "Authorization", p.basic())
	if o := decode[OAuthError](t, r); r.status != 400 || o.Error != "invalid_scope" {
		t.Fatalf("scope not allowed: %s", r)
	}

	introspect := func(tok string) client.Introspection {
		t.Helper()
		r := e.call(t, "POST", "/v1/auth/introspect", url.Values{"token": {tok}}.Encode(), "Content-Type", form, "Authorization", inspector.basic())
		if r.status != 200 {
			t.Fatalf("introspect: %s", r)
		}
		return decode[client.Introspection](t, r)
	}
	if in := introspect(tok.AccessToken); !in.Active || in.ClientID != p.id || in.Sub != p.id || in.Scope != tok.Scope || in.Iss != e.ids.Tokens.Issuer {
		t.Fatalf("introspection %+v", in)
	}
	// Introspection needs a client.
	r = e.call(t, "POST", "/v1/auth/introspect", url.Values{"token": {tok.AccessToken}}.Encode(), "Content-Type", form)
	if o := decode[OAuthError](t, r); r.status != 401 || o.Error != "invalid_client" {
		t.Fatalf("introspection without a client: %s", r)
	}

	if r := e.callAs(t, adminUser, "PUT", "/v1/admin/clients/"+p.id+"/disabled", `{"disabled":true}`); r.status != 204 {
		t.Fatal(r)
	}
	if in := introspect(tok.AccessToken); in != (client.Introspection{}) {
		t.Fatalf("introspection of a disabled client's token: %+v", in)
	}
	r = e.call(t, "POST", "/v1/auth/token", grant, "Content-Type", form, "Authorization", p.basic())
	if o := decode[OAuthError](t, r); r.status != 400 || o.Error != "unauthorized_client" {
		t.Fatalf("token of a disabled client: %s", r)
	}
	wantError(t, e.callAs(t, adminUser, "PUT", "/v1/admin/clients/c_00000000000000000000000000/disabled", `{"disabled":true}`), 404, "not_found", "")
	// Enabled again, it gets tokens again.
	if r := e.callAs(t, adminUser, "PUT", "/v1/admin/clients/"+p.id+"/disabled", `{"disabled":false}`); r.status != 204 {
		t.Fatal(r)
	}
	p.accessToken(t, e, "")
}

// The authorization server metadata (RFC 8414) is valid and every
// endpoint it names is a route of this edge.
func TestAuthorizationServerMetadata(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, "GET", client.WellKnownPath, "")
	if r.status != 200 {
		t.Fatal(r)
	}
	m := decode[client.Metadata](t, r)
	iss := e.ids.Tokens.Issuer
	if want, err := client.MetadataURL(iss); err != nil || want != iss+client.WellKnownPath {
		t.Fatalf("metadata URL %q %v", want, err)
	}
	if m.Issuer != iss || !slices.Equal(m.ScopesSupported, client.KnownScopes()) || !slices.Contains(m.GrantTypesSupported, "client_credentials") ||
		len(m.ResponseTypesSupported) != 0 || !slices.Contains(m.TokenEndpointAuthMethodsSupported, "client_secret_basic") {
		t.Fatalf("metadata %+v", m)
	}
	served := map[string]bool{}
	for _, rt := range e.app.GetRoutes(true) {
		served[rt.Method+" "+rt.Path] = true
	}
	for _, ep := range []struct{ method, url string }{{"POST", m.TokenEndpoint}, {"POST", m.IntrospectionEndpoint}, {"GET", m.JWKSURI}} {
		path, ok := strings.CutPrefix(ep.url, iss)
		if !ok || !served[ep.method+" "+path] {
			t.Errorf("%s %s is not a route of the edge", ep.method, ep.url)
		}
	}
	// The keys it points at verify the access tokens.
	r = e.call(t, "GET", strings.TrimPrefix(m.JWKSURI, iss), "")
	keys, err := keyring.ParseJWKS(r.body)
	if err != nil || r.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("jwks %s: %v", r, err)
	}
	v, err := token.NewVerifier(keys, e.ids.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(e.account(t, buyer).AccessToken, time.Now()); err != nil || c.Subject != e.account(t, buyer).ID {
		t.Fatalf("verify with the published keys: %+v %v", c, err)
	}
	// Without an issuer, no metadata.
	e.restart(func(c *Config, _ *Deps) { c.Issuer = "" })
	wantError(t, e.call(t, "GET", client.WellKnownPath, ""), 404, "not_found", "")
}
