package admission

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

// fuzzSeed is a fixed key, so that the valid token in testdata/fuzz stays
// valid.
var fuzzSeed = bytes.Repeat([]byte{7}, ed25519.SeedSize)

var fuzzNow = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func fuzzVerifier(t testing.TB) (*Verifier, *Signer) {
	pub := ed25519.NewKeyFromSeed(fuzzSeed).Public().(ed25519.PublicKey)
	ring, err := keyring.NewKeyRingFromSet(keyring.KeyRingConfig{}, keyring.KeySet{Keys: []keyring.StoredKey{{KID: keyring.KID(pub), Seed: fuzzSeed, Created: fuzzNow}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(ring, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(ring, Config{})
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// FuzzVerify feeds the decoder arbitrary tokens: it must never panic,
// every refusal must be a classified *errs.Error with a reason, and what
// it accepts must be for the event and session asked. On the way, the
// claims parser is checked against encoding/json: whatever it accepts,
// encoding/json reads the same.
func FuzzVerify(f *testing.F) {
	v, s := fuzzVerifier(f)
	tok, _, err := s.Issue("e1", "s1", fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := v.Verify(token, "e1", "s1", fuzzNow)
		if err == nil {
			if c.Event != "e1" || c.Session != "s1" || len(c.ID) != jtiLen {
				t.Fatalf("accepted %q with claims %+v", token, c)
			}
			return
		}
		var e *errs.Error
		if !errors.As(err, &e) || e.Reason == "" {
			t.Fatalf("refusal without a reason: %v", err)
		}
		switch e.Kind {
		case errs.Unauthorized, errs.Forbidden, errs.Gone:
		default:
			t.Fatalf("refusal of kind %v: %v", e.Kind, err)
		}

		parts := strings.Split(token, ".")
		if len(parts) < 2 {
			return
		}
		p, err := b64.DecodeString(parts[1])
		if err != nil {
			p = []byte(parts[1]) // also try the raw text as claims
		}
		rc, ok := parseClaims(p)
		if !ok {
			return
		}
		var w wireClaims
		if err := json.Unmarshal(p, &w); err != nil {
			t.Fatalf("parseClaims accepted %q, encoding/json refuses: %v", p, err)
		}
		if w.Iss != string(rc.iss) || w.Aud != string(rc.aud) || w.Sub != string(rc.sub) || w.Evt != string(rc.evt) ||
			w.Jti != string(rc.jti) || w.Iat != rc.iat || w.Nbf != rc.nbf || w.Exp != rc.exp {
			t.Fatalf("parseClaims(%q) = %+v, encoding/json %+v", p, rc, w)
		}
	})
}
