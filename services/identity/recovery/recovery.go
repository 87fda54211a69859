// Package recovery makes and checks an account's recovery codes: single-use
// codes the user writes down when turning on the second factor, each good
// for one sign-in in place of a TOTP code when the authenticator is lost.
// It is a domain package, with no storage or transport: the account store
// is to keep the hashes. That store does not exist yet; nothing outside the
// tests uses this package so far.
//
// A code is Length (15) random characters of a 32-symbol alphabet, 75 bits,
// shown in groups of five: "7kq2m-x9fd0-hc4tw". The alphabet is Crockford's
// base32 in lower case, which has no i, l, o or u; what the user types is
// normalized the Crockford way (case ignored, i and l read as 1, o as 0,
// dashes and spaces dropped), so that a code copied from paper by eye is
// still the same code.
//
// Only hashes are stored: salted SHA-256, "sha256$<salt>$<digest>" with a
// 16-byte salt and both in unpadded base64url. A fast hash is enough
// because the codes are random, not chosen by people: a dictionary is
// useless, and finding one code from a leaked hash takes 2^74 SHA-256 on
// average, about 60,000 years of a GPU computing 10^10 a second. The
// per-code salt keeps that cost per code: an attacker holding every user's
// hashes cannot test a guess against all of them at once. A slow hash
// (argon2id, as for passwords) would buy nothing at this entropy and would
// cost ten argon2 runs per attempt.
//
// Consuming a code is the store's operation, not this package's: after
// Match reports index i, the caller is to delete hashes[i] in a
// compare-and-set (or transaction) that fails if the hashes changed since
// it read them, and to accept the sign-in only if that write succeeds, so
// that two concurrent sign-ins with the same code cannot both succeed. A
// new set from Generate is to replace the old one whole.
package recovery

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// The shape of a code.
const (
	// Alphabet is Crockford's base32 alphabet, lower case.
	Alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	Length   = 15 // characters, 5 bits each
	GroupLen = 5  // characters between dashes when shown

	// Count is how many codes a set has.
	Count = 10
	// MaxCount bounds Generate's n.
	MaxCount = 100

	// MaxInputLen bounds what Match and Normalize look at: a code with a
	// space or dash between every two characters fits.
	MaxInputLen = 64

	saltLen = 16
	prefix  = "sha256$"
)

var b64 = base64.RawURLEncoding.Strict()

// Generate returns n new codes, formatted for showing (groups of GroupLen
// joined by '-'), and their hashes for the store, in the same order. The
// codes are shown to the user once and not kept. n outside 1..MaxCount is
// errs.Invalid.
func Generate(n int) (codes, hashes []string, err error) {
	if n < 1 || n > MaxCount {
		return nil, nil, errs.Errorf("recovery.generate", errs.Invalid, "the number of codes must be 1-%d", MaxCount)
	}
	seen := make(map[string]bool, n)
	for len(codes) < n {
		var b [Length]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		for i := range b {
			b[i] = Alphabet[b[i]&31] // 256 is a multiple of 32: uniform
		}
		c := string(b[:])
		if seen[c] { // a repeat, one chance in 2^75 a pair: draw again
			continue
		}
		seen[c] = true
		codes = append(codes, format(c))
		hashes = append(hashes, hash(c))
	}
	return codes, hashes, nil
}

// format inserts a dash between groups of GroupLen characters.
func format(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i += GroupLen {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(c[i:min(i+GroupLen, len(c))])
	}
	return b.String()
}

// Normalize returns the code input stands for, Length characters of
// Alphabet, and whether it is one: ASCII letters are lower-cased, 'i' and
// 'l' read as '1', 'o' as '0', and dashes, spaces and tabs dropped. Input
// longer than MaxInputLen bytes is not a code.
func Normalize(input string) (string, bool) {
	if len(input) > MaxInputLen {
		return "", false
	}
	b := make([]byte, 0, Length)
	for i := 0; i < len(input); i++ {
		c := input[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case '-', ' ', '\t':
			continue
		case 'i', 'l':
			c = '1'
		case 'o':
			c = '0'
		}
		if strings.IndexByte(Alphabet, c) < 0 || len(b) == Length {
			return "", false
		}
		b = append(b, c)
	}
	if len(b) != Length {
		return "", false
	}
	return string(b), true
}

// Hash returns the stored form of the code input stands for (see
// Normalize), with a new random salt, or errs.Invalid if it is not a code.
// Generate hashes its codes with it.
func Hash(input string) (string, error) {
	c, ok := Normalize(input)
	if !ok {
		return "", errs.Errorf("recovery.hash", errs.Invalid, "a recovery code is %d letters and digits", Length)
	}
	return hash(c), nil
}

func hash(code string) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	d := digest(salt, code)
	return prefix + b64.EncodeToString(salt) + "$" + b64.EncodeToString(d[:])
}

func digest(salt []byte, code string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(code))
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Match reports which of the stored hashes the code input stands for
// matches (see Normalize): its index and true, or -1 and false. Every
// candidate is hashed and compared in constant time, and the loop does not
// stop at a match, so the time taken depends on the number of hashes, not
// on which matched or how closely. Input that is not a code returns at
// once: its shape is no secret. A stored hash that is malformed matches
// nothing. Match does not consume the code; see the package comment.
func Match(input string, hashes []string) (index int, ok bool) {
	c, valid := Normalize(input)
	if !valid {
		return -1, false
	}
	index = -1
	var zero [saltLen]byte
	for i, h := range hashes {
		salt, want, wellFormed := parse(h)
		if !wellFormed {
			salt = zero[:] // the same work, against a digest that cannot match
		}
		got := digest(salt, c)
		eq := subtle.ConstantTimeCompare(got[:], want[:]) & boolInt(wellFormed)
		// Keep the first match: index = i if eq and none matched before.
		first := eq & subtle.ConstantTimeEq(int32(index), -1)
		index = subtle.ConstantTimeSelect(first, i, index)
	}
	return index, index >= 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// parse splits a stored hash into its salt and digest.
func parse(h string) (salt []byte, d [sha256.Size]byte, ok bool) {
	rest, found := strings.CutPrefix(h, prefix)
	if !found {
		return nil, d, false
	}
	s, dig, found := strings.Cut(rest, "$")
	if !found || strings.ContainsAny(rest, "\r\n") {
		return nil, d, false
	}
	salt, err := b64.DecodeString(s)
	if err != nil || len(salt) != saltLen {
		return nil, d, false
	}
	db, err := b64.DecodeString(dig)
	if err != nil || len(db) != sha256.Size {
		return nil, d, false
	}
	copy(d[:], db)
	return salt, d, true
}
