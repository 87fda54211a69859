package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/edge/joinguard"
	edgequeue "github.com/ticketing/ticketing/edge/queue"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/queue"
)

// queueEvent is the demo event whose waiting room the fake has on.
const queueEventID = "arena-finals"

// fakeQueue is a waiting room in memory (the real one, edge/queue, is
// tested with its own fakes of the core and through a real edge).
type fakeQueue struct {
	mu     sync.Mutex
	joined map[string]edgequeue.Status
	jwks   []byte
}

func newFakeQueue(t testing.TB) *fakeQueue {
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ring.PublicJWKS())
	return &fakeQueue{joined: map[string]edgequeue.Status{}, jwks: b}
}

var fakeOnSale = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func (q *fakeQueue) QueueOn(id string) bool { return id == queueEventID }

func (q *fakeQueue) Joined(id, session string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.joined[session]
	return ok
}

// fakeTicketKey makes the fake's tickets.
var fakeTicketKey = queue.NewTicketKey()

func (q *fakeQueue) Join(_ context.Context, id, session string) (edgequeue.Status, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if s, ok := q.joined[session]; ok {
		return s, false, nil
	}
	n := len(q.joined)
	s := edgequeue.Status{Type: "status", EventID: id, Ticket: queue.TicketFor(fakeTicketKey, session).String(),
		State: "queued", Position: n + 1, Ahead: n, OnSaleAt: fakeOnSale}
	q.joined[session] = s
	return s, true, nil
}

func (q *fakeQueue) Status(_ context.Context, id, session string) (edgequeue.Status, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s, ok := q.joined[session]
	if !ok {
		return s, errs.E("fake.status", errs.NotFound, "not joined")
	}
	return s, nil
}

func (q *fakeQueue) Draw(_ context.Context, id string, offset, limit int) (edgequeue.DrawRecord, error) {
	return edgequeue.DrawRecord{EventID: id, Commitment: strings.Repeat("ab", 32), OnSaleAt: fakeOnSale, Offset: offset}, nil
}

func (q *fakeQueue) JWKS(context.Context) ([]byte, error) { return q.jwks, nil }

func (q *fakeQueue) Upgrade(ctx *fasthttp.RequestCtx, id, session string) error {
	accept, err := edgequeue.Handshake(&ctx.Request.Header, nil)
	if err != nil {
		return err
	}
	if _, _, err := q.Join(ctx, id, session); err != nil {
		return err
	}
	ctx.Response.SetStatusCode(fiber.StatusSwitchingProtocols)
	ctx.Response.Header.Set("Upgrade", "websocket")
	ctx.Response.Header.Set("Sec-WebSocket-Accept", accept)
	return nil
}

func queueEnv(t *testing.T, guard JoinGuard) *env {
	q := newFakeQueue(t)
	return newEnvWith(t, func(_ *Config, d *Deps) {
		d.Queue = q
		d.JoinGuard = guard
	})
}

func sessionOf(t *testing.T, r result) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == SessionCookie {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || !validSession(c.Value) {
				t.Fatalf("session cookie %+v", c)
			}
			return c.Value
		}
	}
	t.Fatalf("no session cookie in %v", r.header)
	return ""
}

