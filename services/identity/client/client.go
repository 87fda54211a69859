// Package client holds the partner applications that call the platform's
// API on their own behalf, with the OAuth 2.0 client credentials grant
// (RFC 6749 section 4.4): a partner's server sends its client id and secret
// to the token endpoint and gets an access token (services/identity/token)
// for the scopes it is allowed.
//
// It is the domain only: what a valid client is, its secrets, how a client
// is authenticated and a requested scope granted (RFC 6749 sections 2.3.1
// and 3.3), the token endpoint's form input (ParseTokenRequest), the
// introspection response (RFC 7662, Introspect) and the authorization
// server's metadata (RFC 8414, NewMetadata). It imports no transport and no
// database: Store is implemented by services/identity/client/natskv (the
// embedded store of `ticketing dev`) and services/identity/client/postgres
// (production), which pass one contract suite,
// services/identity/client/clienttest.
//
// # Secrets
//
// A secret is "tks_" and 32 random bytes in unpadded base64url (47
// characters). The prefix makes a leaked secret recognizable to secret
// scanners and to people, as GitHub's and Stripe's keys are. Stores keep
// only its SHA-256, unsalted, in hex: a fast hash is appropriate because the
// secret is 256 random bits, not chosen by a person, so there is no
// dictionary to try and nothing a salt or a slow hash (argon2id, as for
// passwords) would protect; inverting the hash is a 2^255 search. A client
// has at most MaxSecrets (two) secrets at once, so that a partner can roll
// a new one out before the old one is revoked.
//
// # Errors
//
// Every error meant for the token endpoint's caller is an *errs.Error whose
// Reason is an RFC 6749 section 5.2 error code (ReasonInvalidRequest,
// ReasonInvalidClient, …); OAuthError reads it back, and the HTTP layer
// answers with that code in the JSON body, status 401 for invalid_client
// and 400 for the others.
//
// # Tokens
//
// An access token issued to a client has the client id as both "client_id"
// and "sub" (RFC 9068 section 2.2: with no resource owner, the subject is
// the client); client ids start with "c_", which user ids made by
// identity.NewID never do. IssueRequest builds the token.Request.
package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/token"
)

// The scopes a client may be allowed, in their canonical order (granted
// scopes are listed in this order). A scope names a resource and what may
// be done with it; "write" does not imply "read".
const (
	// ScopeHoldsWrite places and releases seat holds for the partner's
	// buyers.
	ScopeHoldsWrite = "holds:write"
	// ScopeHoldsRead reads the partner's holds.
	ScopeHoldsRead = "holds:read"
	// ScopeEventsRead reads events, venues, prices and availability.
	ScopeEventsRead = "events:read"
	// ScopeOrdersWrite places orders from the partner's holds.
	ScopeOrdersWrite = "orders:write"
	// ScopeOrdersRead reads the orders the partner placed.
	ScopeOrdersRead = "orders:read"
	// ScopeReportsRead reads the sales reports of the partner's channel.
	ScopeReportsRead = "reports:read"
)

var knownScopes = []string{ScopeHoldsWrite, ScopeHoldsRead, ScopeEventsRead, ScopeOrdersWrite, ScopeOrdersRead, ScopeReportsRead}

// KnownScopes returns every scope a client may be allowed, in canonical
// order (for RFC 8414's scopes_supported, and for an admin's form).
func KnownScopes() []string { return slices.Clone(knownScopes) }

// KnownScope reports whether s is one of KnownScopes.
func KnownScope(s string) bool { return slices.Contains(knownScopes, s) }

// Limits.
const (
	MaxIDLen   = 64
	MaxNameLen = 100 // characters
	// MaxSecrets is how many secrets a client may have at once: the one
	// in use and the one replacing it.
	MaxSecrets = 2
	// MaxSecretLen bounds what Authenticate hashes; real secrets are
	// SecretLen.
	MaxSecretLen = 256
	// SecretLen is the length of a secret from NewSecret.
	SecretLen = len(SecretPrefix) + 43
	// MaxList bounds Store.List's limit.
	MaxList = 1000
)

