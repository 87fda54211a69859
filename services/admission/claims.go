package admission

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// rawClaims are the claims as parsed from a verified payload: strings as
// slices of the decoded payload, so that checking them allocates nothing.
type rawClaims struct {
	iss, aud, sub, evt, jti []byte
	iat, nbf, exp           int64
}

// Claim bits, to refuse duplicates.
const (
	seenIss = 1 << iota
	seenAud
	seenSub
	seenEvt
	seenJti
	seenIat
	seenNbf
	seenExp
	seenAll = 1<<iota - 1
)

// parseClaims reads the payload this system writes, strictly: one flat
// JSON object with exactly the eight claims, each once, strings for
// iss/aud/sub/evt/jti and non-negative integers for iat/nbf/exp. It is a
// small hand-written parser rather than encoding/json because it runs on
// every hold request: it allocates nothing unless a string has escapes.
// Anything else (unknown members, floats, nesting, trailing data) is
// refused. The payload is signed, so this only ever sees what a holder of
// a key wrote; strictness keeps the format from drifting.
func parseClaims(p []byte) (c rawClaims, ok bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return c, false
	}
	i++
	var seen int
	for {
		i = skipSpace(p, i)
		if i >= len(p) || p[i] != '"' {
			return c, false
		}
		// Keys are plain ASCII: no escapes.
		end := bytes.IndexByte(p[i+1:], '"')
		if end < 0 {
			return c, false
		}
		key := p[i+1 : i+1+end]
		i = skipSpace(p, i+end+2)
		if i >= len(p) || p[i] != ':' {
			return c, false
		}
		i = skipSpace(p, i+1)
		// Values are assigned to c directly, not through a pointer, so
		// that escape analysis keeps p (a stack buffer) on the stack.
		var bit int
		var str []byte
		var num int64
		switch string(key) {
		case "iss", "aud", "sub", "evt", "jti":
			str, i, ok = parseString(p, i)
		case "iat", "nbf", "exp":
			num, i, ok = parseUint(p, i)
		}
		if !ok {
			return c, false
		}
		switch string(key) {
		case "iss":
			bit, c.iss = seenIss, str
		case "aud":
			bit, c.aud = seenAud, str
		case "sub":
			bit, c.sub = seenSub, str
		case "evt":
			bit, c.evt = seenEvt, str
		case "jti":
			bit, c.jti = seenJti, str
		case "iat":
			bit, c.iat = seenIat, num
		case "nbf":
			bit, c.nbf = seenNbf, num
		case "exp":
			bit, c.exp = seenExp, num
		}
		if seen&bit != 0 {
			return c, false
		}
		seen |= bit
		i = skipSpace(p, i)
		if i >= len(p) {
			return c, false
		}
		if p[i] == '}' {
			i++
			break
		}
		if p[i] != ',' {
			return c, false
		}
		i++
	}
	return c, seen == seenAll && skipSpace(p, i) == len(p)
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// parseString reads a JSON string at p[i]. Without escapes the value is a
// slice of p; with escapes encoding/json decodes it (the rare case: ids
// with quotes, backslashes or <>&, which json.Marshal escapes).
func parseString(p []byte, i int) ([]byte, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, i, false
	}
	escaped := false
	for j := i + 1; j < len(p); j++ {
		switch b := p[j]; {
		case b == '"':
			if !escaped {
				// Invalid UTF-8 is refused (encoding/json would replace it,
				// and the issuer never writes it).
				if !utf8.Valid(p[i+1 : j]) {
					return nil, i, false
				}
				return p[i+1 : j], j + 1, true
			}
			var s string
			if !utf8.Valid(p[i:j+1]) || json.Unmarshal(bytes.Clone(p[i:j+1]), &s) != nil { // a copy: keeps p on the stack
				return nil, i, false
			}
			return []byte(s), j + 1, true
		case b == '\\':
			escaped = true
			j++ // skip the escaped byte; \uXXXX digits are plain bytes
		case b < 0x20:
			return nil, i, false
		}
	}
	return nil, i, false
}

// parseUint reads a non-negative integer of at most 12 digits at p[i].
func parseUint(p []byte, i int) (int64, int, bool) {
	var n int64
	j := i
	for j < len(p) && p[j] >= '0' && p[j] <= '9' && j-i < 12 {
		n = n*10 + int64(p[j]-'0')
		j++
	}
	if j == i || (p[i] == '0' && j-i > 1) || (j < len(p) && p[j] >= '0' && p[j] <= '9') {
		return 0, i, false
	}
	return n, j, true
}
