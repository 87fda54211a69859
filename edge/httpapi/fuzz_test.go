package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/identity/client"
)

// clientError fails unless err is an *errs.Error whose kind is a 4xx, one
// of want.
func clientError(t *testing.T, err error, want ...errs.Kind) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *errs.Error", err, err)
	}
	if s := statusOf(e.Kind); s < 400 || s >= 500 {
		t.Fatalf("error %v has kind %v (HTTP %d)", err, e.Kind, s)
	}
	if len(want) > 0 && !slices.Contains(want, e.Kind) {
		t.Fatalf("error %v has kind %v, want one of %v", err, e.Kind, want)
	}
	if errs.Message(err) == "" {
		t.Fatalf("error %v has no message", err)
	}
}

func FuzzDecodeHold(f *testing.F) {
	for _, s := range []string{
		`{"seats":["101-A-1","101-A-2"]}`,
		`{"seats":["101-A-1"],"ttl_seconds":300}`,
		`{"zone":"floor","quantity":2}`,
		`{"zone":"floor","quantity":10,"ttl_seconds":1800,"seats":[]}`,
		`{"seats":null,"zone":"ga","quantity":1}`,
		`{"seats":["a","b","c","d","e","f","g","h","i","j"]}`,
		`{"seats":["a","a"]}`,
		`{"seats":["a"],"zone":"floor","quantity":1}`,
		`{"zone":"Floor","quantity":1}`,
		`{"zone":"floor","quantity":-1}`,
		`{"seats":["a"],"ttl_seconds":-1}`,
		`{"SEATS":["a"],"Zone":""}`,
		`{"seats":["a"]} {}`,
		`{"seats":["a\u0000\ud800"]}`,
		`{"seats":["a"],"seats":["b"]}`,
		`{"quantity":1e309}`,
		`null`, `[]`, `""`, `{`, ``, " \t\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := decodeHold(body)
		if err != nil {
			clientError(t, err, errs.Invalid, errs.TooLarge)
			if errs.Is(errs.TooLarge, err) != (len(body) > maxHoldBody) {
				t.Fatalf("%d bytes: %v", len(body), err)
			}
			return
		}
		// Accepted: within the documented limits.
		if len(body) > maxHoldBody {
			t.Fatalf("accepted %d bytes", len(body))
		}
		if h.TTLSeconds < 0 || h.TTLSeconds > maxTTLSeconds {
			t.Fatalf("accepted ttl_seconds %d", h.TTLSeconds)
		}
		if len(h.Seats) > 0 {
			if len(h.Seats) > maxSeatsPerHold || h.Zone != "" || h.Quantity != 0 {
				t.Fatalf("accepted %+v", h)
			}
			seen := map[string]bool{}
			for _, s := range h.Seats {
				if s == "" || len(s) > maxSeatIDLen || seen[s] {
					t.Fatalf("accepted seats %q", h.Seats)
				}
				seen[s] = true
			}
		} else if !catalog.ValidID(h.Zone) || h.Quantity < 1 || h.Quantity > maxQuantity {
			t.Fatalf("accepted %+v", h)
		}

		// The fingerprint: 32 hex digits, the same for the same request
		// however it is written (seat order, JSON formatting), different
		// for another event.
		fp := h.fingerprint("arena-finals")
		if len(fp) != 32 || strings.Trim(fp, "0123456789abcdef") != "" {
			t.Fatalf("fingerprint %q", fp)
		}
		shuffled := h
		shuffled.Seats = slices.Clone(h.Seats)
		rand.Shuffle(len(shuffled.Seats), func(i, j int) { shuffled.Seats[i], shuffled.Seats[j] = shuffled.Seats[j], shuffled.Seats[i] })
		if shuffled.fingerprint("arena-finals") != fp {
			t.Fatalf("seat order changes the fingerprint of %+v", h)
		}
		again, err := json.MarshalIndent(h, " ", "\t")
		if err != nil {
			t.Fatal(err)
		}
		h2, err := decodeHold(again)
		if err != nil {
			if len(again) > maxHoldBody { // re-encoding may escape more
				return
			}
			t.Fatalf("re-encoded %s: %v", again, err)
		}
		if h2.fingerprint("arena-finals") != fp {
			t.Fatalf("re-encoding %q as %s changes the fingerprint", body, again)
		}
		if h.fingerprint("arena-concert") == fp {
			t.Fatalf("the event does not change the fingerprint")
		}
		if h.fingerprint("arena-finals") != fp {
			t.Fatalf("fingerprint not deterministic")
		}
	})
}