// SecretPrefix starts every client secret.
const SecretPrefix = "tks_"

// DefaultChannel is a client's sales channel when none is given.
const DefaultChannel = "partner"

// RFC 6749 section 5.2 error codes: the Reason of the errors this package
// returns to the token endpoint's caller.
const (
	// ReasonInvalidRequest (errs.Invalid): a parameter missing, repeated
	// or malformed, or more than one way of authenticating.
	ReasonInvalidRequest = "invalid_request"
	// ReasonInvalidClient (errs.Unauthorized): no client authentication,
	// an unknown client, a wrong secret or an unsupported method.
	ReasonInvalidClient = "invalid_client"
	// ReasonUnauthorizedClient (errs.Forbidden): the client authenticated
	// but may not use the grant: it is disabled.
	ReasonUnauthorizedClient = "unauthorized_client"
	// ReasonUnsupportedGrantType (errs.Invalid): a grant type other than
	// client_credentials.
	ReasonUnsupportedGrantType = "unsupported_grant_type"
	// ReasonInvalidScope (errs.Invalid): a requested scope that is
	// malformed, unknown or not allowed for the client, or no scope at
	// all to grant.
	ReasonInvalidScope = "invalid_scope"
)

// Reasons refining store errors.
const (
	// ReasonIDTaken (errs.Conflict from Store.Create): a client has the id.
	ReasonIDTaken = "id_taken"
	// ReasonVersionMismatch (errs.Conflict from Store.Update): the client
	// changed since it was read.
	ReasonVersionMismatch = "version_mismatch"
	// ReasonTooManySecrets (errs.Conflict from AddSecret): the client has
	// MaxSecrets already; revoke one first.
	ReasonTooManySecrets = "too_many_secrets"
)

// Client is a partner application.
type Client struct {
	// ID is the client_id: "c_" and letters, digits, '_' or '-' (ValidID);
	// NewID makes one.
	ID string `json:"id"`
	// Name is shown to admins and in audit records.
	Name string `json:"name"`
	// Scopes are the scopes the client may be granted, each a KnownScope.
	Scopes []string `json:"scopes"`
	// SecretHashes are the hashes (HashSecret) of the client's current
	// secrets, at most MaxSecrets.
	SecretHashes []string `json:"secret_hashes"`
	// Disabled clients authenticate no more (ReasonUnauthorizedClient).
	Disabled bool `json:"disabled,omitempty"`
	// CreatedAt is set by the caller of Store.Create and never changes.
	CreatedAt time.Time `json:"created_at"`
	// Channel is the sales channel the client's orders count for, a lower
	// case name. Default DefaultChannel.
	Channel string `json:"channel"`
	// Version is the store's revision of the client, set by every read
	// and by Create and Update; Update writes only over this version.
	Version uint64 `json:"-"`
}

// Store keeps clients. Implementations are safe for concurrent use, also
// from several processes on the same backing store. Cancelling the context
// abandons the call; a write abandoned midway may or may not have taken
// effect (read again).
type Store interface {
	// Create stores a new client. It is normalized first (Normalize): an
	// invalid one is refused with errs.Invalid and nothing is written. An
	// id that is taken is errs.Conflict with ReasonIDTaken; of concurrent
	// creates with one id exactly one succeeds. It returns the client as
	// stored, with its Version.
	Create(ctx context.Context, c Client) (Client, error)
	// ByID returns the client, or errs.NotFound (also for an id that is
	// not ValidID).
	ByID(ctx context.Context, id string) (Client, error)
	// Update writes c over the stored client of c.ID if that is still at
	// c.Version, and returns it as stored with its new Version. It is
	// normalized first (errs.Invalid, nothing written). A stored client at
	// another version is errs.Conflict with ReasonVersionMismatch, so of
	// concurrent updates from one version exactly one succeeds; no such
	// client is errs.NotFound; a changed CreatedAt is errs.Invalid.
	Update(ctx context.Context, c Client) (Client, error)
	// List returns up to limit clients with ids greater than after ("":
	// from the first), ordered by id; a page shorter than limit is the
	// last. A limit outside 1..MaxList is errs.Invalid.
	List(ctx context.Context, after string, limit int) ([]Client, error)
}

