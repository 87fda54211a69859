// Package filelog stores the audit chains in append-only files under a
// directory: the embedded store of `ticketing dev`. Each chain is one file,
// <topic>~<partition>.jsonl ('~' cannot occur in a Kafka topic name), one
// JSON entry per line, opened with O_APPEND and never rewritten. An Append
// call writes each chain's new lines with one write and fsyncs every file
// it wrote (and the directory when it created a file) before it returns.
//
// A process that dies during a write may leave a chain's last line
// incomplete (no newline): Open cuts it off, so that the chain ends with
// its last complete entry and the consumer resumes after it. A complete
// line that cannot be decoded is not repaired: Verify reports it, and
// Append refuses to extend that chain until someone looks.
//
// One process at a time may use a directory: the store keeps the chains'
// heads and the event ids in memory (loaded by Open).
package filelog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/audit"
)

// Config configures the store.
type Config struct {
	// Dir holds the chain files; created if missing. Required.
	Dir string
	// Logger reports repaired files. Default slog.Default().
	Logger *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.Dir) == "" {
		return errs.E("audit.filelog.config", errs.Invalid, "a directory is required")
	}
	return nil
}

const suffix = ".jsonl"

// Line is the JSON of one entry: one line of a chain file. Exported for
// tests that edit files.
type Line struct {
	Seq       int64      `json:"seq"`
	Topic     string     `json:"topic"`
	Partition int32      `json:"partition"`
	Offset    int64      `json:"offset"`
	EventID   string     `json:"event_id"`
	Type      string     `json:"type"`
	Time      time.Time  `json:"time"`
	Body      []byte     `json:"body"`
	PrevHash  audit.Hash `json:"prev_hash"`
	Hash      audit.Hash `json:"hash"`
}

// LineOf returns the line of e.
func LineOf(e audit.Entry) Line {
	return Line{e.Seq, e.Topic, e.Partition, e.Offset, e.EventID, e.Type, e.Time, e.Body, e.PrevHash, e.Hash}
}

// Entry returns the entry of l.
func (l Line) Entry() audit.Entry {
	return audit.Entry{Seq: l.Seq, Topic: l.Topic, Partition: l.Partition, Offset: l.Offset, EventID: l.EventID,
		Type: l.Type, Time: l.Time.UTC(), Body: l.Body, PrevHash: l.PrevHash, Hash: l.Hash}
}

// DecodeLine decodes one line (without its newline).
func DecodeLine(b []byte) (audit.Entry, error) {
	var l Line
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&l); err != nil {
		return audit.Entry{}, err
	}
	if d.More() {
		return audit.Entry{}, errors.New("trailing data after the entry")
	}
	return l.Entry(), nil
}

// FileName is the file of chain c.
func FileName(c audit.Chain) string {
	return c.Topic + "~" + strconv.FormatInt(int64(c.Partition), 10) + suffix
}

func chainOf(name string) (audit.Chain, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	i := strings.LastIndexByte(base, '~')
	if !ok || i <= 0 {
		return audit.Chain{}, false
	}
	p, err := strconv.ParseInt(base[i+1:], 10, 32)
	if err != nil || p < 0 {
		return audit.Chain{}, false
	}
	return audit.Chain{Topic: base[:i], Partition: int32(p)}, true
}

// Store is an audit.Store on files.
type Store struct {
	cfg   Config
	mu    sync.Mutex
	heads map[audit.Chain]audit.Head
	// broken chains end with a line Open could not decode.
	broken map[audit.Chain]error
	ids    map[string]bool
	files  map[audit.Chain]*os.File
	closed bool
}

var _ audit.Store = (*Store)(nil)

// Open opens the store in c.Dir, reading every chain to learn its head and
// its event ids, and cutting off an incomplete last line.
func Open(c Config) (*Store, error) {
	const op = "audit.filelog.open"
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Dir, 0o750); err != nil {
		return nil, errs.E(op, err)
	}
	s := &Store{cfg: c, heads: map[audit.Chain]audit.Head{}, broken: map[audit.Chain]error{},
		ids: map[string]bool{}, files: map[audit.Chain]*os.File{}}
	chains, err := s.chains()
	if err != nil {
		return nil, errs.E(op, err)
	}
	for _, ch := range chains {
		if err := s.load(ch); err != nil {
			return nil, errs.E(op, err)
		}
	}
	return s, nil
}

// load reads chain ch's file: its head, its ids; it cuts a torn last line.
func (s *Store) load(ch audit.Chain) error {
	path := filepath.Join(s.cfg.Dir, FileName(ch))
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var good int64 // bytes up to the end of the last complete line
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				s.cfg.Logger.Warn("audit: cutting off an incomplete last entry (a write interrupted by a crash)",
					"chain", ch.String(), "file", path, "bytes", len(line))
				if err := os.Truncate(path, good); err != nil {
					return err
				}
			}
			return nil
		}
		if err != nil {
			return err
		}
		good += int64(len(line))
		e, derr := DecodeLine(line[:len(line)-1])
		if derr != nil {
			s.broken[ch] = fmt.Errorf("chain %s: a stored entry cannot be decoded (run audit verify): %w", ch, derr)
			continue
		}
		delete(s.broken, ch)
		s.heads[ch] = audit.Head{Seq: e.Seq, Offset: e.Offset, Hash: e.Hash}
		if e.EventID != "" {
			s.ids[e.EventID] = true
		}
	}
}

