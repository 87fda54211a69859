// Package password hashes and verifies account passwords with argon2id
// (golang.org/x/crypto/argon2, RFC 9106). It is a domain package, with no
// storage or transport: the account store is to keep the encoded hashes
// and the sign-in to call Verify. Neither exists yet; nothing outside the
// tests uses this package so far.
//
// A hash is stored in the PHC string format, with its parameters:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// where salt and key are unpadded standard base64. Because the parameters
// travel with each hash, the configured Params can be raised at any time:
// old hashes still verify, and Verify reports needsRehash for them so that
// the caller can store a new hash of the password it has just checked.
//
// The defaults are the OWASP Password Storage Cheat Sheet's minimum for
// argon2id (19 MiB of memory, 2 passes, 1 lane), with a 16-byte random salt
// and a 32-byte key; Params.Validate refuses anything weaker. Hash takes
// passwords of at least MinLength (8) characters, as NIST SP 800-63B asks,
// and at most MaxLength (1024) bytes: longer ones are refused, by Verify
// too, not truncated. Passwords are normalized to Unicode NFKC before
// hashing, as SP 800-63B recommends, so that the same password typed on
// two keyboards that compose characters differently verifies.
//
// For a sign-in with an unknown e-mail address, call VerifyDummy: it costs
// what a Verify of a hash made with the configured parameters costs, so the
// response time does not tell which addresses have accounts. (A hash made
// with older, cheaper parameters verifies faster until it is rehashed at
// its owner's next sign-in.)
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/ticketing/ticketing/internal/errs"
)

// Password length limits. MinLength counts characters (code points) after
// NFKC normalization; MaxLength counts the bytes given.
const (
	MinLength = 8
	MaxLength = 1024
)

// The weakest parameters Params.Validate accepts: OWASP's minimum for
// argon2id, with the salt and key sizes RFC 9106 recommends.
const (
	MinMemory  = 19456 // KiB, 19 MiB
	MinTime    = 2
	MinThreads = 1
	MinSaltLen = 16
	MinKeyLen  = 32
)

// The most a hash may cost, configured or stored. A stored hash asking for
// more is refused without being computed: a hash string that came from
// anywhere but this package (an import, a tampered row) must not make a
// sign-in allocate gigabytes or spin for minutes.
const (
	MaxMemory  = 256 * 1024 // KiB, 256 MiB
	MaxTime    = 16
	MaxThreads = 16
	MaxSaltLen = 64
	MaxKeyLen  = 64
	// MaxEncodedLen bounds a PHC string; the longest one within the other
	// limits is shorter.
	MaxEncodedLen = 256
)

// The smallest salt and key a stored hash may have: argon2's own minimum
// salt, and a key no shorter than 128 bits.
const (
	minStoredSaltLen = 8
	minStoredKeyLen  = 16
)

// Reasons refining the errors of this package.
const (
	ReasonTooShort  = "password_too_short" // errs.Invalid from Hash
	ReasonTooLong   = "password_too_long"  // errs.Invalid from Hash and Verify
	ReasonNotUTF8   = "password_not_utf8"  // errs.Invalid from Hash
	ReasonMalformed = "hash_malformed"     // Parse: not a PHC argon2id string this package reads
	ReasonTooCostly = "hash_too_costly"    // Parse: parameters above the Max limits
)

// Params are the argon2id parameters new hashes are made with.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes (parallelism); part of the hash, not only a speed-up
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams returns the OWASP minimum: m=19456 KiB, t=2, p=1, a
// 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{Memory: MinMemory, Time: MinTime, Threads: MinThreads, SaltLen: MinSaltLen, KeyLen: MinKeyLen}
}

// Validate reports an errs.Invalid error if p is below the OWASP minimum
// (see the Min constants) or above the Max limits, each parameter on its
// own.
func (p Params) Validate() error {
	const op = "password.params"
	switch {
	case p.Memory < MinMemory || p.Memory > MaxMemory:
		return errs.Errorf(op, errs.Invalid, "memory must be %d-%d KiB, not %d", MinMemory, MaxMemory, p.Memory)
	case p.Time < MinTime || p.Time > MaxTime:
		return errs.Errorf(op, errs.Invalid, "time must be %d-%d passes, not %d", MinTime, MaxTime, p.Time)
	case p.Threads < MinThreads || p.Threads > MaxThreads:
		return errs.Errorf(op, errs.Invalid, "threads must be %d-%d, not %d", MinThreads, MaxThreads, p.Threads)
	case p.SaltLen < MinSaltLen || p.SaltLen > MaxSaltLen:
		return errs.Errorf(op, errs.Invalid, "salt length must be %d-%d bytes, not %d", MinSaltLen, MaxSaltLen, p.SaltLen)
	case p.KeyLen < MinKeyLen || p.KeyLen > MaxKeyLen:
		return errs.Errorf(op, errs.Invalid, "key length must be %d-%d bytes, not %d", MinKeyLen, MaxKeyLen, p.KeyLen)
	}
	return nil
}

