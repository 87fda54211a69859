package client_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ticketing/ticketing/services/identity/client"
	"github.com/ticketing/ticketing/services/identity/token"
)

// FuzzParseTokenRequest feeds arbitrary headers and bodies to the token
// endpoint's parser (seeds in testdata/fuzz/FuzzParseTokenRequest). It
// must not panic; every refusal carries an RFC 6749 error code and leaves
// only Method set; what it accepts has both credentials within the limits,
// came by the method the header says, and parses to the same request
// again when written the way a client writes it.
func FuzzParseTokenRequest(f *testing.F) {
	codes := []string{client.ReasonInvalidRequest, client.ReasonInvalidClient, client.ReasonUnsupportedGrantType}
	f.Fuzz(func(t *testing.T, authz string, body []byte) {
		r, err := client.ParseTokenRequest(authz, body)
		if err != nil {
			code, _, ok := client.OAuthError(err)
			if !ok || !slices.Contains(codes, code) {
				t.Fatalf("error %v has code %q, %v", err, code, ok)
			}
			if r.ClientID != "" || r.Secret != "" || r.Scope != "" {
				t.Fatalf("refused with %v but returned %+v", err, r)
			}
			if (r.Method == client.AuthClientSecretBasic && authz == "") || (r.Method == client.AuthClientSecretPost && authz != "") ||
				(r.Method != "" && r.Method != client.AuthClientSecretBasic && r.Method != client.AuthClientSecretPost) {
				t.Fatalf("refused with method %q, header %q", r.Method, authz)
			}
			// A failed authentication through the header is answered
			// with a Basic challenge: the method must say so.
			if code == client.ReasonInvalidClient && authz != "" && r.Method != client.AuthClientSecretBasic {
				t.Fatalf("invalid_client for header %q without method basic", authz)
			}
			return
		}
		if r.ClientID == "" || r.Secret == "" || len(r.ClientID) > token.MaxIDBytes || len(r.Secret) > client.MaxSecretLen ||
			len(r.Scope) > token.MaxScopeBytes || !utf8.ValidString(r.ClientID+r.Secret+r.Scope) {
			t.Fatalf("accepted %+v", r)
		}
		want := client.AuthClientSecretPost
		if authz != "" {
			want = client.AuthClientSecretBasic
		}
		if r.Method != want {
			t.Fatalf("method %q, header %q", r.Method, authz)
		}

		// Written again the way a client writes it, it reads the same.
		form := url.Values{"grant_type": {client.GrantClientCredentials}}
		if r.Scope != "" {
			form.Set("scope", r.Scope)
		}
		h := ""
		if r.Method == client.AuthClientSecretBasic {
			h = client.BasicAuthorization(r.ClientID, r.Secret)
		} else {
			form.Set("client_id", r.ClientID)
			form.Set("client_secret", r.Secret)
		}
		again, err := client.ParseTokenRequest(h, []byte(form.Encode()))
		if err != nil || again != r {
			t.Fatalf("re-encoded %+v reads %+v, %v", r, again, err)
		}
	})
}

// FuzzGrantScope feeds arbitrary requested scopes to GrantScope for a
// client allowed three scopes: it grants a canonical, duplicate-free
// subset of them that the token issuer accepts, exactly the requested
// tokens, or refuses with invalid_scope.
func FuzzGrantScope(f *testing.F) {
	for _, s := range []string{"", "events:read", "holds:write events:read", "events:read events:read", "reports:read", " events:read", "a\x00b"} {
		f.Add(s)
	}
	tk := newTokens(f)
	c := client.Client{ID: "c_fuzz", Scopes: []string{client.ScopeHoldsWrite, client.ScopeEventsRead, client.ScopeOrdersRead}}
	f.Fuzz(func(t *testing.T, requested string) {
		granted, err := client.GrantScope(c, requested)
		if err != nil {
			if code, _, _ := client.OAuthError(err); code != client.ReasonInvalidScope || granted != "" {
				t.Fatalf("GrantScope(%q) = %q, %v", requested, granted, err)
			}
			return
		}
		toks := strings.Split(granted, " ")
		var canonical []string
		for _, s := range client.KnownScopes() {
			if slices.Contains(toks, s) {
				canonical = append(canonical, s)
			}
		}
		if !slices.Equal(toks, canonical) {
			t.Fatalf("GrantScope(%q) = %q: not canonical or not known", requested, granted)
		}
		for _, s := range toks {
			if !slices.Contains(c.Scopes, s) {
				t.Fatalf("GrantScope(%q) granted %q, not allowed", requested, s)
			}
		}
		if requested != "" {
			req := strings.Split(requested, " ")
			slices.Sort(req)
			got := slices.Clone(toks)
			slices.Sort(got)
			if !slices.Equal(slices.Compact(req), got) {
				t.Fatalf("GrantScope(%q) = %q: not what was requested", requested, granted)
			}
		}
		if _, _, err := tk.issuer.Issue(client.IssueRequest(c, granted), t0); err != nil {
			t.Fatalf("granted %q is not issuable: %v", granted, err)
		}
	})
}
