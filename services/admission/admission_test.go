package admission_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/admission/admissiontest"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

var enc = base64.RawURLEncoding

type fixture struct {
	ring   *keyring.KeyRing
	signer *admission.Signer
	ver    *admission.Verifier
	spent  *admission.MemorySpentStore
	cfg    admission.Config
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := admission.Config{}
	cfg.Defaults()
	signer, err := admission.NewSigner(ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	spent, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := admission.NewVerifier(ring, spent, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{ring: ring, signer: signer, ver: ver, spent: spent, cfg: cfg}
}

func (f *fixture) issue(t testing.TB, event, session string, now time.Time) string {
	t.Helper()
	tok, c, err := f.signer.Issue(event, session, now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Event != event || c.Session != session || c.KeyID != f.ring.ActiveKID() {
		t.Fatalf("claims %+v", c)
	}
	return tok
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

func (f *fixture) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": f.cfg.Issuer, "aud": f.cfg.Audience, "sub": "s1", "evt": "e1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": admissiontest.JTI(),
	}
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

func with(m map[string]any, k string, v any) map[string]any {
	c := map[string]any{}
	for k, v := range m {
		c[k] = v
	}
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

func TestIssueAndVerify(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, "e1", "s1", t0)
	if len(tok) > 400 {
		t.Errorf("token of %d bytes: %s", len(tok), tok)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	h, _ := enc.DecodeString(parts[0])
	if want := `{"alg":"EdDSA","typ":"JWT","kid":"` + f.ring.ActiveKID() + `"}`; string(h) != want {
		t.Fatalf("header %s, want %s", h, want)
	}
	var c map[string]any
	p, _ := enc.DecodeString(parts[1])
	if err := json.Unmarshal(p, &c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "aud", "sub", "evt", "iat", "nbf", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claim %s missing in %s", k, p)
		}
	}
	if c["exp"].(float64)-c["iat"].(float64) != 600 {
		t.Errorf("lifetime %v, want 600s", c["exp"].(float64)-c["iat"].(float64))
	}
	got, err := f.ver.Verify(tok, "e1", "s1", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Event != "e1" || got.Session != "s1" || !got.Expiry.Equal(t0.Add(10*time.Minute)) || len(got.ID) != 22 {
		t.Fatalf("claims %+v", got)
	}
	// Every token has its own id.
	if other := f.issue(t, "e1", "s1", t0); other == tok {
		t.Fatal("two tokens are equal")
	}
}

func TestIssueRefusesBadIDs(t *testing.T) {
	f := newFixture(t)
	for _, ids := range [][2]string{{"", "s"}, {"e", ""}, {strings.Repeat("e", 129), "s"}, {"e", "s\n"}, {"e\xff", "s"}} {
		if _, _, err := f.signer.Issue(ids[0], ids[1], t0); !errs.Is(errs.Invalid, err) {
			t.Errorf("Issue(%q, %q) = %v, want invalid", ids[0], ids[1], err)
		}
	}
	// The longest ids fit the default cap.
	long := strings.Repeat("x", admission.MaxIDBytes)
	tok := f.issue(t, long, long, t0)
	if _, err := f.ver.Verify(tok, long, long, t0); err != nil {
		t.Fatalf("longest ids (%d bytes): %v", len(tok), err)
	}
}

// Every refusal, with its kind and reason.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	priv := f.privateKey(t)
	kid := f.ring.ActiveKID()
	pub := priv.Public().(ed25519.PublicKey)
	good := f.issue(t, "e1", "s1", t0)
	edHdr := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
	edSign := func(m []byte) []byte { return ed25519.Sign(priv, m) }
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	parts := strings.Split(good, ".")
	claims := f.claims(t0)

	// A signature that is valid but of the wrong bits.
	flipped := []byte(parts[2])
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	tamperedClaims := func() string {
		p, _ := enc.DecodeString(parts[1])
		p = []byte(strings.Replace(string(p), `"sub":"s1"`, `"sub":"s2"`, 1))
		return parts[0] + "." + enc.EncodeToString(p) + "." + parts[2]
	}()

	for _, tc := range []struct {
		name, token    string
		event, session string // default e1, s1
		now            time.Time
		kind           errs.Kind
		reason         string
	}{
		{name: "missing", token: "", kind: errs.Unauthorized, reason: admission.ReasonMissing},
		{name: "forged signature", token: forge(edHdr, claims, func(m []byte) []byte { return ed25519.Sign(otherPriv, m) }), kind: errs.Unauthorized, reason: admission.ReasonBadSignature},
		{name: "flipped signature", token: parts[0] + "." + parts[1] + "." + string(flipped), kind: errs.Unauthorized, reason: admission.ReasonBadSignature},
		{name: "tampered claims", token: tamperedClaims, session: "s2", kind: errs.Unauthorized, reason: admission.ReasonBadSignature},
		{name: "alg none", token: forge(map[string]any{"alg": "none", "typ": "JWT"}, claims, nil), kind: errs.Unauthorized, reason: admission.ReasonAlgorithm},
		{name: "alg none with kid", token: forge(map[string]any{"alg": "none", "kid": kid}, claims, nil), kind: errs.Unauthorized, reason: admission.ReasonAlgorithm},
		{name: "HS256 with the public key as secret", token: forge(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims, func(m []byte) []byte {
			h := hmac.New(sha256.New, pub)
			h.Write(m)
			return h.Sum(nil)
		}), kind: errs.Unauthorized, reason: admission.ReasonAlgorithm},
		{name: "HS512 with the encoded public key as secret", token: forge(map[string]any{"alg": "HS512", "kid": kid}, claims, func(m []byte) []byte {
			h := hmac.New(sha512.New, []byte(enc.EncodeToString(pub)))
			h.Write(m)
			return h.Sum(nil)
		}), kind: errs.Unauthorized, reason: admission.ReasonAlgorithm},
		{name: "alg eddsa lower case", token: forge(map[string]any{"alg": "eddsa", "kid": kid}, claims, edSign), kind: errs.Unauthorized, reason: admission.ReasonAlgorithm},
		{name: "unknown kid", token: forge(map[string]any{"alg": "EdDSA", "kid": "nope"}, claims, edSign), kind: errs.Unauthorized, reason: admission.ReasonUnknownKey},
		{name: "no kid", token: forge(map[string]any{"alg": "EdDSA"}, claims, edSign), kind: errs.Unauthorized, reason: admission.ReasonUnknownKey},
		{name: "embedded jwk", token: forge(map[string]any{"alg": "EdDSA", "kid": kid, "jwk": map[string]any{"kty": "OKP"}}, claims, edSign), kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "crit header", token: forge(map[string]any{"alg": "EdDSA", "kid": kid, "crit": []string{"exp"}}, claims, edSign), kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "non-canonical header but valid", token: forge(map[string]any{"kid": kid, "alg": "EdDSA"}, claims, edSign)},
		{name: "wrong issuer", token: forge(edHdr, with(claims, "iss", "evil"), edSign), kind: errs.Unauthorized, reason: admission.ReasonWrongIssuer},
		{name: "wrong audience", token: forge(edHdr, with(claims, "aud", "partner"), edSign), kind: errs.Unauthorized, reason: admission.ReasonWrongAudience},
		{name: "audience array", token: forge(edHdr, with(claims, "aud", []string{f.cfg.Audience}), edSign), kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "lifetime above max", token: forge(edHdr, with(claims, "exp", t0.Add(2*time.Hour).Unix()), edSign), kind: errs.Unauthorized, reason: admission.ReasonBadLifetime},
		{name: "exp before iat", token: forge(edHdr, with(claims, "exp", t0.Add(-time.Minute).Unix()), edSign), kind: errs.Unauthorized, reason: admission.ReasonBadLifetime},
		{name: "no jti", token: forge(edHdr, with(claims, "jti", nil), edSign), kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "no exp", token: forge(edHdr, with(claims, "exp", nil), edSign), kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "expired", token: good, now: t0.Add(10*time.Minute + 30*time.Second), kind: errs.Gone, reason: admission.ReasonExpired},
		{name: "expired within skew is fine", token: good, now: t0.Add(10*time.Minute + 29*time.Second)},
		{name: "not yet valid", token: good, now: t0.Add(-31 * time.Second), kind: errs.Unauthorized, reason: admission.ReasonNotYetValid},
		{name: "not yet valid within skew is fine", token: good, now: t0.Add(-30 * time.Second)},
		{name: "nbf in the future", token: forge(edHdr, with(claims, "nbf", t0.Add(5*time.Minute).Unix()), edSign), kind: errs.Unauthorized, reason: admission.ReasonNotYetValid},
		{name: "other event", token: good, event: "e2", kind: errs.Forbidden, reason: admission.ReasonWrongEvent},
		{name: "other session", token: good, session: "s2", kind: errs.Forbidden, reason: admission.ReasonWrongSession},
		{name: "truncated", token: good[:len(good)-10], kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "truncated to two segments", token: parts[0] + "." + parts[1], kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "empty signature", token: parts[0] + "." + parts[1] + ".", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "four segments", token: good + ".x", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "padded base64", token: parts[0] + "." + parts[1] + "." + parts[2] + "==", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "garbage", token: "garbage", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "dots", token: "..", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "binary", token: "\x00\xff.\x01.\x02", kind: errs.Unauthorized, reason: admission.ReasonMalformed},
		{name: "payload not JSON", token: parts[0] + "." + enc.EncodeToString(edSign(nil)[:10]) + "." + parts[2], kind: errs.Unauthorized, reason: admission.ReasonBadSignature},
		{name: "too long", token: good + strings.Repeat("A", 1024), kind: errs.Unauthorized, reason: admission.ReasonTooLong},
		{name: "huge", token: strings.Repeat("A", 1<<20), kind: errs.Unauthorized, reason: admission.ReasonTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			event, session, now := tc.event, tc.session, tc.now
			if event == "" {
				event = "e1"
			}
			if session == "" {
				session = "s1"
			}
			if now.IsZero() {
				now = t0
			}
			_, err := f.ver.Verify(tc.token, event, session, now)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v, want success", err)
				}
				return
			}
			if errs.KindOf(err) != tc.kind || errs.ReasonOf(err) != tc.reason {
				t.Fatalf("Verify: %v (kind %v, reason %q), want kind %v reason %q", err, errs.KindOf(err), errs.ReasonOf(err), tc.kind, tc.reason)
			}
		})
	}
}

func TestRedeemOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, "e1", "s1", t0)
	// Another session cannot use it, and trying does not spend it.
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s2", "hold-1", t0); errs.ReasonOf(err) != admission.ReasonWrongSession {
		t.Fatalf("redeem by another session: %v", err)
	}
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "", t0); !errs.Is(errs.Invalid, err) {
		t.Fatalf("redeem without a use: %v, want invalid", err)
	}
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-1", t0); err != nil {
		t.Fatalf("first redeem: %v", err)
	}
	// The same use retried is not a replay; another use is.
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-1", t0); err != nil {
		t.Fatalf("the same use retried: %v", err)
	}
	_, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-2", t0)
	if !errs.Is(errs.Forbidden, err) || errs.ReasonOf(err) != admission.ReasonReplayed {
		t.Fatalf("second redeem: %v, want replayed", err)
	}
	// Verify does not spend.
	tok2 := f.issue(t, "e1", "s1", t0)
	for i := 0; i < 2; i++ {
		if _, err := f.ver.Verify(tok2, "e1", "s1", t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.ver.Redeem(ctx, tok2, "e1", "s1", "hold-3", t0); err != nil {
		t.Fatalf("redeem after verifies: %v", err)
	}
}

// A use that did not happen gives the token back to the shopper.
func TestUnredeem(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.issue(t, "e1", "s1", t0)
	c, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ver.Unredeem(ctx, c, "hold-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-2", t0); errs.ReasonOf(err) != admission.ReasonReplayed {
		t.Fatalf("redeem after another use's unredeem: %v, want replayed", err)
	}
	if err := f.ver.Unredeem(ctx, c, "hold-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-2", t0); err != nil {
		t.Fatalf("redeem after the unredeem: %v", err)
	}
}

func TestRedeemConcurrent(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, "e1", "s1", t0)
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.ver.Redeem(context.Background(), tok, "e1", "s1", fmt.Sprint("hold-", i), t0)
			switch {
			case err == nil:
				ok.Add(1)
			case errs.ReasonOf(err) == admission.ReasonReplayed:
				replayed.Add(1)
			default:
				t.Errorf("redeem: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 15 {
		t.Fatalf("%d redeemed, %d replayed; want 1 and 15", ok.Load(), replayed.Load())
	}
}

// A failing spent store refuses: admission fails closed.
func TestRedeemFailsClosed(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, "e1", "s1", t0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.ver.Redeem(ctx, tok, "e1", "s1", "hold-1", t0); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("redeem with a failing store: %v, want unavailable", err)
	}
}

