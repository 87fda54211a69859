// Package sessiontest is the contract suite of session.Store: every
// implementation runs it (the JetStream KV store, the Redis store and the
// in-memory store of the session package's tests), through a
// session.Manager, so that refresh-token rotation behaves the same on each.
package sessiontest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
)

// Clock is a manual clock; the store and the managers of a subtest share
// it, so that expiry and grace are tested without sleeping.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.ns.Store(t.UnixNano())
	return c
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Goroutines is how many goroutines the concurrency cases run.
const Goroutines = 32

// Run runs the suite. newStore returns an empty store for each subtest,
// whose notion of now is clock.Now (a store whose server also expires keys
// by its own time must set that expiry at the session's ExpiresAt, which
// the suite keeps near real time).
func Run(t *testing.T, newStore func(t *testing.T, clock *Clock) session.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, *env)
	}{
		{"StartAndGet", testStartAndGet},
		{"CreateInvalid", testCreateInvalid},
		{"CreateIDTaken", testCreateIDTaken},
		{"RotateChain", testRotateChain},
		{"StoreRotateCompareAndSet", testStoreRotateCAS},
		{"StoreRotateConcurrent", testStoreRotateConcurrent},
		{"RefreshConcurrentWithGrace", testRefreshConcurrentWithGrace},
		{"RefreshConcurrentNoGrace", testRefreshConcurrentNoGrace},
		{"ReplayRevokes", testReplayRevokes},
		{"RetryWithinGrace", testRetryWithinGrace},
		{"RetryAfterGraceIsReplay", testRetryAfterGrace},
		{"MadeUpSecretRevokes", testMadeUpSecret},
		{"InvalidTokens", testInvalidTokens},
		{"OtherClient", testOtherClient},
		{"RevokeOne", testRevokeOne},
		{"RevokeAll", testRevokeAll},
		{"Expiry", testExpiry},
		{"ListIsolation", testListIsolation},
		{"CancelledContext", testCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock(time.Now())
			tc.f(t, &env{store: newStore(t, clock), clock: clock})
		})
	}
}

type env struct {
	store session.Store
	clock *Clock
}

