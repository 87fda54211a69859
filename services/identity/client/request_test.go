package client_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
)

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func TestParseTokenRequest(t *testing.T) {
	for _, tc := range []struct {
		name, authz, body string
		want              client.TokenRequest
	}{
		{"basic", client.BasicAuthorization("c_acme", "tks_s3cret"), "grant_type=client_credentials&scope=events%3Aread+holds%3Awrite",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_acme", Secret: "tks_s3cret", Method: "client_secret_basic"}, Scope: "events:read holds:write"}},
		{"post", "", "grant_type=client_credentials&client_id=c_acme&client_secret=tks_s3cret",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_acme", Secret: "tks_s3cret", Method: "client_secret_post"}}},
		// RFC 6749 section 2.3.1: id and secret are form-urlencoded before
		// Basic: a ':' in the secret arrives as %3A, a space as '+'.
		{"basic urlencoded", basic("c_acme:a%3Ab+c%25d"), "grant_type=client_credentials",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_acme", Secret: "a:b c%d", Method: "client_secret_basic"}}},
		{"basic scheme case", "bAsIc " + strings.TrimPrefix(client.BasicAuthorization("c_a", "s"), "Basic "), "grant_type=client_credentials",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s", Method: "client_secret_basic"}}},
		{"basic and the same client_id in the body", client.BasicAuthorization("c_a", "s"), "grant_type=client_credentials&client_id=c_a",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s", Method: "client_secret_basic"}}},
		{"empty values are omitted", client.BasicAuthorization("c_a", "s"), "grant_type=client_credentials&scope=&client_secret=&&x",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s", Method: "client_secret_basic"}}},
		{"unknown parameters are ignored", "", "foo=bar&grant_type=client_credentials&client_id=c_a&client_secret=s&audience=x",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s", Method: "client_secret_post"}}},
		{"semicolon is not a separator", "", "grant_type=client_credentials&client_id=c_a&client_secret=s;x=y",
			client.TokenRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s;x=y", Method: "client_secret_post"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := client.ParseTokenRequest(tc.authz, []byte(tc.body))
			if err != nil || got != tc.want {
				t.Fatalf("ParseTokenRequest = %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseTokenRequestRefused(t *testing.T) {
	const ok = "grant_type=client_credentials"
	good := client.BasicAuthorization("c_a", "s")
	for _, tc := range []struct {
		name, authz, body string
		kind              errs.Kind
		code, method      string
	}{
		{"no grant type", good, "scope=events%3Aread", errs.Invalid, "invalid_request", "client_secret_basic"},
		{"other grant", good, "grant_type=password&username=a&password=b", errs.Invalid, "unsupported_grant_type", "client_secret_basic"},
		{"grant case", good, "grant_type=Client_Credentials", errs.Invalid, "unsupported_grant_type", "client_secret_basic"},
		{"repeated grant", good, ok + "&" + ok, errs.Invalid, "invalid_request", ""},
		{"repeated scope", good, ok + "&scope=a&scope=b", errs.Invalid, "invalid_request", ""},
		{"repeated, one empty", good, ok + "&scope=&scope=b", errs.Invalid, "invalid_request", ""},
		{"bad escape", good, ok + "&scope=%zz", errs.Invalid, "invalid_request", ""},
		{"invalid UTF-8", good, ok + "&scope=%ff", errs.Invalid, "invalid_request", ""},
		{"body too large", good, ok + "&x=" + strings.Repeat("a", client.MaxBodyBytes), errs.Invalid, "invalid_request", ""},
		{"scope too long", good, ok + "&scope=" + strings.Repeat("a", 513), errs.Invalid, "invalid_request", "client_secret_basic"},
		{"no credentials", "", ok, errs.Unauthorized, "invalid_client", ""},
		{"client_id only", "", ok + "&client_id=c_a", errs.Unauthorized, "invalid_client", ""},
		{"client_secret only", "", ok + "&client_secret=s", errs.Unauthorized, "invalid_client", ""},
		{"two methods", good, ok + "&client_id=c_a&client_secret=s", errs.Invalid, "invalid_request", "client_secret_basic"},
		{"secret in body with basic", good, ok + "&client_secret=s", errs.Invalid, "invalid_request", "client_secret_basic"},
		{"another client_id in the body", good, ok + "&client_id=c_b", errs.Invalid, "invalid_request", "client_secret_basic"},
		{"bearer", "Bearer abc", ok, errs.Unauthorized, "invalid_client", "client_secret_basic"},
		{"scheme only", "Basic", ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"not base64", "Basic !!!", ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"unpadded base64", strings.TrimRight(basic("c_a:s"), "="), ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"no colon", basic("c_a"), ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"empty secret", basic("c_a:"), ok, errs.Unauthorized, "invalid_client", "client_secret_basic"},
		{"empty id", basic(":s"), ok, errs.Unauthorized, "invalid_client", "client_secret_basic"},
		{"bad escape in basic", basic("c_a:%zz"), ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"long header", "Basic " + strings.Repeat("A", client.MaxAuthorizationBytes), ok, errs.Invalid, "invalid_request", "client_secret_basic"},
		{"long id", "", ok + "&client_id=c_" + strings.Repeat("a", 200) + "&client_secret=s", errs.Invalid, "invalid_request", ""},
		{"long secret", client.BasicAuthorization("c_a", strings.Repeat("s", client.MaxSecretLen+1)), ok, errs.Invalid, "invalid_request", "client_secret_basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := client.ParseTokenRequest(tc.authz, []byte(tc.body))
			if !errs.Is(tc.kind, err) || errs.ReasonOf(err) != tc.code {
				t.Fatalf("error %v (kind %v, reason %q), want %v %q", err, errs.KindOf(err), errs.ReasonOf(err), tc.kind, tc.code)
			}
			if got != (client.TokenRequest{Credentials: client.Credentials{Method: tc.method}}) {
				t.Fatalf("result %+v on error, want only method %q", got, tc.method)
			}
			if code, _, ok := client.OAuthError(err); !ok || code != tc.code {
				t.Fatalf("OAuthError = %q, %v", code, ok)
			}
		})
	}
}

func TestParseIntrospectionRequest(t *testing.T) {
	got, err := client.ParseIntrospectionRequest(client.BasicAuthorization("c_a", "s"), []byte("token=a.b.c&token_type_hint=access_token"))
	want := client.IntrospectionRequest{Credentials: client.Credentials{ClientID: "c_a", Secret: "s", Method: "client_secret_basic"},
		Token: "a.b.c", TokenTypeHint: "access_token"}
	if err != nil || got != want {
		t.Fatalf("ParseIntrospectionRequest = %+v, %v", got, err)
	}
	// No grant_type here.
	got, err = client.ParseIntrospectionRequest("", []byte("token=x&client_id=c_a&client_secret=s"))
	if err != nil || got.Token != "x" || got.Method != "client_secret_post" {
		t.Fatalf("post = %+v, %v", got, err)
	}
	for name, body := range map[string]string{
		"no token":       "token_type_hint=access_token",
		"empty token":    "token=",
		"repeated token": "token=a&token=b",
		"long token":     "token=" + strings.Repeat("a", client.MaxTokenParamBytes+1),
	} {
		_, err := client.ParseIntrospectionRequest(client.BasicAuthorization("c_a", "s"), []byte(body))
		if !errs.Is(errs.Invalid, err) || errs.ReasonOf(err) != client.ReasonInvalidRequest {
			t.Errorf("%s: %v, want invalid_request", name, err)
		}
	}
	_, err = client.ParseIntrospectionRequest("", []byte("token=x"))
	if errs.ReasonOf(err) != client.ReasonInvalidClient {
		t.Fatalf("unauthenticated: %v, want invalid_client", err)
	}
}