var idPattern = regexp.MustCompile(`^c_[A-Za-z0-9_-]{1,62}$`)

// ValidID reports whether s may be a client id: "c_" and 1 to 62 letters,
// digits, '_' or '-'. Ids appear in storage keys, URLs, HTTP Basic
// credentials and tokens' "sub", so nothing else is allowed, and the
// prefix keeps them apart from user ids in "sub".
func ValidID(s string) bool { return idPattern.MatchString(s) }

// NewID returns a random client id ("c_" and 26 hex digits, 104 bits).
func NewID() string {
	var b [13]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "c_" + hex.EncodeToString(b[:])
}

var channelPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// NewSecret returns a new secret, to show the partner once, and its hash,
// to store.
func NewSecret() (secret, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	secret = SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, HashSecret(secret)
}

// HashSecret is the hash a store keeps of a secret: SHA-256 of its bytes,
// lower-case hex. See the package comment for why it is fast and unsalted.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidHash reports whether h has the form of HashSecret's results.
func ValidHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Normalize returns c ready to store, or an errs.Invalid error: the id is
// checked, the name trimmed and checked, the scopes (at least one) checked
// against KnownScopes, deduplicated and put in canonical order, the secret
// hashes (there may be none: such a client cannot authenticate)
// checked and deduplicated in order, an empty channel set to
// DefaultChannel, and CreatedAt (which must be set) moved to UTC and
// truncated to microseconds, the precision every store keeps. Version is
// left as it is; slices are copies, and empty ones nil.
func Normalize(c Client) (Client, error) {
	const op = "client.normalize"
	if !ValidID(c.ID) {
		return Client{}, errs.Errorf(op, errs.Invalid, "client id must be \"c_\" and 1-%d letters, digits, '_' or '-'", MaxIDLen-2)
	}
	c.Name = strings.TrimSpace(c.Name)
	switch {
	case c.Name == "":
		return Client{}, errs.E(op, errs.Invalid, "a client needs a name")
	case !utf8.ValidString(c.Name):
		return Client{}, errs.E(op, errs.Invalid, "client name is not valid UTF-8")
	case utf8.RuneCountInString(c.Name) > MaxNameLen:
		return Client{}, errs.Errorf(op, errs.Invalid, "client name is longer than %d characters", MaxNameLen)
	case strings.IndexFunc(c.Name, unicode.IsControl) >= 0:
		return Client{}, errs.E(op, errs.Invalid, "client name contains control characters")
	}
	if len(c.Scopes) > 4*len(knownScopes) {
		return Client{}, errs.E(op, errs.Invalid, "too many scopes")
	}
	for _, s := range c.Scopes {
		if !KnownScope(s) {
			return Client{}, errs.Errorf(op, errs.Invalid, "%q is not a known scope", truncate(s, 40))
		}
	}
	c.Scopes = canonical(c.Scopes)
	if len(c.Scopes) == 0 {
		return Client{}, errs.E(op, errs.Invalid, "a client needs at least one scope")
	}
	var hashes []string
	for _, h := range c.SecretHashes {
		if !ValidHash(h) {
			return Client{}, errs.E(op, errs.Invalid, "a secret hash is not 64 lower-case hex digits")
		}
		if !slices.Contains(hashes, h) {
			hashes = append(hashes, h)
		}
	}
	if len(hashes) > MaxSecrets {
		return Client{}, errs.Errorf(op, errs.Invalid, "a client has at most %d secrets", MaxSecrets)
	}
	c.SecretHashes = hashes
	if c.Channel == "" {
		c.Channel = DefaultChannel
	}
	if !channelPattern.MatchString(c.Channel) {
		return Client{}, errs.E(op, errs.Invalid, "channel must be 1-32 lower-case letters, digits or '-', starting with a letter")
	}
	if c.CreatedAt.IsZero() {
		return Client{}, errs.E(op, errs.Invalid, "created at is required")
	}
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
	return c, nil
}

