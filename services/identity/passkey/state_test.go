package passkey

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

func TestSealRoundTrip(t *testing.T) {
	s, err := NewSealer(newKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := ceremony{
		purpose: PurposeSecondFactor,
		expires: testNow.Add(5 * time.Minute),
		session: webauthn.SessionData{
			Challenge:            "c2VjcmV0IGNoYWxsZW5nZSBvZiAzMiBieXRlcyEhISE",
			RelyingPartyID:       testRPID,
			UserID:               []byte("u_0123"),
			AllowedCredentialIDs: [][]byte{{1, 2, 3}, {4, 5}},
			UserVerification:     "preferred",
		},
	}
	st, err := s.seal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.open(st)
	if err != nil {
		t.Fatal(err)
	}
	if out.purpose != in.purpose || !out.expires.Equal(in.expires) || out.session.Challenge != in.session.Challenge ||
		out.session.RelyingPartyID != testRPID || !bytes.Equal(out.session.UserID, in.session.UserID) ||
		len(out.session.AllowedCredentialIDs) != 2 || !bytes.Equal(out.session.AllowedCredentialIDs[1], []byte{4, 5}) ||
		out.session.UserVerification != "preferred" {
		t.Fatalf("opened %+v, sealed %+v", out, in)
	}
	if st2, _ := s.seal(in); st2 == st {
		t.Fatal("two seals of one state are equal: the nonce is not random")
	}
	if _, err := s.seal(ceremony{purpose: "other", session: in.session}); err == nil {
		t.Fatal("sealed an unknown purpose")
	}
}

// TestOpenRefusals changes a sealed state in every way a client could:
// each is refused with ReasonStateInvalid.
func TestOpenRefusals(t *testing.T) {
	s, err := NewSealer(newKey(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.seal(ceremony{purpose: PurposeLogin, expires: testNow, session: webauthn.SessionData{Challenge: "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(st)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x80
		return base64.RawURLEncoding.EncodeToString(b)
	}
	other, _ := NewSealer(newKey(t), nil)
	otherState, _ := other.seal(ceremony{purpose: PurposeLogin, expires: testNow, session: webauthn.SessionData{Challenge: "abc"}})
	cases := map[string]string{
		"empty":           "",
		"not base64url":   st[:10] + "+" + st[11:],
		"padded":          st + "=",
		"version":         flip(0),
		"nonce":           flip(1),
		"ciphertext":      flip(headerLen + 12 + 2),
		"tag":             flip(len(raw) - 1),
		"truncated":       st[:len(st)-4],
		"version only":    base64.RawURLEncoding.EncodeToString([]byte{stateVersion}),
		"other key":       otherState,
		"too long":        strings.Repeat("A", MaxStateLen+1),
		"extended":        st + "AAAA",
		"standard base64": base64.StdEncoding.EncodeToString(raw),
		"nonce+tag only":  base64.RawURLEncoding.EncodeToString(raw[:headerLen+28]),
		"zeros":           base64.RawURLEncoding.EncodeToString(append([]byte{stateVersion}, make([]byte, 60)...)),
	}
	for name, st := range cases {
		if _, err := s.open(st); !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != ReasonStateInvalid {
			t.Errorf("%s: open = %v, want unauthorized %s", name, err, ReasonStateInvalid)
		}
	}
}

// TestStateSize measures the states the HTTP layer must carry: a
// second-factor state for an account with identity.MaxPasskeys passkeys
// of 64-byte ids must still fit a cookie (4096 bytes with its name).
func TestStateSize(t *testing.T) {
	f := newFixture(t)
	a := f.account("ana@example.com")
	k := newSoftKey(t, testRPID, testOrigin)
	k.credID = bytes.Repeat([]byte{1}, 64)
	f.register(a.ID, k)
	a = f.get(a.ID)
	for len(a.Passkeys) < identity.MaxPasskeys {
		p := a.Passkeys[0]
		c := credentialOf(t, p.Credential)
		c.ID = append([]byte(nil), c.ID...)
		c.ID[0] = byte(len(a.Passkeys))
		p.ID = b64(c.ID)
		p.Credential = mustJSON(t, c)
		a.Passkeys = append(a.Passkeys, p)
	}
	reg, err := f.c.BeginRegistration(identity.Account{User: a.User})
	if err != nil {
		t.Fatal(err)
	}
	login, err := f.c.BeginLogin()
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.c.BeginSecondFactor(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state bytes: registration %d, login %d, second factor with %d passkeys %d", len(reg.State), len(login.State), len(a.Passkeys), len(second.State))
	if len(second.State) > 3800 {
		t.Fatalf("second-factor state of %d bytes does not fit a cookie", len(second.State))
	}
}
