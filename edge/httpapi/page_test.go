package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/net/websocket"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
	"github.com/ticketing/ticketing/internal/chromiumtest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/identity/auth"
	"github.com/ticketing/ticketing/services/identity/auth/authtest"
)

func TestPages(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/queue/arena-finals", "/events/arena-finals/select"} {
		r := e.send(t, request("GET", p, ""))
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %s", p, r)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		for _, want := range []string{`<script src="/web/queue.js" defer>`, `aria-live="polite"`} {
			if !bytes.Contains(r.body, []byte(want)) {
				t.Errorf("%s lacks %s", p, want)
			}
		}
	}
	if r := e.send(t, request("GET", "/queue/arena-finals", "")); !bytes.Contains(r.body, []byte(`<progress id="progress"`)) {
		t.Errorf("the queue page has no progress bar")
	}
	for _, p := range []string{"/queue/no-such-event", "/events/no-such-event/select"} {
		if r := e.call(t, "GET", p, ""); r.status != 404 || !strings.Contains(string(r.body), `"not_found"`) {
			t.Errorf("%s: %s", p, r)
		}
	}
	for p, ct := range map[string]string{"/web/queue.js": "text/javascript", "/web/page.css": "text/css"} {
		r := e.send(t, request("GET", p, ""))
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), ct) || len(r.body) == 0 {
			t.Errorf("%s: %s", p, r)
		}
	}
}

// The checkout page names the payment service's URL in a meta tag
// (escaped) and its CSP lets it frame that origin only; without a
// PaymentURL it frames nothing. The order page is the same for any id.
func TestCheckoutPages(t *testing.T) {
	e := newEnv(t)
	r := e.send(t, request("GET", "/checkout/arena-finals", ""))
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("checkout page: %s", r)
	}
	if csp := r.header.Get("Content-Security-Policy"); csp != pageSecurity {
		t.Errorf("without a payment URL the checkout's CSP is %q", csp)
	}
	for _, want := range []string{`<meta name="payment-url" content="">`, `<script src="/web/checkout.js" defer>`, `role="status"`} {
		if !bytes.Contains(r.body, []byte(want)) {
			t.Errorf("the checkout page lacks %s", want)
		}
	}
	if r := e.call(t, "GET", "/checkout/no-such-event", ""); r.status != 404 {
		t.Errorf("checkout of an unknown event: %s", r)
	}

	e.restart(func(c *Config, _ *Deps) { c.PaymentURL = "https://Pay.example:8443/" })
	r = e.send(t, request("GET", "/checkout/arena-finals", ""))
	if csp := r.header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; frame-src https://pay.example:8443") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("checkout CSP %q", csp)
	}
	if !bytes.Contains(r.body, []byte(`<meta name="payment-url" content="https://Pay.example:8443">`)) {
		t.Errorf("the checkout page does not name the payment URL:\n%s", r.body)
	}
	e.restart(func(c *Config, _ *Deps) { c.PaymentURL = `https://pay.example/a"><script>alert(1)</script>` })
	r = e.send(t, request("GET", "/checkout/arena-finals", ""))
	if bytes.Contains(r.body, []byte(`"><script>`)) || !bytes.Contains(r.body, []byte(`content="https://pay.example/a&#34;&gt;&lt;script&gt;`)) {
		t.Errorf("the payment URL is not escaped:\n%s", r.body)
	}

	for _, p := range []string{"/orders/o_abc", "/orders/anything"} {
		r := e.send(t, request("GET", p, ""))
		if r.status != 200 || !bytes.Contains(r.body, []byte(`data-page="order"`)) || r.header.Get("Content-Security-Policy") != pageSecurity {
			t.Errorf("%s: %s", p, r)
		}
	}
	if r := e.send(t, request("GET", "/web/checkout.js", "")); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Errorf("checkout.js: %s", r)
	}
}

