package client

import (
	"github.com/ticketing/ticketing/services/identity/token"
)

// Introspection is a token introspection response (RFC 7662 section 2.2),
// to be sent as JSON. For any token that is not active it is
// {"active":false} and nothing else (section 2.2: the response SHOULD NOT
// say why), so that a caller probing tokens learns nothing more.
type Introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Nbf       int64  `json:"nbf,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Aud       string `json:"aud,omitempty"`
	TokenType string `json:"token_type,omitempty"` // "Bearer" (RFC 6750)
	Jti       string `json:"jti,omitempty"`
}

// TokenTypeBearer is the token_type of active tokens.
const TokenTypeBearer = "Bearer"

// Introspect is the response for the result of token.Verifier.Verify: the
// claims when err is nil, {"active":false} otherwise. The caller may pass
// an error of its own to make a verified token inactive, e.g. when the
// client it was issued to is disabled or unknown now; the introspection
// endpoint authenticates its own caller first (AuthenticateID).
func Introspect(c token.Claims, err error) Introspection {
	if err != nil || c.ClientID == "" || c.Subject == "" || c.Expiry.IsZero() {
		return Introspection{}
	}
	r := Introspection{
		Active:    true,
		Scope:     c.Scope,
		ClientID:  c.ClientID,
		Sub:       c.Subject,
		Exp:       c.Expiry.Unix(),
		Iat:       c.IssuedAt.Unix(),
		Iss:       c.Issuer,
		Aud:       c.Audience,
		TokenType: TokenTypeBearer,
		Jti:       c.ID,
	}
	if !c.NotBefore.IsZero() {
		r.Nbf = c.NotBefore.Unix()
	}
	return r
}
