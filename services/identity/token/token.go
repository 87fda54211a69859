package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

// Typ is the JWS "typ" of access tokens (RFC 9068 section 2.1).
const Typ = "at+jwt"

// Reasons of refusals, the errs.Error Reason of every error Verify
// returns; all are of kind Unauthorized. Stable: clients and metrics use
// them. The codes shared with services/admission mean the same there.
const (
	ReasonMissing       = "token_missing"        // no token
	ReasonTooLong       = "token_too_long"       // longer than MaxTokenBytes
	ReasonMalformed     = "token_malformed"      // not three base64url segments of the expected JSON
	ReasonAlgorithm     = "token_alg_refused"    // alg other than EdDSA
	ReasonHeaderRefused = "token_header_refused" // a key or an extension in the header (jwk, jku, x5c, x5u, x5t, x5t#S256, crit)
	ReasonWrongType     = "token_wrong_type"     // typ is not at+jwt: another kind of token
	ReasonUnknownKey    = "token_unknown_key"    // kid not among the verification keys
	ReasonBadSignature  = "token_bad_signature"  // the signature does not verify
	ReasonWrongIssuer   = "token_wrong_issuer"   // iss is not the configured issuer
	ReasonWrongAudience = "token_wrong_audience" // aud is not the configured audience
	ReasonBadLifetime   = "token_bad_lifetime"   // exp not after iat, nbf after exp, or longer than MaxLifetime
	ReasonNotYetValid   = "token_not_yet_valid"  // nbf or iat in the future beyond the leeway
	ReasonExpired       = "token_expired"        // exp passed, beyond the leeway
)

const opVerify = "token.verify"

// Refusals are preallocated: a flood of bad tokens costs no allocation
// for the error.
var (
	errMissing       = refusal(ReasonMissing, "access token required")
	errTooLong       = refusal(ReasonTooLong, "access token too long")
	errMalformed     = refusal(ReasonMalformed, "access token malformed")
	errAlgorithm     = refusal(ReasonAlgorithm, "access token algorithm not accepted")
	errHeaderRefused = refusal(ReasonHeaderRefused, "access token header not accepted")
	errWrongType     = refusal(ReasonWrongType, "not an access token")
	errUnknownKey    = refusal(ReasonUnknownKey, "access token signed with an unknown key")
	errBadSignature  = refusal(ReasonBadSignature, "access token signature invalid")
	errWrongIssuer   = refusal(ReasonWrongIssuer, "access token from another issuer")
	errWrongAudience = refusal(ReasonWrongAudience, "access token for another audience")
	errBadLifetime   = refusal(ReasonBadLifetime, "access token lifetime invalid")
	errNotYetValid   = refusal(ReasonNotYetValid, "access token not yet valid")
	errExpired       = refusal(ReasonExpired, "access token expired")
)

func refusal(reason, msg string) *errs.Error {
	return errs.E(opVerify, errs.Unauthorized, msg).WithReason(reason)
}

var b64 = base64.RawURLEncoding.Strict()

// Claims are the verified contents of an access token.
type Claims struct {
	Issuer   string
	Audience string
	Subject  string // "sub": the user id
	ClientID string // "client_id"
	Scope    string // "scope": space-separated, may be empty
	IssuedAt time.Time
	// NotBefore is zero when the token has no "nbf".
	NotBefore time.Time
	Expiry    time.Time
	ID        string // "jti": 128 random bits, base64url
	KeyID     string // "kid" of the header
}

// Scopes returns the scope as a list.
func (c Claims) Scopes() []string { return strings.Fields(c.Scope) }

// HasScope reports whether the token grants scope s.
func (c Claims) HasScope(s string) bool {
	return s != "" && slices.Contains(strings.Split(c.Scope, " "), s)
}

// wireClaims is the JSON payload, times as NumericDate. Nbf is written
// only when set.
type wireClaims struct {
	Iss      string `json:"iss"`
	Aud      string `json:"aud"`
	Sub      string `json:"sub"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf,omitempty"`
	Exp      int64  `json:"exp"`
	Jti      string `json:"jti"`
}

func (w *wireClaims) claims(kid string) Claims {
	c := Claims{
		Issuer: w.Iss, Audience: w.Aud, Subject: w.Sub, ClientID: w.ClientID, Scope: w.Scope,
		IssuedAt: time.Unix(w.Iat, 0).UTC(), Expiry: time.Unix(w.Exp, 0).UTC(), ID: w.Jti, KeyID: kid,
	}
	if w.Nbf != 0 {
		c.NotBefore = time.Unix(w.Nbf, 0).UTC()
	}
	return c
}

