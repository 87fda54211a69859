package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
	ordersapi "github.com/ticketing/ticketing/services/orders/natsapi"
)

// testGate is the waiting room as the hold endpoint sees it: a session's
// subject, and a real admission verifier over an in-memory spent store.
type testGate struct {
	*admission.Verifier
}

func (g testGate) Admitted(_ context.Context, token, eventID, subject string, now time.Time) (admission.Claims, error) {
	return g.Verifier.Admitted(token, eventID, subject, now)
}

func (testGate) Subject(eventID, session string) (string, bool) {
	sum := sha256.Sum256([]byte(eventID + "/" + session))
	return hex.EncodeToString(sum[:16]), true
}

func newTestSigner(t *testing.T) (*keyring.KeyRing, *admission.Signer) {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ring, s
}

// newGatedEnv is an env whose edge checks admission tokens with a real
// verifier (an in-memory spent store) of signer's keys.
func newGatedEnv(t *testing.T) (*env, testGate, *admission.Signer) {
	t.Helper()
	ring, signer := newTestSigner(t)
	spent, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := admission.NewVerifier(ring, spent, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	gate := testGate{ver}
	return newEnvWith(t, func(_ *Config, d *Deps) { d.Gate = gate }), gate, signer
}

// Holds on an event whose waiting room is on need an admission token for
// the session's ticket and that event; each refusal holds nothing.
func TestAdmissionTokenOnHolds(t *testing.T) {
	e, gate, signer := newGatedEnv(t)
	_, forger := newTestSigner(t) // a key the edge does not know
	const event, session, other = "arena-onsale", "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"
	subject, _ := gate.Subject(event, session)
	otherSubject, _ := gate.Subject(event, other)
	issue := func(s *admission.Signer, event, subject string, at time.Time) string {
		t.Helper()
		tok, _, err := s.Issue(event, subject, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	hold := func(key, seat, token, sess string) result {
		t.Helper()
		h := []string{"Idempotency-Key", key}
		if token != "" {
			h = append(h, AdmissionTokenHeader, token)
		}
		if sess != "" {
			h = append(h, "Cookie", SessionCookie+"="+sess)
		}
		return e.callAs(t, buyer, "POST", "/v1/events/"+event+"/holds", `{"seats":["`+seat+`"]}`, h...)
	}
	now := time.Now()
	good := issue(signer, event, subject, now)
	calls := e.inv.callCount()

	for i, tc := range []struct {
		name, token, session string
		status               int
		code, reason         string
	}{
		{"no session cookie", good, "", http.StatusUnauthorized, "unauthorized", "session_missing"},
		{"malformed session cookie", good, "short", http.StatusUnauthorized, "unauthorized", "session_missing"},
		{"no token", "", session, http.StatusUnauthorized, "unauthorized", admission.ReasonMissing},
		{"garbage", "not.a.token", session, http.StatusUnauthorized, "unauthorized", admission.ReasonMalformed},
		{"forged (unknown key)", issue(forger, event, subject, now), session, http.StatusUnauthorized, "unauthorized", admission.ReasonUnknownKey},
		{"tampered signature", good[:len(good)-4] + "AAAA", session, http.StatusUnauthorized, "unauthorized", admission.ReasonBadSignature},
		{"expired", issue(signer, event, subject, now.Add(-time.Hour)), session, http.StatusGone, "gone", admission.ReasonExpired},
		{"other session", issue(signer, event, otherSubject, now), session, http.StatusForbidden, "forbidden", admission.ReasonWrongSession},
		{"the token's session, another's cookie", good, other, http.StatusForbidden, "forbidden", admission.ReasonWrongSession},
		{"other event", issue(signer, "arena-finals", subject, now), session, http.StatusForbidden, "forbidden", admission.ReasonWrongEvent},
	} {
		i := i
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, hold(fmt.Sprint("k-case-", i), "101-A-1", tc.token, tc.session), tc.status, tc.code, tc.reason)
		})
	}
	if n := e.inv.callCount(); n != calls {
		t.Fatalf("refused requests reached the inventory %d times", n-calls)
	}

	// A valid token admits one hold; retrying that request is not a replay.
	first := hold("k-1", "101-A-1", good, session)
	if first.status != http.StatusCreated {
		t.Fatalf("hold with a valid token: %s", first)
	}
	again := hold("k-1", "101-A-1", good, session)
	if again.status != http.StatusCreated || decode[HoldCreated](t, again).HoldID != decode[HoldCreated](t, first).HoldID {
		t.Fatalf("retry of the same request: %s, want the same hold", again)
	}
	// Another request with the same token is a replay.
	wantError(t, hold("k-2", "101-A-2", good, session), http.StatusForbidden, "forbidden", admission.ReasonReplayed)

	// A hold refused for want of seats gives the token back.
	second := issue(signer, event, subject, now)
	wantError(t, hold("k-3", "101-A-1", second, session), http.StatusConflict, "conflict", "seats_unavailable")
	if r := hold("k-4", "101-A-3", second, session); r.status != http.StatusCreated {
		t.Fatalf("hold after a refused one, same token: %s", r)
	}
	wantError(t, hold("k-5", "101-A-4", second, session), http.StatusForbidden, "forbidden", admission.ReasonReplayed)

	// Events without a waiting room need no token.
	r := e.callAs(t, buyer, "POST", "/v1/events/arena-finals/holds", `{"seats":["101-A-1"]}`, "Idempotency-Key", "k-6")
	if r.status != http.StatusCreated {
		t.Fatalf("hold on a queue-off event: %s", r)
	}
	metrics := e.call(t, "GET", "/metrics", "")
	for _, want := range []string{
		`ticketing_admission_checks_total{outcome="ok"} 4`,
		`ticketing_admission_checks_total{outcome="token_replayed"} 2`,
		`ticketing_admission_checks_total{outcome="session_missing"} 2`,
	} {
		if !bytes.Contains(metrics.body, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Without a gate, holds on a queue-on event are refused (fail closed).
func TestAdmissionWithoutGate(t *testing.T) {
	e := newEnv(t)
	r := e.callAs(t, buyer, "POST", "/v1/events/arena-onsale/holds", `{"seats":["101-A-1"]}`, "Idempotency-Key", "k")
	wantError(t, r, http.StatusServiceUnavailable, "unavailable", "admission_unavailable")
}

// An order of holds on an event whose waiting room is on shows the
// admission token that let the holds be placed (from the same session);
// it is not spent again, and it is taken for a while after its expiry
// (the holds outlive it). Refused orders never reach the orders service.
func TestAdmissionTokenOnOrders(t *testing.T) {
	e, gate, signer := newGatedEnv(t)
	const event, session, other = "arena-onsale", "AAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBB"
	subject, _ := gate.Subject(event, session)
	now := time.Now()
	issue := func(at time.Time) string {
		t.Helper()
		tok, _, err := signer.Issue(event, subject, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	token := issue(now)
	r := e.callAs(t, buyer, "POST", "/v1/events/"+event+"/holds", `{"seats":["101-A-1"]}`,
		"Idempotency-Key", "h-1", AdmissionTokenHeader, token, "Cookie", SessionCookie+"="+session)
	if r.status != http.StatusCreated {
		t.Fatalf("hold: %s", r)
	}
	hold := decode[HoldCreated](t, r).HoldID
	order := func(key, token, sess string) result {
		t.Helper()
		h := []string{"Idempotency-Key", key}
		if token != "" {
			h = append(h, AdmissionTokenHeader, token)
		}
		if sess != "" {
			h = append(h, "Cookie", SessionCookie+"="+sess)
		}
		return e.callAs(t, buyer, "POST", ordersPath, cartOf(hold), h...)
	}
	creates := func() int {
		e.orders.mu.Lock()
		defer e.orders.mu.Unlock()
		n := 0
		for _, c := range e.orders.calls {
			if c.op == ordersapi.OpCreate {
				n++
			}
		}
		return n
	}
	for i, tc := range []struct {
		name, token, session string
		status               int
		code, reason         string
	}{
		{"no session cookie", token, "", http.StatusUnauthorized, "unauthorized", "session_missing"},
		{"no token", "", session, http.StatusUnauthorized, "unauthorized", admission.ReasonMissing},
		{"another session's cookie", token, other, http.StatusForbidden, "forbidden", admission.ReasonWrongSession},
		{"expired longer ago than a hold lives", issue(now.Add(-time.Hour)), session, http.StatusGone, "gone", admission.ReasonExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, order(fmt.Sprint("o-case-", i), tc.token, tc.session), tc.status, tc.code, tc.reason)
		})
	}
	if n := creates(); n != 0 {
		t.Fatalf("refused orders reached the orders service %d times", n)
	}
	// The token the hold spent admits its order; so does one of the same
	// session that expired a few minutes ago.
	if r := order("o-1", token, session); r.status != http.StatusCreated {
		t.Fatalf("order with the hold's token: %s", r)
	}
	if r := order("o-1", issue(now.Add(-15*time.Minute)), session); r.status != http.StatusOK {
		t.Fatalf("the same order again with a token expired 5 minutes ago: %s", r)
	}
}
