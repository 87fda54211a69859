package client

import (
	"encoding/base64"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/token"
)

// GrantClientCredentials is the one grant_type the token endpoint accepts.
const GrantClientCredentials = "client_credentials"

// Limits of the token and introspection endpoints' input, refused with
// ReasonInvalidRequest.
const (
	// MaxBodyBytes bounds the form body. The HTTP layer is to stop
	// reading there too.
	MaxBodyBytes = 8 << 10
	// MaxAuthorizationBytes bounds the Authorization header.
	MaxAuthorizationBytes = 1024
	// MaxTokenParamBytes bounds the introspection request's token.
	MaxTokenParamBytes = 4096
)

// Client authentication methods (RFC 7591 section 2 names), for
// TokenRequest.Method and the metadata.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// Credentials are a client's id and secret as a request presented them.
type Credentials struct {
	ClientID string
	Secret   string
	// Method is AuthClientSecretBasic when they came in the Authorization
	// header, AuthClientSecretPost when in the body. It is set on errors
	// too when an Authorization header was present: a failed
	// authentication through it is answered with status 401 and a
	// WWW-Authenticate: Basic challenge (RFC 6749 section 5.2).
	Method string
}

// TokenRequest is a parsed client credentials access token request (RFC
// 6749 section 4.4.2).
type TokenRequest struct {
	Credentials
	// Scope is the requested scope as sent, for GrantScope; "" when
	// omitted.
	Scope string
}

// IntrospectionRequest is a parsed token introspection request (RFC 7662
// section 2.1), from a client authenticated like at the token endpoint.
type IntrospectionRequest struct {
	Credentials
	Token string
	// TokenTypeHint is "access_token", "refresh_token" or anything else
	// the caller sent; a hint, which may be ignored.
	TokenTypeHint string
}

// ParseTokenRequest reads a token request from the Authorization header
// (authorization, "" when absent) and the form body
// (application/x-www-form-urlencoded). It requires grant_type
// client_credentials (another is ReasonUnsupportedGrantType) and client
// credentials in exactly one of two ways (RFC 6749 section 2.3.1): HTTP
// Basic, with the id and secret each form-urlencoded before they are
// joined with ':' and base64-encoded, or client_id and client_secret in
// the body. A parameter given twice, a malformed body or header, or both
// ways of authenticating are ReasonInvalidRequest (errs.Invalid); no
// credentials or an Authorization scheme other than Basic are
// ReasonInvalidClient (errs.Unauthorized). Parameters without a value
// count as omitted, and unknown parameters are ignored (RFC 6749 section
// 3.1). On error, only Method may be set in the result.
func ParseTokenRequest(authorization string, body []byte) (TokenRequest, error) {
	const op = "client.token_request"
	form, err := parseForm(op, body)
	if err != nil {
		return TokenRequest{}, err
	}
	creds, err := parseCredentials(op, authorization, form)
	if err != nil {
		return TokenRequest{Credentials: Credentials{Method: creds.Method}}, err
	}
	fail := func(err error) (TokenRequest, error) {
		return TokenRequest{Credentials: Credentials{Method: creds.Method}}, err
	}
	switch gt := form.get("grant_type"); gt {
	case "":
		return fail(invalidRequest(op, "grant_type is required"))
	case GrantClientCredentials:
	default:
		return fail(errs.E(op, errs.Invalid, "only grant_type client_credentials is supported").WithReason(ReasonUnsupportedGrantType))
	}
	scope := form.get("scope")
	if len(scope) > token.MaxScopeBytes {
		return fail(invalidRequest(op, "scope is too long"))
	}
	return TokenRequest{Credentials: creds, Scope: scope}, nil
}

// ParseIntrospectionRequest reads an introspection request (RFC 7662
// section 2.1) as ParseTokenRequest reads a token request: the same client
// authentication, then the required token parameter and the optional
// token_type_hint.
func ParseIntrospectionRequest(authorization string, body []byte) (IntrospectionRequest, error) {
	const op = "client.introspection_request"
	form, err := parseForm(op, body)
	if err != nil {
		return IntrospectionRequest{}, err
	}
	creds, err := parseCredentials(op, authorization, form)
	if err != nil {
		return IntrospectionRequest{Credentials: Credentials{Method: creds.Method}}, err
	}
	tok := form.get("token")
	switch {
	case tok == "":
		return IntrospectionRequest{Credentials: Credentials{Method: creds.Method}}, invalidRequest(op, "token is required")
	case len(tok) > MaxTokenParamBytes:
		return IntrospectionRequest{Credentials: Credentials{Method: creds.Method}}, invalidRequest(op, "token is too long")
	}
	return IntrospectionRequest{Credentials: creds, Token: tok, TokenTypeHint: form.get("token_type_hint")}, nil
}