func TestRotation(t *testing.T) {
	f := newFixture(t)
	oldKID := f.ring.ActiveKID()
	old := f.issue(t, "e1", "s1", t0)

	rot := t0.Add(5 * time.Minute)
	if err := f.ring.Rotate(rot); err != nil {
		t.Fatal(err)
	}
	newKID := f.ring.ActiveKID()
	if newKID == oldKID {
		t.Fatal("rotation kept the kid")
	}
	fresh := f.issue(t, "e1", "s1", rot)
	hdr, _ := enc.DecodeString(strings.Split(fresh, ".")[0])
	if !strings.Contains(string(hdr), newKID) {
		t.Fatalf("new token header %s, want kid %s", hdr, newKID)
	}
	for name, tok := range map[string]string{"old": old, "new": fresh} {
		if _, err := f.ver.Verify(tok, "e1", "s1", rot.Add(time.Minute)); err != nil {
			t.Fatalf("%s token after rotation: %v", name, err)
		}
	}
	if got := f.ring.PublicKeys().KIDs(); len(got) != 2 || got[0] != newKID || got[1] != oldKID {
		t.Fatalf("kids %v, want [%s %s]", got, newKID, oldKID)
	}

	// Until VerifyFor (1h) after the rotation, the old key stays.
	if f.ring.Prune(rot.Add(59 * time.Minute)) {
		t.Fatal("pruned a key still verifying")
	}
	if !f.ring.Prune(rot.Add(time.Hour)) {
		t.Fatal("did not prune the retired key after VerifyFor")
	}
	// Now only the fresh key verifies; a token of the retired key is
	// refused as unknown (it expired long before anyway).
	if _, err := f.ver.Verify(old, "e1", "s1", t0.Add(time.Minute)); errs.ReasonOf(err) != admission.ReasonUnknownKey {
		t.Fatalf("token of a dropped key: %v, want unknown key", err)
	}
	if _, err := f.ver.Verify(fresh, "e1", "s1", rot.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Three rotations in a row keep every key inside its window.
	for i := 1; i <= 3; i++ {
		if err := f.ring.Rotate(rot.Add(time.Hour + time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.ring.PublicKeys().KIDs()); n != 4 {
		t.Fatalf("%d keys after three quick rotations, want 4", n)
	}
}

// A verifier built from the JWKS alone (an edge, a partner) accepts the
// ring's tokens, of the active and of a retired key.
func TestVerifyWithParsedJWKS(t *testing.T) {
	f := newFixture(t)
	old := f.issue(t, "e1", "s1", t0)
	if err := f.ring.Rotate(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f.ring.PublicJWKS())
	if err != nil {
		t.Fatal(err)
	}
	pk, err := keyring.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := admission.NewVerifier(pk, nil, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"active": f.issue(t, "e1", "s1", t0.Add(time.Minute)), "retired": old} {
		if _, err := ver.Verify(tok, "e1", "s1", t0.Add(time.Minute)); err != nil {
			t.Fatalf("verify a token of the %s key with the parsed JWKS: %v", name, err)
		}
	}
}

func TestConfig(t *testing.T) {
	c := admission.Config{}
	c.Defaults()
	if c.TTL != 10*time.Minute || c.MaxTTL != 30*time.Minute || c.ClockSkew != 30*time.Second || c.MaxTokenBytes != 1024 || c.Validate() != nil {
		t.Fatalf("defaults %+v: %v", c, c.Validate())
	}
	for name, c := range map[string]admission.Config{
		"ttl above max":   {TTL: time.Hour, MaxTTL: 30 * time.Minute},
		"ttl too short":   {TTL: time.Second},
		"max ttl too big": {MaxTTL: 2 * time.Hour},
		"skew too big":    {ClockSkew: time.Hour},
		"cap too small":   {MaxTokenBytes: 100},
		"cap too big":     {MaxTokenBytes: 1 << 20},
		"bad issuer":      {Issuer: "a\nb"},
		"fractional ttl":  {TTL: 90*time.Second + time.Millisecond},
	} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	c = admission.Config{ClockSkew: -1}
	c.Defaults()
	if c.ClockSkew != 0 {
		t.Fatalf("negative skew became %v, want 0", c.ClockSkew)
	}
	// The ring must keep retired keys as long as tokens live.
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{VerifyFor: 20 * time.Minute}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admission.NewSigner(ring, admission.Config{}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("signer with a ring dropping keys before tokens expire: %v", err)
	}
}

func TestMemoryStoresContract(t *testing.T) {
	t.Run("SpentStore", func(t *testing.T) {
		admissiontest.RunSpentStore(t, admissiontest.SpentSetup{
			New: func(t *testing.T, c *admissiontest.Clock) admission.SpentStore {
				s, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{Now: c.Now})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
		})
	})
}

// The memory store is bounded: when full of unexpired ids it refuses
// rather than forget one; expired ids make room.
func TestMemorySpentBounded(t *testing.T) {
	clock := admissiontest.NewClock(t0)
	s, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{MaxEntries: 16, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var full bool
	for i := 0; i < 200 && !full; i++ {
		_, err := s.Spend(ctx, admissiontest.JTI(), "use", t0.Add(time.Minute))
		switch {
		case errs.Is(errs.Unavailable, err):
			full = true
		case err != nil:
			t.Fatal(err)
		}
	}
	if !full || s.Len() > 16 {
		t.Fatalf("full %v with %d entries, want a refusal at no more than 16", full, s.Len())
	}
	clock.Advance(time.Minute)
	for i := 0; i < 50; i++ {
		if _, err := s.Spend(ctx, admissiontest.JTI(), "use", clock.Now().Add(time.Second)); errs.Is(errs.Unavailable, err) {
			clock.Advance(2 * time.Second) // only this shard may be full of live ones
			continue
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if s.Len() > 16 {
		t.Fatalf("%d entries kept, want at most 16", s.Len())
	}
}

// Admitted accepts a token after its expiry for AdmittedFor (its holds
// outlive it) and spends nothing; every other check still applies.
func TestAdmittedOutlivesTheToken(t *testing.T) {
	f := newFixture(t)
	tok := f.issue(t, "e1", "s1", t0)
	exp := t0.Add(10 * time.Minute)
	if _, err := f.ver.Verify(tok, "e1", "s1", exp.Add(time.Minute)); errs.ReasonOf(err) != admission.ReasonExpired {
		t.Fatalf("Verify after expiry = %v, want %s", err, admission.ReasonExpired)
	}
	for _, at := range []time.Time{t0, exp.Add(time.Minute), exp.Add(30 * time.Minute)} {
		if _, err := f.ver.Admitted(tok, "e1", "s1", at); err != nil {
			t.Errorf("Admitted at exp%+v: %v", at.Sub(exp), err)
		}
	}
	// Beyond AdmittedFor and the clock skew, and for another event or
	// session, it is refused.
	for _, c := range []struct {
		event, session string
		at             time.Time
		reason         string
	}{
		{"e1", "s1", exp.Add(31 * time.Minute), admission.ReasonExpired},
		{"e2", "s1", t0, admission.ReasonWrongEvent},
		{"e1", "s2", t0, admission.ReasonWrongSession},
	} {
		if _, err := f.ver.Admitted(tok, c.event, c.session, c.at); errs.ReasonOf(err) != c.reason {
			t.Errorf("Admitted(%s, %s, exp%+v) = %v, want %s", c.event, c.session, c.at.Sub(exp), err, c.reason)
		}
	}
	// Nothing was spent: the token still redeems.
	if _, err := f.ver.Redeem(context.Background(), tok, "e1", "s1", "hold-1", t0); err != nil {
		t.Fatalf("Redeem after Admitted: %v", err)
	}
}
