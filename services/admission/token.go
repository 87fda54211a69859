package admission

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
)

var b64 = base64.RawURLEncoding.Strict()

// typ is the JWS "typ" of admission tokens.
const typ = "JWT"

// Reasons of refusals, the errs.Error Reason of every error Verify and
// Redeem return. Stable: clients and metrics use them.
const (
	ReasonMissing       = "token_missing"        // Unauthorized: no token
	ReasonTooLong       = "token_too_long"       // Unauthorized: longer than MaxTokenBytes
	ReasonMalformed     = "token_malformed"      // Unauthorized: not three base64url segments of the expected JSON
	ReasonAlgorithm     = "token_alg_refused"    // Unauthorized: alg other than EdDSA
	ReasonUnknownKey    = "token_unknown_key"    // Unauthorized: kid not among the verification keys
	ReasonBadSignature  = "token_bad_signature"  // Unauthorized: the signature does not verify
	ReasonWrongIssuer   = "token_wrong_issuer"   // Unauthorized
	ReasonWrongAudience = "token_wrong_audience" // Unauthorized
	ReasonBadLifetime   = "token_bad_lifetime"   // Unauthorized: exp not after iat, or longer than MaxTTL
	ReasonNotYetValid   = "token_not_yet_valid"  // Unauthorized: nbf or iat in the future beyond the skew
	ReasonExpired       = "token_expired"        // Gone
	ReasonWrongEvent    = "token_wrong_event"    // Forbidden: issued for another event
	ReasonWrongSession  = "token_wrong_session"  // Forbidden: issued to another session
	ReasonReplayed      = "token_replayed"       // Forbidden: already spent
)

const opVerify = "admission.verify"

// Refusals are preallocated: a flood of bad tokens costs no allocation.
var (
	errMissing       = refusal(errs.Unauthorized, ReasonMissing, "admission token required")
	errTooLong       = refusal(errs.Unauthorized, ReasonTooLong, "admission token too long")
	errMalformed     = refusal(errs.Unauthorized, ReasonMalformed, "admission token malformed")
	errAlgorithm     = refusal(errs.Unauthorized, ReasonAlgorithm, "admission token algorithm not accepted")
	errUnknownKey    = refusal(errs.Unauthorized, ReasonUnknownKey, "admission token signed with an unknown key")
	errBadSignature  = refusal(errs.Unauthorized, ReasonBadSignature, "admission token signature invalid")
	errWrongIssuer   = refusal(errs.Unauthorized, ReasonWrongIssuer, "admission token from another issuer")
	errWrongAudience = refusal(errs.Unauthorized, ReasonWrongAudience, "admission token for another audience")
	errBadLifetime   = refusal(errs.Unauthorized, ReasonBadLifetime, "admission token lifetime invalid")
	errNotYetValid   = refusal(errs.Unauthorized, ReasonNotYetValid, "admission token not yet valid")
	errExpired       = refusal(errs.Gone, ReasonExpired, "admission token expired")
	errWrongEvent    = refusal(errs.Forbidden, ReasonWrongEvent, "admission token is for another event")
	errWrongSession  = refusal(errs.Forbidden, ReasonWrongSession, "admission token belongs to another session")
	errReplayed      = refusal(errs.Forbidden, ReasonReplayed, "admission token already used")
)

func refusal(k errs.Kind, reason, msg string) *errs.Error {
	return errs.E(opVerify, k, msg).WithReason(reason)
}

// Claims are the verified contents of a token.
type Claims struct {
	Issuer    string
	Audience  string
	Session   string // "sub"
	Event     string // "evt"
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	ID        string // "jti": 128 random bits, base64url
	KeyID     string // "kid" of the header
}

// header is the JOSE header. Only these members are accepted.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	KID string `json:"kid"`
}