// canonical returns the known scopes among scopes, each once, in canonical
// order; nil when there are none.
func canonical(scopes []string) []string {
	var out []string
	for _, k := range knownScopes {
		if slices.Contains(scopes, k) {
			out = append(out, k)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// AddSecret returns c with a new secret's hash added, and the secret to
// show the partner once. A client with MaxSecrets secrets is errs.Conflict
// with ReasonTooManySecrets: revoke one first. c is not modified.
func AddSecret(c Client) (Client, string, error) {
	if len(c.SecretHashes) >= MaxSecrets {
		return Client{}, "", errs.Errorf("client.add_secret", errs.Conflict,
			"the client has %d secrets already; revoke one first", MaxSecrets).WithReason(ReasonTooManySecrets)
	}
	secret, hash := NewSecret()
	c.SecretHashes = append(slices.Clone(c.SecretHashes), hash)
	return c, secret, nil
}

// RevokeSecret returns c without the secret of that hash; one it does not
// have is errs.NotFound. c is not modified.
func RevokeSecret(c Client, hash string) (Client, error) {
	i := slices.Index(c.SecretHashes, hash)
	if i < 0 {
		return Client{}, errs.E("client.revoke_secret", errs.NotFound, "the client has no such secret")
	}
	c.SecretHashes = slices.Delete(slices.Clone(c.SecretHashes), i, i+1)
	if len(c.SecretHashes) == 0 {
		c.SecretHashes = nil
	}
	return c, nil
}

// errInvalidClient is the answer to every failed authentication, whatever
// failed: the caller learns nothing about which ids exist or which part
// was wrong.
func errInvalidClient(op string) error {
	return errs.E(op, errs.Unauthorized, "client authentication failed").WithReason(ReasonInvalidClient)
}

// Authenticate checks secret against c's secret hashes, comparing in
// constant time with each of them. A wrong, missing or malformed secret
// is errs.Unauthorized with ReasonInvalidClient; the right secret of a
// disabled client is errs.Forbidden with ReasonUnauthorizedClient (only a
// holder of the secret learns that the client is disabled).
func Authenticate(c Client, secret string) error {
	const op = "client.authenticate"
	ok := checkSecret(c.SecretHashes, secret)
	if !ok {
		return errInvalidClient(op)
	}
	if c.Disabled {
		return errs.E(op, errs.Forbidden, "the client is disabled").WithReason(ReasonUnauthorizedClient)
	}
	return nil
}

func checkSecret(hashes []string, secret string) bool {
	if len(secret) > MaxSecretLen {
		return false
	}
	sum := sha256.Sum256([]byte(secret))
	var want [sha256.Size]byte
	match := 0
	for _, h := range hashes {
		if len(h) != 2*sha256.Size {
			continue
		}
		if _, err := hex.Decode(want[:], []byte(h)); err != nil {
			continue
		}
		match |= subtle.ConstantTimeCompare(sum[:], want[:])
	}
	// A secret without the prefix never matches a secret NewSecret made;
	// checked last so that the prefix does not shorten the work.
	return match == 1 && strings.HasPrefix(secret, SecretPrefix)
}

// dummyHashes stand in for an unknown client's, so that AuthenticateID
// does the same work for an unknown id as for a wrong secret.
var dummyHashes = func() []string {
	_, h1 := NewSecret()
	_, h2 := NewSecret()
	return []string{h1, h2}
}()

// AuthenticateID looks the client up in s and authenticates it: the token
// and introspection endpoints' client authentication in one call. An
// unknown id (or one that is not ValidID) is the same invalid_client error
// as a wrong secret, after the same hashing work. Store failures other
// than errs.NotFound are returned as they are (errs.Unavailable, …).
func AuthenticateID(ctx context.Context, s Store, id, secret string) (Client, error) {
	const op = "client.authenticate"
	c, err := s.ByID(ctx, id)
	if errs.Is(errs.NotFound, err) {
		checkSecret(dummyHashes, secret)
		return Client{}, errInvalidClient(op)
	}
	if err != nil {
		return Client{}, errs.E(op, err)
	}
	if err := Authenticate(c, secret); err != nil {
		return Client{}, err
	}
	return c, nil
}

// GrantScope decides the scope of a token for c (RFC 6749 section 3.3):
// an empty request gets every scope c is allowed; otherwise each requested
// scope must be allowed (a scope c may not have, unknown or malformed, is
// errs.Invalid with ReasonInvalidScope, naming it) and exactly the
// requested ones are granted. The result lists each scope once in
// canonical order, space-separated, ready for token.Request. A client with
// no known scope to grant is ReasonInvalidScope too; a disabled one is
// ReasonUnauthorizedClient, as in Authenticate.
func GrantScope(c Client, requested string) (granted string, err error) {
	const op = "client.grant_scope"
	if c.Disabled {
		return "", errs.E(op, errs.Forbidden, "the client is disabled").WithReason(ReasonUnauthorizedClient)
	}
	allowed := canonical(c.Scopes)
	if requested == "" {
		if len(allowed) == 0 {
			return "", invalidScope(op, "the client is allowed no scope")
		}
		return strings.Join(allowed, " "), nil
	}
	if len(requested) > token.MaxScopeBytes {
		return "", invalidScope(op, "scope too long")
	}
	toks := strings.Split(requested, " ")
	for _, t := range toks {
		if !scopeToken(t) {
			return "", invalidScope(op, "scope must be scope tokens separated by single spaces")
		}
		if !slices.Contains(allowed, t) {
			return "", invalidScope(op, "scope "+quote(t)+" is not allowed for this client")
		}
	}
	return strings.Join(canonical(toks), " "), nil
}

func invalidScope(op, msg string) error {
	return errs.E(op, errs.Invalid, msg).WithReason(ReasonInvalidScope)
}

// scopeToken reports whether t is an RFC 6749 section 3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func scopeToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if b := t[i]; b < 0x21 || b == '"' || b == '\\' || b > 0x7e {
			return false
		}
	}
	return true
}

