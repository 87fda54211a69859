// Package identity holds the platform's user accounts. It is the domain
// only: what a valid user and account are, how an email address is
// normalized, the single-use links mailed to users, and the Store interface
// that adapters implement (services/identity/postgres in
// production, services/identity/natskv for `ticketing dev`). Both pass the
// same contract suite, services/identity/identitytest.
package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Limits.
const (
	MaxEmailLen       = 254 // RFC 5321 path limit
	MaxLocalPartLen   = 64
	MaxDisplayNameLen = 100 // characters
	MaxIDLen          = 64
)

// Reasons refining errs.Conflict from Store.Create.
const (
	ReasonEmailTaken = "email_taken"
	ReasonIDTaken    = "id_taken"
)

// User is an account. Email is unique among users, compared after
// normalization (see NormalizeEmail).
type User struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

// Store keeps accounts and the links mailed to them. Implementations are
// safe for concurrent use, also from several processes on the same backing
// store. Cancelling the context abandons the call; a write abandoned
// midway may or may not have taken effect (read again).
type Store interface {
	// Create stores a new account. It is normalized first
	// (NormalizeAccount): an invalid one is refused with errs.Invalid and
	// nothing is written. An email that another account has (compared
	// normalized) or an id that is taken is errs.Conflict, with reason
	// ReasonEmailTaken or ReasonIDTaken. Of concurrent creates with the
	// same email exactly one succeeds. It returns the account as stored,
	// with its Version.
	Create(ctx context.Context, a Account) (Account, error)
	// ByID returns the account, or errs.NotFound.
	ByID(ctx context.Context, id string) (Account, error)
	// ByEmail returns the account with that email, which is normalized
	// first; a malformed address is errs.NotFound too, as no account can
	// have it.
	ByEmail(ctx context.Context, email string) (Account, error)
	// Update writes a over the stored account of a.ID if that is still at
	// a.Version, and returns it as stored with its new Version. It is
	// normalized first (errs.Invalid, nothing written). A newer stored
	// version is errs.Conflict with ReasonVersionMismatch; no such account
	// is errs.NotFound; CreatedAt cannot change (errs.Invalid). A changed
	// email stays unique as in Create (errs.Conflict, ReasonEmailTaken),
	// and the old address is free again once the update succeeds.
	Update(ctx context.Context, a Account) (Account, error)

	// PutLink stores a link (checked with CheckLink: errs.Invalid). A hash
	// that exists is errs.Conflict.
	PutLink(ctx context.Context, l Link) error
	// TakeLink removes the link with that hash and returns it: of
	// concurrent takes exactly one gets it. A link that does not exist,
	// was taken, or expired (by the store's clock against ExpiresAt) is
	// errs.NotFound.
	TakeLink(ctx context.Context, hash string) (Link, error)
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidID reports whether s may be a user id: letters, digits, '_' and '-',
// starting with a letter or digit, at most MaxIDLen bytes. Ids appear in
// storage keys and URLs, so nothing else is allowed.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// NewID returns a random user id ("u_" and 26 hex digits, 104 bits).
func NewID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "u_" + hex.EncodeToString(b[:])
}

// NormalizeEmail trims an address and lower-cases it, and checks that it is
// a plain address (local@domain, no display name, no comments) within the
// length limits. The whole address is lower-cased, local part included:
// in practice mailbox providers ignore case, and two accounts differing
// only in case would be a support and fraud problem.
func NormalizeEmail(s string) (string, error) {
	const op = "identity.email"
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", errs.E(op, errs.Invalid, "an email address is required")
	}
	if len(s) > MaxEmailLen {
		return "", errs.Errorf(op, errs.Invalid, "email address is longer than %d bytes", MaxEmailLen)
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f || r > unicode.MaxASCII {
			// Spaces, controls; internationalized addresses are not
			// accepted until the mail path supports SMTPUTF8.
			return "", errs.E(op, errs.Invalid, "email address may contain only printable ASCII without spaces")
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return "", errs.E(op, errs.Invalid, "email address is not of the form name@example.com")
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if len(local) > MaxLocalPartLen {
		return "", errs.Errorf(op, errs.Invalid, "email address local part is longer than %d bytes", MaxLocalPartLen)
	}
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", errs.E(op, errs.Invalid, "email address needs a domain name such as example.com")
	}
	return s, nil
}

// Normalize returns u ready to store, or an errs.Invalid error: the id is
// checked, the email normalized, the display name trimmed and checked, and
// CreatedAt (which must be set) moved to UTC and truncated to microseconds,
// the precision every store keeps.
func Normalize(u User) (User, error) {
	const op = "identity.user"
	if !ValidID(u.ID) {
		return User{}, errs.Errorf(op, errs.Invalid, "user id must be 1-%d letters, digits, '_' or '-'", MaxIDLen)
	}
	email, err := NormalizeEmail(u.Email)
	if err != nil {
		return User{}, err
	}
	u.Email = email
	u.DisplayName = strings.TrimSpace(u.DisplayName)
	if !utf8.ValidString(u.DisplayName) {
		return User{}, errs.E(op, errs.Invalid, "display name is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(u.DisplayName); n > MaxDisplayNameLen {
		return User{}, errs.Errorf(op, errs.Invalid, "display name is longer than %d characters", MaxDisplayNameLen)
	}
	for _, r := range u.DisplayName {
		if unicode.IsControl(r) {
			return User{}, errs.E(op, errs.Invalid, "display name contains control characters")
		}
	}
	if u.CreatedAt.IsZero() {
		return User{}, errs.E(op, errs.Invalid, "created at is required")
	}
	u.CreatedAt = u.CreatedAt.UTC().Truncate(time.Microsecond)
	return u, nil
}