// argon2Slots bounds the argon2id computations running at once in the
// process to one a CPU: each takes Params.Memory (19 MiB and more) and a
// CPU for its time, so a burst of sign-ins served concurrently queues here
// rather than taking memory without bound.
var argon2Slots = make(chan struct{}, runtime.GOMAXPROCS(0))

// inArgon2 and maxInArgon2 count computations running (for tests).
var inArgon2, maxInArgon2 atomic.Int64

// idKey is argon2.IDKey in one of argon2Slots.
func idKey(pw, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	argon2Slots <- struct{}{}
	defer func() { <-argon2Slots }()
	n := inArgon2.Add(1)
	defer inArgon2.Add(-1)
	for m := maxInArgon2.Load(); n > m && !maxInArgon2.CompareAndSwap(m, n); m = maxInArgon2.Load() {
	}
	return argon2.IDKey(pw, salt, time, memory, threads, keyLen)
}

// Hasher hashes and verifies passwords with its Params. It is safe for
// concurrent use; at most one argon2id computation a CPU runs at once in
// the process (the others wait).
type Hasher struct {
	p Params
}

// New returns a Hasher for p, or p's Validate error.
func New(p Params) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Hasher{p: p}, nil
}

// Params returns the parameters new hashes are made with.
func (h *Hasher) Params() Params { return h.p }

// Hash returns the PHC string of an argon2id hash of pw with a fresh random
// salt. A password shorter than MinLength characters, longer than
// MaxLength bytes or not valid UTF-8 is refused with errs.Invalid and a
// Reason.
func (h *Hasher) Hash(pw string) (string, error) {
	const op = "password.hash"
	if !utf8.ValidString(pw) {
		return "", errs.E(op, errs.Invalid, "password is not valid UTF-8").WithReason(ReasonNotUTF8)
	}
	b, err := prepare(op, pw)
	if err != nil {
		return "", err
	}
	if utf8.RuneCount(b) < MinLength {
		return "", errs.Errorf(op, errs.Invalid, "password must be at least %d characters", MinLength).WithReason(ReasonTooShort)
	}
	salt := make([]byte, h.p.SaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand since Go 1.24)
	d := Decoded{Params: h.p, Salt: salt}
	d.Key = idKey(b, salt, h.p.Time, h.p.Memory, h.p.Threads, h.p.KeyLen)
	return d.String(), nil
}

// Verify reports whether pw is the password encoded was made from, in
// time that does not depend on where a wrong password differs. needsRehash
// is true when encoded (matching or not) was made with weaker parameters
// than h's, any one of memory, time, threads, salt or key length below
// h.Params(): after a successful sign-in, store a new Hash of pw.
//
// A password longer than MaxLength bytes is errs.Invalid (ReasonTooLong),
// without hashing. A stored hash Parse refuses is an error of kind
// errs.Other, with Parse's reason: it is the store's fault, not the
// caller's. Shorter-than-MinLength passwords are verified like any other,
// so that raising MinLength never locks anyone out.
func (h *Hasher) Verify(pw, encoded string) (ok, needsRehash bool, err error) {
	const op = "password.verify"
	b, err := prepare(op, pw)
	if err != nil {
		return false, false, err
	}
	d, err := Parse(encoded)
	if err != nil {
		return false, false, errs.Errorf(op, errs.Other, "stored password hash is unusable: %s", errs.Message(err)).WithReason(errs.ReasonOf(err))
	}
	return d.matches(b), d.weakerThan(h.p), nil
}

// VerifyDummy does the work of a Verify of pw against a hash made with h's
// parameters, and reports nothing: call it when no account has the address
// given, so that a failed sign-in takes as long whether or not the account
// exists. It checks pw's length like Verify, so that an overlong password
// is refused the same way for both.
func (h *Hasher) VerifyDummy(pw string) error {
	b, err := prepare("password.verify", pw)
	if err != nil {
		return err
	}
	// A random salt and a random expected key: the same work as a real
	// Verify (the same argon2id computation and comparison), and no
	// password can match it.
	d := Decoded{Params: h.p, Salt: make([]byte, h.p.SaltLen), Key: make([]byte, h.p.KeyLen)}
	_, _ = rand.Read(d.Salt)
	_, _ = rand.Read(d.Key)
	_ = d.matches(b)
	return nil
}

// prepare checks pw's length in bytes and returns its NFKC normalization.
func prepare(op, pw string) ([]byte, error) {
	if len(pw) > MaxLength {
		return nil, errs.Errorf(op, errs.Invalid, "password must be at most %d bytes", MaxLength).WithReason(ReasonTooLong)
	}
	return norm.NFKC.Bytes([]byte(pw)), nil
}