// jtiLen is the length of an encoded 128-bit jti.
const jtiLen = 22

// Request is what an access token is issued for.
type Request struct {
	Subject  string // the user id
	ClientID string // the client the user signed in with
	Scope    string // space-separated RFC 6749 scope tokens, each once; may be empty
	// Lifetime shortens the token's lifetime below the configured one;
	// zero is the configured Lifetime. Whole seconds, at least 10s.
	Lifetime time.Duration
}

// Issuer issues access tokens with the active key of a ring. Safe for
// concurrent use.
type Issuer struct {
	ring    *keyring.KeyRing
	headers *keyring.Headers
	cfg     Config
}

// NewIssuer returns an issuer. The ring must be the access tokens' own
// (not the admission ring), and its VerifyFor must outlast the tokens
// (MaxLifetime + Leeway), or a rotation would strand them.
func NewIssuer(ring *keyring.KeyRing, cfg Config) (*Issuer, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ring == nil {
		return nil, errs.E("token.config", errs.Invalid, "no key ring")
	}
	if ring.Config().VerifyFor < cfg.MaxLifetime+cfg.Leeway {
		return nil, errs.Errorf("token.config", errs.Invalid,
			"key ring verifies retired keys for %v, less than max lifetime + leeway %v", ring.Config().VerifyFor, cfg.MaxLifetime+cfg.Leeway)
	}
	return &Issuer{ring: ring, headers: keyring.NewHeaders(Typ), cfg: cfg}, nil
}

// Issue returns an access token for r from now, and its claims.
func (i *Issuer) Issue(r Request, now time.Time) (string, Claims, error) {
	const op = "token.issue"
	if !printable(r.Subject, MaxIDBytes) || !printable(r.ClientID, MaxIDBytes) {
		return "", Claims{}, errs.Errorf(op, errs.Invalid, "subject and client id must be 1 to %d printable bytes", MaxIDBytes)
	}
	if !validScope(r.Scope) {
		return "", Claims{}, errs.Errorf(op, errs.Invalid, "scope must be distinct scope tokens separated by single spaces, at most %d bytes", MaxScopeBytes)
	}
	life := i.cfg.Lifetime
	if r.Lifetime != 0 {
		if r.Lifetime < 10*time.Second || r.Lifetime > i.cfg.Lifetime || r.Lifetime%time.Second != 0 {
			return "", Claims{}, errs.Errorf(op, errs.Invalid, "lifetime %v is not whole seconds within [10s, %v]", r.Lifetime, i.cfg.Lifetime)
		}
		life = r.Lifetime
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	iat := now.Unix()
	w := wireClaims{
		Iss: i.cfg.Issuer, Aud: i.cfg.Audience, Sub: r.Subject, ClientID: r.ClientID, Scope: r.Scope,
		Iat: iat, Exp: iat + int64(life/time.Second), Jti: b64.EncodeToString(id[:]),
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", Claims{}, errs.E(op, errs.Other, err)
	}
	tok, kid := i.ring.Sign(i.headers, payload)
	if len(tok) > i.cfg.MaxTokenBytes {
		return "", Claims{}, errs.Errorf(op, errs.Invalid, "token of %d bytes exceeds max token bytes %d", len(tok), i.cfg.MaxTokenBytes)
	}
	return string(tok), w.claims(kid), nil
}

// Verifier checks access tokens. Safe for concurrent use.
type Verifier struct {
	keys    keyring.KeySource
	headers *keyring.Headers
	cfg     Config
}

// NewVerifier returns a verifier taking its keys from keys: the access
// tokens' *keyring.KeyRing where it lives, *keyring.PublicKeys parsed
// from its JWKS elsewhere.
func NewVerifier(keys keyring.KeySource, cfg Config) (*Verifier, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errs.E("token.config", errs.Invalid, "no key source")
	}
	return &Verifier{keys: keys, headers: keyring.NewHeaders(Typ), cfg: cfg}, nil
}

