package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/token"
)

// withBody runs f with a Fiber context whose request has the body.
func withBody(app *fiber.App, body []byte, f func(c *fiber.Ctx)) {
	c := app.AcquireCtx(&fasthttp.RequestCtx{})
	defer app.ReleaseCtx(c)
	c.Request().SetBody(body)
	f(c)
}

// knownKeys reports whether every member of the JSON object b is a field
// of v's type, as encoding/json matches them (without regard to case).
func knownKeys(t *testing.T, b []byte, v any) {
	t.Helper()
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		t.Fatalf("accepted %q, which is not an object: %v", b, err)
	}
	fields := jsonFields(reflect.TypeOf(v).Elem())
	for k := range members {
		ok := false
		for f := range fields {
			if strings.EqualFold(f, k) {
				ok = true
			}
		}
		if !ok {
			t.Fatalf("accepted %q with the unknown member %q", b, k)
		}
	}
}

// The accounts routes' bodies (decodeAuth): a client error of kind
// Invalid or TooLarge (413 exactly when over maxAuthBody), or a value of
// the documented members only that survives a round trip.
func FuzzDecodeAuthBody(f *testing.F) {
	bodies := []func() any{
		func() any { return &signUpBody{} }, func() any { return &emailBody{} }, func() any { return &verifyBody{} },
		func() any { return &resetBody{} }, func() any { return &signInBody{} }, func() any { return &secondFactorBody{} },
		func() any { return &signOutBody{} }, func() any { return &codeBody{} }, func() any { return &stepUpBody{} },
		func() any { return &passwordBody{} }, func() any { return &rolesBody{} }, func() any { return &clientBody{} },
		func() any { return &disabledBody{} }, func() any { return &mfaBody{} },
	}
	for i, s := range []string{
		`{"email":"ada@example.com","password":"correct horse battery staple","display_name":"Ada"}`,
		`{"email":"ada@example.com"}`, `{"token":"Xq3m9v2kL7pT1rW8yZ4bN6cD0fH5jS2a"}`, `{"token":"x","password":"y"}`,
		`{"email":"a@b.c","password":"p","client_id":"web","cookie":true}`, `{"mfa_token":"m","code":"123456","recovery":false,"cookie":true}`,
		`{"refresh_token":"s_1.x"}`, `{"code":"123456"}`, `{"step_up":{"password":"p","code":"1","recovery":true}}`,
		`{"step_up":{},"new_password":"x"}`, `{"roles":["admin"]}`, `{"name":"P","scopes":["holds:write"]}`,
		`{"disabled":true}`, `{"mfa_token":"m"}`,
		`{"EMAIL":"a@b.c","Password":"x"}`, `{"roles":null}`, `{"email":"a","email":"b"}`, `{"email":"a","roles":["admin"]}`,
		`{"step_up":{"password":"p","bypass":true}}`, `{"disabled":"yes"}`, `[]`, `null`, `{`, ``, `{} {}`,
		`{"email":"` + strings.Repeat("x", maxAuthBody) + `"}`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		newBody := bodies[int(kind)%len(bodies)]
		v := newBody()
		var err error
		withBody(app, body, func(c *fiber.Ctx) { err = decodeAuth(c, "fuzz", v) })
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxAuthBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		if len(body) > maxAuthBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		knownKeys(t, body, v)
		again, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		v2 := newBody()
		if err := decodeStrict("fuzz", again, v2); err != nil || !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %q: %s is %+v, %v", body, again, v2, err)
		}
	})
}

