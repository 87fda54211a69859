package identity

import (
	"golang.org/x/text/language"

	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
)

// Roles. Every account is a buyer; the others are granted.
const (
	// RoleAdmin administers the platform (catalog, reports, accounts).
	RoleAdmin = "admin"
	// RoleStaffPrefix followed by an organizer id is the staff of that
	// organizer ("staff:org_1").
	RoleStaffPrefix = "staff:"
)

// Reasons refining errors of accounts and links.
const (
	// ReasonVersionMismatch (errs.Conflict from Store.Update): the account
	// changed since it was read.
	ReasonVersionMismatch = "version_mismatch"
)

// Limits of an account.
const (
	MaxRoles       = 32
	MaxRoleLen     = 80
	MaxPasskeys    = 20
	MaxRecovery    = 20
	MaxPasskeyName = 64 // characters
	MaxCredential  = 8 << 10
)

// Link purposes.
const (
	LinkVerify = "verify" // confirms the e-mail address it was sent to
	LinkReset  = "reset"  // sets a new password
	// LinkMFA is not mailed: it is the ticket a password sign-in returns
	// when the account has a second factor, spent by the second step.
	LinkMFA = "mfa"
)

// Account is a user with what they sign in with and may do. Only the
// identity service sees one whole: the public views are built from it
// field by field, and secrets (Password, TOTP, Recovery, passkeys'
// credentials) never leave it.
type Account struct {
	User
	EmailVerified bool     `json:"email_verified"`
	Roles         []string `json:"roles,omitempty"`
	// Password is the PHC string of the password's argon2id hash
	// (services/identity/password); empty: the account has none (passkeys
	// only).
	Password string `json:"password,omitempty"`
	TOTP     TOTP   `json:"totp"`
	// Recovery holds the hashes of the unused recovery codes
	// (services/identity/recovery); a used code is removed.
	Recovery []string  `json:"recovery,omitempty"`
	Passkeys []Passkey `json:"passkeys,omitempty"`
	// Failures counts the sign-ins that failed since the last one that
	// succeeded; FailedAt is when the last of them happened.
	Failures int       `json:"failures,omitempty"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Locale is the language of the mail the account gets: a BCP 47 tag
	// in its canonical form ("de", "pt-BR"), "" for the platform's
	// default (NormalizeLocale).
	Locale string `json:"locale,omitempty"`
	// Version is the store's revision of the account, set by every read
	// and by Create and Update; Update writes only over this version.
	Version uint64 `json:"-"`
}

// TOTP is an account's authenticator app (RFC 6238).
type TOTP struct {
	// Secret is the shared secret, base32 (services/identity/totp); set
	// when enrolment starts, Enabled once a first code has been checked.
	Secret  string `json:"secret,omitempty"`
	Enabled bool   `json:"enabled,omitempty"`
	// LastStep is the time step of the last accepted code: codes of that
	// step and earlier are refused (RFC 6238 §5.2).
	LastStep int64 `json:"last_step,omitempty"`
}

// Passkey is a WebAuthn credential of the account.
type Passkey struct {
	// ID is the credential id, unpadded base64url.
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	// Credential is the credential as the WebAuthn library keeps it
	// (public key, sign count, flags), JSON; opaque to the stores.
	Credential []byte `json:"credential"`
}

// SecondFactor reports whether the account has a second factor: an
// enabled TOTP or a passkey.
func (a Account) SecondFactor() bool { return a.TOTP.Enabled || len(a.Passkeys) > 0 }

// HasRole reports whether the account has role r.
func (a Account) HasRole(r string) bool {
	for _, x := range a.Roles {
		if x == r {
			return true
		}
	}
	return false
}

var rolePattern = regexp.MustCompile(`^(admin|staff:[A-Za-z0-9][A-Za-z0-9_-]{0,63})$`)

// ValidRole reports whether r is a role: RoleAdmin or RoleStaffPrefix and
// an organizer id.
func ValidRole(r string) bool { return rolePattern.MatchString(r) }

// MaxLocaleLen bounds a locale tag.
const MaxLocaleLen = 35

// NormalizeLocale checks a BCP 47 language tag and returns its canonical
// form; "" stays "" (the platform's default). Anything else is
// errs.Invalid.
func NormalizeLocale(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := language.Parse(s)
	if err != nil || len(s) > MaxLocaleLen || t == language.Und {
		return "", errs.Errorf("identity.locale", errs.Invalid, "locale %q is not a BCP 47 language tag", s)
	}
	return t.String(), nil
}

// NormalizeAccount returns a ready to store, or an errs.Invalid error: the
// user part is normalized (Normalize), roles are checked and deduplicated
// in order, the locale canonicalized, the limits are enforced and times are moved to UTC at
// microseconds. Version is left as it is.
func NormalizeAccount(a Account) (Account, error) {
	const op = "identity.account"
	u, err := Normalize(a.User)
	if err != nil {
		return Account{}, err
	}
	a.User = u
	if len(a.Roles) > MaxRoles {
		return Account{}, errs.Errorf(op, errs.Invalid, "more than %d roles", MaxRoles)
	}
	var roles []string
	seen := map[string]bool{}
	for _, r := range a.Roles {
		if !ValidRole(r) {
			return Account{}, errs.Errorf(op, errs.Invalid, "%q is not a role", r)
		}
		if !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	a.Roles = roles
	if a.Locale, err = NormalizeLocale(a.Locale); err != nil {
		return Account{}, errs.E(op, err)
	}
	if len(a.Password) > 512 || (a.Password != "" && !strings.HasPrefix(a.Password, "$argon2id$")) {
		return Account{}, errs.E(op, errs.Invalid, "password is not an argon2id PHC string")
	}
	if a.TOTP.Enabled && a.TOTP.Secret == "" {
		return Account{}, errs.E(op, errs.Invalid, "an enabled TOTP needs a secret")
	}
	if len(a.Recovery) > MaxRecovery {
		return Account{}, errs.Errorf(op, errs.Invalid, "more than %d recovery codes", MaxRecovery)
	}
	if len(a.Passkeys) > MaxPasskeys {
		return Account{}, errs.Errorf(op, errs.Invalid, "more than %d passkeys", MaxPasskeys)
	}
	ids := map[string]bool{}
	for i, p := range a.Passkeys {
		if p.ID == "" || len(p.ID) > 1366 || ids[p.ID] {
			return Account{}, errs.E(op, errs.Invalid, "passkey ids must be present and distinct")
		}
		ids[p.ID] = true
		if !utf8.ValidString(p.Name) || utf8.RuneCountInString(p.Name) > MaxPasskeyName {
			return Account{}, errs.Errorf(op, errs.Invalid, "passkey names are at most %d characters", MaxPasskeyName)
		}
		if len(p.Credential) == 0 || len(p.Credential) > MaxCredential {
			return Account{}, errs.E(op, errs.Invalid, "a passkey needs its credential")
		}
		a.Passkeys[i].CreatedAt = p.CreatedAt.UTC().Truncate(time.Microsecond)
		a.Passkeys[i].LastUsedAt = p.LastUsedAt.UTC().Truncate(time.Microsecond)
	}
	if a.Failures < 0 {
		return Account{}, errs.E(op, errs.Invalid, "failures cannot be negative")
	}
	a.FailedAt = a.FailedAt.UTC().Truncate(time.Microsecond)
	return a, nil
}

// Link is a single-use, expiring link sent by e-mail: it confirms an
// address (LinkVerify) or lets the user set a new password (LinkReset).
// The mail carries a secret; stores keep only its hash.
type Link struct {
	Hash    string `json:"hash"` // LinkHash of the secret
	Purpose string `json:"purpose"`
	UserID  string `json:"user_id"`
	// Email is the address the link was sent to: a verification link
	// confirms this address only, not one the account changed to since.
	Email     string    `json:"email"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NewLinkSecret returns a link's secret (32 random bytes, unpadded
// base64url) and its hash.
func NewLinkSecret() (secret, hash string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	secret = base64.RawURLEncoding.EncodeToString(b[:])
	return secret, LinkHash(secret)
}

// LinkHash is the hash a store keeps of a link's secret: SHA-256, hex.
func LinkHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidLinkHash reports whether h has the form of LinkHash's results.
func ValidLinkHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// SameHash compares two hashes in constant time.
func SameHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// CheckLink returns l ready to store, or an errs.Invalid error.
func CheckLink(l Link) (Link, error) {
	const op = "identity.link"
	if !ValidLinkHash(l.Hash) {
		return Link{}, errs.E(op, errs.Invalid, "bad link hash")
	}
	if l.Purpose != LinkVerify && l.Purpose != LinkReset && l.Purpose != LinkMFA {
		return Link{}, errs.Errorf(op, errs.Invalid, "unknown link purpose %q", l.Purpose)
	}
	if !ValidID(l.UserID) {
		return Link{}, errs.E(op, errs.Invalid, "bad user id")
	}
	email, err := NormalizeEmail(l.Email)
	if err != nil {
		return Link{}, err
	}
	l.Email = email
	if l.ExpiresAt.IsZero() {
		return Link{}, errs.E(op, errs.Invalid, "a link needs an expiry")
	}
	l.ExpiresAt = l.ExpiresAt.UTC().Truncate(time.Microsecond)
	return l, nil
}