// quote quotes a scope token (printable ASCII without '"' or '\') for an
// error_description, which allows neither '"' nor non-ASCII.
func quote(t string) string {
	if len(t) > 40 {
		t = t[:40] + "..."
	}
	return "'" + t + "'"
}

// IssueRequest is the token request for a client granted scope: the
// client is both the subject and the client_id (RFC 9068 section 2.2).
func IssueRequest(c Client, scope string) token.Request {
	return token.Request{Subject: c.ID, ClientID: c.ID, Scope: scope}
}

// OAuthError returns the RFC 6749 section 5.2 error code and description
// of err when it carries one of this package's codes (Reason*), and ok
// false otherwise (a store failure: the HTTP layer's general error
// handling answers that).
func OAuthError(err error) (code, description string, ok bool) {
	if err == nil {
		return "", "", false
	}
	switch r := errs.ReasonOf(err); r {
	case ReasonInvalidRequest, ReasonInvalidClient, ReasonUnauthorizedClient, ReasonUnsupportedGrantType, ReasonInvalidScope:
		var e *errs.Error
		if errors.As(err, &e) {
			return r, descriptionText(errs.Message(err)), true
		}
	}
	return "", "", false
}

// descriptionText makes s a valid error_description: the characters
// %x20-21 / %x23-5B / %x5D-7E only (RFC 6749 section 5.2); others become
// '?'.
func descriptionText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c == '"' || c == '\\' || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