func TestQueueJoinAndStatus(t *testing.T) {
	e := queueEnv(t, nil)
	base := "/v1/events/" + queueEventID + "/queue"
	r := e.call(t, "POST", base+"/join", "")
	if r.status != 201 {
		t.Fatalf("first join: %s", r)
	}
	s := sessionOf(t, r)
	st := decode[edgequeue.Status](t, r)
	if st.State != "queued" || st.Position != 1 || st.EventID != queueEventID {
		t.Fatalf("join: %+v", st)
	}
	cookie := "Cookie"
	r = e.call(t, "POST", base+"/join", "", cookie, SessionCookie+"="+s)
	if r.status != 200 || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("rejoin: %s %v", r, r.header)
	}
	if got := decode[edgequeue.Status](t, e.call(t, "GET", base+"/status", "", cookie, SessionCookie+"="+s)); got != st {
		t.Fatalf("status %+v, want %+v", got, st)
	}
	// A new browser: not joined (and given a session for the join).
	r = e.call(t, "GET", base+"/status", "")
	wantError(t, r, 404, "not_found", "not_joined")
	sessionOf(t, r)
	// A malformed cookie is replaced.
	r = e.call(t, "POST", base+"/join", "", cookie, SessionCookie+"=../../etc")
	if r.status != 201 || sessionOf(t, r) == "../../etc" {
		t.Fatalf("join with a bad cookie: %s", r)
	}
	// The WebSocket route wants a handshake.
	r = e.call(t, "GET", base, "")
	wantError(t, r, 426, "invalid_request", "upgrade_required")
	if r.header.Get("Upgrade") != "websocket" {
		t.Fatalf("426 without Upgrade: %v", r.header)
	}
	r = e.call(t, "GET", base, "", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "13",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", cookie, SessionCookie+"="+s)
	if r.status != 101 || r.header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade: %s %v", r, r.header)
	}
	r = e.call(t, "GET", base, "", "Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Version", "8",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	wantError(t, r, 400, "invalid_request", "websocket_version")
	// Draw record, challenge without a guard, key set.
	if d := decode[edgequeue.DrawRecord](t, e.call(t, "GET", base+"/draw", "")); d.EventID != queueEventID || len(d.Commitment) != 64 {
		t.Fatalf("draw: %+v", d)
	}
	if d := decode[edgequeue.DrawRecord](t, e.call(t, "GET", base+"/draw?offset=20&limit=10", "")); d.Offset != 20 {
		t.Fatalf("draw page: %+v", d)
	}
	for _, q := range []string{"offset=-1", "limit=x", "offset=99999999999"} {
		wantError(t, e.call(t, "GET", base+"/draw?"+q, ""), 400, "invalid_request", "")
	}
	if c := decode[PoWChallenge](t, e.call(t, "GET", base+"/challenge", "")); c.Difficulty != 0 {
		t.Fatalf("challenge: %+v", c)
	}
	r = e.call(t, "GET", "/.well-known/jwks.json", "")
	if _, err := keyring.ParseJWKS(r.body); r.status != 200 || err != nil {
		t.Fatalf("jwks: %s %v", r, err)
	}
	// A queue-off event has no waiting room; an unknown one is not there.
	for _, p := range []string{"/join", "/status", "/draw", "/challenge", ""} {
		m := "GET"
		if p == "/join" {
			m = "POST"
		}
		wantError(t, e.call(t, m, "/v1/events/club-night/queue"+p, ""), 404, "not_found", "")
		wantError(t, e.call(t, m, "/v1/events/nope/queue"+p, ""), 404, "not_found", "")
	}
}

// The join limits through the API: 429 with the RateLimit fields, 403
// with a challenge that, solved, lets the join through; a reconnecting
// socket of a session in line is not a join.
func TestQueueJoinGuard(t *testing.T) {
	g, err := joinguard.New(joinguard.Config{SuspectDifficulty: 4, SuspectSessionLimit: ratelimit.PerMinute(1, 1),
		SessionLimit: ratelimit.PerMinute(1, 3)}, newMemoryLimiter(t))
	if err != nil {
		t.Fatal(err)
	}
	e := queueEnv(t, g)
	join := "/v1/events/" + queueEventID + "/queue/join"
	r := e.call(t, "POST", join, "")
	if r.status != 201 {
		t.Fatalf("first join: %s", r)
	}
	s := SessionCookie + "=" + sessionOf(t, r)
	r = e.call(t, "POST", join, "", "Cookie", s)
	wantError(t, r, 403, "forbidden", joinguard.ReasonPoWRequired)
	ch, d := r.header.Get(HeaderQueuePoWChallenge), r.header.Get(HeaderQueuePoWDifficulty)
	if ch == "" || d != "4" {
		t.Fatalf("challenge %q difficulty %q", ch, d)
	}
	if r = e.call(t, "POST", join, "", "Cookie", s, HeaderQueuePoW, joinguard.Solve(ch, 4)); r.status != 200 {
		t.Fatalf("with the work done: %s", r)
	}
	r = e.call(t, "POST", join, "", "Cookie", s)
	wantError(t, r, 429, "rate_limited", "")
	if r.header.Get("Retry-After") == "" || r.header.Get("RateLimit-Limit") != "3" || r.header.Get("RateLimit-Policy") == "" {
		t.Fatalf("429 header fields: %v", r.header)
	}
	if c := decode[PoWChallenge](t, e.call(t, "GET", "/v1/events/"+queueEventID+"/queue/challenge", "", "Cookie", s)); c.Challenge == "" {
		t.Fatalf("challenge: %+v", c)
	}
	// The session is in line: its socket is a reconnect, past the limits.
	r = e.call(t, "GET", "/v1/events/"+queueEventID+"/queue", "", "Upgrade", "websocket", "Connection", "Upgrade",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Cookie", s)
	if r.status != 101 {
		t.Fatalf("reconnect: %s", r)
	}

}

func TestPoWSolutionBound(t *testing.T) {
	if _, err := powSolution(strings.Repeat("a", maxPoWSolutionLen+1)); err == nil {
		t.Fatal("an overlong solution is accepted")
	}
	if !validSession(newSession()) {
		t.Fatal("a new session is not valid")
	}
}
