package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"testing"

	idapi "github.com/ticketing/ticketing/services/identity/natsapi"
)

// partner is a partner client, made through the admin route.
type partner struct {
	id, secret string
}

// basic is the client's HTTP Basic credentials (RFC 6749 section 2.3.1).
func (p partner) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(p.id)+":"+url.QueryEscape(p.secret)))
}

// newPartner creates a partner client allowed the scopes, as e's admin.
func newPartner(tb testing.TB, e *env, name string, scopes ...string) partner {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "scopes": scopes})
	req := request("POST", "/v1/admin/clients", string(body), e.auth(tb, adminUser)...)
	r := e.send(tb, req)
	loadContract(tb).check(tb, req, r)
	var c idapi.ClientCreated
	if r.status != 201 || json.Unmarshal(r.body, &c) != nil || c.ClientID == "" || c.ClientSecret == "" {
		tb.Fatalf("create client: %s", r)
	}
	return partner{c.ClientID, c.ClientSecret}
}

// accessToken gets an access token for p with the client credentials
// grant, for scope ("" all it is allowed).
func (p partner) accessToken(tb testing.TB, e *env, scope string) TokenAnswer {
	tb.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req := request("POST", "/v1/auth/token", form.Encode(), "Content-Type", "application/x-www-form-urlencoded", "Authorization", p.basic())
	r := e.send(tb, req)
	loadContract(tb).check(tb, req, r)
	var t TokenAnswer
	if r.status != 200 || json.Unmarshal(r.body, &t) != nil || t.AccessToken == "" {
		tb.Fatalf("client credentials grant: %s", r)
	}
	return t
}
