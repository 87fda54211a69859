package token_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/identity/token"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

var enc = base64.RawURLEncoding

var testConfig = token.Config{Issuer: "https://id.ticketing.example", Audience: "ticketing-api"}

type fixture struct {
	ring   *keyring.KeyRing
	issuer *token.Issuer
	ver    *token.Verifier
	cfg    token.Config
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig
	cfg.Defaults()
	issuer, err := token.NewIssuer(ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := token.NewVerifier(ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ring: ring, issuer: issuer, ver: ver, cfg: cfg}
}

var req = token.Request{Subject: "u-0001", ClientID: "web", Scope: "openid orders:read"}

func (f *fixture) issue(t testing.TB, r token.Request, now time.Time) string {
	t.Helper()
	tok, c, err := f.issuer.Issue(r, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != r.Subject || c.ClientID != r.ClientID || c.Scope != r.Scope || c.KeyID != f.ring.ActiveKID() {
		t.Fatalf("claims %+v", c)
	}
	return tok
}

// privateKey returns the ring's active signing key, from its stored set.
func (f *fixture) privateKey(t testing.TB) ed25519.PrivateKey {
	for _, k := range f.ring.KeySet().Keys {
		if k.KID == f.ring.ActiveKID() {
			return ed25519.NewKeyFromSeed(k.Seed)
		}
	}
	t.Fatal("no active key")
	return nil
}

// forge builds a token from any header and claims, signed by sign (nil:
// no signature).
func forge(hdr, claims any, sign func(msg []byte) []byte) string {
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	msg := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(msg))
	}
	return msg + "." + enc.EncodeToString(sig)
}

func jti() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return enc.EncodeToString(b[:])
}

