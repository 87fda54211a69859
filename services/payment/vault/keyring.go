package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// KeySize is the size of every key: KEKs, DEKs and the fingerprint key
// (AES-256, HMAC-SHA256).
const KeySize = 32

// MaxKeyringBytes bounds a keyring file or variable.
const MaxKeyringBytes = 64 << 10

var kekIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// ValidKEKID reports whether s may name a key-encryption key: 1 to 32
// letters, digits, '_', '.' and '-', starting with a letter or digit.
func ValidKEKID(s string) bool { return kekIDPattern.MatchString(s) }

// Keyring is the vault's key-encryption keys (KEKs): 32-byte AES keys by
// id, one of them active (it wraps new data keys), one of them the
// fingerprint key's source. The zero Keyring has no keys. A Keyring is
// immutable and safe to share; its key material never leaves it: it
// prints (fmt, slog) as its ids only.
//
// The fingerprint key is HKDF-SHA256 of the designated KEK (info
// "ticketing payment vault fingerprint v1"): fingerprints stay the same
// when the active KEK rotates, as long as the designated KEK stays in the
// keyring and stays designated. That KEK therefore can never be dropped
// (KEKUse.Fingerprint); rotating it would change every fingerprint, and
// the vault refuses to start when it changed (see New).
type Keyring struct {
	active      string
	fingerprint string
	keys        map[string][]byte
}

// NewKeyring returns a keyring of keys (id → 32 bytes, copied) with
// active as the active KEK and fingerprint as the fingerprint key's
// source; fingerprint may be empty when there is exactly one key. Ids
// must be ValidKEKID. Errors are errs.Invalid and name ids, never keys.
func NewKeyring(active, fingerprint string, keys map[string][]byte) (Keyring, error) {
	const op = "vault.keyring"
	if len(keys) == 0 {
		return Keyring{}, errs.E(op, errs.Invalid, "a keyring needs at least one key")
	}
	k := Keyring{active: active, fingerprint: fingerprint, keys: make(map[string][]byte, len(keys))}
	for id, key := range keys {
		if !ValidKEKID(id) {
			return Keyring{}, errs.E(op, errs.Invalid, "key ids must be 1-32 letters, digits, '_', '.' or '-'")
		}
		if len(key) != KeySize {
			return Keyring{}, errs.Errorf(op, errs.Invalid, "key %s is %d bytes, not %d", id, len(key), KeySize)
		}
		k.keys[id] = bytes.Clone(key)
	}
	if _, ok := k.keys[active]; !ok {
		return Keyring{}, errs.E(op, errs.Invalid, "the active key must be one of the keyring's keys")
	}
	if k.fingerprint == "" {
		if len(k.keys) > 1 {
			return Keyring{}, errs.E(op, errs.Invalid,
				"a keyring of several keys must name the fingerprint key (the key fingerprints have been derived from; not changed by rotation)")
		}
		k.fingerprint = active
	}
	if _, ok := k.keys[k.fingerprint]; !ok {
		return Keyring{}, errs.E(op, errs.Invalid, "the fingerprint key must be one of the keyring's keys")
	}
	return k, nil
}

// keyringFile is the keyring's text form.
type keyringFile struct {
	Active      string            `json:"active"`
	Fingerprint string            `json:"fingerprint"`
	Keys        map[string]string `json:"keys"`
}

// ParseKeyring reads a keyring's text form, a JSON object:
//
//	{"active": "k2", "fingerprint": "k1",
//	 "keys": {"k1": "<64 hex digits>", "k2": "<base64 of 32 bytes>"}}
//
// Each key is 64 hex digits or the standard or URL-safe base64, padded
// or not, of 32 bytes (told apart by length). "fingerprint" may be left
// out when there is one key (see NewKeyring). Unknown fields, a key given
// twice, and anything over MaxKeyringBytes are refused. Errors are
// errs.Invalid and never contain key material.
func ParseKeyring(b []byte) (Keyring, error) {
	const op = "vault.keyring"
	if len(b) > MaxKeyringBytes {
		return Keyring{}, errs.Errorf(op, errs.Invalid, "a keyring is at most %d bytes", MaxKeyringBytes)
	}
	if err := noDuplicateKeys(b); err != nil {
		return Keyring{}, errs.E(op, errs.Invalid, err.Error())
	}
	var f keyringFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil || d.More() {
		// The decoder's message may quote the input: do not pass it on.
		return Keyring{}, errs.E(op, errs.Invalid, `a keyring is a JSON object {"active": id, "fingerprint": id, "keys": {id: key}}`)
	}
	keys := make(map[string][]byte, len(f.Keys))
	for id, s := range f.Keys {
		if !ValidKEKID(id) {
			return Keyring{}, errs.E(op, errs.Invalid, "key ids must be 1-32 letters, digits, '_', '.' or '-'")
		}
		key, ok := decodeKey(s)
		if !ok {
			return Keyring{}, errs.Errorf(op, errs.Invalid, "key %s is not 64 hex digits or the base64 of %d bytes", id, KeySize)
		}
		keys[id] = key
	}
	return NewKeyring(f.Active, f.Fingerprint, keys)
}