// Close closes the files. Calling it more than once is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errList []error
	for c, f := range s.files {
		errList = append(errList, f.Close())
		delete(s.files, c)
	}
	return errors.Join(errList...)
}

// Append implements audit.Store.
func (s *Store) Append(ctx context.Context, recs []audit.Record) (audit.AppendResult, error) {
	const op = "audit.append"
	if err := ctx.Err(); err != nil {
		return audit.AppendResult{}, errs.E(op, errs.Unavailable, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return audit.AppendResult{}, errs.E(op, errs.Unavailable, "the store is closed", fs.ErrClosed)
	}
	known := map[string]bool{}
	for _, id := range audit.IDs(recs) {
		if s.ids[id] {
			known[id] = true
		}
	}
	entries, res, err := audit.Plan(s.heads, known, recs)
	if err != nil {
		return audit.AppendResult{}, errs.E(op, err)
	}
	byChain := map[audit.Chain][]audit.Entry{}
	var order []audit.Chain
	for _, e := range entries {
		c := e.Chain()
		if byChain[c] == nil {
			order = append(order, c)
		}
		byChain[c] = append(byChain[c], e)
	}
	for _, c := range order {
		if err := s.broken[c]; err != nil {
			return audit.AppendResult{}, errs.E(op, errs.Other, err)
		}
	}
	slices.SortFunc(order, func(a, b audit.Chain) int {
		if a.Less(b) {
			return -1
		}
		return 1
	})
	newFile := false
	var written []*os.File
	for _, c := range order {
		f, created, err := s.file(c)
		if err != nil {
			return audit.AppendResult{}, errs.E(op, err)
		}
		newFile = newFile || created
		var buf bytes.Buffer
		for _, e := range byChain[c] {
			b, err := json.Marshal(LineOf(e))
			if err != nil {
				return audit.AppendResult{}, errs.E(op, err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
		if _, err := f.Write(buf.Bytes()); err != nil {
			// The file may end with part of the buffer: reopening cuts an
			// incomplete line; complete lines are entries like any other.
			// Until then this store's heads are unknown.
			s.closed = true
			return audit.AppendResult{}, errs.E(op, errs.Unavailable, fmt.Errorf("write %s (reopen the store): %w", f.Name(), err))
		}
		written = append(written, f)
		last := byChain[c][len(byChain[c])-1]
		s.heads[c] = audit.Head{Seq: last.Seq, Offset: last.Offset, Hash: last.Hash}
		for _, e := range byChain[c] {
			if e.EventID != "" {
				s.ids[e.EventID] = true
			}
		}
	}
	for _, f := range written {
		if err := f.Sync(); err != nil {
			s.closed = true
			return audit.AppendResult{}, errs.E(op, errs.Unavailable, fmt.Errorf("fsync %s (reopen the store): %w", f.Name(), err))
		}
	}
	if newFile {
		if err := syncDir(s.cfg.Dir); err != nil {
			return audit.AppendResult{}, errs.E(op, errs.Unavailable, err)
		}
	}
	return res, nil
}

// file returns chain c's file, open for appending.
func (s *Store) file(c audit.Chain) (*os.File, bool, error) {
	if f := s.files[c]; f != nil {
		return f, false, nil
	}
	path := filepath.Join(s.cfg.Dir, FileName(c))
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, false, err
	}
	s.files[c] = f
	return f, errors.Is(statErr, os.ErrNotExist), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Heads implements audit.Store.
func (s *Store) Heads(ctx context.Context, chains []audit.Chain) (map[audit.Chain]audit.Head, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[audit.Chain]audit.Head{}
	for _, c := range chains {
		if h, ok := s.heads[c]; ok {
			out[c] = h
		}
	}
	return out, nil
}

// Chains implements audit.Reader: the chains with a file.
func (s *Store) Chains(ctx context.Context) ([]audit.Chain, error) {
	return s.chains()
}

func (s *Store) chains() ([]audit.Chain, error) {
	des, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return nil, errs.E("audit.chains", err)
	}
	var out []audit.Chain
	for _, de := range des {
		if c, ok := chainOf(de.Name()); ok && de.Type().IsRegular() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b audit.Chain) int {
		if a.Less(b) {
			return -1
		}
		return 1
	})
	return out, nil
}

// Entries implements audit.Reader. It reads complete lines only, so it may
// run while entries are appended.
func (s *Store) Entries(ctx context.Context, c audit.Chain, fn func(audit.Entry) error) error {
	f, err := os.Open(filepath.Join(s.cfg.Dir, FileName(c)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errs.E("audit.entries", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var pos int64
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return nil // an incomplete line is being written
		}
		if err != nil {
			return errs.E("audit.entries", err)
		}
		pos++
		e, err := DecodeLine(line[:len(line)-1])
		if err != nil {
			return &audit.MalformedError{Chain: c, Position: pos, Err: err}
		}
		if err := fn(e); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Reader is a read-only view of the chains in dir, for Verify: unlike Open
// it neither creates, repairs nor loads anything, so verifying never
// changes the evidence, and it may run beside a process that appends.
func Reader(dir string) audit.Reader { return &Store{cfg: Config{Dir: dir}} }
