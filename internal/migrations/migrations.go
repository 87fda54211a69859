// Package migrations reads versioned schema migrations from a file system:
// the naming rule, the order and the checksums that the database runners
// (internal/postgres for SQL, internal/cql for CQL) record and verify. The
// owning package embeds its files with go:embed, so a binary carries exactly
// the schema it was built against.
//
// A migration is a file named NNNN_name.up.<ext>: NNNN is its version, a
// positive integer (leading zeros for sorting by eye only), name is lower
// case letters, digits and underscores. Only "up" migrations exist: a schema
// goes forward; a mistake is fixed by a new migration. Files ending in
// .down.<ext> are ignored, and so are files not ending in .<ext> (a
// README); any other .<ext> file is an error, so that a misnamed migration
// is never skipped silently.
package migrations

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Migration is one versioned file.
type Migration struct {
	Version  int64
	Name     string // the part after NNNN_, without the suffix
	File     string // the path in the file system it came from
	Body     string
	Checksum string // hex SHA-256 of Body
}

// Source names a component's migrations. Component is recorded with every
// version and keys the lock that serializes runners, so several components
// (identity, orders, …) can keep their own version sequences in one
// database.
type Source struct {
	Component string // e.g. "identity"; lower case letters, digits, '_', '-'
	FS        fs.FS
	Dir       string // directory in FS holding the files; "" means "."
}

var componentPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Load reads every migration of src whose name ends in ".up."+ext, sorted
// by version. It fails on a malformed name, a duplicate version, an empty
// file or an empty set.
func Load(src Source, ext string) ([]Migration, error) {
	if !componentPattern.MatchString(src.Component) {
		return nil, fmt.Errorf("migrations: component %q must match %s", src.Component, componentPattern)
	}
	if src.FS == nil {
		return nil, fmt.Errorf("migrations: %s: no file system", src.Component)
	}
	dir := src.Dir
	if dir == "" {
		dir = "."
	}
	entries, err := fs.ReadDir(src.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %s: %w", src.Component, err)
	}
	upSuffix, downSuffix := ".up."+ext, ".down."+ext
	namePattern := regexp.MustCompile(`^([0-9]{1,18})_([a-z0-9_]{1,100})` + regexp.QuoteMeta(upSuffix) + `$`)
	var out []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), downSuffix) || !strings.HasSuffix(e.Name(), "."+ext) {
			continue
		}
		m := namePattern.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations: %s: file %q is not named NNNN_name%s", src.Component, e.Name(), upSuffix)
		}
		v, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("migrations: %s: file %q: version must be a positive integer", src.Component, e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations: %s: files %q and %q have the same version %d", src.Component, prev, e.Name(), v)
		}
		seen[v] = e.Name()
		file := path.Join(dir, e.Name())
		b, err := fs.ReadFile(src.FS, file)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", src.Component, err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("migrations: %s: file %q is empty", src.Component, e.Name())
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: m[2], File: file, Body: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("migrations: %s: no *%s files in %q", src.Component, upSuffix, dir)
	}
	slices.SortFunc(out, func(a, b Migration) int { return cmp.Compare(a.Version, b.Version) })
	return out, nil
}

// Applied is what a runner recorded for one version.
type Applied struct {
	Version  int64
	Name     string
	Checksum string
}

// Verify compares the recorded versions with the files: a recorded version
// whose file changed is an error (ErrChecksumMismatch), since the database
// no longer matches what the code says it ran. Recorded versions without a
// file (a newer binary migrated the database; this one is older, as during
// a rolling deploy) are returned as unknown and are not an error.
func Verify(component string, files []Migration, applied []Applied) (unknown []int64, err error) {
	byVersion := make(map[int64]Migration, len(files))
	for _, f := range files {
		byVersion[f.Version] = f
	}
	for _, a := range applied {
		f, ok := byVersion[a.Version]
		if !ok {
			unknown = append(unknown, a.Version)
			continue
		}
		if f.Checksum != a.Checksum {
			return unknown, fmt.Errorf("%w: %s version %d (%s): recorded %s, file %s has %s",
				ErrChecksumMismatch, component, a.Version, a.Name, short(a.Checksum), f.File, short(f.Checksum))
		}
	}
	return unknown, nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// ErrChecksumMismatch means an applied migration's file was edited after it
// ran. Runners refuse to go on: write a new migration instead.
var ErrChecksumMismatch = errors.New("migrations: an applied migration was changed")

// Result reports what one run did.
type Result struct {
	Applied []int64 // versions this run applied, in order
	Skipped []int64 // versions already applied (by an earlier or a concurrent run)
	Unknown []int64 // recorded versions this binary has no file for
}