// wireClaims is the JSON payload, times as NumericDate.
type wireClaims struct {
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	Evt string `json:"evt"`
	Iat int64  `json:"iat"`
	Nbf int64  `json:"nbf"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

// jtiLen is the length of an encoded 128-bit jti.
const jtiLen = 22

// Signer issues tokens with the active key of a ring. Safe for concurrent
// use.
type Signer struct {
	ring    *keyring.KeyRing
	headers *keyring.Headers
	cfg     Config
}

// NewSigner returns a signer; the ring's VerifyFor must outlast the
// tokens (MaxTTL + ClockSkew), or a rotation would strand them.
func NewSigner(ring *keyring.KeyRing, cfg Config) (*Signer, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ring.Config().VerifyFor < cfg.MaxTTL+cfg.ClockSkew {
		return nil, errs.Errorf("admission.config", errs.Invalid,
			"key ring verifies retired keys for %v, less than max TTL + clock skew %v", ring.Config().VerifyFor, cfg.MaxTTL+cfg.ClockSkew)
	}
	return &Signer{ring: ring, headers: keyring.NewHeaders(typ), cfg: cfg}, nil
}

// Issue returns a token admitting session to event from now for the
// configured TTL, and its claims.
func (s *Signer) Issue(eventID, sessionID string, now time.Time) (string, Claims, error) {
	const op = "admission.issue"
	if !validID(eventID) || !validID(sessionID) {
		return "", Claims{}, errs.Errorf(op, errs.Invalid, "event and session ids must be 1 to %d printable bytes", MaxIDBytes)
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand)
	iat := now.Unix()
	w := wireClaims{
		Iss: s.cfg.Issuer, Aud: s.cfg.Audience, Sub: sessionID, Evt: eventID,
		Iat: iat, Nbf: iat, Exp: iat + int64(s.cfg.TTL/time.Second), Jti: b64.EncodeToString(id[:]),
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", Claims{}, errs.E(op, errs.Other, err)
	}
	buf, kid := s.ring.Sign(s.headers, payload)
	if len(buf) > s.cfg.MaxTokenBytes {
		return "", Claims{}, errs.Errorf(op, errs.Invalid, "token of %d bytes exceeds max token bytes %d", len(buf), s.cfg.MaxTokenBytes)
	}
	return string(buf), w.claims(kid), nil
}

func (w *wireClaims) claims(kid string) Claims {
	return Claims{
		Issuer: w.Iss, Audience: w.Aud, Session: w.Sub, Event: w.Evt,
		IssuedAt: time.Unix(w.Iat, 0).UTC(), NotBefore: time.Unix(w.Nbf, 0).UTC(), Expiry: time.Unix(w.Exp, 0).UTC(),
		ID: w.Jti, KeyID: kid,
	}
}

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	keys    keyring.KeySource
	headers *keyring.Headers
	spent   SpentStore
	cfg     Config
}

// NewVerifier returns a verifier taking its keys from keys (a
// *keyring.KeyRing on a core node, *keyring.PublicKeys parsed from the
// JWKS elsewhere). spent records redeemed tokens; it may be nil when only
// Verify is used.
func NewVerifier(keys keyring.KeySource, spent SpentStore, cfg Config) (*Verifier, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errs.E("admission.config", errs.Invalid, "no key source")
	}
	return &Verifier{keys: keys, headers: keyring.NewHeaders(typ), spent: spent, cfg: cfg}, nil
}

// Verify checks that token is a valid admission of session to event at
// now, without using it up. Errors are *errs.Error with a Reason*.
func (v *Verifier) Verify(token, eventID, sessionID string, now time.Time) (Claims, error) {
	return v.verify(token, eventID, sessionID, now, 0)
}

// Admitted checks that token admitted session to event, like Verify, but
// accepts it up to Config.AdmittedFor after its expiry, without using it
// up: an order names holds that the token admitted, and holds outlive
// their token. A token whose key was retired longer ago than the key
// ring's VerifyFor is refused (ReasonUnknownKey).
func (v *Verifier) Admitted(token, eventID, sessionID string, now time.Time) (Claims, error) {
	return v.verify(token, eventID, sessionID, now, v.cfg.AdmittedFor)
}

// Redeem verifies token like Verify and then spends it for one use (the
// hold request's idempotency key): of any number of redemptions of one
// token by different uses, across every verifier sharing the SpentStore,
// exactly one succeeds; the others get ReasonReplayed. The same use
// redeeming again succeeds (a retried request is not a replay). A
// SpentStore that fails refuses the token (errs.Unavailable): admission
// fails closed.
func (v *Verifier) Redeem(ctx context.Context, token, eventID, sessionID, use string, now time.Time) (Claims, error) {
	const op = "admission.redeem"
	if v.spent == nil {
		return Claims{}, errs.E(op, errs.Other, "verifier has no spent store")
	}
	c, err := v.verify(token, eventID, sessionID, now, 0)
	if err != nil {
		return Claims{}, err
	}
	if use == "" {
		return Claims{}, errs.E(op, errs.Invalid, "a redemption needs a use (the request's idempotency key)")
	}
	// Keep the entry as long as any verifier could still accept the token.
	ok, err := v.spent.Spend(ctx, c.ID, use, c.Expiry.Add(v.cfg.ClockSkew+time.Second))
	if err != nil {
		return Claims{}, errs.E(op, errs.Unavailable, "admission check unavailable", err)
	}
	if !ok {
		return Claims{}, errReplayed
	}
	return c, nil
}

// Unredeem gives back a token Redeem spent for use, when that use did not
// happen (the core refused the hold): the shopper may use it again. It
// does nothing if another use spent the token.
func (v *Verifier) Unredeem(ctx context.Context, c Claims, use string) error {
	if v.spent == nil {
		return errs.E("admission.unredeem", errs.Other, "verifier has no spent store")
	}
	return v.spent.Unspend(ctx, c.ID, use)
}

// verify does the work; it decodes into stack buffers. A token expired
// less than late ago is accepted.
func (v *Verifier) verify(token, eventID, sessionID string, now time.Time, late time.Duration) (Claims, error) {
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
		if k, err = slowHeader(keys, hseg); err != nil {
			return Claims{}, err
		}
	}
	if err := k.CheckSignature(b[:len(hseg)+1+len(pseg)], sseg, errMalformed, errBadSignature); err != nil {
		return Claims{}, err
	}

	// Signed by us: now parse the claims.
	var pbuf [maxTokenBytes * 3 / 4]byte
	n, err := b64.Decode(pbuf[:], pseg)
	if err != nil {
		return Claims{}, errMalformed
	}
	c, ok := parseClaims(pbuf[:n])
	if !ok {
		return Claims{}, errMalformed
	}
	return v.checkClaims(&c, k.KID(), eventID, sessionID, now, late)
}

// slowHeader parses a header that is not byte-for-byte one this system
// writes: only alg, typ and kid are allowed, alg must be EdDSA.
func slowHeader(keys *keyring.PublicKeys, hseg []byte) (*keyring.Key, error) {
	var hbuf [256]byte
	if b64.DecodedLen(len(hseg)) > len(hbuf) {
		return nil, errMalformed
	}
	n, err := b64.Decode(hbuf[:], hseg)
	if err != nil {
		return nil, errMalformed
	}
	var h header
	dec := json.NewDecoder(bytes.NewReader(hbuf[:n]))
	dec.DisallowUnknownFields() // no crit, jwk, jku, x5u, b64 …
	if err := dec.Decode(&h); err != nil || dec.More() {
		return nil, errMalformed
	}
	if h.Alg != "EdDSA" {
		return nil, errAlgorithm
	}
	if h.Typ != "" && h.Typ != typ {
		return nil, errMalformed
	}
	k, ok := keys.Key(h.KID)
	if !ok {
		return nil, errUnknownKey
	}
	return k, nil
}

func (v *Verifier) checkClaims(w *rawClaims, kid, eventID, sessionID string, now time.Time, late time.Duration) (Claims, error) {
	if len(w.jti) != jtiLen || len(w.sub) == 0 || len(w.evt) == 0 || w.iat <= 0 || w.nbf <= 0 || w.exp <= 0 {
		return Claims{}, errMalformed
	}
	if string(w.iss) != v.cfg.Issuer {
		return Claims{}, errWrongIssuer
	}
	if string(w.aud) != v.cfg.Audience {
		return Claims{}, errWrongAudience
	}
	// Seconds up to 2^33 (year 2242) keep the nanoseconds below in range.
	if w.exp <= w.iat || w.nbf > w.exp || w.exp-w.iat > int64(v.cfg.MaxTTL/time.Second) || w.exp > 1<<33 {
		return Claims{}, errBadLifetime
	}
	t, skew := now.UnixNano(), int64(v.cfg.ClockSkew)
	if t+skew < w.nbf*1e9 || t+skew < w.iat*1e9 {
		return Claims{}, errNotYetValid
	}
	if t-skew-int64(late) >= w.exp*1e9 {
		return Claims{}, errExpired
	}
	if string(w.evt) != eventID {
		return Claims{}, errWrongEvent
	}
	if string(w.sub) != sessionID {
		return Claims{}, errWrongSession
	}
	// Equal to the caller's and the config's strings: reuse them; only
	// the id is copied out of the stack buffer.
	return Claims{
		Issuer: v.cfg.Issuer, Audience: v.cfg.Audience, Session: sessionID, Event: eventID,
		IssuedAt: time.Unix(w.iat, 0).UTC(), NotBefore: time.Unix(w.nbf, 0).UTC(), Expiry: time.Unix(w.exp, 0).UTC(),
		ID: string(w.jti), KeyID: kid,
	}, nil
}