// noDuplicateKeys refuses a JSON text in which an object has a member
// twice (encoding/json would keep the last silently).
func noDuplicateKeys(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		seen   map[string]bool
		key    bool // the next token of an object is a key
	}
	var stack []*frame
	for {
		t, err := d.Token()
		if err != nil {
			return nil // syntax errors are the real decoder's to report
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if s, ok := t.(string); ok {
				if top.seen[s] {
					return fmt.Errorf("a member appears twice in one object")
				}
				top.seen[s] = true
				top.key = false
				continue
			}
		}
		switch t {
		case json.Delim('{'):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, key: true})
			continue
		case json.Delim('['):
			if top != nil && top.object {
				top.key = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return nil
			}
			continue
		}
		if top != nil && top.object {
			top.key = true
		}
	}
}

// decodeKey reads 64 hex digits, or base64 (standard or URL-safe,
// padded or not) of KeySize bytes.
func decodeKey(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		b, err := hex.DecodeString(s)
		return b, err == nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, true
		}
	}
	return nil, false
}

// ReadKeyring reads a keyring file (ParseKeyring). The file holds every
// card's keys: keep it readable by the payment service alone (mode 0400
// or 0600, or a mounted secret).
func ReadKeyring(path string) (Keyring, error) {
	const op = "vault.keyring"
	f, err := os.Open(path)
	if err != nil {
		return Keyring{}, errs.E(op, errs.Invalid, fmt.Errorf("keyring file: %w", err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyringBytes+1))
	if err != nil {
		return Keyring{}, errs.E(op, errs.Invalid, fmt.Errorf("keyring file: %w", err))
	}
	return ParseKeyring(b)
}

// KeyringFromEnv reads a keyring from an environment variable
// (ParseKeyring); an unset or empty variable is errs.Invalid.
func KeyringFromEnv(name string) (Keyring, error) {
	v, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(v) == "" {
		return Keyring{}, errs.Errorf("vault.keyring", errs.Invalid, "environment variable %s holds no keyring", name)
	}
	return ParseKeyring([]byte(v))
}

// Active is the id of the KEK that wraps new data keys.
func (k Keyring) Active() string { return k.active }

// FingerprintID is the id of the KEK the fingerprint key is derived from.
func (k Keyring) FingerprintID() string { return k.fingerprint }

// IDs are the ids of the keyring's KEKs, sorted.
func (k Keyring) IDs() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Has reports whether the keyring has a KEK of that id.
func (k Keyring) Has(id string) bool { _, ok := k.keys[id]; return ok }

// IsZero reports whether k has no keys.
func (k Keyring) IsZero() bool { return len(k.keys) == 0 }

// String names the keyring's ids, never its keys.
func (k Keyring) String() string {
	return fmt.Sprintf("keyring{active %s, fingerprint %s, keys %s}", k.active, k.fingerprint, strings.Join(k.IDs(), " "))
}

// GoString is String.
func (k Keyring) GoString() string { return k.String() }

// Format writes String for every verb.
func (k Keyring) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue is String.
func (k Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON writes String as a JSON string: the text form with keys is
// written by hand, never marshalled from a Keyring.
func (k Keyring) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// aead is the AES-256-GCM of a KEK, or false when the keyring lacks it.
func (k Keyring) aead(id string) (cipher.AEAD, bool) {
	key, ok := k.keys[id]
	if !ok {
		return nil, false
	}
	return newAEAD(key), true
}

// fingerprintKey derives the fingerprint key from the designated KEK.
func (k Keyring) fingerprintKey() []byte {
	key, err := hkdf.Key(sha256.New, k.keys[k.fingerprint], nil, "ticketing payment vault fingerprint v1", KeySize)
	if err != nil {
		panic("vault: hkdf: " + err.Error()) // only for lengths out of range
	}
	return key
}

// newAEAD is AES-256-GCM with a random 96-bit nonce per message.
func newAEAD(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("vault: aes: " + err.Error()) // keys are checked to be 32 bytes
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic("vault: gcm: " + err.Error())
	}
	return g
}