// Verify checks that token is a valid access token at now and returns its
// claims. Errors are *errs.Error of kind Unauthorized with a Reason*.
// Whether the claims allow the request (scope, client) is the caller's
// decision.
func (v *Verifier) Verify(token string, now time.Time) (Claims, error) {
	if token == "" {
		return Claims{}, errMissing
	}
	if len(token) > v.cfg.MaxTokenBytes {
		return Claims{}, errTooLong
	}
	var tok [maxTokenBytes]byte
	b := tok[:copy(tok[:], token)]
	hseg, pseg, sseg, err := keyring.Split(b, errMalformed)
	if err != nil {
		return Claims{}, err
	}
	keys := v.keys.PublicKeys()
	// A token this system wrote has exactly the canonical header of its
	// key: match it as bytes. Anything else is parsed and judged.
	k, ok := v.headers.Match(keys, hseg)
	if !ok {
		if k, err = judgeHeader(keys, hseg); err != nil {
			return Claims{}, err
		}
	}
	if err := k.CheckSignature(b[:len(hseg)+1+len(pseg)], sseg, errMalformed, errBadSignature); err != nil {
		return Claims{}, err
	}

	// Signed with one of our keys: now parse the claims.
	p := make([]byte, b64.DecodedLen(len(pseg)))
	n, err := b64.Decode(p, pseg)
	if err != nil {
		return Claims{}, errMalformed
	}
	w, ok := parseClaims(p[:n])
	if !ok {
		return Claims{}, errMalformed
	}
	return v.checkClaims(&w, k.KID(), now)
}

// parseClaims reads the payload: one JSON object with only the known
// claims, iat, nbf and exp integers, aud one string, nothing after it. It
// is encoding/json, so member names match case-insensitively and of a
// member given twice the last wins; unlike the header (parsed before the
// signature check, exactly), the payload is signed, so only a holder of a
// key wrote it.
func parseClaims(p []byte) (wireClaims, bool) {
	var w wireClaims
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return w, false
	}
	return w, true
}

// refusedHeaders are the header members that bring a key, point at one, or
// demand extensions (RFC 7515 sections 4.1.2 to 4.1.7 and 4.1.11):
// refused with their own reason rather than as unknown members.
var refusedHeaders = []string{"jwk", "jku", "x5c", "x5u", "x5t", "x5t#S256", "crit"}

// judgeHeader parses a header that is not byte for byte one this system
// writes. Only alg, typ and kid are allowed, each a string, once: alg must
// be EdDSA, typ at+jwt, kid one of keys.
func judgeHeader(keys *keyring.PublicKeys, hseg []byte) (*keyring.Key, error) {
	var hbuf [512]byte
	if b64.DecodedLen(len(hseg)) > len(hbuf) {
		return nil, errMalformed
	}
	n, err := b64.Decode(hbuf[:], hseg)
	if err != nil {
		return nil, errMalformed
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(hbuf[:n], &members); err != nil || members == nil {
		return nil, errMalformed
	}
	var alg, typ, kid string
	for name, val := range map[string]*string{"alg": &alg, "typ": &typ, "kid": &kid} {
		if raw, ok := members[name]; ok && json.Unmarshal(raw, val) != nil {
			return nil, errMalformed
		}
	}
	if alg != "EdDSA" {
		return nil, errAlgorithm
	}
	for _, name := range refusedHeaders {
		if _, ok := members[name]; ok {
			return nil, errHeaderRefused
		}
	}
	for name := range members {
		if name != "alg" && name != "typ" && name != "kid" {
			return nil, errMalformed
		}
	}
	if !duplicateFree(hbuf[:n]) {
		return nil, errMalformed
	}
	// RFC 9068 section 4: "at+jwt" or "application/at+jwt".
	if typ != Typ && typ != "application/"+Typ {
		return nil, errWrongType
	}
	k, ok := keys.Key(kid)
	if !ok {
		return nil, errUnknownKey
	}
	return k, nil
}

// duplicateFree reports whether the JSON object h has no member twice
// (encoding/json would keep the last, another parser the first).
func duplicateFree(h []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(h))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok || seen[name] {
			return false
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return true
}

func (v *Verifier) checkClaims(w *wireClaims, kid string, now time.Time) (Claims, error) {
	if len(w.Jti) != jtiLen || w.Sub == "" || w.ClientID == "" || w.Iat <= 0 || w.Exp <= 0 || w.Nbf < 0 {
		return Claims{}, errMalformed
	}
	if w.Iss != v.cfg.Issuer {
		return Claims{}, errWrongIssuer
	}
	if w.Aud != v.cfg.Audience {
		return Claims{}, errWrongAudience
	}
	// Seconds up to 2^33 (year 2242) keep the nanoseconds below in range.
	if w.Exp <= w.Iat || w.Nbf > w.Exp || w.Exp-w.Iat > int64(v.cfg.MaxLifetime/time.Second) || w.Exp > 1<<33 {
		return Claims{}, errBadLifetime
	}
	t, leeway := now.UnixNano(), int64(v.cfg.Leeway)
	if t+leeway < w.Iat*1e9 || t+leeway < w.Nbf*1e9 {
		return Claims{}, errNotYetValid
	}
	if t-leeway >= w.Exp*1e9 {
		return Claims{}, errExpired
	}
	return w.claims(kid), nil
}