func invalidRequest(op, msg string) error {
	return errs.E(op, errs.Invalid, msg).WithReason(ReasonInvalidRequest)
}

// form holds each parameter's one value.
type form map[string]string

func (f form) get(name string) string { return f[name] }

// parseForm decodes an application/x-www-form-urlencoded body: '&'
// separates pairs, '+' is a space, %XX a byte. A name given twice (with or
// without value), a bad escape, invalid UTF-8 or a body above
// MaxBodyBytes is ReasonInvalidRequest. Empty values are dropped (omitted).
func parseForm(op string, body []byte) (form, error) {
	if len(body) > MaxBodyBytes {
		return nil, invalidRequest(op, "request body is too large")
	}
	f := form{}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(string(body), "&") {
		if pair == "" {
			continue
		}
		name, value, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(name)
		value, err2 := url.QueryUnescape(value)
		if err1 != nil || err2 != nil || !utf8.ValidString(name) || !utf8.ValidString(value) {
			return nil, invalidRequest(op, "request body is not valid form-urlencoded UTF-8")
		}
		if seen[name] {
			return nil, invalidRequest(op, "parameter "+quote(name)+" is repeated")
		}
		seen[name] = true
		if value != "" {
			f[name] = value
		}
	}
	return f, nil
}

// parseCredentials finds the client's id and secret in the Authorization
// header or in the form, and refuses both or neither.
func parseCredentials(op, authorization string, f form) (Credentials, error) {
	id, secret := f.get("client_id"), f.get("client_secret")
	if authorization == "" {
		if id == "" || secret == "" {
			return Credentials{}, errs.E(op, errs.Unauthorized, "client authentication is required: HTTP Basic or client_id and client_secret").WithReason(ReasonInvalidClient)
		}
		if len(id) > token.MaxIDBytes || len(secret) > MaxSecretLen {
			return Credentials{}, invalidRequest(op, "client_id or client_secret is too long")
		}
		return Credentials{ClientID: id, Secret: secret, Method: AuthClientSecretPost}, nil
	}

	c := Credentials{Method: AuthClientSecretBasic}
	bid, bsecret, err := parseBasic(op, authorization)
	if err != nil {
		return c, err
	}
	if secret != "" {
		return c, invalidRequest(op, "client credentials are in both the Authorization header and the body")
	}
	// A client may name itself in the body too (RFC 6749 section 3.2.1);
	// it must be the same.
	if id != "" && id != bid {
		return c, invalidRequest(op, "client_id differs from the Authorization header's")
	}
	c.ClientID, c.Secret = bid, bsecret
	return c, nil
}

// parseBasic reads "Basic <base64(urlencode(id) ':' urlencode(secret))>".
// The scheme is case-insensitive (RFC 9110 section 11.1); the base64 is
// standard with padding (RFC 7617).
func parseBasic(op, h string) (id, secret string, err error) {
	if len(h) > MaxAuthorizationBytes {
		return "", "", invalidRequest(op, "Authorization header is too long")
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", errs.E(op, errs.Unauthorized, "the Authorization scheme must be Basic").WithReason(ReasonInvalidClient)
	}
	rest = strings.TrimLeft(rest, " ")
	raw, derr := base64.StdEncoding.Strict().DecodeString(rest)
	if derr != nil || rest == "" {
		return "", "", invalidRequest(op, "Authorization header is not valid Basic credentials")
	}
	eid, esecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", invalidRequest(op, "Authorization header is not valid Basic credentials")
	}
	id, err1 := url.QueryUnescape(eid)
	secret, err2 := url.QueryUnescape(esecret)
	if err1 != nil || err2 != nil || !utf8.ValidString(id) || !utf8.ValidString(secret) {
		return "", "", invalidRequest(op, "Basic credentials are not form-urlencoded UTF-8")
	}
	if id == "" || secret == "" {
		return "", "", errs.E(op, errs.Unauthorized, "Basic credentials need a client id and a secret").WithReason(ReasonInvalidClient)
	}
	if len(id) > token.MaxIDBytes || len(secret) > MaxSecretLen {
		return "", "", invalidRequest(op, "client id or secret is too long")
	}
	return id, secret, nil
}

// BasicAuthorization is the Authorization header value for id and secret
// as RFC 6749 section 2.3.1 has clients write it, for tests and for Go
// clients of the token endpoint.
func BasicAuthorization(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