// TestJoinGuardHeaders: a join refused by joinguard answers 429 with the
// RateLimit fields, or 403 with the challenge to solve.
func TestJoinGuardHeaders(t *testing.T) {
	g, err := joinguard.New(joinguard.Config{
		BaseDifficulty: 4, SuspectDifficulty: 4,
		IPLimit: ratelimit.PerMinute(60, 2),
	}, newMemoryLimiter(t))
	if err != nil {
		t.Fatal(err)
	}
	a := &API{log: slog.New(slog.DiscardHandler)}
	app := fiber.New(fiber.Config{ErrorHandler: a.errorHandler})
	app.Post("/join", func(c *fiber.Ctx) error {
		if err := g.Check(c.UserContext(), "192.0.2.1", "s", "ev", c.Get(HeaderQueuePoW), time.Now()); err != nil {
			setJoinGuardHeaders(c, err)
			return err
		}
		return c.SendStatus(201)
	})
	join := func(pow string) *http.Response {
		req := httptest.NewRequest("POST", "/join", nil)
		if pow != "" {
			req.Header.Set(HeaderQueuePoW, pow)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := join("")
	var body ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	ch, d := resp.Header.Get(HeaderQueuePoWChallenge), resp.Header.Get(HeaderQueuePoWDifficulty)
	if resp.StatusCode != 403 || body.Error.Reason != joinguard.ReasonPoWRequired || ch == "" || d != "4" {
		t.Fatalf("without work: %d %+v challenge %q difficulty %q", resp.StatusCode, body.Error, ch, d)
	}
	if resp := join(joinguard.Solve(ch, 4)); resp.StatusCode != 201 {
		t.Fatalf("with the challenge solved: %d", resp.StatusCode)
	}
	resp = join("")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("RateLimit-Limit") != "2" ||
		resp.Header.Get("RateLimit-Policy") == "" {
		t.Fatalf("beyond the limit: %d %v", resp.StatusCode, resp.Header)
	}
}

// pageAnswer reports whether r is a page or page asset served at path: the
// only answers that are not JSON (besides /metrics).
func pageAnswer(path string, r result) bool {
	ct := r.header.Get("Content-Type")
	path = strings.TrimSuffix(strings.ToLower(path), "/") // Fiber routes without regard to either
	_, account := accountPages[path]
	script := false
	for _, name := range pageScripts {
		script = script || path == "/web/"+strings.ToLower(name)
	}
	return r.status == http.StatusOK && (strings.HasPrefix(path, "/queue/") && strings.HasPrefix(ct, "text/html") ||
		strings.HasPrefix(path, "/events/") && strings.HasPrefix(ct, "text/html") ||
		account && strings.HasPrefix(ct, "text/html") ||
		script && strings.HasPrefix(ct, "text/javascript") ||
		path == "/web/page.css" && strings.HasPrefix(ct, "text/css"))
}

func newMemoryLimiter(t *testing.T) ratelimit.Limiter {
	l, err := memory.New(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// fakeRoom stands in for the edge's waiting room (edge/queue and its
// routes), as the spec describes them, so that the page's script can be
// driven in a browser against the real page routes and hold endpoint: the
// challenge and join endpoints (with a real joinguard.Guard asking every
// join for proof of work), the status endpoint, and the WebSocket, which
// drops the first connection after one message (the page must reconnect)
// and on the second pushes the place in line, then, when the test says so,
// the admission with a token.
type fakeRoom struct {
	t       *testing.T
	guard   *joinguard.Guard
	api     *fiber.App // the real API: pages, events, availability, holds
	queue   *fiber.App // the fake queue endpoints
	token   string
	conns   atomic.Int32
	second  chan struct{}       // closed when the page reconnected
	steps   chan map[string]any // statuses the test pushes to the page
	mu      sync.Mutex
	joined  map[string]bool
	tokens  []string // Admission-Token of each hold request
	updates []string // status messages sent
}

func newFakeRoom(t *testing.T, e *env) *fakeRoom {
	g, err := joinguard.New(joinguard.Config{BaseDifficulty: 10, SuspectDifficulty: 12}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRoom{t: t, guard: g, api: e.app, token: "eyJhbGciOiJFZERTQSJ9.fake.token",
		second: make(chan struct{}), steps: make(chan map[string]any), joined: map[string]bool{}}
	a := &API{log: slog.New(slog.DiscardHandler)}
	r.queue = fiber.New(fiber.Config{ErrorHandler: a.errorHandler})
	r.queue.Get("/v1/events/:id/queue/challenge", func(c *fiber.Ctx) error {
		ch, d, err := g.Challenge(c.UserContext(), "198.51.100.1", r.session(c), c.Params("id"), time.Now())
		if err != nil {
			return err
		}
		return c.JSON(fiber.Map{"challenge": ch, "difficulty": d})
	})
	r.queue.Post("/v1/events/:id/queue/join", func(c *fiber.Ctx) error {
		s := r.session(c)
		if err := g.Check(c.UserContext(), "198.51.100.1", s, c.Params("id"), c.Get(HeaderQueuePoW), time.Now()); err != nil {
			setJoinGuardHeaders(c, err)
			return err
		}
		r.mu.Lock()
		first := !r.joined[s]
		r.joined[s] = true
		r.mu.Unlock()
		if first {
			c.Status(201)
		}
		return c.JSON(r.status("queued", 3, 2))
	})
	r.queue.Get("/v1/events/:id/queue/status", func(c *fiber.Ctx) error {
		r.mu.Lock()
		ok := r.joined[c.Cookies("tq_session")]
		r.mu.Unlock()
		if !ok {
			return errs.E("fake.status", errs.NotFound, "not in the queue")
		}
		return c.JSON(r.status("queued", 3, 2))
	})
	return r
}

// session is the tq_session cookie, set when missing.
func (r *fakeRoom) session(c *fiber.Ctx) string {
	if s := c.Cookies("tq_session"); s != "" {
		return s
	}
	s := fmt.Sprintf("%022d", time.Now().UnixNano()) // a session id's shape: 22 characters
	c.Cookie(&fiber.Cookie{Name: "tq_session", Value: s, Path: "/", HTTPOnly: true, SameSite: "Lax"})
	return s
}

// roomGate is the fake room's side of the hold endpoint: it admits the
// room's token, for any session.
type roomGate struct{ token string }

func (g *roomGate) Subject(_, session string) (string, bool) { return session, true }

func (g *roomGate) Redeem(_ context.Context, token, eventID, subject, _ string, now time.Time) (admission.Claims, error) {
	if token != g.token {
		return admission.Claims{}, errs.E("fake.gate", errs.Unauthorized, "not the room's token").WithReason("token_invalid")
	}
	return admission.Claims{Session: subject, Event: eventID, IssuedAt: now, Expiry: now.Add(time.Minute), ID: "fake"}, nil
}

func (g *roomGate) Unredeem(context.Context, admission.Claims, string) error { return nil }

func (g *roomGate) Admitted(ctx context.Context, token, eventID, subject string, now time.Time) (admission.Claims, error) {
	return g.Redeem(ctx, token, eventID, subject, "", now)
}

func (r *fakeRoom) status(state string, position, ahead int) map[string]any {
	st := map[string]any{"type": "status", "event_id": "arena-finals", "state": state, "position": position,
		"ahead": ahead, "likely_sold_out": false, "on_sale_at": "2026-01-15T10:00:00Z"}
	if state == "queued" {
		st["estimated_wait_seconds"] = 20 * ahead
	}
	if state == "admitted" {
		st["token"] = r.token
		st["token_expires_at"] = time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)
	}
	return st
}

func (r *fakeRoom) ws(conn *websocket.Conn) {
	n := r.conns.Add(1)
	send := func(st map[string]any) bool {
		b, _ := json.Marshal(st)
		r.mu.Lock()
		r.updates = append(r.updates, string(b))
		r.mu.Unlock()
		return websocket.Message.Send(conn, string(b)) == nil
	}
	if n == 1 {
		send(r.status("queued", 3, 2))
		conn.Close() // the page must come back, and keep its place
		return
	}
	if n == 2 {
		close(r.second)
	}
	if !send(r.status("queued", 3, 2)) {
		return
	}
	for st := range r.steps {
		if !send(st) {
			return
		}
		if st["state"] == "admitted" {
			break
		}
	}
	var msg string
	for websocket.Message.Receive(conn, &msg) == nil { // until the page leaves
	}
}

func (r *fakeRoom) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := req.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/events/") && strings.HasSuffix(p, "/queue"):
		websocket.Server{Handler: r.ws}.ServeHTTP(w, req)
		return
	case strings.HasPrefix(p, "/v1/events/") && strings.Contains(p, "/queue/"):
		r.forward(r.queue, w, req)
		return
	case req.Method == "POST" && strings.HasSuffix(p, "/holds"):
		r.mu.Lock()
		r.tokens = append(r.tokens, req.Header.Get("Admission-Token"))
		r.mu.Unlock()
	}
	r.forward(r.api, w, req)
}

// forward serves req with a Fiber app.
func (r *fakeRoom) forward(app *fiber.App, w http.ResponseWriter, req *http.Request) {
	out, err := http.NewRequest(req.Method, req.URL.String(), req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := app.Test(out, -1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// TestPageInBrowser drives the waiting-room page in headless Chromium
// against the fake room and the real identity service: signed out, the
// select page offers a sign-in that returns to it and holds nothing; the
// sign-in page takes the buyer to the waiting room, whose page solves the
// join's proof of work (checked by a real joinguard.Guard, so the script's
// SHA-256 and bit counting agree with Go's), joins, reconnects after losing
// its socket, shows its place, is admitted, hands off to the select page
// with the token in sessionStorage, and holds seats there with the token
// and the cookie session.
func TestPageInBrowser(t *testing.T) {
	_, nc, js := nodetest.Start(t)
	ids := authtest.Start(t, nc, js, "http://127.0.0.1:8080")
	gate := &roomGate{}
	e := newEnvWith(t, func(_ *Config, d *Deps) { d.Identity, d.Tokens, d.Gate = ids.Client, ids.Verifier, gate })
	// The room's event has its waiting room on: its select page speaks of
	// the admission, and its holds need the room's token.
	ev, _, _ := e.cache.Event("arena-finals")
	ev.Queue = true
	e.cache.PutEvent(ev)
	room := newFakeRoom(t, e)
	gate.token = room.token
	srv := httptest.NewServer(room)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(room.steps) }) // first: lets a socket handler still waiting end
	ctx := chromiumtest.New(t, 90*time.Second)
	push := func(st map[string]any) {
		t.Helper()
		select {
		case room.steps <- st:
		case <-ctx.Done():
			t.Fatalf("the page's socket is gone: %v", ctx.Err())
		}
	}

	// Signed out: the select page asks for a sign-in, and a hold is not
	// even sent.
	do(t, ctx, "the select page signed out",
		chromedp.Navigate(srv.URL+"/events/arena-finals/select"),
		chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-out"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#signin-needed`)),
		click(`li[data-zone="premium"] button.hold`),
		chromedp.WaitVisible(chromedp.CSS(`#hold-result[data-status="refused"]`)),
	)
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("signin-link").getAttribute("href")`)); href != "/signin?next=%2Fevents%2Farena-finals%2Fselect" {
		t.Errorf("sign-in link %q", href)
	}
	if res := textOf(t, ctx, "#hold-result"); !strings.Contains(res, "Sign in") {
		t.Errorf("a hold signed out: %q", res)
	}

	// The sign-in link comes back here, signed in.
	email := "buyer-page@example.com"
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ids.Auth.Seed(sctx, auth.SeedAccount{Email: email, Password: "buyer page password"}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "sign in",
		click("#signin-link"),
		at("/signin"),
		fill("#email", email, "#password", "buyer page password"),
		click(`#signin-form button[type="submit"]`),
		at("/events/arena-finals/select"),
		chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-in"]`)),
	)
	if bar := textOf(t, ctx, "#account-bar"); !strings.Contains(bar, email) {
		t.Errorf("the account bar says %q", bar)
	}
	visible(t, ctx, "#signin-needed", false)

	do(t, ctx, "the waiting room signed in",
		chromedp.Navigate(srv.URL+"/queue/arena-finals"),
		chromedp.WaitVisible(chromedp.CSS(`#account-bar[data-state="signed-in"]`)),
	)
	visible(t, ctx, "#signin-hint", false)
	select {
	case <-room.second:
	case <-ctx.Done():
		t.Fatalf("the page did not reconnect: %d connections", room.conns.Load())
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#position-line`)),
		chromedp.WaitVisible(chromedp.CSS(`#wait-line`)),
	); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#position", "3")
	waitText(t, ctx, "#ahead", "2")
	if st := room.guard.Stats(); st.PoWSolved != 1 {
		t.Fatalf("joins let through on a solved challenge: %d (stats %+v)", st.PoWSolved, st)
	}
	// The plain SHA-256 for pages without crypto.subtle (http on a LAN
	// address) agrees with the browser's, across the padding boundaries.
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(async () => {
		for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
			const b = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
			const want = new Uint8Array(await crypto.subtle.digest("SHA-256", b));
			const got = window.tqSHA256(b);
			if (want.some((x, i) => x !== got[i])) return false;
		}
		return true;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || !same {
		t.Fatalf("the page's SHA-256 disagrees with crypto.subtle: %v %v", same, err)
	}
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#title")))
	if err != nil || !strings.Contains(title, "National Championship Finals") {
		t.Fatalf("title %q %v", title, err)
	}

	// Fewer seats than people ahead, then sold out, then seats come back.
	likely := room.status("queued", 3, 2)
	likely["likely_sold_out"] = true
	push(likely)
	visible(t, ctx, "#likely-sold-out", true)
	push(room.status("sold_out", 3, 2))
	visible(t, ctx, "#sold-out", true)
	visible(t, ctx, "#likely-sold-out", false)
	push(room.status("queued", 1, 0))
	visible(t, ctx, "#sold-out", false)
	waitText(t, ctx, "#ahead", "0")
	waitText(t, ctx, "#ahead-label", "people ahead of you")
	if done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const p = document.getElementById("progress"); return p.max === 2 && p.value === 2; })()`)); err != nil || !done {
		t.Fatalf("progress bar not full with no one ahead: %v %v", done, err)
	}

	push(room.status("admitted", 1, 0))
	do(t, ctx, "the hand-off", chromedp.WaitVisible(chromedp.CSS(`body[data-page="select"] #token-state[data-token="present"]`)))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != srv.URL+"/events/arena-finals/select" {
		t.Fatalf("after admission the page is at %q (%v)", loc, err)
	}
	tok, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.parse(sessionStorage.getItem("tq_admission:arena-finals")).token`))
	if err != nil || tok != room.token {
		t.Fatalf("token in sessionStorage: %q %v", tok, err)
	}

	// Two reserved seats in the premium zone: the page picks free ones.
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`li[data-zone="premium"] button.hold`)),
		chromedp.SetValue(chromedp.CSS(`#qty-premium`), "2"),
		chromedp.Click(chromedp.CSS(`li[data-zone="premium"] button.hold`)),
		chromedp.WaitVisible(chromedp.CSS(`#hold-result[data-status="held"]`)),
	); err != nil {
		res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#hold-result")))
		t.Fatalf("hold: %v (page says %q)", err, res)
	}
	res, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#hold-result")))
	room.mu.Lock()
	tokens := append([]string(nil), room.tokens...)
	room.mu.Unlock()
	if len(tokens) != 1 || tokens[0] != room.token {
		t.Fatalf("hold requests carried Admission-Token %q, want one with %q", tokens, room.token)
	}
	holds := 0
	e.inv.mu.Lock()
	for _, c := range e.inv.calls {
		if strings.HasPrefix(c, "hold ") {
			holds++
		}
	}
	e.inv.mu.Unlock()
	if holds != 1 || !strings.Contains(res, "Held seats") {
		t.Fatalf("holds made %d, page says %q", holds, res)
	}
	t.Logf("page: %q after %d connections", res, room.conns.Load())
}

// visible waits until the element is shown (or hidden).
func visible(t *testing.T, ctx context.Context, sel string, shown bool) {
	t.Helper()
	js, _ := json.Marshal(sel)
	want := "!"
	if shown {
		want = ""
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](want+`(() => { const el = document.querySelector(`+string(js)+`); return !!el && !el.hidden && el.offsetParent !== null; })()`)); err != nil {
		t.Fatalf("%s never became %v: %v", sel, map[bool]string{true: "visible", false: "hidden"}[shown], err)
	}
}

// waitText waits until the element's text is want.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	js, _ := json.Marshal(sel)
	wantJS, _ := json.Marshal(want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(document.querySelector(`+string(js)+`) || {}).textContent === `+string(wantJS))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		t.Fatalf("%s: text %q, want %q (%v)", sel, got, want, err)
	}
}
