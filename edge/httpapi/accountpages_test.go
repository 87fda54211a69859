package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/chromiumtest"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/auth/authtest"
	"github.com/ticketing/ticketing/services/identity/totp"
)

// The accounts pages (/signup, /signin, /verify, /forgot, /reset,
// /account) driven in headless Chromium against the real identity service
// (authtest on an embedded core node) behind the real API, served on a
// loopback port and opened as http://localhost:<port>: WebAuthn binds
// passkeys to a domain, and the identity service's relying party is its
// public URL's host.

// accountSite is an API with the identity service, served over HTTP.
type accountSite struct {
	url string // http://localhost:<port>
	id  *authtest.Fixture
}

func newAccountSite(t *testing.T) *accountSite {
	t.Helper()
	_, nc, js := nodetest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &accountSite{url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	s.id = authtest.Start(t, nc, js, s.url)
	app := New(Config{}, Deps{Identity: s.id.Client, Tokens: s.id.Verifier, Log: slog.New(slog.DiscardHandler)})
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	})
	return s
}

var seeded int

// seed creates a verified account and returns its address and password.
func (s *accountSite) seed(t *testing.T) (string, string) {
	t.Helper()
	seeded++
	email := fmt.Sprintf("pages-%d-%d@example.com", time.Now().UnixNano(), seeded)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.id.Auth.Seed(ctx, auth.SeedAccount{Email: email, Password: "correct horse battery", DisplayName: "Page Tester"}); err != nil {
		t.Fatal(err)
	}
	return email, "correct horse battery"
}

// profile reads the account's profile through the service.
func (s *accountSite) profile(t *testing.T, email string) auth.Profile {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := s.id.Accounts.ByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	return auth.ProfileOf(a)
}

// do runs browser actions, and on failure reports what the page shows.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	// Within a step's own deadline, so that the page can still be read
	// when it fails.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s: %v\nat %s the page shows:\n%s", what, err, loc, body)
	}
}

// poll waits until the expression is truthy.
func poll(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr)(ctx, t)
		return err
	})
}

// at waits until the page's path is path, through the navigations on the
// way (each ends a poll of the page it started on).
func at(path string) chromedp.Action[chromedp.Void] {
	js, _ := json.Marshal(path)
	wait := chromedp.Poll[bool](`location.pathname === ` + string(js) + ` && document.readyState === "complete"`)
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			_, err := wait(ctx, t)
			if err == nil || ctx.Err() != nil {
				return err
			}
		}
	})
}

// fill sets form fields (selector, value pairs).
func fill(pairs ...string) chromedp.Action[chromedp.Void] {
	var steps []chromedp.Action[chromedp.Void]
	for i := 0; i+1 < len(pairs); i += 2 {
		steps = append(steps, chromedp.WaitVisible(chromedp.CSS(pairs[i])), chromedp.SetValue(chromedp.CSS(pairs[i]), pairs[i+1]))
	}
	return chromedp.Steps(steps...)
}

func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// textOf returns an element's text.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return s
}

// signIn signs in with a password on the sign-in page (going there with
// next), and waits for the path the page then goes to.
func browserSignIn(t *testing.T, ctx context.Context, s *accountSite, email, password, next, landing string) {
	t.Helper()
	u := s.url + "/signin"
	if next != "" {
		u += "?next=" + next
	}
	do(t, ctx, "sign in as "+email,
		chromedp.Navigate(u),
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		at(landing),
	)
}

