package keyring_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/keyring/keyringtest"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

var enc = base64.RawURLEncoding

func newRing(t *testing.T) *keyring.KeyRing {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func TestRingRefusesBadSets(t *testing.T) {
	ring := newRing(t)
	if err := ring.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	cfg := ring.Config()
	set := ring.KeySet()
	for name, mutate := range map[string]func(*keyring.KeySet){
		"no active":    func(s *keyring.KeySet) { s.Keys[0].Retired = t0 },
		"two active":   func(s *keyring.KeySet) { s.Keys[1].Retired = time.Time{} },
		"kid mismatch": func(s *keyring.KeySet) { s.Keys[0].KID = s.Keys[1].KID },
		"short seed":   func(s *keyring.KeySet) { s.Keys[0].Seed = s.Keys[0].Seed[:31] },
		"empty":        func(s *keyring.KeySet) { s.Keys = nil },
	} {
		s := keyring.KeySet{Keys: append([]keyring.StoredKey(nil), set.Keys...)}
		mutate(&s)
		if _, err := keyring.NewKeyRingFromSet(cfg, s); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestJWKS(t *testing.T) {
	ring := newRing(t)
	if err := ring.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(ring.PublicJWKS())
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 2 {
		t.Fatalf("jwks %s", b)
	}
	for i, k := range raw.Keys {
		if len(k) != 6 || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["use"] != "sig" || k["alg"] != "EdDSA" {
			t.Fatalf("key %d: %v", i, k)
		}
		x, err := enc.DecodeString(k["x"])
		if err != nil || len(x) != 32 {
			t.Fatalf("key %d: x %q", i, k["x"])
		}
		// kid is the RFC 7638 thumbprint.
		sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + k["x"] + `"}`))
		if k["kid"] != enc.EncodeToString(sum[:]) || k["kid"] != keyring.KID(x) {
			t.Fatalf("key %d: kid %s is not the thumbprint", i, k["kid"])
		}
		if strings.Contains(string(b), "seed") || strings.Contains(string(b), `"d"`) {
			t.Fatalf("jwks leaks private material: %s", b)
		}
	}
	if raw.Keys[0]["kid"] != ring.ActiveKID() {
		t.Fatal("active key is not first")
	}

	pk, err := keyring.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pk.KIDs(), ring.PublicKeys().KIDs(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("parsed kids %v, want %v", got, want)
	}

	x := raw.Keys[0]["x"]
	for name, doc := range map[string]string{
		"not json":     `{`,
		"empty":        `{"keys":[]}`,
		"rsa":          `{"keys":[{"kty":"RSA","crv":"Ed25519","x":"` + x + `","kid":"` + raw.Keys[0]["kid"] + `"}]}`,
		"x25519":       `{"keys":[{"kty":"OKP","crv":"X25519","x":"` + x + `","kid":"` + raw.Keys[0]["kid"] + `"}]}`,
		"hs256":        `{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"HS256","x":"` + x + `","kid":"` + raw.Keys[0]["kid"] + `"}]}`,
		"short x":      `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"` + raw.Keys[0]["kid"] + `"}]}`,
		"kid mismatch": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + x + `","kid":"mine"}]}`,
	} {
		if _, err := keyring.ParseJWKS([]byte(doc)); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// Sign writes exactly the header of its Headers, and Match recognizes it
// for that typ only.
func TestSignAndMatch(t *testing.T) {
	ring := newRing(t)
	at, jwt := keyring.NewHeaders("at+jwt"), keyring.NewHeaders("JWT")
	tok, kid := ring.Sign(at, []byte(`{"sub":"u1"}`))
	if kid != ring.ActiveKID() {
		t.Fatalf("kid %s, want the active %s", kid, ring.ActiveKID())
	}
	parts := strings.Split(string(tok), ".")
	if len(parts) != 3 {
		t.Fatalf("token %s", tok)
	}
	h, _ := enc.DecodeString(parts[0])
	if want := `{"alg":"EdDSA","typ":"at+jwt","kid":"` + kid + `"}`; string(h) != want {
		t.Fatalf("header %s, want %s", h, want)
	}
	if parts[0] != keyring.EncodeHeader("at+jwt", kid) {
		t.Fatal("header is not EncodeHeader's")
	}
	if p, _ := enc.DecodeString(parts[1]); string(p) != `{"sub":"u1"}` {
		t.Fatalf("payload %s", p)
	}
	sig, _ := enc.DecodeString(parts[2])
	pub, _ := ring.PublicKeys().Lookup(kid)
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("signature does not verify")
	}
	k, ok := at.Match(ring.PublicKeys(), []byte(parts[0]))
	if !ok || k.KID() != kid || !k.Verify([]byte(parts[0]+"."+parts[1]), sig) {
		t.Fatalf("Match of its own header: %v %v", k, ok)
	}
	if _, ok := jwt.Match(ring.PublicKeys(), []byte(parts[0])); ok {
		t.Fatal("a JWT Headers matched an at+jwt header")
	}

	// After a rotation the new snapshot is indexed; the retired key's
	// header still matches.
	if err := ring.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if k, ok := at.Match(ring.PublicKeys(), []byte(parts[0])); !ok || k.KID() != kid {
		t.Fatal("retired key's header no longer matches")
	}
	tok2, kid2 := ring.Sign(at, []byte(`{}`))
	if kid2 == kid || !strings.HasPrefix(string(tok2), keyring.EncodeHeader("at+jwt", kid2)+".") {
		t.Fatalf("after rotation signed %s with %s", tok2, kid2)
	}
	// The zero PublicKeys (an edge before its first fetch) matches nothing.
	if _, ok := at.Match(&keyring.PublicKeys{}, []byte(parts[0])); ok {
		t.Fatal("empty key set matched")
	}
}

func TestConfig(t *testing.T) {
	rc := keyring.KeyRingConfig{RotateEvery: time.Second}
	rc.Defaults()
	if err := rc.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("rotate every 1s: %v", err)
	}
	rc = keyring.KeyRingConfig{}
	rc.Defaults()
	if rc.RotateEvery != 24*time.Hour || rc.VerifyFor != time.Hour || rc.Validate() != nil {
		t.Fatalf("defaults %+v", rc)
	}
}

func TestMemoryKeyStoreContract(t *testing.T) {
	keyringtest.RunKeyStore(t, func(t *testing.T) keyring.KeyStore { return &keyring.MemoryKeyStore{} })
}

// Private is the active key, or a retired one by kid while the ring
// keeps it.
func TestPrivate(t *testing.T) {
	now := time.Now()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{VerifyFor: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("ticket")
	priv, first, ok := ring.Private("")
	pub, _ := ring.PublicKeys().Lookup(first)
	if !ok || first != ring.ActiveKID() || !ed25519.Verify(pub, msg, ed25519.Sign(priv, msg)) {
		t.Fatalf("active key: ok %v, kid %s (active %s)", ok, first, ring.ActiveKID())
	}
	if err := ring.Rotate(now); err != nil {
		t.Fatal(err)
	}
	again, kid, ok := ring.Private(first)
	if !ok || kid != first || !again.Equal(priv) {
		t.Fatalf("retired key: ok %v, kid %s, same key %v", ok, kid, again.Equal(priv))
	}
	if _, kid, _ := ring.Private(""); kid == first {
		t.Fatal("the active key is still the retired one")
	}
	ring.Prune(now.Add(2 * time.Hour))
	if _, _, ok := ring.Private(first); ok {
		t.Fatal("a pruned key is still kept")
	}
}
