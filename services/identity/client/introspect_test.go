package client_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/identity/token"
)

type tokens struct {
	issuer   *token.Issuer
	verifier *token.Verifier
}

func newTokens(t testing.TB) tokens {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, t0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := token.Config{Issuer: "https://id.ticketing.example", Audience: "ticketing-api"}
	issuer, err := token.NewIssuer(ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := token.NewVerifier(ring, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tokens{issuer, verifier}
}

func TestIntrospectActive(t *testing.T) {
	f := newTokens(t)
	c, _ := partner(client.ScopeEventsRead, client.ScopeHoldsWrite)
	tok, issued, err := f.issuer.Issue(client.IssueRequest(c, "holds:write events:read"), t0)
	if err != nil {
		t.Fatal(err)
	}
	got := client.Introspect(f.verifier.Verify(tok, t0.Add(time.Minute)))
	want := client.Introspection{
		Active: true, Scope: "holds:write events:read", ClientID: c.ID, Sub: c.ID,
		Exp: t0.Add(5 * time.Minute).Unix(), Iat: t0.Unix(), Iss: "https://id.ticketing.example",
		Aud: "ticketing-api", TokenType: "Bearer", Jti: issued.ID,
	}
	if got != want {
		t.Fatalf("Introspect = %+v\nwant        %+v", got, want)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"active", "scope", "client_id", "sub", "exp", "iat", "iss", "aud", "token_type", "jti"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing from %s", k, b)
		}
	}
	if _, ok := m["nbf"]; ok {
		t.Errorf("nbf present without one in the token: %s", b)
	}
}

// Anything invalid is {"active":false} and nothing else, whatever the
// claims hold.
func TestIntrospectInactive(t *testing.T) {
	f := newTokens(t)
	c, _ := partner(client.ScopeEventsRead)
	tok, _, err := f.issuer.Issue(client.IssueRequest(c, "events:read"), t0)
	if err != nil {
		t.Fatal(err)
	}
	expired := func() (token.Claims, error) { return f.verifier.Verify(tok, t0.Add(time.Hour)) }
	// A character inside the signature changed (the last ones may carry
	// only padding bits, which some decoders ignore).
	i := len(tok) - 10
	flipped := map[bool]string{true: "B", false: "A"}[tok[i] == 'A']
	tampered := func() (token.Claims, error) { return f.verifier.Verify(tok[:i]+flipped+tok[i+1:], t0) }
	valid, verr := f.verifier.Verify(tok, t0)
	if verr != nil {
		t.Fatal(verr)
	}
	for name, r := range map[string]client.Introspection{
		"expired":               client.Introspect(expired()),
		"bad signature":         client.Introspect(tampered()),
		"empty":                 client.Introspect(f.verifier.Verify("", t0)),
		"garbage":               client.Introspect(f.verifier.Verify("a.b.c", t0)),
		"valid, caller refuses": client.Introspect(valid, errors.New("client disabled")),
		"zero claims, no error": client.Introspect(token.Claims{}, nil),
	} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != `{"active":false}` {
			t.Errorf("%s: %s, want {\"active\":false}", name, b)
		}
	}
}

func TestIntrospectNotBefore(t *testing.T) {
	nbf := t0.Add(-time.Minute)
	r := client.Introspect(token.Claims{ClientID: "c_x", Subject: "c_x", IssuedAt: t0, NotBefore: nbf, Expiry: t0.Add(time.Minute)}, nil)
	if !r.Active || r.Nbf != nbf.Unix() {
		t.Fatalf("Introspect = %+v, want active with nbf %d", r, nbf.Unix())
	}
}
