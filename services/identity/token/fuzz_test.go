package token

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

// fuzzSeed is a fixed key, so that the valid token in testdata/fuzz stays
// valid.
var fuzzSeed = bytes.Repeat([]byte{9}, ed25519.SeedSize)

var fuzzNow = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

var fuzzConfig = Config{Issuer: "https://id.ticketing.example", Audience: "ticketing-api"}

func fuzzVerifier(t testing.TB) (*Verifier, *Issuer) {
	pub := ed25519.NewKeyFromSeed(fuzzSeed).Public().(ed25519.PublicKey)
	ring, err := keyring.NewKeyRingFromSet(keyring.KeyRingConfig{}, keyring.KeySet{Keys: []keyring.StoredKey{{KID: keyring.KID(pub), Seed: fuzzSeed, Created: fuzzNow}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(ring, fuzzConfig)
	if err != nil {
		t.Fatal(err)
	}
	i, err := NewIssuer(ring, fuzzConfig)
	if err != nil {
		t.Fatal(err)
	}
	return v, i
}

// FuzzVerify feeds the verifier's decoder arbitrary tokens: it must never
// panic, every refusal must be an Unauthorized *errs.Error with a reason,
// and what it accepts must carry the configured issuer and audience, a
// subject, a client, a 128-bit id and a lifetime within the limits. The
// seeds (testdata/fuzz/FuzzVerify) are a valid token of the fixed key and
// the attacks of TestRefusals.
func FuzzVerify(f *testing.F) {
	v, i := fuzzVerifier(f)
	tok, _, err := i.Issue(Request{Subject: "u1", ClientID: "web", Scope: "openid"}, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token, fuzzNow)
		if err == nil {
			if c.Issuer != fuzzConfig.Issuer || c.Audience != fuzzConfig.Audience || c.Subject == "" || c.ClientID == "" ||
				len(c.ID) != jtiLen || !c.Expiry.After(c.IssuedAt) || c.Expiry.Sub(c.IssuedAt) > v.cfg.MaxLifetime {
				t.Fatalf("accepted %q with claims %+v", token, c)
			}
			return
		}
		var e *errs.Error
		if !errors.As(err, &e) || e.Reason == "" || e.Kind != errs.Unauthorized {
			t.Fatalf("refusal %v is not unauthorized with a reason", err)
		}
		if len(token) > v.cfg.MaxTokenBytes && e.Reason != ReasonTooLong {
			t.Fatalf("oversize token refused with %q", e.Reason)
		}
	})
}

// The seeds mean what their names say: the valid ones verify, each attack
// is refused for its own reason.
func TestFuzzSeeds(t *testing.T) {
	v, _ := fuzzVerifier(t)
	for name, reason := range map[string]string{
		"valid": "", "nbf": "", "noncanonical": "",
		"alg_none": ReasonAlgorithm, "hs256_public_key": ReasonAlgorithm, "duplicate_header": ReasonAlgorithm,
		"embedded_jwk": ReasonHeaderRefused, "crit": ReasonHeaderRefused, "typ_jwt": ReasonWrongType,
		"audience_array": ReasonMalformed, "tampered_signature": ReasonBadSignature,
		"dots": ReasonMalformed, "garbage": ReasonMalformed, "four_segments": ReasonMalformed,
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzVerify", name))
		if err != nil {
			t.Fatal(err)
		}
		q, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "go test fuzz v1\nstring(")
		q, ok2 := strings.CutSuffix(q, ")")
		tok, err := strconv.Unquote(q)
		if !ok || !ok2 || err != nil {
			t.Fatalf("seed %s: not a string seed", name)
		}
		_, err = v.Verify(tok, fuzzNow)
		if got := errs.ReasonOf(err); got != reason || (reason == "" && err != nil) {
			t.Errorf("seed %s: %v (reason %q), want reason %q", name, err, got, reason)
		}
	}
}
