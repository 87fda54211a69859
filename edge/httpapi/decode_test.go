package httpapi

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

func kindOf(err error) errs.Kind {
	var e *errs.Error
	if !errors.As(err, &e) {
		return 255
	}
	return e.Kind
}

func seatList(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = `"101-A-` + string(rune('a'+i)) + `"`
	}
	return "[" + strings.Join(s, ",") + "]"
}

func TestDecodeHold(t *testing.T) {
	exact := `{"seats":["101-A-1"]}`
	exact += strings.Repeat(" ", maxHoldBody-len(exact))
	cases := []struct {
		name string
		body string
		want holdBody
		kind errs.Kind // Other: no error
	}{
		{"seats", `{"seats":["101-A-1","101-A-2"]}`, holdBody{Seats: []string{"101-A-1", "101-A-2"}}, errs.Other},
		{"seats and ttl", `{"seats":["101-A-1"],"ttl_seconds":300}`, holdBody{Seats: []string{"101-A-1"}, TTLSeconds: 300}, errs.Other},
		{"seats with empty zone and zero quantity", `{"seats":["x"],"zone":"","quantity":0}`, holdBody{Seats: []string{"x"}}, errs.Other},
		{"zone", `{"zone":"floor","quantity":2}`, holdBody{Zone: "floor", Quantity: 2}, errs.Other},
		{"zone with null seats", `{"seats":null,"zone":"floor","quantity":1}`, holdBody{Zone: "floor", Quantity: 1}, errs.Other},
		{"zone with no seats", `{"seats":[],"zone":"floor","quantity":10}`, holdBody{Seats: []string{}, Zone: "floor", Quantity: 10}, errs.Other},
		{"ten seats", `{"seats":` + seatList(10) + `}`, holdBody{}, errs.Other},
		{"64-byte seat id", `{"seats":["` + strings.Repeat("s", 64) + `"]}`, holdBody{Seats: []string{strings.Repeat("s", 64)}}, errs.Other},
		{"whitespace", " \r\n\t{ \"seats\" : [ \"a\" ] } \n", holdBody{Seats: []string{"a"}}, errs.Other},
		{"exactly the limit", exact, holdBody{Seats: []string{"101-A-1"}}, errs.Other},

		{"one byte over the limit", exact + " ", holdBody{}, errs.TooLarge},
		{"empty", "", holdBody{}, errs.Invalid},
		{"blank", "  \n", holdBody{}, errs.Invalid},
		{"null", "null", holdBody{}, errs.Invalid},
		{"object", "{}", holdBody{}, errs.Invalid},
		{"array", "[]", holdBody{}, errs.Invalid},
		{"string", `"seats"`, holdBody{}, errs.Invalid},
		{"truncated", `{"seats":["a"]`, holdBody{}, errs.Invalid},
		{"syntax", `{"seats":[a]}`, holdBody{}, errs.Invalid},
		{"unknown field", `{"seats":["a"],"x":1}`, holdBody{}, errs.Invalid},
		{"trailing object", `{"seats":["a"]}{}`, holdBody{}, errs.Invalid},
		{"trailing garbage", `{"seats":["a"]} ,`, holdBody{}, errs.Invalid},
		{"trailing NUL", "{\"seats\":[\"a\"]}\x00", holdBody{}, errs.Invalid},
		{"seats not an array", `{"seats":"a"}`, holdBody{}, errs.Invalid},
		{"seat not a string", `{"seats":[1]}`, holdBody{}, errs.Invalid},
		{"quantity not an integer", `{"zone":"floor","quantity":"2"}`, holdBody{}, errs.Invalid},
		{"quantity overflows", `{"zone":"floor","quantity":99999999999999999999}`, holdBody{}, errs.Invalid},
		{"ttl overflows", `{"seats":["a"],"ttl_seconds":1e100}`, holdBody{}, errs.Invalid},
		{"ttl in exponent form", `{"seats":["a"],"ttl_seconds":1.2e2}`, holdBody{}, errs.Invalid},
		{"seats and zone", `{"seats":["a"],"zone":"floor"}`, holdBody{}, errs.Invalid},
		{"seats and quantity", `{"seats":["a"],"quantity":1}`, holdBody{}, errs.Invalid},
		{"no seats", `{"seats":[]}`, holdBody{}, errs.Invalid},
		{"eleven seats", `{"seats":` + seatList(11) + `}`, holdBody{}, errs.Invalid},
		{"duplicate seat", `{"seats":["a","b","a"]}`, holdBody{}, errs.Invalid},
		{"empty seat", `{"seats":["a",""]}`, holdBody{}, errs.Invalid},
		{"65-byte seat id", `{"seats":["` + strings.Repeat("s", 65) + `"]}`, holdBody{}, errs.Invalid},
		{"bad zone id", `{"zone":"Floor","quantity":1}`, holdBody{}, errs.Invalid},
		{"zone id too long", `{"zone":"` + strings.Repeat("z", 64) + `","quantity":1}`, holdBody{}, errs.Invalid},
		{"quantity 0", `{"zone":"floor","quantity":0}`, holdBody{}, errs.Invalid},
		{"quantity 11", `{"zone":"floor","quantity":11}`, holdBody{}, errs.Invalid},
		{"quantity -1", `{"zone":"floor","quantity":-1}`, holdBody{}, errs.Invalid},
		{"quantity alone", `{"quantity":1}`, holdBody{}, errs.Invalid},
		{"ttl alone", `{"ttl_seconds":60}`, holdBody{}, errs.Invalid},
		{"negative ttl", `{"zone":"floor","quantity":1,"ttl_seconds":-5}`, holdBody{}, errs.Invalid},
		{"ttl over a day", `{"zone":"floor","quantity":1,"ttl_seconds":86401}`, holdBody{}, errs.Invalid},
		{"ttl that overflows a Duration", `{"seats":["a"],"ttl_seconds":18446744104}`, holdBody{}, errs.Invalid},
		{"ttl of a day", `{"zone":"floor","quantity":1,"ttl_seconds":86400}`, holdBody{Zone: "floor", Quantity: 1, TTLSeconds: 86400}, errs.Other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := decodeHold([]byte(c.body))
			if c.kind != errs.Other {
				if err == nil || kindOf(err) != c.kind {
					t.Fatalf("got %+v, %v; want a %v error", h, err, c.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want.Seats != nil || c.want.Zone != "" {
				if !reflect.DeepEqual(h, c.want) {
					t.Fatalf("got %+v, want %+v", h, c.want)
				}
			}
		})
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	for body, want := range map[string]string{
		`{"zone":"floor","quantity":1.5}`: `field "quantity" must be an integer`,
		`{"zone":"floor","quantity":"1"}`: `field "quantity" must be an integer`,
		`{"seats":"a"}`:                   `field "seats" must be an array`,
		`{"seats":[1]}`:                   `must be a string`,
		`{"seats":["a"],"x":1}`:           `unknown field "x"`,
		`{"seats":[a]}`:                   `syntax error at byte 11`,
		`{"seats":["a"]`:                  `unexpected end of input`,
		`{"seats":["a"]}{}`:               `data after the JSON value`,
	} {
		_, err := decodeHold([]byte(body))
		if err == nil || !strings.Contains(errs.Message(err), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	ok := []struct{ raw, want string }{
		{"abc", "abc"},
		{`"abc"`, "abc"},
		{"5b7c1c4e-8f3a-4d59-9a57-0b6f1d1f6a12", "5b7c1c4e-8f3a-4d59-9a57-0b6f1d1f6a12"},
		{"!", "!"},
		{"~", "~"},
		{"a:b/c=d+e", "a:b/c=d+e"},
		{strings.Repeat("k", 255), strings.Repeat("k", 255)},
		{`"` + strings.Repeat("k", 255) + `"`, strings.Repeat("k", 255)},
	}
	for _, c := range ok {
		got, err := idempotencyKey(c.raw)
		if err != nil || got != c.want {
			t.Errorf("idempotencyKey(%q) = %q, %v; want %q", c.raw, got, err, c.want)
		}
	}
	bad := []string{
		`""`, `"`, strings.Repeat("k", 256), `"` + strings.Repeat("k", 256) + `"`,
		"a b", " abc", "abc ", "\tabc", "clé", "\x7f", "a\x00b", `a"b`, `"a"b"`, `"abc`, `abc"`, `a\b`, `"a\"b"`,
	}
	for _, raw := range bad {
		if got, err := idempotencyKey(raw); err == nil || kindOf(err) != errs.Invalid {
			t.Errorf("idempotencyKey(%q) = %q, %v; want an invalid_request error", raw, got, err)
		}
	}
	if _, err := idempotencyKey(""); kindOf(err) != errs.Invalid || errs.ReasonOf(err) != "idempotency_key_missing" {
		t.Errorf("missing key: %v (reason %q)", err, errs.ReasonOf(err))
	}
	if _, err := idempotencyKey(`""`); errs.ReasonOf(err) != "" {
		t.Errorf("an empty key is not a missing one: reason %q", errs.ReasonOf(err))
	}
}

func TestBearer(t *testing.T) {
	ok := []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER abc", "abc"},
		{"Bearer    abc   ", "abc"},
		{"Bearer kq1mO0Xy3jW7d8bZc4nP2rT6vL9sA5eF1gH0iJ2kL3m", "kq1mO0Xy3jW7d8bZc4nP2rT6vL9sA5eF1gH0iJ2kL3m"},
		// Access tokens with roles and a long issuer are over 512 bytes
		// (the hold tokens' bound, which refused them).
		{"Bearer " + strings.Repeat("t", 700), strings.Repeat("t", 700)},
		{"Bearer " + strings.Repeat("t", maxTokenLen), strings.Repeat("t", maxTokenLen)},
	}
	for _, c := range ok {
		got, err := bearer("op", c.header)
		if err != nil || got != c.want {
			t.Errorf("bearer(%q) = %q, %v; want %q", c.header, got, err, c.want)
		}
	}
	bad := []string{
		"", "Bearer", "Bearer ", "Bearer      ", "Bearerabc", "Bearer\tabc", "Basic dXNlcjpwYXNz", "Token abc",
		" Bearer abc", "abc", "Bearer " + strings.Repeat("t", maxTokenLen+1),
	}
	for _, h := range bad {
		if got, err := bearer("op", h); err == nil || kindOf(err) != errs.Unauthorized {
			t.Errorf("bearer(%q) = %q, %v; want an unauthorized error", h, got, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	fp := func(event, body string) string {
		t.Helper()
		h, err := decodeHold([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return h.fingerprint(event)
	}
	base := fp("arena-finals", `{"seats":["101-A-1","101-A-2","101-B-7"],"ttl_seconds":120}`)
	if len(base) != 32 || strings.Trim(base, "0123456789abcdef") != "" {
		t.Fatalf("fingerprint %q is not 32 hex digits", base)
	}
	same := []string{
		`{"seats":["101-B-7","101-A-2","101-A-1"],"ttl_seconds":120}`,
		` { "ttl_seconds" : 120 , "seats" : [ "101-A-2" , "101-B-7" , "101-A-1" ] }` + "\n",
		`{"seats":["101-A-1","101-A-2","101-B-7"],"ttl_seconds":120,"zone":"","quantity":0}`,
		`{"seats":["101-A-1","101-A-2","101-B-\u0037"],"ttl_seconds":120}`,
	}
	for _, body := range same {
		if got := fp("arena-finals", body); got != base {
			t.Errorf("%s: fingerprint differs", body)
		}
	}
	different := []struct{ event, body string }{
		{"arena-concert", `{"seats":["101-A-1","101-A-2","101-B-7"],"ttl_seconds":120}`},
		{"arena-finals", `{"seats":["101-A-1","101-A-2"],"ttl_seconds":120}`},
		{"arena-finals", `{"seats":["101-A-1","101-A-2","101-B-8"],"ttl_seconds":120}`},
		{"arena-finals", `{"seats":["101-A-1","101-A-2","101-B-7"]}`},
		{"arena-finals", `{"seats":["101-A-1","101-A-2","101-B-7"],"ttl_seconds":121}`},
	}
	for _, d := range different {
		if got := fp(d.event, d.body); got == base {
			t.Errorf("%s %s: same fingerprint", d.event, d.body)
		}
	}

	ga := fp("arena-finals", `{"zone":"floor","quantity":2}`)
	for _, body := range []string{`{"quantity":2,"zone":"floor"}`, `{"zone":"floor","quantity":2,"seats":[]}`,
		`{"zone":"floor","quantity":2,"seats":null}`, `{"zone":"floor","quantity":2,"ttl_seconds":0}`} {
		if got := fp("arena-finals", body); got != ga {
			t.Errorf("%s: fingerprint differs", body)
		}
	}
	for _, d := range []struct{ event, body string }{
		{"arena-finals", `{"zone":"floor","quantity":3}`},
		{"arena-finals", `{"zone":"floor2","quantity":2}`},
		{"arena-finals", `{"zone":"floor","quantity":2,"ttl_seconds":60}`},
		{"club-night", `{"zone":"floor","quantity":2}`},
	} {
		if got := fp(d.event, d.body); got == ga {
			t.Errorf("%s %s: same fingerprint", d.event, d.body)
		}
	}
	// Field boundaries cannot be shifted: a seat id that looks like two.
	if fp("e", `{"seats":["a\",\"b"]}`) == fp("e", `{"seats":["a","b"]}`) {
		t.Error("seat ids are not delimited")
	}
}

// The plain path agrees with the strict decoder on every body it takes.
func FuzzHoldBodyPlain(f *testing.F) {
	for _, s := range []string{
		`{"zone":"floor","quantity":2}`, `{"seats":["a-1-1","a-1-2"],"ttl_seconds":120}`, `{"seats":null,"zone":"x"}`,
		`{"Zone":"floor"}`, `{"zone":"floor","zone":"pit"}`, `{"quantity":1.5}`, `{"quantity":-0}`, `{"extra":1}`,
		`{"seats":["\u0041"]}`, `{} {}`, ` {"seats" : [ ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var plain holdBody
		if !plain.decodePlain(body) {
			return
		}
		var strict holdBody
		if err := decodeStrict("test", body, &strict); err != nil {
			t.Fatalf("%q: plain path took it as %+v; the strict decoder refuses: %v", body, plain, err)
		}
		if !reflect.DeepEqual(plain, strict) {
			t.Fatalf("%q: plain %+v, strict %+v", body, plain, strict)
		}
	})
}

// A created hold's hand-written JSON is what encoding/json writes.
func TestHoldCreatedJSON(t *testing.T) {
	for _, h := range []HoldCreated{
		{HoldID: "ev.0.abc", Zone: "ga", Quantity: 2, ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC)},
		{HoldID: `q"<&>`, Seats: []string{"a-1-1", "é"}, ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("", 3600))},
		{Seats: []string{}},
	} {
		want, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.appendJSON(nil)
		if err != nil || string(got) != string(want) {
			t.Fatalf("appendJSON\n%s\nencoding/json\n%s\n(%v)", got, want, err)
		}
	}
}

// An order's fingerprint is the same for the same request however it is
// written, and different for any other: values may hold any character, so
// no two bodies may encode alike (joined with separators, holds
// ["h","x:1"] were the same request as holds ["h"] with add-on x × 1, and
// a replay answered an order the request had not asked for).
func TestCartFingerprint(t *testing.T) {
	fp := func(body string) string {
		t.Helper()
		b, err := decodeCart([]byte(body), true)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return b.fingerprint()
	}
	same := [][]string{
		{`{"holds":["a","b"]}`, `{"holds":["b","a"]}`, " {\n\"holds\": [\"a\", \"b\"], \"add_ons\": null, \"voucher\": \"\", \"quote_id\": \"\"}"},
		{`{"holds":["a"],"add_ons":[{"id":"p","quantity":1},{"id":"q","quantity":2}]}`, `{"holds":["a"],"add_ons":[{"quantity":2,"id":"q"},{"id":"p","quantity":1}]}`},
		{`{"holds":["a"],"voucher":"spring10"}`, `{"holds":["a"],"voucher":" SPRING10 "}`},
		{`{"holds":["a"],"add_ons":[]}`, `{"holds":["a"]}`},
	}
	for _, group := range same {
		for _, body := range group[1:] {
			if fp(body) != fp(group[0]) {
				t.Errorf("%s and %s have different fingerprints", body, group[0])
			}
		}
	}
	different := []string{
		`{"holds":["a"]}`,
		`{"holds":["a","b"]}`,
		`{"holds":["a\u0000b"]}`,
		`{"holds":["h","x:1"]}`,
		`{"holds":["h"],"add_ons":[{"id":"x","quantity":1}]}`,
		`{"holds":["h"],"add_ons":[{"id":"x","quantity":2}]}`,
		`{"holds":["h"],"add_ons":[{"id":"x","quantity":1},{"id":"x","quantity":1}]}`,
		`{"holds":["h"],"voucher":"a\u0000q_x"}`,
		`{"holds":["h"],"voucher":"A","quote_id":"q_x"}`,
		`{"holds":["h"],"quote_id":"q_x"}`,
		`{"holds":["h"],"quote_id":"Q_x"}`,
		`{"holds":["h\u0000"]}`,
		`{"holds":["h"],"voucher":"h"}`,
	}
	seen := map[string]string{}
	for _, body := range different {
		f := fp(body)
		if len(f) != 32 || strings.Trim(f, "0123456789abcdef") != "" {
			t.Fatalf("%s: fingerprint %q", body, f)
		}
		if prev, ok := seen[f]; ok {
			t.Errorf("%s and %s have the same fingerprint", body, prev)
		}
		seen[f] = body
	}
}
