// Package pow is the proof of work clients solve when asked to slow down
// (the waiting room's join guard, sign-ins the fraud engine challenges): a
// challenge is a versioned body (difficulty, expiry, random nonce) with an
// HMAC-SHA-256 over it and what it is bound to (an event, an address, a
// session, an account), so the server keeps no state; a solution is
// "<challenge>.<nonce>" whose SHA-256 has at least the challenge's
// difficulty in leading zero bits.
package pow

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Limits.
const (
	MaxDifficulty = 32 // bits; 2^32 hashes is far beyond what a browser does
	MaxNonceLen   = 32 // characters of a solution's nonce
)

const (
	challengeVersion = 1
	nonceLen         = 12
	macLen           = 16
	bodyLen          = 1 + 1 + 8 + nonceLen // version, difficulty, expiry, nonce
	rawLen           = bodyLen + macLen
	// ChallengeLen is the length of a challenge string.
	ChallengeLen = (rawLen*8 + 5) / 6
)

var b64 = base64.RawURLEncoding

// Issuer issues and verifies challenges with its secret.
type Issuer struct {
	Secret []byte
	// TTL is how long a challenge may be solved.
	TTL time.Duration
}

// Issue returns a challenge of the difficulty bound to binding.
func (p Issuer) Issue(difficulty int, now time.Time, binding ...string) string {
	var raw [rawLen]byte
	raw[0] = challengeVersion
	raw[1] = byte(difficulty)
	binary.BigEndian.PutUint64(raw[2:10], uint64(now.Add(p.TTL).Unix()))
	if _, err := rand.Read(raw[10:bodyLen]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	copy(raw[bodyLen:], p.mac(raw[:bodyLen], binding))
	return b64.EncodeToString(raw[:])
}

// mac is the challenge's MAC over its body and what it is bound to.
func (p Issuer) mac(body []byte, binding []string) []byte {
	m := hmac.New(sha256.New, p.Secret)
	m.Write(body)
	for _, s := range binding {
		h := sha256.Sum256([]byte(s))
		m.Write(h[:])
	}
	return m.Sum(nil)[:macLen]
}

// NonceLen is the length of a challenge's random nonce.
const NonceLen = nonceLen

// Solved is a verified solution's challenge: its difficulty, and its nonce
// and expiry, by which a caller remembers it as spent until it expires.
type Solved struct {
	Difficulty int
	Nonce      [NonceLen]byte
	Expiry     int64 // unix seconds
}

// Verify checks a solution of a challenge issued for binding; the error
// says why it is not good (its text may be shown to the client). A
// solution verifies until its challenge expires: callers that must see it
// once remember Solved.Nonce.
func (p Issuer) Verify(solution string, now time.Time, binding ...string) (Solved, error) {
	ch, _, err := ParseSolution(solution)
	if err != nil {
		return Solved{}, err
	}
	c, err := decodeChallenge(ch)
	if err != nil {
		return Solved{}, err
	}
	if subtle.ConstantTimeCompare(c.mac[:], p.mac(c.body[:], binding)) != 1 {
		return Solved{}, errors.New("the challenge was not issued here for this request")
	}
	if now.Unix() >= c.expiry {
		return Solved{}, errors.New("the challenge expired")
	}
	if LeadingZeroBits(solution) < c.difficulty {
		return Solved{}, errors.New("the solution does not solve the challenge")
	}
	return Solved{Difficulty: c.difficulty, Nonce: c.nonce, Expiry: c.expiry}, nil
}

// challenge is a decoded challenge.
type challenge struct {
	difficulty int
	expiry     int64 // unix seconds
	nonce      [nonceLen]byte
	body       [bodyLen]byte
	mac        [macLen]byte
}

// ParseSolution splits a solution "<challenge>.<nonce>" and checks its
// syntax: a challenge of ChallengeLen base64url characters and a nonce of
// 1-MaxNonceLen characters of [0-9A-Za-z_-]. It does not check the
// challenge's MAC or the work.
func ParseSolution(s string) (challenge, nonce string, err error) {
	if len(s) > ChallengeLen+1+MaxNonceLen {
		return "", "", errors.New("the solution is too long")
	}
	challenge, nonce, ok := strings.Cut(s, ".")
	switch {
	case !ok:
		return "", "", errors.New(`the solution must be "<challenge>.<nonce>"`)
	case len(challenge) != ChallengeLen:
		return "", "", errors.New("the challenge has the wrong length")
	case len(nonce) < 1 || len(nonce) > MaxNonceLen:
		return "", "", errors.New("the nonce must be 1-" + strconv.Itoa(MaxNonceLen) + " characters")
	}
	for i := 0; i < len(nonce); i++ {
		if !urlSafe(nonce[i]) {
			return "", "", errors.New("the nonce may hold only [0-9A-Za-z_-]")
		}
	}
	return challenge, nonce, nil
}

func decodeChallenge(s string) (challenge, error) {
	var c challenge
	raw, err := b64.DecodeString(s)
	if err != nil || len(raw) != rawLen {
		return c, errors.New("the challenge is not valid base64url")
	}
	if raw[0] != challengeVersion {
		return c, errors.New("unknown challenge version")
	}
	c.difficulty = int(raw[1])
	if c.difficulty > MaxDifficulty {
		return c, errors.New("the challenge's difficulty is out of range")
	}
	c.expiry = int64(binary.BigEndian.Uint64(raw[2:10]))
	copy(c.nonce[:], raw[10:bodyLen])
	copy(c.body[:], raw[:bodyLen])
	copy(c.mac[:], raw[bodyLen:])
	return c, nil
}

func urlSafe(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b == '-' || b == '_'
}

// LeadingZeroBits is the number of leading zero bits of SHA-256(s).
func LeadingZeroBits(s string) int {
	return leadingZeros(sha256.Sum256([]byte(s)))
}

func leadingZeros(h [sha256.Size]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Solve finds a solution of a challenge of the given difficulty by trying
// nonces 0, 1, 2, … in decimal; what the waiting-room page does in
// JavaScript, for Go clients (benchmarks, tests). It takes 2^difficulty
// hashes on average.
func Solve(challenge string, difficulty int) string {
	buf := make([]byte, 0, len(challenge)+1+20)
	buf = append(buf, challenge...)
	buf = append(buf, '.')
	for n := uint64(0); ; n++ {
		b := strconv.AppendUint(buf, n, 10)
		if leadingZeros(sha256.Sum256(b)) >= difficulty {
			return string(b)
		}
	}
}
