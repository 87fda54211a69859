package barcode_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

const day = 24 * time.Hour

// TestRotation: the newest active key signs; the older one verifies what
// it signed until it retires, then its barcodes are unknown_key.
func TestRotation(t *testing.T) {
	k1 := fixedKey(event, "k1", 1, t0.Add(-30*day), t0.Add(10*day))
	k2 := fixedKey(event, "k2", 2, t0.Add(-day), t0.Add(90*day))
	k3 := fixedKey(event, "k3", 3, t0.Add(day), t0.Add(90*day)) // published ahead
	other := fixedKey("evt-other", "k9", 9, t0.Add(-day), time.Time{})
	keys := []barcode.Key{k1, k2, k3, other}

	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{t0.Add(-10 * day), "k1"},
		{t0.Add(-day), "k2"},
		{t0, "k2"},
		{t0.Add(day), "k3"},
	} {
		k, err := barcode.SigningKey(keys, event, tc.at)
		if err != nil || k.ID != tc.want {
			t.Errorf("SigningKey at %v = %s, %v; want %s", tc.at, k.ID, err, tc.want)
		}
	}
	if _, err := barcode.SigningKey(keys, event, t0.Add(-31*day)); !errs.Is(errs.NotFound, err) {
		t.Errorf("SigningKey before any key: err = %v", err)
	}
	if _, err := barcode.SigningKey(keys, "evt-none", t0); !errs.Is(errs.NotFound, err) {
		t.Errorf("SigningKey of an event without keys: err = %v", err)
	}

	// A barcode of k1 valid until k1 retires, and one of k2.
	c1 := claims()
	c1.ValidFrom, c1.ValidUntil = t0.Add(-day), t0.Add(10*day)
	old := show(t, k1, c1, t0)
	cur := show(t, k2, claims(), t0)

	var set barcode.KeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	f := newFixture()
	f.ver.Keys = set
	for _, text := range []string{old, cur} {
		if _, err := f.ver.Verify(text); err != nil {
			t.Fatalf("before k1 retires: %v", err)
		}
	}
	// k1 retires: its barcodes are refused, k2's are not.
	f.now = t0.Add(10 * day)
	if _, err := f.ver.Verify(show(t, k1, c1, f.now)); errs.ReasonOf(err) != barcode.ReasonUnknownKey {
		t.Fatalf("after k1 retired: err = %v", err)
	}
	c2 := claims()
	c2.ValidUntil = t0.Add(20 * day)
	if _, err := f.ver.Verify(show(t, k2, c2, f.now)); err != nil {
		t.Fatalf("k2 after k1 retired: %v", err)
	}
	// Retired early, by leaving the set.
	f.now = t0
	f.ver.Keys = barcode.KeySet{Keys: set.Keys[1:]}
	if _, err := f.ver.Verify(old); errs.ReasonOf(err) != barcode.ReasonUnknownKey {
		t.Fatalf("k1 removed: err = %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	k := fixedKey(event, "k1", 1, t0.Add(-day), t0.Add(day))
	for _, tc := range []struct {
		name   string
		key    func(k *barcode.Key)
		claims func(c *barcode.Claims)
	}{
		{"barcode outlives its key", func(*barcode.Key) {}, func(c *barcode.Claims) { c.ValidUntil = t0.Add(day + time.Second) }},
		{"key of another event", func(k *barcode.Key) { k.Event = "evt-other" }, func(*barcode.Claims) {}},
		{"no private key", func(k *barcode.Key) { k.Private = nil }, func(*barcode.Claims) {}},
		{"bad key id", func(k *barcode.Key) { k.ID = "" }, func(*barcode.Claims) {}},
		{"bad claims", func(*barcode.Key) {}, func(c *barcode.Claims) { c.Holder = "" }},
	} {
		key, c := k, claims()
		tc.key(&key)
		tc.claims(&c)
		if _, err := barcode.Sign(key, c); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: err = %v, want Invalid", tc.name, err)
		}
	}
}