// A passkey ceremony's finish body: refused as a client error (413
// exactly when over maxPasskeyBody), or with a state, a credential that is
// one JSON value, and nothing else.
func FuzzDecodePasskeyFinish(f *testing.F) {
	for _, s := range []string{
		`{"state":"AQx3m9v2kL7pT1rW8yZ4bN6cD0fH5jS2a","credential":{"id":"Y3JlZA","type":"public-key","response":{}},"name":"Laptop"}`,
		`{"state":"s","credential":"garbage","mfa_token":"m","cookie":true}`,
		`{"state":"s","credential":null}`, `{"state":"","credential":{}}`, `{"credential":{}}`, `{"state":"s"}`,
		`{"state":"s","credential":{},"user_id":"u_1"}`, `{"state":"s","credential":[1,2]} x`, `{"State":"s","Credential":1}`,
		`{"state":"s","credential":{"a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`,
		`null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	app := fiber.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		var b passkeyFinishBody
		var err error
		withBody(app, body, func(c *fiber.Ctx) { b, err = decodePasskeyFinish(c, "fuzz") })
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxPasskeyBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		if len(body) > maxPasskeyBody || b.State == "" || len(b.Credential) == 0 || !json.Valid(b.Credential) {
			t.Fatalf("accepted %q as %+v", body, b)
		}
		knownKeys(t, body, &b)
		// What the identity service is sent is the credential as given.
		if !bytes.Contains(body, bytes.TrimSpace(b.Credential)) && string(b.Credential) != "null" {
			t.Fatalf("the credential %q is not the body's", b.Credential)
		}
	})
}

// The gateway's reading of credentials (authenticate): whatever the
// Authorization header, cookies and CSRF header, a caller is signed in
// only by a genuine access token presented whole, as the token's subject;
// a cookie session's writes only with the CSRF cookie's value in the
// header; another scheme is anonymous; a refused token is 401 with the
// Bearer challenge; nothing is a server error, and no answer quotes a
// credential.
func FuzzAuthenticate(f *testing.F) {
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	cfg := token.Config{Issuer: identityBaseURL, Audience: auth.DefaultAudience}
	issuer, err := token.NewIssuer(ring, cfg)
	if err != nil {
		f.Fatal(err)
	}
	verifier, err := token.NewVerifier(ring, cfg)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	genuine := map[string]string{} // token → subject
	issue := func(sub, client, scope string, at time.Time) string {
		tok, _, err := issuer.Issue(token.Request{Subject: sub, ClientID: client, Scope: scope}, at)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	user := issue("u_5d1c3b9a7f2e4d6c8b0a1f3e5d", "web", auth.BuyerScopes, now)
	partner := issue("c_2d24a7b054ae798e58f175a22e", "c_2d24a7b054ae798e58f175a22e", "holds:write", now)
	genuine[user], genuine[partner] = "u_5d1c3b9a7f2e4d6c8b0a1f3e5d", "c_2d24a7b054ae798e58f175a22e"
	expired := issue("u_5d1c3b9a7f2e4d6c8b0a1f3e5d", "web", "", now.Add(-time.Hour))
	fill := strings.NewReplacer("{user}", user, "{partner}", partner, "{expired}", expired)

	a := &API{deps: Deps{Tokens: verifier}, log: slog.New(slog.DiscardHandler)}
	app := fiber.New(fiber.Config{ErrorHandler: a.errorHandler})
	app.Use(a.authenticate)
	app.All("/*", func(c *fiber.Ctx) error {
		who := callerOf(c)
		c.Set("X-Caller", who.Subject)
		if who.Cookie {
			c.Set("X-Cookie", "1")
		}
		return c.SendStatus(fiber.StatusOK)
	})
	handler := app.Handler()

	for _, s := range []struct {
		method                     uint8
		authorization, cookie, hdr string
	}{
		{0, "Bearer {user}", "", ""},
		{0, "bearer   {partner}  ", "", ""},
		{1, "Bearer {user}", "", ""},
		{0, "Bearer {expired}", "", ""},
		{0, "Bearer {user}x", "", ""},
		{0, "Bearer {user} {user}", "", ""},
		{0, "Bearer", "", ""},
		{0, "Bearer ", "", ""},
		{0, "Basic dXNlcjpwYXNz", "", ""},
		{0, "Basic {user}", "", ""},
		{0, "Bearer not-a-jwt", "", ""},
		{0, "Bearer a.b.c", "", ""},
		{0, "", CookieAccess + "={user}", ""},
		{1, "", CookieAccess + "={user}; " + CookieCSRF + "=abc", "abc"},
		{1, "", CookieAccess + "={user}; " + CookieCSRF + "=abc", "abd"},
		{1, "", CookieAccess + "={user}; " + CookieCSRF + "=", ""},
		{1, "", CookieAccess + "={user}", ""},
		{2, "", CookieAccess + "={user}; " + CookieCSRF + "=abc", "abc"},
		{0, "", CookieAccess + "={expired}", ""},
		{0, "", CookieAccess + "=; " + CookieAccess + "={user}", ""},
		{1, "Bearer {user}", CookieAccess + "={partner}", ""},
		{0, "Token {user}", CookieAccess + "={user}", ""},
	} {
		f.Add(s.method, s.authorization, s.cookie, s.hdr)
	}
	methods := []string{"GET", "POST", "DELETE", "HEAD", "OPTIONS", "PUT"}
	f.Fuzz(func(t *testing.T, method uint8, authorization, cookie, csrf string) {
		m := methods[int(method)%len(methods)]
		authorization, cookie = fill.Replace(authorization), fill.Replace(cookie)
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(m)
		ctx.Request.SetRequestURI("/v1/holds/x")
		if authorization != "" {
			ctx.Request.Header.Set(fiber.HeaderAuthorization, authorization)
		}
		if cookie != "" {
			ctx.Request.Header.Set(fiber.HeaderCookie, cookie)
		}
		if csrf != "" {
			ctx.Request.Header.Set(HeaderCSRF, csrf)
		}
		handler(&ctx)
		status := ctx.Response.StatusCode()
		sentAuth := string(ctx.Request.Header.Peek(fiber.HeaderAuthorization))
		where := func() string {
			return m + " Authorization=" + strings.Clone(sentAuth) + " Cookie=" + string(ctx.Request.Header.Peek(fiber.HeaderCookie)) +
				" CSRF=" + string(ctx.Request.Header.Peek(HeaderCSRF)) + " → " + ctx.Response.String()
		}
		switch status {
		case 200:
			sub := string(ctx.Response.Header.Peek("X-Caller"))
			if sub == "" {
				return // anonymous
			}
			var presented string
			if ctx.Response.Header.Peek("X-Cookie") != nil {
				presented = string(ctx.Request.Header.CookieBytes([]byte(CookieAccess)))
				if sentAuth != "" {
					t.Fatalf("%s: signed in by cookie with an Authorization header", where())
				}
				if !safeMethod(m) {
					want := string(ctx.Request.Header.CookieBytes([]byte(CookieCSRF)))
					if want == "" || want != string(ctx.Request.Header.Peek(HeaderCSRF)) {
						t.Fatalf("%s: a cookie write without the CSRF header", where())
					}
				}
			} else {
				scheme, rest, _ := strings.Cut(sentAuth, " ")
				if !strings.EqualFold(scheme, "bearer") {
					t.Fatalf("%s: signed in by another scheme", where())
				}
				presented = strings.TrimSpace(rest)
			}
			if genuine[presented] != sub {
				t.Fatalf("%s: signed in as %q with %q, which is not a genuine token of it", where(), sub, presented)
			}
		case 401:
			if !strings.HasPrefix(string(ctx.Response.Header.Peek(fiber.HeaderWWWAuthenticate)), "Bearer") {
				t.Fatalf("%s: 401 without the Bearer challenge", where())
			}
		case 403:
			var b ErrorBody
			if err := json.Unmarshal(ctx.Response.Body(), &b); err != nil || b.Error.Reason != "csrf" {
				t.Fatalf("%s: 403 not for CSRF", where())
			}
		default:
			t.Fatalf("%s: status %d", where(), status)
		}
		if status != 200 {
			var b ErrorBody
			if err := json.Unmarshal(ctx.Response.Body(), &b); err != nil || b.Error.Message == "" {
				t.Fatalf("%s: not an error body", where())
			}
			for _, secret := range []string{user, partner, expired, sentAuth, csrf} {
				if len(secret) >= 8 && strings.Contains(b.Error.Message, secret) {
					t.Fatalf("%s: the answer quotes a credential", where())
				}
			}
		}
	})
}