// Decoded is a parsed PHC string. Params.SaltLen and Params.KeyLen are the
// lengths of Salt and Key.
type Decoded struct {
	Params
	Salt []byte
	Key  []byte
}

// matches reports whether the argon2id key of the prepared password b with
// d's parameters and salt is d.Key, comparing in constant time.
func (d Decoded) matches(b []byte) bool {
	key := idKey(b, d.Salt, d.Time, d.Memory, d.Threads, uint32(len(d.Key)))
	return subtle.ConstantTimeCompare(key, d.Key) == 1
}

// weakerThan reports whether any parameter of d is below p's.
func (d Decoded) weakerThan(p Params) bool {
	return d.Memory < p.Memory || d.Time < p.Time || d.Threads < p.Threads ||
		uint32(len(d.Salt)) < p.SaltLen || uint32(len(d.Key)) < p.KeyLen
}

// String returns d in the PHC string format.
func (d Decoded) String() string {
	var b strings.Builder
	b.WriteString("$argon2id$v=")
	b.WriteString(strconv.Itoa(argon2.Version))
	b.WriteString("$m=")
	b.WriteString(strconv.FormatUint(uint64(d.Memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(d.Time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(d.Threads), 10))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(d.Salt))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(d.Key))
	return b.String()
}

var b64 = base64.RawStdEncoding.Strict()

// Parse decodes a PHC string of an argon2id hash, version 19, in the one
// form String writes: parameters m, t and p in that order, decimal without
// leading zeros, salt and key in unpadded standard base64 with zero
// trailing bits, nothing else (no keyid or data). So what Parse accepts,
// String gives back unchanged. It refuses parameters above the Max limits
// (ReasonTooCostly), memory below 8 KiB per lane (argon2's minimum), salts
// shorter than 8 bytes and keys shorter than 16 (ReasonMalformed), all
// with errs.Invalid. Parameters below the Min limits are accepted: such
// hashes verify and need a rehash.
func Parse(encoded string) (Decoded, error) {
	const op = "password.parse"
	malformed := func(msg string) (Decoded, error) {
		return Decoded{}, errs.E(op, errs.Invalid, msg).WithReason(ReasonMalformed)
	}
	if len(encoded) > MaxEncodedLen {
		return malformed("longer than " + strconv.Itoa(MaxEncodedLen) + " bytes")
	}
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" {
		return malformed("not a PHC string ($id$v=…$params$salt$key)")
	}
	if f[1] != "argon2id" {
		return malformed("not an argon2id hash")
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return malformed("not argon2 version 19")
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return malformed("parameters are not m=…,t=…,p=…")
	}
	var n [3]uint64
	for i, name := range [3]string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return malformed("parameters are not m=…,t=…,p=…")
		}
		x, ok := decimal(v)
		if !ok {
			return malformed("parameter " + name + " is not a decimal number")
		}
		n[i] = x
	}
	m, t, p := n[0], n[1], n[2]
	if m > MaxMemory || t > MaxTime || p > MaxThreads {
		return Decoded{}, errs.Errorf(op, errs.Invalid, "parameters m=%d,t=%d,p=%d exceed the limits m=%d,t=%d,p=%d",
			m, t, p, MaxMemory, MaxTime, MaxThreads).WithReason(ReasonTooCostly)
	}
	if t < 1 || p < 1 || m < 8*p {
		return malformed("parameters need t ≥ 1, p ≥ 1 and m ≥ 8·p")
	}
	salt, ok := decode64(f[4])
	if !ok || len(salt) < minStoredSaltLen || len(salt) > MaxSaltLen {
		return malformed("salt is not " + strconv.Itoa(minStoredSaltLen) + "-" + strconv.Itoa(MaxSaltLen) + " bytes of unpadded base64")
	}
	key, ok := decode64(f[5])
	if !ok || len(key) < minStoredKeyLen || len(key) > MaxKeyLen {
		return malformed("key is not " + strconv.Itoa(minStoredKeyLen) + "-" + strconv.Itoa(MaxKeyLen) + " bytes of unpadded base64")
	}
	return Decoded{
		Params: Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p), SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))},
		Salt:   salt,
		Key:    key,
	}, nil
}

// decimal parses 1-10 ASCII digits without a leading zero.
func decimal(s string) (uint64, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	var x uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + uint64(c-'0')
	}
	return x, true
}

// decode64 decodes unpadded standard base64 strictly. encoding/base64
// skips CR and LF even when strict; they are refused here first, so that
// a decoded value has exactly one encoding.
func decode64(s string) ([]byte, bool) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, false
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}
