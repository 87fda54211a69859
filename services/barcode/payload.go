package barcode

import (
	"encoding/binary"
	"math/bits"
	"time"
	"unicode"
	"unicode/utf8"
)

// Encode returns the binary payload of c (format Version; see the package
// doc), or an errs.Invalid error with ReasonMalformed if c is out of
// bounds. Times are written in whole seconds.
func Encode(c Claims) ([]byte, error) {
	p, f := encode(make([]byte, 0, 128), &c)
	if f != okay {
		return nil, encodeErrs[f]
	}
	return p, nil
}

// Decode reads a payload that Encode wrote, strictly: an unknown version
// or flag, a field out of bounds, a length or time not in its shortest
// form, or trailing bytes is an errs.Invalid error with ReasonMalformed.
// It does not panic on any input. What it accepts, Encode writes back
// byte for byte.
func Decode(p []byte) (Claims, error) {
	r, f := decodeRaw(p)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	return r.claims(string(p)), nil
}

// encode appends the payload of c to dst and checks it by decoding it:
// what Decode refuses, Encode refuses.
func encode(dst []byte, c *Claims) ([]byte, fault) {
	start := len(dst)
	dst = append(dst, Version)
	dst = appendString(dst, c.KeyID)
	dst = appendString(dst, c.TicketID)
	dst = appendString(dst, c.EventID)
	dst = append(dst, byte(c.PlaceKind))
	dst = appendString(dst, c.Place)
	dst = appendString(dst, c.Holder)
	// A time before 1970 becomes a huge number, refused as out of range.
	dst = binary.AppendUvarint(dst, uint64(c.ValidFrom.Unix()))
	dst = binary.AppendUvarint(dst, uint64(c.ValidUntil.Unix()))
	var flags byte
	if c.Printed {
		flags |= flagPrinted
	}
	dst = append(dst, flags)
	dst = append(dst, c.Device[:]...)
	if _, f := decodeRaw(dst[start:]); f != okay {
		return nil, f
	}
	return dst, okay
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// span is a field's place in a payload: p[off:end].
type span struct{ off, end int }

func (s span) of(p []byte) []byte { return p[s.off:s.end] }
func (s span) in(p string) string { return p[s.off:s.end] }

// rawClaims are the fields of a payload as spans of it, so that checking
// them allocates nothing.
type rawClaims struct {
	kid, ticket, event, place, holder span
	kind                              PlaceKind
	from, until                       int64
	flags                             byte
	device                            DeviceBinding
}

// claims returns the claims of r, whose payload is p: the strings are
// substrings of p, so one conversion of the payload is all they cost.
func (r *rawClaims) claims(p string) Claims {
	return Claims{
		KeyID: r.kid.in(p), TicketID: r.ticket.in(p), EventID: r.event.in(p),
		PlaceKind: r.kind, Place: r.place.in(p), Holder: r.holder.in(p),
		ValidFrom: time.Unix(r.from, 0).UTC(), ValidUntil: time.Unix(r.until, 0).UTC(),
		Printed: r.flags&flagPrinted != 0, Device: r.device,
	}
}

// decodeRaw parses and checks a payload; see Decode.
func decodeRaw(p []byte) (r rawClaims, f fault) {
	if len(p) == 0 {
		return r, truncated
	}
	if p[0] != Version {
		return r, badVersion
	}
	i := 1
	if r.kid, i, f = readField(p, i, MaxKeyIDLen, badKeyID); f != okay {
		return r, f
	}
	if !validKeyID(r.kid.of(p)) {
		return r, badKeyID
	}
	if r.ticket, i, f = readText(p, i, badTicketID); f != okay {
		return r, f
	}
	if r.event, i, f = readText(p, i, badEventID); f != okay {
		return r, f
	}
	if i >= len(p) {
		return r, truncated
	}
	r.kind = PlaceKind(p[i])
	if r.kind != Seat && r.kind != GeneralAdmission {
		return r, badPlaceKind
	}
	i++
	if r.place, i, f = readText(p, i, badPlace); f != okay {
		return r, f
	}
	if r.holder, i, f = readText(p, i, badHolder); f != okay {
		return r, f
	}
	var from, until uint64
	if from, i, f = readUvarint(p, i); f != okay {
		return r, f
	}
	if until, i, f = readUvarint(p, i); f != okay {
		return r, f
	}
	if from >= until || until > maxUnix {
		return r, badTimes
	}
	r.from, r.until = int64(from), int64(until)
	if i >= len(p) {
		return r, truncated
	}
	r.flags = p[i]
	if r.flags&^knownFlags != 0 {
		return r, badFlags
	}
	i++
	if len(p)-i < DeviceBindingLen {
		return r, truncated
	}
	i += copy(r.device[:], p[i:])
	if i != len(p) {
		return r, trailing
	}
	return r, okay
}

// readField reads a length-prefixed field of 1 to max bytes at p[i].
func readField(p []byte, i, max int, bad fault) (span, int, fault) {
	n, i, f := readUvarint(p, i)
	if f != okay {
		return span{}, i, f
	}
	if n == 0 || n > uint64(max) {
		return span{}, i, bad
	}
	if uint64(len(p)-i) < n {
		return span{}, i, truncated
	}
	return span{i, i + int(n)}, i + int(n), okay
}

// readText reads a length-prefixed id: 1 to MaxIDLen bytes of UTF-8
// without control characters.
func readText(p []byte, i int, bad fault) (span, int, fault) {
	s, i, f := readField(p, i, MaxIDLen, bad)
	if f != okay {
		return s, i, f
	}
	if !validText(s.of(p)) {
		return s, i, bad
	}
	return s, i, okay
}

// readUvarint reads a uvarint in its shortest form at p[i].
func readUvarint(p []byte, i int) (uint64, int, fault) {
	if i >= len(p) {
		return 0, i, truncated
	}
	v, n := binary.Uvarint(p[i:])
	switch {
	case n == 0:
		return 0, i, truncated
	case n < 0 || n != uvarintLen(v):
		return 0, i, nonCanonical
	}
	return v, i + n, okay
}

// uvarintLen is the length of v's shortest uvarint form.
func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// validKeyID reports whether b is 1 to MaxKeyIDLen printable ASCII bytes
// (no space).
func validKeyID(b []byte) bool {
	if len(b) == 0 || len(b) > MaxKeyIDLen {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// validText reports whether b is UTF-8 without control characters.
func validText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n == 1) || unicode.IsControl(r) {
			return false
		}
		b = b[n:]
	}
	return true
}
