package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func wantErr(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) || errs.ReasonOf(err) != reason {
		t.Fatalf("error %v (kind %v, reason %q), want kind %v, reason %q", err, errs.KindOf(err), errs.ReasonOf(err), k, reason)
	}
}

func partner(scopes ...string) (client.Client, string) {
	secret, hash := client.NewSecret()
	return client.Client{ID: client.NewID(), Name: "Acme", Scopes: scopes, SecretHashes: []string{hash}, CreatedAt: t0}, secret
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		secret, hash := client.NewSecret()
		if len(secret) != client.SecretLen || !strings.HasPrefix(secret, client.SecretPrefix) {
			t.Fatalf("secret %q: want %d bytes starting %q", secret, client.SecretLen, client.SecretPrefix)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(secret, client.SecretPrefix))
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: not 32 bytes of base64url: %v", secret, err)
		}
		sum := sha256.Sum256([]byte(secret))
		if hash != hex.EncodeToString(sum[:]) || hash != client.HashSecret(secret) || !client.ValidHash(hash) {
			t.Fatalf("hash %q of %q is not its SHA-256 in hex", hash, secret)
		}
		if seen[secret] {
			t.Fatalf("secret %q twice", secret)
		}
		seen[secret] = true
	}
}

func TestValidID(t *testing.T) {
	for i := range 20 {
		if id := client.NewID(); !client.ValidID(id) || len(id) != 28 {
			t.Fatalf("NewID %d = %q", i, id)
		}
	}
	for _, id := range []string{"c_a", "c_-", "c_" + strings.Repeat("Z", 62)} {
		if !client.ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	for _, id := range []string{"", "c_", "c", "u_abc", "C_abc", "c_a:b", "c_a.b", "c_a b", "c_é", "c_" + strings.Repeat("Z", 63)} {
		if client.ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
}

func TestValidHash(t *testing.T) {
	_, h := client.NewSecret()
	for _, bad := range []string{"", h[:63], h + "0", strings.ToUpper(h), "g" + h[1:], "sha256:" + h[7:]} {
		if client.ValidHash(bad) {
			t.Errorf("ValidHash(%q) = true", bad)
		}
	}
}

func TestKnownScopes(t *testing.T) {
	want := []string{"holds:write", "holds:read", "events:read", "orders:write", "orders:read", "reports:read"}
	got := client.KnownScopes()
	if !slices.Equal(got, want) {
		t.Fatalf("KnownScopes = %v, want %v", got, want)
	}
	got[0] = "admin" // a copy: the package's list stays
	if !client.KnownScope("holds:write") || client.KnownScope("admin") {
		t.Fatal("KnownScopes handed out its own slice")
	}
}

func TestNormalize(t *testing.T) {
	_, h1 := client.NewSecret()
	_, h2 := client.NewSecret()
	in := client.Client{
		ID: "c_acme", Name: "\tAcme ", Scopes: []string{"reports:read", "holds:write", "reports:read"},
		SecretHashes: []string{h2, h1, h2}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("X", 3600)), Version: 7,
	}
	got, err := client.Normalize(in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Acme" || !slices.Equal(got.Scopes, []string{"holds:write", "reports:read"}) ||
		!slices.Equal(got.SecretHashes, []string{h2, h1}) || got.Channel != "partner" || got.Version != 7 ||
		got.CreatedAt.Location() != time.UTC || got.CreatedAt.Nanosecond() != 6000 {
		t.Fatalf("Normalize = %+v", got)
	}
	if in.Scopes[0] != "reports:read" {
		t.Fatal("Normalize changed its argument's scopes")
	}
	in.SecretHashes = nil
	in.Channel = "box-office"
	got, err = client.Normalize(in)
	if err != nil || got.SecretHashes != nil || got.Channel != "box-office" {
		t.Fatalf("Normalize without secrets = %+v, %v", got, err)
	}
}

func TestAuthenticate(t *testing.T) {
	c, secret := partner(client.ScopeEventsRead)
	if err := client.Authenticate(c, secret); err != nil {
		t.Fatalf("the right secret: %v", err)
	}
	for _, bad := range []string{"", "tks_", secret[:len(secret)-1], secret + "x", strings.ToUpper(secret),
		strings.TrimPrefix(secret, client.SecretPrefix), c.SecretHashes[0], strings.Repeat("x", 10000)} {
		wantErr(t, client.Authenticate(c, bad), errs.Unauthorized, client.ReasonInvalidClient)
	}
	// A secret without the prefix never authenticates, even when its
	// hash is stored (a hash put there by hand).
	c2 := c
	c2.SecretHashes = []string{client.HashSecret("not-a-tks-secret")}
	wantErr(t, client.Authenticate(c2, "not-a-tks-secret"), errs.Unauthorized, client.ReasonInvalidClient)

	// No secrets, or malformed hashes: nothing authenticates.
	c2.SecretHashes = nil
	wantErr(t, client.Authenticate(c2, secret), errs.Unauthorized, client.ReasonInvalidClient)
	c2.SecretHashes = []string{"zz" + c.SecretHashes[0][2:], c.SecretHashes[0][:10]}
	wantErr(t, client.Authenticate(c2, secret), errs.Unauthorized, client.ReasonInvalidClient)

	// Either of two secrets works: the second one too.
	c3, s3, err := client.AddSecret(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SecretHashes) != 1 {
		t.Fatal("AddSecret changed its argument")
	}
	for _, s := range []string{secret, s3} {
		if err := client.Authenticate(c3, s); err != nil {
			t.Fatalf("secret %d of 2: %v", slices.Index([]string{secret, s3}, s)+1, err)
		}
	}
	if err := client.Authenticate(c, s3); err == nil {
		t.Fatal("the new secret works on the client without its hash")
	}

	// Disabled: the right secret is unauthorized_client, a wrong one
	// still invalid_client.
	c3.Disabled = true
	wantErr(t, client.Authenticate(c3, s3), errs.Forbidden, client.ReasonUnauthorizedClient)
	wantErr(t, client.Authenticate(c3, "tks_nope"), errs.Unauthorized, client.ReasonInvalidClient)
}

func TestSecretRotation(t *testing.T) {
	c, first := partner(client.ScopeEventsRead)
	c, second, err := client.AddSecret(c)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = client.AddSecret(c)
	wantErr(t, err, errs.Conflict, client.ReasonTooManySecrets)
	if _, err := client.Normalize(c); err != nil {
		t.Fatalf("a client with two secrets does not normalize: %v", err)
	}

	before := slices.Clone(c.SecretHashes)
	after, err := client.RevokeSecret(c, client.HashSecret(first))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.SecretHashes, before) {
		t.Fatal("RevokeSecret changed its argument")
	}
	if err := client.Authenticate(after, first); err == nil {
		t.Fatal("the revoked secret still authenticates")
	}
	if err := client.Authenticate(after, second); err != nil {
		t.Fatalf("the remaining secret: %v", err)
	}
	_, err = client.RevokeSecret(after, client.HashSecret(first))
	wantErr(t, err, errs.NotFound, "")
	none, err := client.RevokeSecret(after, client.HashSecret(second))
	if err != nil || none.SecretHashes != nil {
		t.Fatalf("revoking the last secret: %+v, %v", none.SecretHashes, err)
	}
}

func TestGrantScope(t *testing.T) {
	c, _ := partner(client.ScopeOrdersRead, client.ScopeHoldsWrite, client.ScopeEventsRead)
	for _, tc := range []struct {
		requested, want string
	}{
		{"", "holds:write events:read orders:read"},
		{"events:read", "events:read"},
		{"orders:read holds:write", "holds:write orders:read"},
		{"events:read events:read", "events:read"},
	} {
		got, err := client.GrantScope(c, tc.requested)
		if err != nil || got != tc.want {
			t.Errorf("GrantScope(%q) = %q, %v; want %q", tc.requested, got, err, tc.want)
		}
	}
	for _, requested := range []string{
		"reports:read",             // known, not allowed
		"events:read reports:read", // one of two not allowed
		"admin",                    // unknown
		"events:read  holds:write", // two spaces
		" events:read",             // leading space
		"events:read ",             // trailing space
		"events:read\tholds:write", // a tab is not a separator
		"events:rëad",              // not a scope-token
		`events"read`,
		"EVENTS:READ", // scopes are case-sensitive
		strings.Repeat("events:read ", 50) + "events:read", // too long
	} {
		got, err := client.GrantScope(c, requested)
		if got != "" {
			t.Errorf("GrantScope(%q) granted %q", requested, got)
		}
		wantErr(t, err, errs.Invalid, client.ReasonInvalidScope)
	}
	_, err := client.GrantScope(c, "reports:read")
	if code, desc, ok := client.OAuthError(err); !ok || code != "invalid_scope" || !strings.Contains(desc, "'reports:read'") {
		t.Fatalf("OAuthError = %q, %q, %v; want the scope named", code, desc, ok)
	}

	// Stored scopes that are no longer known are never granted.
	old := c
	old.Scopes = []string{"tickets:write", client.ScopeEventsRead}
	if got, err := client.GrantScope(old, ""); err != nil || got != "events:read" {
		t.Fatalf("GrantScope of a client with a retired scope = %q, %v", got, err)
	}
	_, err = client.GrantScope(old, "tickets:write")
	wantErr(t, err, errs.Invalid, client.ReasonInvalidScope)
	old.Scopes = []string{"tickets:write"}
	_, err = client.GrantScope(old, "")
	wantErr(t, err, errs.Invalid, client.ReasonInvalidScope)

	disabled := c
	disabled.Disabled = true
	_, err = client.GrantScope(disabled, "")
	wantErr(t, err, errs.Forbidden, client.ReasonUnauthorizedClient)
}

// Every scope GrantScope grants is one the token issuer accepts.
func TestGrantedScopeIssues(t *testing.T) {
	c, _ := partner(client.KnownScopes()...)
	granted, err := client.GrantScope(c, "")
	if err != nil {
		t.Fatal(err)
	}
	f := newTokens(t)
	tok, claims, err := f.issuer.Issue(client.IssueRequest(c, granted), t0)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != c.ID || claims.ClientID != c.ID || claims.Scope != granted {
		t.Fatalf("claims %+v", claims)
	}
	if _, err := f.verifier.Verify(tok, t0); err != nil {
		t.Fatal(err)
	}
}

// memStore is a client.Store of one client, for AuthenticateID.
type memStore struct {
	c   client.Client
	err error
}

func (m memStore) ByID(_ context.Context, id string) (client.Client, error) {
	if m.err != nil {
		return client.Client{}, m.err
	}
	if id != m.c.ID {
		return client.Client{}, errs.E(errs.NotFound, "no such client")
	}
	return m.c, nil
}
func (memStore) Create(context.Context, client.Client) (client.Client, error) { panic("unused") }
func (memStore) Update(context.Context, client.Client) (client.Client, error) { panic("unused") }
func (memStore) List(context.Context, string, int) ([]client.Client, error)   { panic("unused") }

func TestAuthenticateID(t *testing.T) {
	ctx := context.Background()
	c, secret := partner(client.ScopeEventsRead)
	s := memStore{c: c}
	got, err := client.AuthenticateID(ctx, s, c.ID, secret)
	if err != nil || got.ID != c.ID {
		t.Fatalf("AuthenticateID = %+v, %v", got, err)
	}
	_, errUnknown := client.AuthenticateID(ctx, s, client.NewID(), secret)
	wantErr(t, errUnknown, errs.Unauthorized, client.ReasonInvalidClient)
	_, errWrong := client.AuthenticateID(ctx, s, c.ID, "tks_wrong")
	wantErr(t, errWrong, errs.Unauthorized, client.ReasonInvalidClient)
	if errs.Message(errUnknown) != errs.Message(errWrong) {
		t.Fatalf("an unknown client (%q) and a wrong secret (%q) read differently", errs.Message(errUnknown), errs.Message(errWrong))
	}
	_, err = client.AuthenticateID(ctx, memStore{err: errs.E(errs.Unavailable, "down")}, c.ID, secret)
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("store down: %v, want unavailable", err)
	}
	if _, _, ok := client.OAuthError(err); ok {
		t.Fatal("a store failure was given an OAuth error code")
	}
}

func TestOAuthError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{errs.E("x", errs.Unauthorized, "no").WithReason(client.ReasonInvalidClient), "invalid_client"},
		{errs.E("x", errs.Invalid, `bad "scope" \ é`).WithReason(client.ReasonInvalidScope), "invalid_scope"},
		{errs.E("y", errs.E("x", errs.Invalid, "grant").WithReason(client.ReasonUnsupportedGrantType)), "unsupported_grant_type"},
	} {
		code, desc, ok := client.OAuthError(tc.err)
		if !ok || code != tc.code {
			t.Fatalf("OAuthError(%v) = %q, %v; want %q", tc.err, code, ok, tc.code)
		}
		for i := 0; i < len(desc); i++ {
			if b := desc[i]; b < 0x20 || b == '"' || b == '\\' || b > 0x7e {
				t.Fatalf("description %q has %q, outside RFC 6749's error_description set", desc, b)
			}
		}
	}
	for _, err := range []error{nil, errs.E("x", errs.Invalid, "plain"), errs.E("x", errs.Conflict).WithReason(client.ReasonIDTaken)} {
		if code, _, ok := client.OAuthError(err); ok {
			t.Fatalf("OAuthError(%v) = %q, want none", err, code)
		}
	}
}
