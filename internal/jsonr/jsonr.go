// Package jsonr reads JSON objects of simple shapes without reflection, for
// decoders on hot paths (every hold request an owner receives, every answer
// an edge reads). A Scanner accepts only the plainest text: strings of
// printable ASCII without escapes, integers, arrays of such strings, no
// null, no repeated member. Anything else makes it fail, and its caller then
// decodes the same bytes with encoding/json, so the two never disagree:
// whatever the Scanner accepts, encoding/json decodes to the same values
// (each decoder's fuzz test checks it).
package jsonr

import "strconv"

// Scanner walks one JSON object. Its methods fail (return false) on
// anything outside the plain shapes; once failed, it stays failed.
type Scanner struct {
	b      []byte
	i      int
	failed bool
	first  bool
	seen   [10][]byte // keys so far (objects here have a handful)
	nseen  int
}

// New starts a scanner on b, which must hold one object.
func New(b []byte) Scanner { return Scanner{b: b} }

// Begin reads the opening brace.
func (s *Scanner) Begin() bool {
	s.ws()
	if !s.byte('{') {
		s.failed = true
		return false
	}
	s.first = true
	return true
}

// Next reads the next member's key (a slice of the input) and its colon;
// false at the closing brace or on failure (see Done).
func (s *Scanner) Next() (key []byte, ok bool) {
	if s.failed {
		return nil, false
	}
	s.ws()
	if s.byte('}') {
		return nil, false
	}
	if !s.first && !s.byte(',') {
		s.failed = true
		return nil, false
	}
	s.first = false
	s.ws()
	k, ok := s.plain()
	if !ok || s.nseen == len(s.seen) {
		s.failed = true
		return nil, false
	}
	for _, seen := range s.seen[:s.nseen] {
		if string(seen) == string(k) {
			s.failed = true // a repeated member: leave it to encoding/json
			return nil, false
		}
	}
	s.seen[s.nseen] = k
	s.nseen++
	s.ws()
	if !s.byte(':') {
		s.failed = true
		return nil, false
	}
	s.ws()
	return k, true
}

// Object scans b as one object, calling member with each member's key (a
// slice of b); member reads the value with the scanner's readers, or calls
// Fail for a member it does not know. It reports whether the whole object
// was read without a failure.
func Object(b []byte, member func(s *Scanner, key []byte)) bool {
	s := New(b)
	if !s.Begin() {
		return false
	}
	for {
		k, more := s.Next()
		if !more {
			break
		}
		member(&s, k)
	}
	return s.Done()
}

// Done reports whether the whole object was read (the closing brace and
// nothing but spaces after it) without a failure.
func (s *Scanner) Done() bool {
	if s.failed || s.i == 0 || s.b[s.i-1] != '}' {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// Fail marks the scan failed (an unknown member, a value out of range).
func (s *Scanner) Fail() { s.failed = true }

// String reads a plain string value.
func (s *Scanner) String() (string, bool) {
	b, ok := s.plain()
	if !ok {
		s.failed = true
		return "", false
	}
	return string(b), true
}

// Quoted reads a plain string value and returns it with its quotes, for
// types that decode their own JSON (time.Time).
func (s *Scanner) Quoted() ([]byte, bool) {
	start := s.i
	if _, ok := s.plain(); !ok {
		s.failed = true
		return nil, false
	}
	return s.b[start:s.i], true
}

// The value readers also report failure in their result; a caller may
// rely on Done instead, which sees every failure.

// Strings reads an array of plain strings, or null ([] is an empty,
// non-nil slice and null a nil one, as encoding/json decodes them).
func (s *Scanner) Strings() ([]string, bool) {
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return nil, true
	}
	if !s.byte('[') {
		s.failed = true
		return nil, false
	}
	out := []string{}
	s.ws()
	if s.byte(']') {
		return out, true
	}
	for {
		s.ws()
		v, ok := s.String()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		s.ws()
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			s.failed = true
			return nil, false
		}
	}
}

// Int reads an integer: -?(0|[1-9][0-9]*), within int64 (and int).
func (s *Scanner) Int() (int, bool) {
	start := s.i
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
		}
	default:
		s.failed = true
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.failed = true // a fraction or an exponent: not ours
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, strconv.IntSize)
	if err != nil {
		s.failed = true
		return 0, false
	}
	return int(n), true
}

// plain reads a string of printable ASCII without escapes and returns its
// contents.
func (s *Scanner) plain() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			return s.b[start : s.i-1], true
		}
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *Scanner) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}
