package settings

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/flags"
)

// Prefixes of the bucket's keys.
const (
	SettingPrefix = "setting."
	FlagPrefix    = "flag."
)

// Bounds on an entry.
const (
	MaxEntrySize = flags.MaxSize + 4<<10 // bytes of an entry's JSON
	MaxByLen     = 128                   // bytes of who wrote it
	MaxNoteLen   = 512                   // bytes of a note
)

// Key names a setting's value: for everyone (Scope "") or for one edge or
// event.
type Key struct {
	Name  string
	Scope string
}

// BucketKey is the key's key in the bucket: "setting.<name>" or
// "setting.<name>/<scope>".
func (k Key) BucketKey() string {
	if k.Scope == "" {
		return SettingPrefix + k.Name
	}
	return SettingPrefix + k.Name + "/" + k.Scope
}

func (k Key) String() string {
	if k.Scope == "" {
		return k.Name
	}
	return k.Name + "/" + k.Scope
}

// ParseBucketKey is the inverse of BucketKey.
func ParseBucketKey(s string) (Key, bool) {
	rest, ok := strings.CutPrefix(s, SettingPrefix)
	if !ok {
		return Key{}, false
	}
	name, scope, scoped := strings.Cut(rest, "/")
	if !validName(name) || (scoped && !ValidScopeID(scope)) {
		return Key{}, false
	}
	return Key{Name: name, Scope: scope}, true
}

// FlagBucketKey is a flag's key in the bucket.
func FlagBucketKey(flag string) string { return FlagPrefix + flag }

// Entry is what the bucket holds for a key: the value's JSON (a setting's
// value or a flag's definition), who wrote it, when, and why.
type Entry struct {
	Value json.RawMessage `json:"value"`
	By    string          `json:"by"`
	At    time.Time       `json:"at"`
	Note  string          `json:"note,omitempty"`
}

// Encode is the entry's JSON.
func (e *Entry) Encode() []byte {
	b, _ := json.Marshal(e) // a RawMessage that decoded, strings and a time: cannot fail
	return b
}

// DecodeEntry reads an entry from the bucket, which is outside: at most
// MaxEntrySize bytes, no unknown fields, nothing after the object, a value
// present, who and note within their bounds. The value itself is checked
// by whoever knows its type (Def.Decode, flags.Decode). Errors are
// errs.Invalid.
func DecodeEntry(b []byte) (Entry, error) {
	const op = "settings.entry"
	var e Entry
	if len(b) > MaxEntrySize {
		return e, errs.Errorf(op, errs.Invalid, "an entry has at most %d bytes, this one %d", MaxEntrySize, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Entry{}, errs.E(op, errs.Invalid, "malformed entry: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return Entry{}, errs.E(op, errs.Invalid, "malformed entry: data after the object")
	}
	if v := bytes.TrimSpace(e.Value); len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return Entry{}, errs.E(op, errs.Invalid, "an entry without a value")
	}
	if err := checkWho(op, e.By, e.Note); err != nil {
		return Entry{}, err
	}
	return e, nil
}

func checkWho(op, by, note string) error {
	if by == "" || len(by) > MaxByLen || !utf8.ValidString(by) || strings.ContainsFunc(by, isControl) {
		return errs.Errorf(op, errs.Invalid, "who changes it (by) must be 1-%d bytes of printable UTF-8", MaxByLen)
	}
	if len(note) > MaxNoteLen || !utf8.ValidString(note) || strings.ContainsFunc(note, isControl) {
		return errs.Errorf(op, errs.Invalid, "a note has at most %d bytes of printable UTF-8", MaxNoteLen)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