func TestNewKey(t *testing.T) {
	k, err := barcode.NewKey(event, "2026-06a", t0, t0.Add(day))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture()
	f.ver.Keys = barcode.KeySet{Keys: []barcode.PublicKey{k.Public()}}
	if _, err := f.ver.Verify(show(t, k, claims(), t0)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ event, id string }{
		{"", "k1"}, {event, ""}, {event, "k 1"}, {event, strings.Repeat("k", barcode.MaxKeyIDLen+1)},
	} {
		if _, err := barcode.NewKey(tc.event, tc.id, t0, time.Time{}); !errs.Is(errs.Invalid, err) {
			t.Errorf("NewKey(%q, %q): err = %v", tc.event, tc.id, err)
		}
	}
	if _, err := barcode.NewKey(event, "k1", t0, t0); !errs.Is(errs.Invalid, err) {
		t.Errorf("NewKey retiring when it starts: err = %v", err)
	}
}

func TestKeySetJSON(t *testing.T) {
	k1 := fixedKey(event, "k1", 1, t0.Add(-30*day), t0.Add(10*day))
	k2 := fixedKey(event, "k2", 2, time.Time{}, time.Time{})
	set := barcode.KeySet{Keys: []barcode.PublicKey{k1.Public(), k2.Public()}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	var back barcode.KeySet
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if len(back.Keys) != 2 {
		t.Fatalf("%d keys back", len(back.Keys))
	}
	for i, k := range back.Keys {
		w := set.Keys[i]
		if k.Event != w.Event || k.ID != w.ID || !k.Key.Equal(w.Key) || !k.NotBefore.Equal(w.NotBefore) || !k.NotAfter.Equal(w.NotAfter) {
			t.Fatalf("key %d back = %+v, want %+v", i, k, w)
		}
	}
	// The members scanners and JOSE libraries look for.
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	j := raw.Keys[0]
	if j["kty"] != "OKP" || j["crv"] != "Ed25519" || j["kid"] != "k1" || j["event"] != event || j["alg"] != "EdDSA" || len(j["x"].(string)) != 43 {
		t.Fatalf("JWK = %v", j)
	}
	if _, ok := raw.Keys[1]["exp"]; ok {
		t.Fatalf("key without NotAfter has exp: %v", raw.Keys[1])
	}

	// A verifier with the downloaded set verifies.
	f := newFixture()
	f.ver.Keys = back
	if _, err := f.ver.Verify(show(t, k1, claims(), t0)); err != nil {
		t.Fatal(err)
	}
}

func TestKeySetJSONRefused(t *testing.T) {
	const x = `"x":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg"`
	for _, tc := range []struct{ name, in string }{
		{"not json", `{`},
		{"not a set", `[]`},
		{"trailing", `{"keys":[]} {}`},
		{"unknown member", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e","x5u":"http://a"}]}`},
		{"private key", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"d":"AAAA","kid":"k1","event":"e"}]}`},
		{"RSA", `{"keys":[{"kty":"RSA","crv":"Ed25519",` + x + `,"kid":"k1","event":"e"}]}`},
		{"X25519", `{"keys":[{"kty":"OKP","crv":"X25519",` + x + `,"kid":"k1","event":"e"}]}`},
		{"other alg", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e","alg":"ES256"}]}`},
		{"for encryption", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e","use":"enc"}]}`},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"k1","event":"e"}]}`},
		{"padded x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=","kid":"k1","event":"e"}]}`},
		{"no event", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1"}]}`},
		{"bad kid", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"a very long key id","event":"e"}]}`},
		{"ends before it starts", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e","nbf":100,"exp":100}]}`},
		{"negative nbf", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e","nbf":-1}]}`},
		{"twice", `{"keys":[{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e"},{"kty":"OKP","crv":"Ed25519",` + x + `,"kid":"k1","event":"e"}]}`},
	} {
		set := barcode.KeySet{Keys: []barcode.PublicKey{{ID: "keep"}}}
		err := set.UnmarshalJSON([]byte(tc.in)) // not json.Unmarshal: it checks the syntax first
		if errs.ReasonOf(err) != barcode.ReasonMalformed {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if err == nil || len(set.Keys) != 1 || set.Keys[0].ID != "keep" {
			t.Errorf("%s: set changed or accepted: %+v, %v", tc.name, set, err)
		}
	}
	if _, err := json.Marshal(barcode.KeySet{Keys: []barcode.PublicKey{{ID: "k1", Event: event}}}); err == nil {
		t.Error("Marshal of a key without a public key succeeded")
	}
}