// signOut signs out on the account page.
func signOut(t *testing.T, ctx context.Context, s *accountSite) {
	t.Helper()
	do(t, ctx, "sign out",
		chromedp.Navigate(s.url+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
		click("#signout"),
		at("/signin"),
	)
	if c, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(c, "tk_csrf=") {
		t.Fatalf("after signing out the page has the cookies %q (%v)", c, err)
	}
}

// TestAccountPagesServed: every page and script is served with its type
// and the pages' security headers; the HTML has no inline script or style
// (the CSP forbids them), and every form control has a label.
func TestAccountPagesServed(t *testing.T) {
	app := New(Config{}, Deps{Log: slog.New(slog.DiscardHandler)})
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := app.Test(httptestRequest("GET", path), -1)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	for path, file := range accountPages {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if (path == "/account") != strings.Contains(csp, "img-src 'self' data:") {
			t.Errorf("%s: CSP %q: only the account page shows data: images (the QR code)", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
		if !bytes.Contains(body, []byte(`<script src="/web/account.js" defer></script>`)) {
			t.Errorf("%s (%s) does not load account.js", path, file)
		}
	}
	for _, name := range pageScripts {
		resp, body := get("/web/" + name)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") || len(body) == 0 {
			t.Errorf("/web/%s: %d %s", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	pages, err := fs.Glob(web, "web/*.html")
	if err != nil || len(pages) != len(accountPages)+5 { // queue, select, checkout, order, tickets
		t.Fatalf("pages %v (%v)", pages, err)
	}
	for _, p := range pages {
		b, _ := web.ReadFile(p)
		for _, problem := range checkMarkup(b) {
			t.Errorf("%s: %s", p, problem)
		}
	}
}

// checkMarkup lists what in an HTML page the CSP would block or a screen
// reader would miss: inline scripts, styles and event handlers, and form
// controls without a label.
func checkMarkup(b []byte) []string {
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	labels := map[string]bool{}
	var controls []string
	attr := func(n *html.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			if _, ok := attr(n, "style"); ok {
				problems = append(problems, "inline style on <"+n.Data+">")
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					problems = append(problems, "inline handler "+a.Key)
				}
			}
			switch n.Data {
			case "style":
				problems = append(problems, "<style> element")
			case "script":
				if src, _ := attr(n, "src"); src == "" {
					problems = append(problems, "inline <script>")
				}
			case "label":
				if f, ok := attr(n, "for"); ok {
					labels[f] = true
				}
			case "input", "select", "textarea":
				if typ, _ := attr(n, "type"); typ != "hidden" && typ != "submit" {
					id, _ := attr(n, "id")
					controls = append(controls, id)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range controls {
		if id == "" || !labels[id] {
			problems = append(problems, fmt.Sprintf("form control %q has no <label for>", id))
		}
	}
	return problems
}

func httptestRequest(method, target string) *http.Request {
	req, _ := http.NewRequest(method, "http://localhost"+target, nil)
	return req
}

// TestSafeNextInBrowser: the sign-in page returns only to paths of its own
// site.
func TestSafeNextInBrowser(t *testing.T) {
	s := newAccountSite(t)
	ctx := chromiumtest.New(t, 60*time.Second)
	do(t, ctx, "open the sign-in page", chromedp.Navigate(s.url+"/signin"), chromedp.WaitVisible(chromedp.CSS("#email")))
	for raw, want := range map[string]string{
		"/events/x/select":                 "/events/x/select",
		"/queue/a?b=c#d":                   "/queue/a?b=c#d",
		"//evil.example/x":                 "/account",
		"/\\evil.example":                  "/account",
		"https://evil.example/":            "/account",
		"javascript:alert(1)":              "/account",
		"/%0d%0aSet-Cookie:x":              "/%0d%0aSet-Cookie:x",
		"/\tjavascript:x":                  "/account",
		"":                                 "/account",
		"relative/path":                    "/account",
		"/a/../../b":                       "/b",
		"http://" + s.url[len("http://"):]: "/account",
	} {
		js, _ := json.Marshal(raw)
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`tk.safeNext(`+string(js)+`, "/account")`))
		if err != nil || got != want {
			t.Errorf("safeNext(%q) = %q (%v), want %q", raw, got, err, want)
		}
	}
	// The sign-in link of a page returns to it.
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`tk.signInHref("/events/x/select?y=1")`))
	if err != nil || href != "/signin?next=%2Fevents%2Fx%2Fselect%3Fy%3D1" {
		t.Errorf("signInHref: %q %v", href, err)
	}
}

// TestSignUpToAccountInBrowser: sign up on the page; signing in before
// confirming the address is refused with a way to get the mail again; the
// mailed link (/verify#token) confirms it; sign in lands on the page named
// by next (here the account page), which shows the address and this
// browser's session; sign out. Then the password is reset through /forgot
// and the mailed /reset link, and the new one signs in.
func TestSignUpToAccountInBrowser(t *testing.T) {
	s := newAccountSite(t)
	ctx := chromiumtest.New(t, 2*time.Minute)
	email := fmt.Sprintf("signup-%d@example.com", time.Now().UnixNano())
	const password = "a long enough password"

	do(t, ctx, "sign up with a short password",
		chromedp.Navigate(s.url+"/signup"),
		fill("#email", email, "#password", "short"),
		click(`#signup-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#form-error")),
	)
	if msg := textOf(t, ctx, "#form-error"); !strings.Contains(msg, "at least 8 characters") {
		t.Errorf("a short password is refused with %q", msg)
	}
	do(t, ctx, "sign up",
		fill("#password", password, "#display_name", "Sign Upper"),
		click(`#signup-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	if got := textOf(t, ctx, "#done-email"); got != email {
		t.Errorf("the page says the mail went to %q", got)
	}

	signInURL := s.url + "/signin?next=" + "%2Faccount"
	do(t, ctx, "sign in before confirming",
		chromedp.Navigate(signInURL),
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#form-error[data-code="email_unverified"]`)),
		click("#resend-button"),
		poll(`document.getElementById("resend-status").textContent.startsWith("Sent")`),
	)
	token := s.id.Link(t, email, "/verify")
	do(t, ctx, "open the mailed link",
		chromedp.Navigate(s.url+"/verify#"+token),
		chromedp.WaitVisible(chromedp.CSS(`#verify-state[data-state="verified"]`)),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.Contains(loc, token) {
		t.Errorf("the token stays in the address bar: %s", loc)
	}
	do(t, ctx, "open the mailed link again",
		chromedp.Navigate(s.url+"/verify#"+token),
		chromedp.WaitVisible(chromedp.CSS(`#verify-state[data-state="failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#form-error`)),
	)

	browserSignIn(t, ctx, s, email, password, "%2Faccount", "/account")
	do(t, ctx, "the account page", chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#sessions li[data-current="true"]`)))
	if got := textOf(t, ctx, "#profile-email"); got != email {
		t.Errorf("the account page shows %q, want %q", got, email)
	}
	if got := textOf(t, ctx, "#profile-name"); got != "Sign Upper" {
		t.Errorf("name %q", got)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sessions li").length`)); n != 1 {
		t.Errorf("%d sessions listed, want this browser's", n)
	}
	signOut(t, ctx, s)
	do(t, ctx, "the account page signed out",
		chromedp.Navigate(s.url+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#signed-out")),
	)

	const newPassword = "another long password"
	do(t, ctx, "forgot the password",
		chromedp.Navigate(s.url+"/forgot"),
		fill("#email", email),
		click(`#forgot-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	reset := s.id.Link(t, email, "/reset")
	do(t, ctx, "reset the password, with a typo first",
		chromedp.Navigate(s.url+"/reset#"+reset),
		fill("#password", newPassword, "#confirm", newPassword+"x"),
		click(`#reset-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#form-error")),
		fill("#confirm", newPassword),
		click(`#reset-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#done")),
	)
	do(t, ctx, "the old password is refused",
		chromedp.Navigate(s.url+"/signin"),
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#form-error[data-code="invalid_credentials"]`)),
	)
	browserSignIn(t, ctx, s, email, newPassword, "", "/account")
	do(t, ctx, "the account page", chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)))
}

var recoveryCode = regexp.MustCompile(`^[A-Za-z0-9-]{8,}$`)

// TestTOTPInBrowser: set up an authenticator app on the account page (the
// QR code is an image the page shows, the key is the one the service
// keeps), get the recovery codes once; then a sign-in asks for a code: a
// wrong one sends the page back to the password, a right one signs in, and
// so does a recovery code (spent). A password change with a code keeps
// this browser's session and ends the others.
func TestTOTPInBrowser(t *testing.T) {
	s := newAccountSite(t)
	ctx := chromiumtest.New(t, 2*time.Minute)
	email, password := s.seed(t)
	browserSignIn(t, ctx, s, email, password, "", "/account")

	do(t, ctx, "set up the app",
		chromedp.WaitVisible(chromedp.CSS(`#totp-state[data-state="off"]`)),
		click("#totp-start"),
		chromedp.WaitVisible(chromedp.CSS("#totp-enrol")),
		poll(`(() => { const i = document.getElementById("totp-qr"); return i.complete && i.naturalWidth >= 100; })()`),
	)
	secret := textOf(t, ctx, "#totp-secret")
	uri, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("totp-uri").getAttribute("href")`))
	if err != nil || !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("otpauth URI %q (%v) for the key %q", uri, err, secret)
	}
	code := func(steps int) string {
		c, err := totp.Code(secret, time.Now().Add(time.Duration(steps)*totp.Period*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	do(t, ctx, "a wrong code does not turn it on",
		fill("#totp-code", "000000"),
		click(`#totp-confirm-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#totp-error")),
	)
	// Three codes in a row, each of a later time step than the last
	// (a code is good once): the one before now, now's, the next.
	do(t, ctx, "confirm",
		fill("#totp-code", code(-1)),
		click(`#totp-confirm-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#totp-state[data-state="on"]`)),
		chromedp.WaitVisible(chromedp.CSS("#recovery-codes-box")),
	)
	if !s.profile(t, email).TOTP {
		t.Fatal("the page says the app is on; the service does not")
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#recovery-codes code"), (c) => c.textContent)`))
	if err != nil || len(codes) != 10 || !recoveryCode.MatchString(codes[0]) {
		t.Fatalf("recovery codes shown: %q (%v)", codes, err)
	}
	do(t, ctx, "the codes are shown once",
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#totp-state[data-state="on"]`)),
	)
	if shown, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.getElementById("recovery-codes-box").hidden`)); shown {
		t.Error("the recovery codes are shown again after a reload")
	}
	signOut(t, ctx, s)

	do(t, ctx, "a wrong code",
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#totp-form")),
		fill("#code", "123456"),
		click(`#totp-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#signin-form")),
		chromedp.WaitVisible(chromedp.CSS("#form-error")),
	)
	if msg := textOf(t, ctx, "#form-error"); !strings.Contains(msg, "not right") {
		t.Errorf("after a wrong code the page says %q", msg)
	}
	do(t, ctx, "the right code",
		fill("#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#totp-form")),
		fill("#code", code(0)),
		click(`#totp-form button[type="submit"]`),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	signOut(t, ctx, s)

	do(t, ctx, "a recovery code",
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#recovery-choice")),
		fill("#code", codes[3]),
		click("#recovery"),
		click(`#totp-form button[type="submit"]`),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	if left := s.profile(t, email).RecoveryLeft; left != 9 {
		t.Errorf("%d recovery codes left after using one, want 9", left)
	}

	// Another session (an app), which a password change ends.
	actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := s.id.Auth.PasswordSignIn(actx, auth.SignInRequest{Email: email, Password: password})
	if err != nil || other.MFA == "" {
		t.Fatalf("sign-in of another client: %+v %v", other, err)
	}
	otherTokens, err := s.id.Auth.SecondFactor(actx, auth.SecondFactorRequest{MFA: other.MFA, Code: codes[4], Recovery: true})
	if err != nil {
		t.Fatal(err)
	}
	const newPassword = "a brand new password"
	do(t, ctx, "change the password without the code",
		chromedp.WaitVisible(chromedp.CSS("#pw-code")),
		fill("#pw-current", password, "#pw-new", newPassword),
		click(`#password-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#password-error[data-code="step_up_required"]`)),
	)
	do(t, ctx, "change the password",
		fill("#pw-current", password, "#pw-code", code(1), "#pw-new", newPassword),
		click(`#password-form button[type="submit"]`),
		poll(`document.getElementById("password-done").textContent !== ""`),
	)
	if _, err := s.id.Auth.Refresh(actx, auth.RefreshRequest{RefreshToken: otherTokens.RefreshToken}); err == nil {
		t.Error("the other session survived the password change")
	}
	// This browser's session goes on: its refresh token still works.
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`tk.refresh()`, chromedp.EvalAwaitPromise))
	if err != nil || !ok {
		t.Errorf("this browser's session ended with the password change: refresh %v %v", ok, err)
	}
}

// TestPasskeysInBrowser: add a passkey on the account page (a virtual
// authenticator makes it), sign in with it alone, then with the password
// and the passkey as the second factor, and remove it after confirming
// with the password.
func TestPasskeysInBrowser(t *testing.T) {
	s := newAccountSite(t)
	ctx := chromiumtest.New(t, 2*time.Minute)
	authenticator := chromiumtest.VirtualAuthenticator(t, ctx)
	email, password := s.seed(t)
	browserSignIn(t, ctx, s, email, password, "", "/account")

	do(t, ctx, "add a passkey",
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
		fill("#passkey-name", "Test laptop"),
		click("#passkey-add"),
		chromedp.WaitVisible(chromedp.CSS(`#passkeys li[data-passkey]`)),
	)
	if got := textOf(t, ctx, `#passkeys li[data-passkey] .item-name`); got != "Test laptop" {
		t.Errorf("passkey listed as %q", got)
	}
	p := s.profile(t, email)
	if len(p.Passkeys) != 1 || p.Passkeys[0].Name != "Test laptop" {
		t.Fatalf("the service has the passkeys %+v", p.Passkeys)
	}
	creds := chromiumtest.Credentials(t, ctx, authenticator)
	if len(creds) != 1 || !creds[0].IsResidentCredential || creds[0].RpID != "localhost" {
		t.Fatalf("the authenticator holds %+v", creds)
	}
	do(t, ctx, "the same authenticator cannot add a second passkey",
		click("#passkey-add"),
		chromedp.WaitVisible(chromedp.CSS("#passkeys-error")),
	)
	signOut(t, ctx, s)

	do(t, ctx, "sign in with the passkey alone",
		chromedp.Navigate(s.url+"/signin?next=%2Faccount"),
		click("#passkey-button"),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	if got := textOf(t, ctx, "#profile-email"); got != email {
		t.Errorf("signed in with the passkey as %q", got)
	}
	signOut(t, ctx, s)

	do(t, ctx, "password, then the passkey",
		fill("#email", email, "#password", password),
		click(`#signin-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS("#mfa-passkey")),
		click("#mfa-passkey-button"),
		at("/account"),
		chromedp.WaitVisible(chromedp.CSS(`#account-state[data-state="ready"]`)),
	)
	if used := s.profile(t, email).Passkeys[0].LastUsedAt; used.IsZero() {
		t.Error("the passkey's last use is not recorded")
	}

	do(t, ctx, "remove it with a wrong password",
		click(`#passkeys li[data-passkey] button`),
		fill("#pr-password", "not my password"),
		click(`#passkey-remove-form button[type="submit"]`),
		chromedp.WaitVisible(chromedp.CSS(`#passkeys-error[data-code="step_up_required"]`)),
	)
	do(t, ctx, "remove it",
		fill("#pr-password", password),
		click(`#passkey-remove-form button[type="submit"]`),
		poll(`document.querySelectorAll("#passkeys li[data-passkey]").length === 0`),
	)
	if n := len(s.profile(t, email).Passkeys); n != 0 {
		t.Errorf("%d passkeys left after removing", n)
	}
	signOut(t, ctx, s)
	do(t, ctx, "the removed passkey no longer signs in",
		click("#passkey-button"),
		chromedp.WaitVisible(chromedp.CSS("#form-error")),
	)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/signin") {
		t.Errorf("after a refused passkey the page is at %s", loc)
	}
}