func (f *fixture) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": f.cfg.Issuer, "aud": f.cfg.Audience, "sub": "u-0001", "client_id": "web", "scope": "openid",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": jti(),
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	c := maps.Clone(m)
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestIssueAndVerify(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, req, t0)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	h, _ := enc.DecodeString(parts[0])
	if want := `{"alg":"EdDSA","typ":"at+jwt","kid":"` + f.ring.ActiveKID() + `"}`; string(h) != want {
		t.Fatalf("header %s, want %s", h, want)
	}
	var c map[string]any
	p, _ := enc.DecodeString(parts[1])
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	want := []string{"iss", "aud", "sub", "client_id", "scope", "iat", "exp", "jti"}
	for _, k := range want {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing in %s", k, p)
		}
	}
	if len(c) != len(want) {
		t.Errorf("claims %s, want only %v", p, want)
	}
	if _, ok := c["aud"].(string); !ok {
		t.Errorf("aud %v is not one string", c["aud"])
	}
	if c["exp"].(float64)-c["iat"].(float64) != 300 {
		t.Errorf("lifetime %v, want the default 300s", c["exp"].(float64)-c["iat"].(float64))
	}
	got, err := f.ver.Verify(tok, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "u-0001" || got.ClientID != "web" || got.Issuer != f.cfg.Issuer || got.Audience != f.cfg.Audience ||
		!got.Expiry.Equal(t0.Add(5*time.Minute)) || !got.IssuedAt.Equal(t0) || !got.NotBefore.IsZero() || len(got.ID) != 22 ||
		got.KeyID != f.ring.ActiveKID() {
		t.Fatalf("claims %+v", got)
	}
	if !got.HasScope("orders:read") || !got.HasScope("openid") || got.HasScope("orders") || got.HasScope("") || len(got.Scopes()) != 2 {
		t.Fatalf("scopes of %q", got.Scope)
	}
	if other := f.issue(t, req, t0); other == tok {
		t.Fatal("two tokens are equal")
	}
	// A shorter lifetime on request.
	short := req
	short.Lifetime = time.Minute
	if c, err := f.ver.Verify(f.issue(t, short, t0), t0); err != nil || !c.Expiry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("short token: %+v, %v", c, err)
	}
	// The empty scope.
	none := req
	none.Scope = ""
	if c, err := f.ver.Verify(f.issue(t, none, t0), t0); err != nil || c.Scope != "" || c.HasScope("openid") {
		t.Fatalf("token without scope: %+v, %v", c, err)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	f := newFixture(t)
	for name, r := range map[string]token.Request{
		"no subject":         {ClientID: "web"},
		"no client":          {Subject: "u"},
		"long subject":       {Subject: strings.Repeat("u", token.MaxIDBytes+1), ClientID: "web"},
		"control in client":  {Subject: "u", ClientID: "w\neb"},
		"bad utf-8":          {Subject: "u\xff", ClientID: "web"},
		"double space":       {Subject: "u", ClientID: "web", Scope: "a  b"},
		"leading space":      {Subject: "u", ClientID: "web", Scope: " a"},
		"quote in scope":     {Subject: "u", ClientID: "web", Scope: `a"b`},
		"scope twice":        {Subject: "u", ClientID: "web", Scope: "a b a"},
		"long scope":         {Subject: "u", ClientID: "web", Scope: strings.Repeat("s", token.MaxScopeBytes+1)},
		"lifetime too long":  {Subject: "u", ClientID: "web", Lifetime: time.Hour},
		"lifetime too short": {Subject: "u", ClientID: "web", Lifetime: time.Second},
		"fractional":         {Subject: "u", ClientID: "web", Lifetime: 90*time.Second + time.Millisecond},
	} {
		if _, _, err := f.issuer.Issue(r, t0); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

// The attacks of RFC 8725 and friends, and every other refusal, with its
// reason. All are Unauthorized.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	priv := f.privateKey(t)
	kid := f.ring.ActiveKID()
	pub := priv.Public().(ed25519.PublicKey)
	good := f.issue(t, req, t0)
	atHdr := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid}
	edSign := func(m []byte) []byte { return ed25519.Sign(priv, m) }
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	otherSign := func(m []byte) []byte { return ed25519.Sign(otherPriv, m) }
	parts := strings.Split(good, ".")
	claims := f.claims(t0)

	// A well-formed signature, of other bits.
	flipped := []byte(parts[2])
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	tamperedClaims := func(from, to string) string {
		p, _ := enc.DecodeString(parts[1])
		if !strings.Contains(string(p), from) {
			t.Fatalf("%s not in %s", from, p)
		}
		p = []byte(strings.Replace(string(p), from, to, 1))
		return parts[0] + "." + enc.EncodeToString(p) + "." + parts[2]
	}

	// An admission token: same system, another ring, typ "JWT".
	admRing, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	admSigner, err := admission.NewSigner(admRing, admission.Config{Issuer: f.cfg.Issuer, Audience: f.cfg.Audience})
	if err != nil {
		t.Fatal(err)
	}
	admTok, _, err := admSigner.Issue("e1", "u-0001", t0)
	if err != nil {
		t.Fatal(err)
	}

	hs256 := func(secret []byte) func([]byte) []byte {
		return func(m []byte) []byte {
			h := hmac.New(sha256.New, secret)
			h.Write(m)
			return h.Sum(nil)
		}
	}
	otherJWK := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": enc.EncodeToString(otherPub)}

	for _, tc := range []struct {
		name, token string
		now         time.Time
		reason      string // "": accepted
	}{
		{name: "missing", token: "", reason: token.ReasonMissing},

		// Algorithms.
		{name: "alg none", token: forge(map[string]any{"alg": "none", "typ": "at+jwt"}, claims, nil), reason: token.ReasonAlgorithm},
		{name: "alg none with kid", token: forge(map[string]any{"alg": "none", "typ": "at+jwt", "kid": kid}, claims, nil), reason: token.ReasonAlgorithm},
		{name: "alg None", token: forge(map[string]any{"alg": "None", "typ": "at+jwt", "kid": kid}, claims, nil), reason: token.ReasonAlgorithm},
		{name: "no alg", token: forge(map[string]any{"typ": "at+jwt", "kid": kid}, claims, edSign), reason: token.ReasonAlgorithm},
		{name: "alg as a list", token: forge(map[string]any{"alg": []string{"EdDSA"}, "typ": "at+jwt", "kid": kid}, claims, edSign), reason: token.ReasonMalformed},
		{name: "HS256 with the public key as secret", token: forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, hs256(pub)), reason: token.ReasonAlgorithm},
		{name: "HS256 with the JWK x as secret", token: forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, hs256([]byte(enc.EncodeToString(pub)))), reason: token.ReasonAlgorithm},
		{name: "HS256 with the JWKS as secret", token: forge(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims, hs256(mustJSON(t, f.ring.PublicJWKS()))), reason: token.ReasonAlgorithm},
		{name: "ES256", token: forge(map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, edSign), reason: token.ReasonAlgorithm},
		{name: "alg eddsa lower case", token: forge(map[string]any{"alg": "eddsa", "typ": "at+jwt", "kid": kid}, claims, edSign), reason: token.ReasonAlgorithm},

		// Keys from the token, extensions.
		{name: "embedded jwk", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": keyring.KID(otherPub), "jwk": otherJWK}, claims, otherSign), reason: token.ReasonHeaderRefused},
		{name: "embedded jwk with a known kid", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jwk": otherJWK}, claims, edSign), reason: token.ReasonHeaderRefused},
		{name: "jku", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "jku": "https://evil.example/jwks"}, claims, edSign), reason: token.ReasonHeaderRefused},
		{name: "x5c", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5c": []string{"MIIB"}}, claims, edSign), reason: token.ReasonHeaderRefused},
		{name: "x5u", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "x5u": "https://evil.example/cert"}, claims, edSign), reason: token.ReasonHeaderRefused},
		{name: "crit", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "crit": []string{"exp"}, "exp": 1}, claims, edSign), reason: token.ReasonHeaderRefused},
		{name: "unknown header member", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": kid, "b64": false}, claims, edSign), reason: token.ReasonMalformed},
		{name: "header member twice", token: forgeRawHeader(`{"alg":"EdDSA","typ":"at+jwt","kid":"`+kid+`","kid":"`+kid+`"}`, claims, edSign), reason: token.ReasonMalformed},
		{name: "header not an object", token: forgeRawHeader(`["EdDSA"]`, claims, edSign), reason: token.ReasonMalformed},
		{name: "header null", token: forgeRawHeader(`null`, claims, edSign), reason: token.ReasonMalformed},

		// Types: only access tokens.
		{name: "typ JWT", token: forge(map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}, claims, edSign), reason: token.ReasonWrongType},
		{name: "no typ", token: forge(map[string]any{"alg": "EdDSA", "kid": kid}, claims, edSign), reason: token.ReasonWrongType},
		{name: "typ upper case", token: forge(map[string]any{"alg": "EdDSA", "typ": "AT+JWT", "kid": kid}, claims, edSign), reason: token.ReasonWrongType},
		{name: "admission token", token: admTok, reason: token.ReasonWrongType},
		{name: "typ application/at+jwt is fine", token: forge(map[string]any{"alg": "EdDSA", "typ": "application/at+jwt", "kid": kid}, claims, edSign)},
		{name: "non-canonical header is fine", token: forge(map[string]any{"kid": kid, "typ": "at+jwt", "alg": "EdDSA"}, claims, edSign)},

		// Keys and signatures.
		{name: "unknown kid", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": keyring.KID(otherPub)}, claims, otherSign), reason: token.ReasonUnknownKey},
		{name: "no kid", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt"}, claims, edSign), reason: token.ReasonUnknownKey},
		{name: "admission kid", token: forge(map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": admRing.ActiveKID()}, claims, edSign), reason: token.ReasonUnknownKey},
		{name: "our kid, another key's signature", token: forge(atHdr, claims, otherSign), reason: token.ReasonBadSignature},
		{name: "tampered signature", token: parts[0] + "." + parts[1] + "." + string(flipped), reason: token.ReasonBadSignature},
		{name: "tampered payload: subject", token: tamperedClaims(`"sub":"u-0001"`, `"sub":"u-0002"`), reason: token.ReasonBadSignature},
		{name: "tampered payload: scope", token: tamperedClaims(`"scope":"openid orders:read"`, `"scope":"openid admin"`), reason: token.ReasonBadSignature},
		{name: "tampered header", token: enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"at+jwt","kid":"`+kid+`" }`)) + "." + parts[1] + "." + parts[2], reason: token.ReasonBadSignature},
		{name: "payload not JSON", token: parts[0] + "." + enc.EncodeToString([]byte("not json")) + "." + parts[2], reason: token.ReasonBadSignature},

		// Claims, validly signed.
		{name: "wrong issuer", token: forge(atHdr, with(claims, "iss", "https://evil.example"), edSign), reason: token.ReasonWrongIssuer},
		{name: "issuer with a trailing slash", token: forge(atHdr, with(claims, "iss", f.cfg.Issuer+"/"), edSign), reason: token.ReasonWrongIssuer},
		{name: "wrong audience", token: forge(atHdr, with(claims, "aud", "partner-api"), edSign), reason: token.ReasonWrongAudience},
		{name: "audience array", token: forge(atHdr, with(claims, "aud", []string{f.cfg.Audience}), edSign), reason: token.ReasonMalformed},
		{name: "unknown claim", token: forge(atHdr, with(claims, "evt", "e1"), edSign), reason: token.ReasonMalformed},
		{name: "no sub", token: forge(atHdr, with(claims, "sub", nil), edSign), reason: token.ReasonMalformed},
		{name: "no client_id", token: forge(atHdr, with(claims, "client_id", nil), edSign), reason: token.ReasonMalformed},
		{name: "no jti", token: forge(atHdr, with(claims, "jti", nil), edSign), reason: token.ReasonMalformed},
		{name: "no exp", token: forge(atHdr, with(claims, "exp", nil), edSign), reason: token.ReasonMalformed},
		{name: "no iat", token: forge(atHdr, with(claims, "iat", nil), edSign), reason: token.ReasonMalformed},
		{name: "exp as a float", token: forge(atHdr, with(claims, "exp", float64(t0.Unix())+300.5), edSign), reason: token.ReasonMalformed},
		{name: "exp as a string", token: forge(atHdr, with(claims, "exp", "1777626300"), edSign), reason: token.ReasonMalformed},
		{name: "trailing data", token: forgeRawClaims(atHdr, string(mustJSON(t, claims))+"{}", edSign), reason: token.ReasonMalformed},
		{name: "lifetime above max", token: forge(atHdr, with(claims, "exp", t0.Add(2*time.Hour).Unix()), edSign), reason: token.ReasonBadLifetime},
		{name: "exp before iat", token: forge(atHdr, with(claims, "exp", t0.Add(-time.Minute).Unix()), edSign), reason: token.ReasonBadLifetime},
		{name: "nbf after exp", token: forge(atHdr, with(claims, "nbf", t0.Add(10*time.Minute).Unix()), edSign), reason: token.ReasonBadLifetime},
		{name: "expired", token: good, now: t0.Add(5*time.Minute + 30*time.Second), reason: token.ReasonExpired},
		{name: "expired long ago", token: good, now: t0.Add(24 * time.Hour), reason: token.ReasonExpired},
		{name: "expired within leeway is fine", token: good, now: t0.Add(5*time.Minute + 29*time.Second)},
		{name: "issued in the future", token: good, now: t0.Add(-31 * time.Second), reason: token.ReasonNotYetValid},
		{name: "issued in the future within leeway is fine", token: good, now: t0.Add(-30 * time.Second)},
		{name: "nbf in the future", token: forge(atHdr, with(claims, "nbf", t0.Add(2*time.Minute).Unix()), edSign), reason: token.ReasonNotYetValid},
		{name: "nbf in the future within leeway is fine", token: forge(atHdr, with(claims, "nbf", t0.Add(30*time.Second).Unix()), edSign)},
		{name: "nbf past is fine", token: forge(atHdr, with(claims, "nbf", t0.Unix()), edSign)},

		// Shapes and sizes.
		{name: "oversize", token: good + strings.Repeat("A", 2048), reason: token.ReasonTooLong},
		{name: "oversize but well formed", token: forge(atHdr, with(claims, "scope", strings.Repeat("s", 2048)), edSign), reason: token.ReasonTooLong},
		{name: "huge", token: strings.Repeat("A", 1<<20), reason: token.ReasonTooLong},
		{name: "truncated", token: good[:len(good)-10], reason: token.ReasonMalformed},
		{name: "two segments", token: parts[0] + "." + parts[1], reason: token.ReasonMalformed},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", reason: token.ReasonMalformed},
		{name: "four segments", token: good + ".x", reason: token.ReasonMalformed},
		{name: "padded base64", token: parts[0] + "." + parts[1] + "." + parts[2] + "==", reason: token.ReasonMalformed},
		{name: "standard base64 +", token: parts[0] + "." + parts[1] + ".+" + parts[2][1:], reason: token.ReasonMalformed},
		{name: "standard base64 /", token: parts[0] + "." + parts[1] + "./" + parts[2][1:], reason: token.ReasonMalformed},
		{name: "garbage", token: "garbage", reason: token.ReasonMalformed},
		{name: "dots", token: "..", reason: token.ReasonMalformed},
		{name: "binary", token: "\x00\xff.\x01.\x02", reason: token.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			_, err := f.ver.Verify(tc.token, now)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				return
			}
			if !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != tc.reason {
				t.Fatalf("Verify: %v (kind %v, reason %q), want unauthorized, reason %q", err, errs.KindOf(err), errs.ReasonOf(err), tc.reason)
			}
		})
	}
}

func forgeRawHeader(hdr string, claims any, sign func([]byte) []byte) string {
	c, _ := json.Marshal(claims)
	msg := enc.EncodeToString([]byte(hdr)) + "." + enc.EncodeToString(c)
	return msg + "." + enc.EncodeToString(sign([]byte(msg)))
}

func forgeRawClaims(hdr any, claims string, sign func([]byte) []byte) string {
	h, _ := json.Marshal(hdr)
	msg := enc.EncodeToString(h) + "." + enc.EncodeToString([]byte(claims))
	return msg + "." + enc.EncodeToString(sign([]byte(msg)))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An access token is not an admission token either: the admission
// verifier refuses it even with the access ring's keys.
func TestAccessTokenIsNoAdmissionToken(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, req, t0)
	ver, err := admission.NewVerifier(f.ring, nil, admission.Config{Issuer: f.cfg.Issuer, Audience: f.cfg.Audience})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ver.Verify(tok, "e1", "u-0001", t0); !errs.Is(errs.Unauthorized, err) {
		t.Fatalf("admission verifier on an access token: %v, want unauthorized", err)
	}
}

// Tokens of a retired key verify until the ring drops it; a verifier
// built from the JWKS alone accepts them too.
func TestRotationAndJWKS(t *testing.T) {
	f := newFixture(t)
	old := f.issue(t, req, t0)
	rot := t0.Add(time.Minute)
	if err := f.ring.Rotate(rot); err != nil {
		t.Fatal(err)
	}
	fresh := f.issue(t, req, rot)
	pk, err := keyring.ParseJWKS(mustJSON(t, f.ring.PublicJWKS()))
	if err != nil {
		t.Fatal(err)
	}
	edge, err := token.NewVerifier(pk, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		for vname, v := range map[string]*token.Verifier{"ring": f.ver, "jwks": edge} {
			if _, err := v.Verify(tok, rot); err != nil {
				t.Fatalf("%s token, %s verifier: %v", name, vname, err)
			}
		}
	}
	if !f.ring.Prune(rot.Add(2 * time.Hour)) {
		t.Fatal("retired key not pruned")
	}
	if _, err := f.ver.Verify(old, t0); errs.ReasonOf(err) != token.ReasonUnknownKey {
		t.Fatalf("token of a dropped key: %v, want unknown key", err)
	}
}

func TestConfig(t *testing.T) {
	c := testConfig
	c.Defaults()
	if c.Lifetime != 5*time.Minute || c.MaxLifetime != 30*time.Minute || c.Leeway != 30*time.Second || c.MaxTokenBytes != 2048 || c.Validate() != nil {
		t.Fatalf("defaults %+v: %v", c, c.Validate())
	}
	for name, mutate := range map[string]func(*token.Config){
		"no issuer":          func(c *token.Config) { c.Issuer = "" },
		"no audience":        func(c *token.Config) { c.Audience = "" },
		"issuer with a NL":   func(c *token.Config) { c.Issuer = "a\nb" },
		"lifetime above max": func(c *token.Config) { c.Lifetime, c.MaxLifetime = time.Hour, 30*time.Minute },
		"lifetime too short": func(c *token.Config) { c.Lifetime = time.Second },
		"fractional":         func(c *token.Config) { c.Lifetime = 90*time.Second + time.Millisecond },
		"max above 24h":      func(c *token.Config) { c.MaxLifetime = 25 * time.Hour },
		"leeway too big":     func(c *token.Config) { c.Leeway = time.Hour },
		"cap too small":      func(c *token.Config) { c.MaxTokenBytes = 100 },
		"cap too big":        func(c *token.Config) { c.MaxTokenBytes = 1 << 20 },
	} {
		c := testConfig
		mutate(&c)
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	c = token.Config{Issuer: "i", Audience: "a", Leeway: -1}
	c.Defaults()
	if c.Leeway != 0 {
		t.Fatalf("negative leeway became %v, want 0", c.Leeway)
	}
	// The ring must keep retired keys as long as tokens live.
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{VerifyFor: 20 * time.Minute}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := token.NewIssuer(ring, testConfig); !errs.Is(errs.Invalid, err) {
		t.Fatalf("issuer with a ring dropping keys before tokens expire: %v", err)
	}
	if _, err := token.NewVerifier(nil, testConfig); !errs.Is(errs.Invalid, err) {
		t.Fatalf("verifier without keys: %v", err)
	}
}