func (e *env) manager(t *testing.T, c session.Config) *session.Manager {
	t.Helper()
	c.Now = e.clock.Now
	m, err := session.NewManager(e.store, c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

const client = "web"

func start(t *testing.T, m *session.Manager, userID string) (session.Session, string) {
	t.Helper()
	s, tok, err := m.Start(ctx(t), userID, client, session.Seen{UserAgent: "Firefox/140", IP: "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	return s, tok
}

func refresh(t *testing.T, m *session.Manager, tok string) (session.Session, string) {
	t.Helper()
	s, next, err := m.Refresh(ctx(t), client, tok, session.Seen{})
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return s, next
}

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("error %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("error %v has reason %q, want %q", err, errs.ReasonOf(err), reason)
	}
}

func refreshFails(t *testing.T, m *session.Manager, tok, reason string) {
	t.Helper()
	_, _, err := m.Refresh(ctx(t), client, tok, session.Seen{})
	wantKind(t, err, errs.Unauthorized, reason)
}

func gone(t *testing.T, s session.Store, id string) {
	t.Helper()
	_, err := s.Get(ctx(t), id)
	wantKind(t, err, errs.NotFound, "")
}

func user() string { return identity.NewID() }

func sameSession(t *testing.T, got, want session.Session) {
	t.Helper()
	ok := got.ID == want.ID && got.UserID == want.UserID && got.ClientID == want.ClientID &&
		got.CreatedAt.Equal(want.CreatedAt) && got.LastUsedAt.Equal(want.LastUsedAt) &&
		got.ExpiresAt.Equal(want.ExpiresAt) && got.UserAgent == want.UserAgent && got.IP == want.IP &&
		got.Family.Generation == want.Family.Generation &&
		string(got.Family.Current) == string(want.Family.Current) &&
		string(got.Family.Previous) == string(want.Family.Previous) &&
		string(got.Family.Sealed) == string(want.Family.Sealed) &&
		got.Family.RotatedAt.Equal(want.Family.RotatedAt)
	if !ok {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func testStartAndGet(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	s, tok := start(t, m, user())
	if !strings.HasPrefix(tok, s.ID+".") {
		t.Fatalf("token %q does not name session %s", tok, s.ID)
	}
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameSession(t, got, s)
	if got.Version == 0 {
		t.Fatal("Get returned version 0")
	}
	if string(got.Family.Current) != string(session.HashToken(tok)) {
		t.Fatal("stored current hash is not the token's SHA-256")
	}
	if got.UserAgent != "Firefox/140" || got.IP != "192.0.2.7" || got.Family.Generation != 0 {
		t.Fatalf("stored %+v", got)
	}
	if !got.ExpiresAt.Equal(s.CreatedAt.Add(30 * 24 * time.Hour)) {
		t.Fatalf("expires at %v, want 30 days after %v", got.ExpiresAt, s.CreatedAt)
	}
	_, err = e.store.Get(ctx(t), session.NewID())
	wantKind(t, err, errs.NotFound, "")
}

func valid(e *env) session.Session {
	now := e.clock.Now().UTC().Truncate(time.Microsecond)
	return session.Session{
		ID: session.NewID(), UserID: identity.NewID(), ClientID: client,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
		Family: session.Family{Current: session.HashToken("x"), RotatedAt: now},
	}
}

func testCreateInvalid(t *testing.T, e *env) {
	for name, f := range map[string]func(*session.Session){
		"bad id":      func(s *session.Session) { s.ID = "a.b" },
		"bad user":    func(s *session.Session) { s.UserID = "" },
		"bad client":  func(s *session.Session) { s.ClientID = "a b" },
		"no hash":     func(s *session.Session) { s.Family.Current = nil },
		"expiry":      func(s *session.Session) { s.ExpiresAt = s.CreatedAt },
		"bad ip":      func(s *session.Session) { s.IP = "not an ip" },
		"no time":     func(s *session.Session) { s.LastUsedAt = time.Time{} },
		"long agent":  func(s *session.Session) { s.UserAgent = strings.Repeat("a", 300) },
		"short prev":  func(s *session.Session) { s.Family.Previous = []byte{1} },
		"bad utf8 ua": func(s *session.Session) { s.UserAgent = "\xff" },
		"expired": func(s *session.Session) {
			s.CreatedAt = s.CreatedAt.Add(-2 * time.Hour)
			s.ExpiresAt = s.ExpiresAt.Add(-time.Hour)
		},
	} {
		s := valid(e)
		f(&s)
		if err := e.store.Create(ctx(t), s); !errs.Is(errs.Invalid, err) {
			t.Fatalf("%s: Create = %v, want invalid", name, err)
		}
		if session.ValidID(s.ID) {
			gone(t, e.store, s.ID)
		}
	}
}

func testCreateIDTaken(t *testing.T, e *env) {
	s := valid(e)
	if err := e.store.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	other := valid(e)
	other.ID = s.ID
	wantKind(t, e.store.Create(ctx(t), other), errs.Conflict, session.ReasonIDTaken)
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil || got.UserID != s.UserID {
		t.Fatalf("after the refused create: %+v, %v", got, err)
	}
	if l, err := e.store.ListForUser(ctx(t), other.UserID); err != nil || len(l) != 0 {
		t.Fatalf("the refused create's user lists %v, %v", l, err)
	}
}

func testRotateChain(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	s, tok := start(t, m, user())
	seen := map[string]bool{tok: true}
	for i := 1; i <= 5; i++ {
		e.clock.Advance(time.Minute)
		ns, next, err := m.Refresh(ctx(t), client, tok, session.Seen{UserAgent: fmt.Sprintf("agent %d", i), IP: "2001:db8::1"})
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
		if seen[next] || !strings.HasPrefix(next, s.ID+".") {
			t.Fatalf("rotation %d returned %q", i, next)
		}
		seen[next] = true
		if ns.Family.Generation != uint64(i) || !ns.LastUsedAt.Equal(e.clock.Now().UTC().Truncate(time.Microsecond)) {
			t.Fatalf("rotation %d: %+v", i, ns)
		}
		got, err := e.store.Get(ctx(t), s.ID)
		if err != nil {
			t.Fatal(err)
		}
		sameSession(t, got, ns)
		if got.Version != ns.Version {
			t.Fatalf("stored version %d, Refresh returned %d", got.Version, ns.Version)
		}
		if string(got.Family.Current) != string(session.HashToken(next)) ||
			string(got.Family.Previous) != string(session.HashToken(tok)) {
			t.Fatal("stored hashes are not those of the new and the spent token")
		}
		if got.UserAgent != fmt.Sprintf("agent %d", i) || got.IP != "2001:db8::1" {
			t.Fatalf("device not updated: %+v", got)
		}
		if !got.ExpiresAt.Equal(s.ExpiresAt) || !got.CreatedAt.Equal(s.CreatedAt) {
			t.Fatal("rotation moved the expiry or the creation time")
		}
		tok = next
	}
}

func testStoreRotateCAS(t *testing.T, e *env) {
	s := valid(e)
	if err := e.store.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	n := got
	n.Family.Generation = 1
	v, err := e.store.Rotate(ctx(t), n)
	if err != nil {
		t.Fatal(err)
	}
	if v == got.Version {
		t.Fatalf("version stayed %d", v)
	}
	_, err = e.store.Rotate(ctx(t), n) // n.Version is the old one
	wantKind(t, err, errs.Conflict, session.ReasonVersionMismatch)
	after, err := e.store.Get(ctx(t), s.ID)
	if err != nil || after.Version != v || after.Family.Generation != 1 {
		t.Fatalf("after: %+v, %v", after, err)
	}
	missing := valid(e)
	missing.Version = 1
	_, err = e.store.Rotate(ctx(t), missing)
	wantKind(t, err, errs.NotFound, "")
}

func testStoreRotateConcurrent(t *testing.T, e *env) {
	s := valid(e)
	if err := e.store.Create(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wins, conflicts atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < Goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n := got
			n.Family.Generation = uint64(i + 1)
			_, err := e.store.Rotate(context.Background(), n)
			switch {
			case err == nil:
				wins.Add(1)
			case errs.Is(errs.Conflict, err):
				conflicts.Add(1)
			default:
				t.Errorf("rotate: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != Goroutines-1 {
		t.Fatalf("%d rotations succeeded and %d conflicted, want 1 and %d", wins.Load(), conflicts.Load(), Goroutines-1)
	}
}

type result struct {
	tok string
	err error
}

func concurrentRefresh(m *session.Manager, tok string) []result {
	res := make([]result, Goroutines)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range res {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-startGun
			_, next, err := m.Refresh(context.Background(), client, tok, session.Seen{})
			res[i] = result{next, err}
		}(i)
	}
	close(startGun)
	wg.Wait()
	return res
}

// With the grace window, concurrent refreshes with one token (a client
// retrying in parallel) rotate once and all get the same new token.
func testRefreshConcurrentWithGrace(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	s, tok := start(t, m, user())
	var next string
	for _, r := range concurrentRefresh(m, tok) {
		if r.err != nil {
			t.Fatalf("refresh: %v", r.err)
		}
		if next == "" {
			next = r.tok
		}
		if r.tok != next {
			t.Fatal("concurrent refreshes returned different tokens")
		}
	}
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Family.Generation != 1 || string(got.Family.Current) != string(session.HashToken(next)) {
		t.Fatalf("family after %d concurrent refreshes: generation %d", Goroutines, got.Family.Generation)
	}
	refresh(t, m, next)
}

// Without it, exactly one succeeds; the others present a spent token,
// which revokes the session.
func testRefreshConcurrentNoGrace(t *testing.T, e *env) {
	m := e.manager(t, session.Config{NoGrace: true})
	s, tok := start(t, m, user())
	var ok, reused int
	var next string
	for _, r := range concurrentRefresh(m, tok) {
		switch {
		case r.err == nil:
			ok++
			next = r.tok
		case errs.Is(errs.Unauthorized, r.err):
			if errs.ReasonOf(r.err) == session.ReasonRefreshReused {
				reused++
			}
		default:
			t.Fatalf("refresh: %v", r.err)
		}
	}
	if ok != 1 || reused == 0 {
		t.Fatalf("%d refreshes succeeded and %d reported reuse, want 1 and at least 1", ok, reused)
	}
	gone(t, e.store, s.ID)
	refreshFails(t, m, next, session.ReasonRefreshInvalid)
}

func testReplayRevokes(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	u := user()
	s, t0 := start(t, m, u)
	other, otherTok := start(t, m, u)
	_, t1 := refresh(t, m, t0)
	_, t2 := refresh(t, m, t1) // t1 used: t0 is two generations back
	refreshFails(t, m, t0, session.ReasonRefreshReused)
	gone(t, e.store, s.ID)
	refreshFails(t, m, t2, session.ReasonRefreshInvalid)
	refreshFails(t, m, t1, session.ReasonRefreshInvalid)
	// The user's other session is untouched.
	if _, err := e.store.Get(ctx(t), other.ID); err != nil {
		t.Fatal(err)
	}
	refresh(t, m, otherTok)
}

func testRetryWithinGrace(t *testing.T, e *env) {
	m := e.manager(t, session.Config{Grace: 30 * time.Second})
	s, t0 := start(t, m, user())
	_, t1 := refresh(t, m, t0)
	before, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A process whose clock is behind the one that rotated answers the
	// retry too.
	behind, err := session.NewManager(e.store, session.Config{Grace: 30 * time.Second,
		Now: func() time.Time { return e.clock.Now().Add(-5 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, again := refresh(t, behind, t0); again != t1 {
		t.Fatal("a retry on a process with a slower clock returned another token")
	}
	for _, d := range []time.Duration{time.Second, 19 * time.Second, 10 * time.Second} { // up to exactly 30s
		e.clock.Advance(d)
		_, again := refresh(t, m, t0)
		if again != t1 {
			t.Fatal("a retry within the grace window returned another token")
		}
	}
	after, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Family.Generation != 1 || string(after.Family.Current) != string(before.Family.Current) {
		t.Fatal("a retry rotated the family")
	}
	// Once the new token is used, the old one is a replay even within the
	// window.
	m2 := e.manager(t, session.Config{Grace: time.Minute})
	s2, u0 := start(t, m2, user())
	_, u1 := refresh(t, m2, u0)
	_, u2 := refresh(t, m2, u1)
	refreshFails(t, m2, u0, session.ReasonRefreshReused)
	gone(t, e.store, s2.ID)
	refreshFails(t, m2, u2, session.ReasonRefreshInvalid)
}

func testRetryAfterGrace(t *testing.T, e *env) {
	m := e.manager(t, session.Config{Grace: 30 * time.Second})
	s, t0 := start(t, m, user())
	_, t1 := refresh(t, m, t0)
	e.clock.Advance(30*time.Second + time.Millisecond)
	refreshFails(t, m, t0, session.ReasonRefreshReused)
	gone(t, e.store, s.ID)
	refreshFails(t, m, t1, session.ReasonRefreshInvalid)
}

func testMadeUpSecret(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	s, _ := start(t, m, user())
	refreshFails(t, m, s.ID+"."+strings.Repeat("A", 43), session.ReasonRefreshReused)
	gone(t, e.store, s.ID)
}

func testInvalidTokens(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	s, tok := start(t, m, user())
	for _, bad := range []string{
		"", ".", tok[:len(tok)-1], tok + "A", strings.Replace(tok, ".", "", 1), "a.b.c",
		session.NewID() + "." + strings.Repeat("A", 43), // no such session
		s.ID + "x." + strings.Repeat("A", 43),
		strings.Repeat("x", 1000),
	} {
		refreshFails(t, m, bad, session.ReasonRefreshInvalid)
	}
	refresh(t, m, tok) // still good
}

func testOtherClient(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	_, tok := start(t, m, user())
	_, _, err := m.Refresh(ctx(t), "mobile", tok, session.Seen{})
	wantKind(t, err, errs.Unauthorized, session.ReasonRefreshInvalid)
	refresh(t, m, tok)
}

func ids(l []session.Session) []string {
	var out []string
	for _, s := range l {
		out = append(out, s.ID)
	}
	return out
}

func testRevokeOne(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	u := user()
	a, ta := start(t, m, u)
	e.clock.Advance(time.Second)
	b, tb := start(t, m, u)
	wantKind(t, m.Revoke(ctx(t), user(), a.ID), errs.NotFound, "") // another user's
	if err := m.Revoke(ctx(t), u, a.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, m.Revoke(ctx(t), u, a.ID), errs.NotFound, "")
	wantKind(t, e.store.Revoke(ctx(t), a.ID), errs.NotFound, "")
	gone(t, e.store, a.ID)
	refreshFails(t, m, ta, session.ReasonRefreshInvalid)
	l, err := m.List(ctx(t), u)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(l); len(got) != 1 || got[0] != b.ID {
		t.Fatalf("list after revoking %s: %v, want [%s]", a.ID, got, b.ID)
	}
	refresh(t, m, tb)
}

func testRevokeAll(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	u, other := user(), user()
	var toks []string
	for i := 0; i < 3; i++ {
		_, tok := start(t, m, u)
		toks = append(toks, tok)
	}
	os, otok := start(t, m, other)
	n, err := m.RevokeAll(ctx(t), u)
	if err != nil || n != 3 {
		t.Fatalf("RevokeAll = %d, %v; want 3", n, err)
	}
	for _, tok := range toks {
		refreshFails(t, m, tok, session.ReasonRefreshInvalid)
	}
	if l, err := m.List(ctx(t), u); err != nil || len(l) != 0 {
		t.Fatalf("list after RevokeAll: %v, %v", ids(l), err)
	}
	if n, err := m.RevokeAll(ctx(t), u); err != nil || n != 0 {
		t.Fatalf("second RevokeAll = %d, %v; want 0", n, err)
	}
	l, err := m.List(ctx(t), other)
	if err != nil || len(l) != 1 || l[0].ID != os.ID {
		t.Fatalf("the other user's list: %v, %v", ids(l), err)
	}
	refresh(t, m, otok)
	// The user can sign in again.
	s, tok := start(t, m, u)
	refresh(t, m, tok)
	if l, err := m.List(ctx(t), u); err != nil || len(l) != 1 || l[0].ID != s.ID {
		t.Fatalf("list after signing in again: %v, %v", ids(l), err)
	}
}

func testExpiry(t *testing.T, e *env) {
	m := e.manager(t, session.Config{Lifetime: time.Hour})
	u := user()
	s, tok := start(t, m, u)
	e.clock.Advance(59 * time.Minute)
	_, tok = refresh(t, m, tok)
	got, err := e.store.Get(ctx(t), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatal("use extended the session")
	}
	e.clock.Advance(time.Minute) // exactly at ExpiresAt
	refreshFails(t, m, tok, session.ReasonRefreshInvalid)
	gone(t, e.store, s.ID)
	_, err = e.store.Rotate(ctx(t), got)
	wantKind(t, err, errs.NotFound, "")
	if l, err := m.List(ctx(t), u); err != nil || len(l) != 0 {
		t.Fatalf("list after expiry: %v, %v", ids(l), err)
	}
	// A session created now is live.
	s2, tok2 := start(t, m, u)
	refresh(t, m, tok2)
	if l, err := m.List(ctx(t), u); err != nil || len(l) != 1 || l[0].ID != s2.ID {
		t.Fatalf("list: %v, %v", ids(l), err)
	}
}

func testListIsolation(t *testing.T, e *env) {
	m := e.manager(t, session.Config{})
	users := []string{user(), user(), user(), user()}
	want := make(map[string][]string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, u := range users {
		for j := 0; j <= i; j++ {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				s, _, err := m.Start(context.Background(), u, client, session.Seen{})
				if err != nil {
					t.Errorf("start: %v", err)
					return
				}
				mu.Lock()
				want[u] = append(want[u], s.ID)
				mu.Unlock()
			}(u)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, u := range users {
		l, err := m.List(ctx(t), u)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != i+1 {
			t.Fatalf("user %d lists %d sessions, want %d", i, len(l), i+1)
		}
		mine := make(map[string]bool)
		for _, id := range want[u] {
			mine[id] = true
		}
		for k, s := range l {
			if s.UserID != u || !mine[s.ID] {
				t.Fatalf("user %d's list has %+v", i, s)
			}
			if k > 0 && (s.CreatedAt.Before(l[k-1].CreatedAt) || s.CreatedAt.Equal(l[k-1].CreatedAt) && s.ID < l[k-1].ID) {
				t.Fatal("list is not ordered by creation, then id")
			}
			if s.Version == 0 {
				t.Fatal("listed session has version 0")
			}
		}
	}
	if l, err := m.List(ctx(t), user()); err != nil || len(l) != 0 {
		t.Fatalf("a user without sessions lists %v, %v", ids(l), err)
	}
}

func testCancelled(t *testing.T, e *env) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	s := valid(e)
	if err := e.store.Create(c, s); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
	if _, err := e.store.ListForUser(c, s.UserID); err == nil {
		t.Fatal("ListForUser with a cancelled context succeeded")
	}
}
