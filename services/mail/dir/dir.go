// Package dir is the mail.Mailer of `ticketing dev`: instead of sending,
// it writes each message as an RFC 5322 .eml file (services/mail/eml, the
// text the SMTP mailer would send) into one directory, where List and Read
// find them again (for a page of the development server, later).
//
// A file is written under a temporary name and renamed into place, so a
// reader never sees half a message. File names are the message's id in
// this directory: the time it was written (UTC, nanoseconds) and a random
// suffix, so that they sort in the order they were written. Several
// processes may write into the same directory.
package dir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/mail"
	"github.com/ticketing/ticketing/services/mail/eml"
)

// Ext is the extension of the message files.
const Ext = ".eml"

// idPattern is the form of the ids Send gives files: UTC time to the
// nanosecond, "-", 8 hex digits.
var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{9}Z-[0-9a-f]{8}$`)

// Dir writes messages into a directory. It is safe for concurrent use.
type Dir struct {
	path string
	now  func() time.Time
}

var _ mail.Mailer = (*Dir)(nil)

// New returns a Dir writing into path, which is created (0700) when
// missing.
func New(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, errs.E("mail.dir.new", err)
	}
	return &Dir{path: path, now: time.Now}, nil
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Send prepares m and writes it as <id>.eml. See mail.Mailer.
func (d *Dir) Send(ctx context.Context, m mail.Message) error {
	const op = "mail.dir.send"
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	now := d.now()
	p, err := m.Prepare(now)
	if err != nil {
		return err
	}
	raw, err := eml.Bytes(p)
	if err != nil {
		return errs.E(op, err)
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	id := now.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(suffix[:])
	f, err := os.CreateTemp(d.path, ".tmp-*"+Ext)
	if err != nil {
		return errs.E(op, err)
	}
	tmp := f.Name()
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.path, id+Ext))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return errs.E(op, err)
	}
	return nil
}

// Entry is one stored message as List shows it.
type Entry struct {
	ID      string // the file's name without Ext; Read takes it
	Size    int64  // bytes of the file
	Message mail.Message
}

// List returns the stored messages, newest first. Files that are not
// messages Send wrote (other names, temporary files, text Read cannot
// parse) are left out.
func (d *Dir) List() ([]Entry, error) {
	const op = "mail.dir.list"
	des, err := os.ReadDir(d.path)
	if err != nil {
		return nil, errs.E(op, err)
	}
	var out []Entry
	for _, de := range des {
		id, ok := strings.CutSuffix(de.Name(), Ext)
		if !ok || !idPattern.MatchString(id) || !de.Type().IsRegular() {
			continue
		}
		e, err := d.read(id)
		if errs.Is(errs.NotFound, err) || errs.Is(errs.Invalid, err) || errs.Is(errs.TooLarge, err) {
			continue
		}
		if err != nil {
			return nil, errs.E(op, err)
		}
		out = append(out, e)
	}
	slices.Reverse(out) // ReadDir sorts by name: oldest first
	return out, nil
}

// Read returns the message with that id and its raw text. An id that is
// not one Send gives, or names no file, is errs.NotFound; a file that does
// not parse is errs.Invalid.
func (d *Dir) Read(id string) (Entry, []byte, error) {
	const op = "mail.dir.read"
	if !idPattern.MatchString(id) {
		return Entry{}, nil, errs.Errorf(op, errs.NotFound, "no message %q", clip(id))
	}
	raw, err := os.ReadFile(filepath.Join(d.path, id+Ext))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, nil, errs.Errorf(op, errs.NotFound, "no message %q", id)
	}
	if err != nil {
		return Entry{}, nil, errs.E(op, err)
	}
	m, err := eml.Parse(raw)
	if err != nil {
		return Entry{}, nil, errs.E(op, errs.KindOf(err), "message "+id, err)
	}
	return Entry{ID: id, Size: int64(len(raw)), Message: m}, raw, nil
}

func (d *Dir) read(id string) (Entry, error) {
	e, _, err := d.Read(id)
	return e, err
}

func clip(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
