// Package jsonw appends JSON values to byte slices exactly as encoding/json
// writes them, without reflection, for encoders on hot paths (the domain
// events every inventory decision emits). Each function's output equals
// encoding/json's for the same Go value; tests check it.
package jsonw

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// String appends s as a JSON string. Printable ASCII other than the
// characters encoding/json escapes ("\\<>&) is copied as is; anything else
// goes through encoding/json, so the two never differ.
func String(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain tells the bytes String copies as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// Time appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds); it returns t's MarshalJSON error for a time RFC 3339
// cannot represent (a year outside 0..9999, an odd zone offset).
func Time(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		_, err := t.MarshalJSON()
		return b, err
	}
	if _, off := t.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		q, err := t.MarshalJSON()
		return append(b, q...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// Strings appends a string slice (nil as null, as encoding/json writes it).
func Strings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, s)
	}
	return append(b, ']')
}

// Int appends an integer.
func Int(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

// Key appends a field name and its colon, after a comma unless first.
func Key(b []byte, name string, first bool) []byte {
	if !first {
		b = append(b, ',')
	}
	b = String(b, name)
	return append(b, ':')
}