func FuzzIdempotencyKey(f *testing.F) {
	for _, s := range []string{"", "abc", `"abc"`, `""`, `"`, `"a"b"`, "a b", "clé", "\x7f", `a\b`,
		"5b7c1c4e-8f3a-4d59-9a57-0b6f1d1f6a12", strings.Repeat("k", 255), strings.Repeat("k", 256),
		`"` + strings.Repeat("k", 255) + `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := idempotencyKey(raw)
		if err != nil {
			clientError(t, err, errs.Invalid)
			if (raw == "") != (errs.ReasonOf(err) == "idempotency_key_missing") {
				t.Fatalf("%q: reason %q", raw, errs.ReasonOf(err))
			}
			return
		}
		if k == "" || len(k) > maxIdemKeyLen {
			t.Fatalf("%q: accepted %q", raw, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x21 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
				t.Fatalf("%q: accepted %q", raw, k)
			}
		}
		if raw != k && raw != `"`+k+`"` {
			t.Fatalf("%q: key %q", raw, k)
		}
		// Bare and quoted forms are the same key.
		for _, form := range []string{k, `"` + k + `"`} {
			if k2, err := idempotencyKey(form); err != nil || k2 != k {
				t.Fatalf("%q: %q, %v; want %q", form, k2, err, k)
			}
		}
	})
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer abc", "BEARER  abc ", "Bearer", "Bearer ", "Bearer    ",
		"Bearerabc", "Basic dXNlcjpwYXNz", "Bearer a b", "Bearer " + strings.Repeat("t", maxTokenLen+1), "Bearer\tabc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := bearer("op", header)
		if err != nil {
			clientError(t, err, errs.Unauthorized)
			return
		}
		if tok == "" || len(tok) > maxTokenLen || tok != strings.TrimSpace(tok) {
			t.Fatalf("%q: token %q", header, tok)
		}
		if !strings.EqualFold(header[:7], "bearer ") || !strings.Contains(header[7:], tok) {
			t.Fatalf("%q: token %q", header, tok)
		}
	})
}

// roundTrip checks that what was accepted is accepted again, unchanged,
// once encoded.
func roundTrip[T any](t *testing.T, v T, decode func([]byte) (T, error)) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %+v: %v", v, err)
	}
	v2, err := decode(b)
	if err != nil {
		t.Fatalf("re-encoded %s: %v", b, err)
	}
	b2, _ := json.Marshal(v2)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip: %s became %s", b, b2)
	}
}

func FuzzDecodeVenue(f *testing.F) {
	f.Add([]byte(clubVenue))
	for _, s := range []string{
		`{"id":"club","name":"Club","zones":[{"id":"ga","name":"GA","kind":"ga","capacity":800,"price_cents":2500,"currency":"USD"}]}`,
		`{"id":"v","name":"V","zones":[{"id":"r","name":"R","kind":"reserved","price_cents":0,"currency":"EUR"}],"sections":[{"id":"s","rows":[{"id":"A","seats":500,"zone":"r"}]}]}`,
		`{"id":"v","name":"V","zones":[{"id":"r","name":"R","kind":"reserved","price_cents":0,"currency":"EUR"}],"sections":[{"id":"s","rows":[{"id":"A","seats":0,"zone":"r"}]}]}`,
		`{"id":"v","name":"V","zones":[{"id":"g","name":"G","kind":"ga","capacity":1000001,"price_cents":1,"currency":"EUR"}]}`,
		`{"id":"v","name":"V","zones":[{"id":"g","name":"G","kind":"vip","price_cents":1,"currency":"EUR"}]}`,
		`{"id":"V","name":"V","zones":[]}`,
		`{"id":"v","name":"","zones":[]}`,
		`{"id":"v","name":"V","zones":null,"sections":null}`,
		`{"id":"v","name":"V","zones":[],"x":1}`,
		`{"id":"v"} []`,
		`{}`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := decodeVenue(body)
		if err != nil {
			clientError(t, err, errs.Invalid)
			return
		}
		seats := 0
		for _, s := range v.Sections {
			if len(s.Rows) < 1 || len(s.Rows) > catalog.MaxRowsPerSect {
				t.Fatalf("accepted section %+v", s)
			}
			for _, r := range s.Rows {
				if r.Seats < 1 || r.Seats > catalog.MaxSeatsPerRow {
					t.Fatalf("accepted row %+v", r)
				}
				seats += r.Seats
			}
		}
		if !catalog.ValidID(v.ID) || v.Name == "" || len(v.Name) > catalog.MaxNameLen || len(v.Zones) < 1 ||
			len(v.Zones) > catalog.MaxZones || len(v.Sections) > catalog.MaxSections || seats > catalog.MaxSeatsPerVenue ||
			v.Capacity() < 1 {
			t.Fatalf("accepted %+v", v)
		}
		for _, z := range v.Zones {
			if !catalog.ValidID(z.ID) || z.PriceCents < 0 || len(z.Currency) != 3 ||
				(z.Kind == catalog.GA) != (z.Capacity > 0) || z.Capacity > catalog.MaxGACapacity {
				t.Fatalf("accepted zone %+v", z)
			}
		}
		roundTrip(t, v, decodeVenue)
	})
}

func FuzzDecodeEvent(f *testing.F) {
	for _, s := range []string{
		`{"id":"cellar-jazz","name":"Jazz","venue_id":"cellar","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-12-01T10:00:00+01:00"}`,
		`{"id":"e","name":"E","venue_id":"arena","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-12-01T10:00:00Z","partitions":[{"sections":["101"],"ga_zones":["floor"]},{"sections":["102"]}]}`,
		`{"id":"E","name":"E"}`,
		`{"id":"e","starts_at":"tomorrow"}`,
		`{"id":"e","starts_at":"0000-01-01T00:00:00Z"}`,
		`{"id":"e","starts_at":"9999-12-31T23:59:59.999999999-23:59"}`,
		`{"id":"e","partitions":null}`,
		`{"id":"e","partitions":[{}]}`,
		`{"id":"e"} x`,
		`{"id":"e","title":"x"}`,
		`{}`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := decodeEvent(body)
		if err != nil {
			clientError(t, err, errs.Invalid)
			return
		}
		if !catalog.ValidID(e.ID) {
			t.Fatalf("accepted event id %q", e.ID)
		}
		if _, err := json.Marshal(e); err != nil {
			// A time that JSON cannot carry (a year past 9999 after the
			// offset is applied) must not have been accepted either.
			t.Fatalf("accepted %s, which cannot be encoded again: %v", body, err)
		}
		roundTrip(t, e, decodeEvent)
	})
}

// The whole app, from raw request bytes to the answer.

var fuzzMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"}

var (
	fuzzHoldMu sync.Mutex
	fuzzHold   HoldCreated // the last hold the fuzzer placed, for {hold}
)

// oauthCodes are the error codes of the token and introspection
// endpoints (RFC 6749 section 5.2), which answer in OAuth's form.
var oauthCodes = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}

// codeStatus is which statuses each error code may come with.
var codeStatus = map[string][]int{
	"invalid_request":           nil, // 400, or another client error of the HTTP server
	"unauthorized":              {401},
	"forbidden":                 {403},
	"not_found":                 {404},
	"method_not_allowed":        {405},
	"conflict":                  {409},
	"idempotency_key_in_flight": {409},
	"gone":                      {410},
	"too_large":                 {413, 431},
	"idempotency_key_mismatch":  {422},
	"rate_limited":              {429},
	"unavailable":               {503},
	"internal":                  {500},
}

func clean(s string) string { return strings.NewReplacer("\r", "", "\n", "").Replace(s) }

// oauthEndpoint reports whether path is the token or the introspection
// endpoint (Fiber routes without regard to case or a trailing slash).
func oauthEndpoint(path string) bool {
	p, _, _ := strings.Cut(strings.TrimSuffix(strings.ToLower(path), "/"), "?")
	return p == "/v1/auth/token" || p == "/v1/auth/introspect"
}

func FuzzApp(f *testing.F) {
	type seed struct {
		method                      uint8
		path, key, auth, hdr, value string
		body                        string
		fault                       uint8
	}
	seeds := []seed{
		{0, "/healthz", "", "", "", "", "", 0},
		{0, "/readyz", "", "", "", "", "", 0},
		{0, "/metrics", "", "", "", "", "", 0},
		{0, "/v1/openapi.json", "", "", "", "", "", 0},
		{0, "/v1/events", "", "", "", "", "", 0},
		{1, "/v1/events", "", "", "", "", "", 0},
		{0, "/v1/events/arena-finals", "", "", "", "", "", 0},
		{0, "/v1/events/club-night/availability", "", "", "", "", "", 0},
		{0, "/v1/events/arena-finals/availability", "", "", "", "", "", 1},
		{2, "/v1/events/arena-finals/holds", "k1", "", "Content-Type", "application/json", `{"seats":["101-A-1","101-A-2"]}`, 0},
		{2, "/v1/events/arena-finals/holds", `"k2"`, "", "", "", `{"zone":"floor","quantity":2,"ttl_seconds":60}`, 0},
		{2, "/v1/events/arena-finals/holds", "k3", "", "", "", `{"seats":["101-A-3","106-A-1"]}`, 0},
		{2, "/v1/events/arena-finals/holds", "k4", "", "", "", `{"seats":["101-A-4"]}`, 1},
		{2, "/v1/events/arena-finals/holds", "k5", "", "", "", `{"seats":["101-A-5"]}`, 2},
		{2, "/v1/events/club-night/holds", "", "", "", "", `{"zone":"ga","quantity":1}`, 0},
		{2, "/v1/events/arena-finals/holds", "k6", "", "Content-Encoding", "gzip", "\x1f\x8b\x08\x00", 0},
		{2, "/v1/events/arena-finals/holds", "k7", "", "", "", `{"seats":["101-A-1"]} {}`, 0},
		{0, "/v1/holds/{hold}", "", "Bearer {token}", "", "", "", 0},
		{4, "/v1/holds/{hold}", "", "Bearer {token}", "", "", "", 0},
		{0, "/v1/holds/{hold}", "", "Bearer {token}", "", "", "", 1},
		{4, "/v1/holds/{hold}", "", "Bearer wrong", "", "", "", 0},
		{0, "/v1/holds/arena-finals.0.aaaaaaaaaaaaaaaa", "", "Basic x", "", "", "", 0},
		{0, "/v1/holds/nope.0.aaaaaaaaaaaaaaaa", "", "Bearer x", "", "", "", 0},
		{2, "/v1/admin/venues", "", "Bearer {admin}", "", "", clubVenue, 0},
		{2, "/v1/admin/venues", "", "Bearer {admin}", "", "", clubVenue, 3},
		{2, "/v1/admin/events", "", "Bearer {admin}", "", "", `{"id":"x","name":"X","venue_id":"arena","starts_at":"2027-02-01T20:00:00Z","on_sale_at":"2026-12-01T10:00:00Z"}`, 0},
		{2, "/v1/admin/events", "", "", "", "", `{}`, 0},
		{0, "/v1/reports/events/arena-finals", "", "Bearer {admin}", "", "", "", 0},
		{0, "/v1/reports/events/arena-finals", "", "Bearer {admin}", "", "", "", 4},
		{0, "/v1/reports/events/nope", "", "Bearer {admin}", "", "", "", 0},
		{0, "/v1/reports/events/Arena", "", "Bearer {admin}", "", "", "", 0},
		{0, "/v1/reports/events/arena-finals", "", "Bearer wrong", "", "", "", 0},
		{0, "/v1/reports/events/arena-finals", "", "", "", "", "", 0},
		{0, "/v1/reports/events/arena-finals/funnel", "", "Bearer {admin}", "", "", "", 0},
		{0, "/v1/reports/events/arena-finals/funnel", "", "Bearer {admin}", "", "", "", 5},
		{0, "/v1/reports/events/club-night/funnel", "", "Bearer {admin}", "", "", "", 0},
		{0, "/v1/reports/events/a.b/funnel", "", "Bearer {admin}", "", "", "", 0},
		{3, "/v1/events", "", "", "", "", "", 0},
		{5, "/v1/holds/x", "", "", "", "", "", 0},
		{6, "/v1/events", "", "", "Origin", "http://x", "", 0},
		{7, "/", "", "", "", "", "", 0},
		{8, "/v1/events", "", "", "", "", "", 0},
		{0, "/v1/events/%2e%2e/holds", "", "", "", "", "", 0},
		{0, "/v1//events", "", "", "", "", "", 0},
		{0, "/v1/events?x=1&x=2", "", "", "", "", "", 0},
		{0, "/v1/events/" + strings.Repeat("a", 5000), "", "", "", "", "", 0},
		{0, "/v1/events", "", "", "Expect", "100-continue", "", 0},
		{2, "/v1/events/arena-finals/holds", "k8", "", "Transfer-Encoding", "chunked", "5\r\n{\"sea\r\n0\r\n\r\n", 0},
		{0, "/queue/arena-finals", "", "", "", "", "", 0},
		{0, "/events/club-night/select", "", "", "", "", "", 0},
		{0, "/queue/nope", "", "", "", "", "", 0},
		{0, "/web/queue.js", "", "", "", "", "", 0},
		{2, "/v1/events/arena-finals/queue/join", "", "", "Cookie", "tq_session=AAAAAAAAAAAAAAAAAAAAAA", "", 0},
		{2, "/v1/events/arena-finals/queue/join", "", "", "Queue-PoW", "x.y", "", 0},
		{0, "/v1/events/arena-finals/queue/status", "", "", "Cookie", "tq_session=AAAAAAAAAAAAAAAAAAAAAA", "", 0},
		{0, "/v1/events/arena-finals/queue/status", "", "", "Cookie", "tq_session=%00", "", 0},
		{0, "/v1/events/arena-finals/queue", "", "", "Upgrade", "websocket", "", 0},
		{0, "/v1/events/arena-finals/queue?pow=" + strings.Repeat("a", 600), "", "", "Upgrade", "websocket", "", 0},
		{0, "/v1/events/club-night/queue/draw", "", "", "", "", "", 0},
		{0, "/v1/events/arena-finals/queue/draw", "", "", "", "", "", 0},
		{0, "/v1/events/arena-finals/queue/challenge", "", "", "", "", "", 0},
		{0, "/.well-known/jwks.json", "", "", "", "", "", 0},
		// Accounts, OAuth and the gateway.
		{0, "/v1/holds/{hold}", "", "Bearer {other}", "", "", "", 0},
		{4, "/v1/holds/{hold}", "", "Bearer {other}", "", "", "", 0},
		{0, "/v1/holds/{hold}", "", "", "Cookie", "tk_at={token}", "", 0},
		{4, "/v1/holds/{hold}", "", "", "Cookie", "tk_at={token}; tk_csrf=x", "", 0},
		{2, "/v1/events/arena-finals/holds", "k9", "", "Cookie", "tk_at={token}", `{"seats":["101-A-9"]}`, 0},
		{2, "/v1/events/arena-finals/holds", "k9", "Bearer {token}x", "", "", `{"seats":["101-A-9"]}`, 0},
		{0, "/v1/events", "", "Bearer a.b.c", "", "", "", 0},
		{0, "/v1/events", "", "Bearer", "", "", "", 0},
		{9, "/v1/events", "", "", "", "", "", 0},
		{2, "/v1/auth/signup", "", "", "", "", `{"email":"fuzz@example.com","password":"correct horse battery staple"}`, 0},
		{2, "/v1/auth/signup", "", "", "", "", `{"email":"fuzz@example.com","password":"x","roles":["admin"]}`, 0},
		{2, "/v1/auth/signin", "", "", "", "", `{"email":"fuzz@example.com","password":"correct horse battery staple","cookie":true}`, 0},
		{2, "/v1/auth/signin/second-factor", "", "", "", "", `{"mfa_token":"m","code":"123456"}`, 0},
		{2, "/v1/auth/verify", "", "", "", "", `{"token":"x"}`, 0},
		{2, "/v1/auth/verify/resend", "", "", "", "", `{"email":"fuzz@example.com"}`, 0},
		{2, "/v1/auth/password/forgot", "", "", "", "", `{"email":"fuzz@example.com"}`, 0},
		{2, "/v1/auth/password/reset", "", "", "", "", `{"token":"x","password":"another correct horse"}`, 0},
		{2, "/v1/auth/token", "", "{client}", "Content-Type", "application/x-www-form-urlencoded", "grant_type=client_credentials", 0},
		{2, "/v1/auth/token", "", "", "Content-Type", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=s_1.x", 0},
		{2, "/v1/auth/token", "", "Basic eDp5", "Content-Type", "application/x-www-form-urlencoded", "grant_type=client_credentials", 0},
		{2, "/v1/auth/introspect", "", "{client}", "Content-Type", "application/x-www-form-urlencoded", "token={token}", 0},
		{2, "/v1/auth/refresh", "", "", "Cookie", "tk_rt=s_1.x; tk_csrf=c", "", 0},
		{2, "/v1/auth/signout", "", "Bearer {token}", "", "", `{"refresh_token":"s_1.x"}`, 0},
		{0, "/v1/auth/jwks.json", "", "", "", "", "", 0},
		{0, "/.well-known/oauth-authorization-server", "", "", "", "", "", 0},
		{0, "/v1/account", "", "Bearer {token}", "", "", "", 0},
		{0, "/v1/account/sessions", "", "Bearer {token}", "", "", "", 0},
		{4, "/v1/account/sessions/s_1", "", "Bearer {other}", "", "", "", 0},
		{2, "/v1/account/password", "", "Bearer {token}", "", "", `{"step_up":{"password":"x"},"new_password":"y"}`, 0},
		{2, "/v1/account/totp", "", "Bearer {other}", "", "", "", 0},
		{2, "/v1/account/totp/confirm", "", "Bearer {other}", "", "", `{"code":"123456"}`, 0},
		{2, "/v1/account/recovery-codes", "", "Bearer {token}", "", "", `{"step_up":{}}`, 0},
		{2, "/v1/account/passkeys/begin", "", "Bearer {token}", "", "", "", 0},
		{2, "/v1/auth/passkey/finish", "", "", "", "", `{"state":"x","credential":{}}`, 0},
		{3, "/v1/admin/accounts/u_1/roles", "", "Bearer {bootstrap}", "", "", `{"roles":["admin"]}`, 0},
		{3, "/v1/admin/accounts/u_1/roles", "", "Bearer {token}", "", "", `{"roles":["admin"]}`, 0},
		{2, "/v1/admin/clients", "", "Bearer {admin}", "", "", `{"name":"fuzz","scopes":["holds:write"]}`, 0},
		{2, "/v1/admin/clients", "", "Bearer {token}", "", "", `{"name":"fuzz","scopes":["holds:write"]}`, 0},
		{3, "/v1/admin/clients/c_1/disabled", "", "Bearer {admin}", "", "", `{"disabled":true}`, 0},
		{0, "/dev/mail", "", "", "", "", "", 0},
		// Orders.
		{2, "/v1/quotes", "", "Bearer {token}", "", "", `{"holds":["arena-finals.0.aaaaaaaaaaaaaaaa"]}`, 0},
		{2, "/v1/quotes", "", "Bearer {token}", "", "", `{"holds":["arena-finals.0.aaaaaaaaaaaaaaaa"],"add_ons":[{"id":"parking","quantity":1}],"voucher":"x"}`, 1},
		{2, "/v1/orders", "o1", "Bearer {token}", "", "", `{"holds":["arena-finals.0.aaaaaaaaaaaaaaaa"],"quote_id":"q_x"}`, 0},
		{2, "/v1/orders", "o2", "Bearer {token}", "", "", `{"holds":["nope.0.aaaaaaaaaaaaaaaa","arena-finals.1.aaaaaaaaaaaaaaaa"]}`, 2},
		{2, "/v1/orders", "", "Bearer {token}", "", "", `{"holds":["h"]}`, 0},
		{2, "/v1/orders", "o3", "", "Cookie", "tk_at={token}", `{"holds":["h"]}`, 0},
		{0, "/v1/orders/o_aaaaaaaaaaaaaaaaaaaaaaaaaa", "", "Bearer {token}", "", "", "", 0},
		{2, "/v1/orders/o_aaaaaaaaaaaaaaaaaaaaaaaaaa/pay", "", "Bearer {token}", "", "", `{"method":"pm_1"}`, 0},
		{2, "/v1/orders/o_aaaaaaaaaaaaaaaaaaaaaaaaaa/cancel", "", "Bearer {other}", "", "", "", 0},
		{0, "/v1/orders/o_aaaaaaaaaaaaaaaaaaaaaaaaaa/return", "", "", "", "", "", 0},
		{0, "/v1/me/orders?limit=2&after=o_x", "", "Bearer {token}", "", "", "", 0},
		{2, "/v1/admin/orders/o_aaaaaaaaaaaaaaaaaaaaaaaaaa/refund", "", "Bearer {admin}", "", "", `{"reason":"x"}`, 0},
		{2, "/v1/admin/orders/o_x/refund", "", "Bearer {token}", "", "", `{"reason":"x"}`, 0},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.key, s.auth, s.hdr, s.value, []byte(s.body), s.fault)
	}
	// One env for the whole target (each fuzzing worker has its own), with
	// its accounts signed in: {token} is the buyer's access token, {other}
	// another buyer's, {admin} an admin's, {bootstrap} the bootstrap admin
	// token, {client} a partner client's HTTP Basic credentials.
	q := newFakeQueue(f)
	e := newEnvWith(f, func(_ *Config, d *Deps) { d.Queue = q })
	partner := newPartner(f, e, "fuzz", client.ScopeHoldsWrite, client.ScopeHoldsRead)
	secrets := []string{e.account(f, buyer).AccessToken, e.account(f, otherBuyer).AccessToken, e.account(f, adminUser).AccessToken,
		e.ids.AdminToken, partner.secret, e.admin.token}
	fill := strings.NewReplacer("{token}", secrets[0], "{other}", secrets[1], "{admin}", secrets[2], "{bootstrap}", secrets[3],
		"{client}", partner.basic())
	f.Fuzz(func(t *testing.T, method uint8, path, key, auth, hdr, value string, body []byte, fault uint8) {
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		fuzzHoldMu.Lock()
		last := fuzzHold
		fuzzHoldMu.Unlock()
		path = strings.ReplaceAll(clean(path), "{hold}", last.HoldID)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		auth = fill.Replace(clean(auth))
		hdr, value = clean(hdr), fill.Replace(clean(value))
		if strings.EqualFold(hdr, "Content-Length") || strings.EqualFold(hdr, "Host") {
			hdr = "X-" + hdr // the framing is ours
		}

		var raw bytes.Buffer
		fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\nHost: edge\r\n", m, path)
		if key != "" {
			fmt.Fprintf(&raw, "Idempotency-Key: %s\r\n", clean(key))
		}
		if auth != "" {
			fmt.Fprintf(&raw, "Authorization: %s\r\n", auth)
		}
		if hdr != "" {
			fmt.Fprintf(&raw, "%s: %s\r\n", hdr, value)
		}
		chunked := strings.EqualFold(hdr, "Transfer-Encoding")
		if !chunked {
			fmt.Fprintf(&raw, "Content-Length: %d\r\n", len(body))
		}
		raw.WriteString("\r\n")
		raw.Write(body)

		// Faults of the core: 1 the inventory is unavailable, 2 it fails
		// with an internal error, 3 the catalog service is unavailable, 4
		// the reporting store is, 5 the analytics store is.
		invCalls, adminCalls := e.inv.callCount(), e.admin.callCount()
		reportReads, funnelReads := e.reports.readCount(), e.funnels.readCount()
		var injected error
		switch fault % 8 {
		case 1:
			injected = errs.E("inventory", errs.Unavailable, "the partition is changing owner; try again")
		case 2:
			injected = fmt.Errorf("boom")
		case 3:
			e.admin.mu.Lock()
			e.admin.fail = errs.E("catalog.admin", errs.Unavailable, "the catalog service is not reachable; try again")
			e.admin.mu.Unlock()
		case 4:
			e.reports.failNext(errs.E("reporting.store", errs.Unavailable, "the store is not reachable; try again"))
		case 5:
			e.funnels.failNext(errs.E("analytics.store", errs.Unavailable, "the store is not reachable; try again"))
		}
		e.inv.mu.Lock()
		for _, op := range []string{"hold", "get", "release", "availability"} {
			if injected != nil {
				e.inv.fail[op] = injected
			} else {
				delete(e.inv.fail, op)
			}
		}
		e.inv.mu.Unlock()
		defer func() {
			e.inv.mu.Lock()
			clear(e.inv.fail)
			e.inv.mu.Unlock()
			e.admin.mu.Lock()
			e.admin.fail = nil
			e.admin.mu.Unlock()
			e.reports.failNext(nil)
			e.funnels.failNext(nil)
		}()

		c := &rawConn{}
		c.r.Write(raw.Bytes())
		e.app.Handler()
		_ = e.app.Server().ServeConn(c)
		if c.w.Len() == 0 {
			// The server may close without a word only on a request it
			// could not read to its end (a chunked body cut short).
			if chunked {
				return
			}
			t.Fatalf("no answer to %q", raw.Bytes())
		}
		rd := bufio.NewReader(&c.w)
		var resp *http.Response
		for {
			var err error
			resp, err = http.ReadResponse(rd, &http.Request{Method: m})
			if err != nil {
				t.Fatalf("unreadable answer %q to %q: %v", c.w.Bytes(), raw.Bytes(), err)
			}
			if resp.StatusCode >= 200 {
				break
			}
			io.Copy(io.Discard, resp.Body)
		}
		rbody, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		r := result{resp.StatusCode, resp.Header, rbody}
		where := fmt.Sprintf("%q → %s", raw.Bytes(), r)
		if len(where) > 3000 {
			where = where[:1500] + " … " + where[len(where)-1500:]
		}

		faulted := (fault%8 == 1 || fault%8 == 2) && e.inv.callCount() > invCalls ||
			fault%8 == 3 && e.admin.callCount() > adminCalls ||
			fault%8 == 4 && e.reports.readCount() > reportReads ||
			fault%8 == 5 && e.funnels.readCount() > funnelReads
		if r.status >= 500 && !(faulted && (r.status == 503 || r.status == 500 && fault%8 == 2)) {
			t.Fatalf("%s: server error", where)
		}
		if m == "HEAD" {
			if len(rbody) != 0 {
				t.Fatalf("%s: HEAD with a body", where)
			}
			return
		}
		metrics := r.status == 200 && strings.HasPrefix(r.header.Get("Content-Type"), "text/plain")
		if !metrics && !pageAnswer(path, r) && !devMailAnswer(path, r) && r.status != http.StatusNoContent && !redirect(r.status) {
			if !jsonMedia(r.header.Get("Content-Type")) || !json.Valid(rbody) {
				t.Fatalf("%s: not a JSON answer", where)
			}
		}
		oauthAnswer := false
		if r.status >= 400 && oauthEndpoint(path) {
			// The token and introspection endpoints answer their callers'
			// errors in OAuth's form; limits and failures as every route.
			var o OAuthError
			if json.Unmarshal(rbody, &o) == nil && o.Error != "" {
				if !slices.Contains(oauthCodes, o.Error) || (r.status != 400 && r.status != 401) ||
					(r.status == 401) != (o.Error == "invalid_client") {
					t.Fatalf("%s: OAuth error %+v does not fit the status", where, o)
				}
				for _, secret := range append(secrets, auth) {
					if len(secret) >= 8 && strings.Contains(o.Description, secret) {
						t.Fatalf("%s: the description quotes a credential", where)
					}
				}
				oauthAnswer = true
			}
		}
		if r.status >= 400 && !oauthAnswer {
			d, err := r.errorBody()
			if err != nil {
				t.Fatalf("%s: not an error body: %v", where, err)
			}
			statuses, known := codeStatus[d.Code]
			if !known || d.Message == "" || (statuses == nil && (r.status < 400 || r.status > 499)) ||
				(statuses != nil && !slices.Contains(statuses, r.status)) {
				t.Fatalf("%s: error %+v does not fit the status", where, d)
			}
			if r.status == 503 && r.header.Get("Retry-After") == "" {
				t.Fatalf("%s: 503 without Retry-After", where)
			}
			// Answers never quote credentials back.
			for _, secret := range append(secrets, auth) {
				if len(secret) >= 8 && strings.Contains(d.Message, secret) {
					t.Fatalf("%s: the message quotes a credential", where)
				}
			}
			if d.Message == "malformed HTTP request" {
				return // the HTTP server could not read it; no route was involved
			}
		}
		if r.status == 201 && strings.HasSuffix(path, "/holds") {
			var h HoldCreated
			if json.Unmarshal(rbody, &h) == nil {
				fuzzHoldMu.Lock()
				fuzzHold = h
				fuzzHoldMu.Unlock()
			}
		}
		// Answers to requests the contract can route are checked against it
		// (not the server's own limits on heads and bodies, documented once
		// for all routes, nor the answers to injected faults; paths that the
		// validator would clean up route differently there, and Fiber routes
		// without regard to case or a trailing slash).
		if u, err := url.ParseRequestURI(path); err == nil && u.RawPath == "" && !strings.ContainsAny(path, " %\t") &&
			!strings.Contains(path, "//") && !strings.Contains(path, "/.") && strings.ToLower(u.Path) == u.Path &&
			(u.Path == "/" || !strings.HasSuffix(u.Path, "/")) && !faulted && r.status != 431 && r.status != 413 {
			req, err := http.NewRequest(m, path, nil)
			if err == nil {
				rec := &recorder{TB: t}
				loadContract(t).check(rec, req, r)
				if len(rec.failures) > 0 {
					t.Fatalf("%s: %s", where, strings.Join(rec.failures, "; "))
				}
			}
		}
	})
}
