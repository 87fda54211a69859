package filelog_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/audittest"
	"github.com/ticketing/ticketing/services/audit/filelog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t *testing.T, dir string) *filelog.Store {
	t.Helper()
	s, err := filelog.Open(filelog.Config{Dir: dir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// files edits chain files line by line.
type files struct{ dir string }

func (f files) edit(t *testing.T, c audit.Chain, fn func(lines [][]byte) [][]byte) {
	t.Helper()
	path := filepath.Join(f.dir, filelog.FileName(c))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	lines = fn(lines)
	if err := os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o640); err != nil {
		t.Fatal(err)
	}
}

// index returns the index of the line of entry seq.
func index(t *testing.T, lines [][]byte, seq int64) int {
	t.Helper()
	for i, l := range lines {
		var x filelog.Line
		if err := json.Unmarshal(l, &x); err == nil && x.Seq == seq {
			return i
		}
	}
	t.Fatalf("no line of seq %d", seq)
	return -1
}

func (f files) editLine(t *testing.T, c audit.Chain, seq int64, fn func(*filelog.Line)) {
	f.edit(t, c, func(lines [][]byte) [][]byte {
		i := index(t, lines, seq)
		var x filelog.Line
		if err := json.Unmarshal(lines[i], &x); err != nil {
			t.Fatal(err)
		}
		fn(&x)
		b, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = b
		return lines
	})
}

func (f files) SetBody(t *testing.T, c audit.Chain, seq int64, body []byte) {
	f.editLine(t, c, seq, func(l *filelog.Line) { l.Body = body })
}

func (f files) SetHash(t *testing.T, c audit.Chain, seq int64, h audit.Hash) {
	f.editLine(t, c, seq, func(l *filelog.Line) { l.Hash = h })
}

func (f files) Delete(t *testing.T, c audit.Chain, seq int64) {
	f.edit(t, c, func(lines [][]byte) [][]byte {
		i := index(t, lines, seq)
		return append(lines[:i], lines[i+1:]...)
	})
}

func (f files) Swap(t *testing.T, c audit.Chain, a, b int64) {
	f.edit(t, c, func(lines [][]byte) [][]byte {
		i, j := index(t, lines, a), index(t, lines, b)
		lines[i], lines[j] = lines[j], lines[i]
		return lines
	})
}

func TestContract(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Harness {
		dir := t.TempDir()
		return audittest.Harness{
			Store:  open(t, dir),
			Tamper: files{dir},
			Reopen: func(t *testing.T) audit.Store { return open(t, dir) },
		}
	})
}

func TestConfig(t *testing.T) {
	c := filelog.Config{}
	c.Defaults()
	if err := c.Validate(); !errs.Is(errs.Invalid, err) {
		t.Fatalf("no dir: %v", err)
	}
}

var c0 = audit.Chain{Topic: "ticketing.inventory", Partition: 7}

// A crash during a write leaves an incomplete last line: reopening cuts it
// off, the chain ends with its last complete entry, and appending resumes
// after it.
func TestTornWriteIsCut(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	recs := audittest.Records(c0, 0, 4, "x")
	if _, err := s.Append(audittest.Ctx(t), recs[:2]); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	path := filepath.Join(dir, filelog.FileName(c0))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":3,"topic":"ticketing.inv`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s = open(t, dir)
	heads, _ := s.Heads(audittest.Ctx(t), []audit.Chain{c0})
	if n, _ := heads[c0].NextOffset(); n != 2 || heads[c0].Seq != 2 {
		t.Fatalf("head after a torn write: %+v", heads[c0])
	}
	res, err := s.Append(audittest.Ctx(t), recs)
	if err != nil || res.Appended != 2 || res.Redelivered != 2 {
		t.Fatalf("append after a torn write: %+v, %v", res, err)
	}
	if got := audittest.All(t, s, c0); len(got) != 4 {
		t.Fatalf("%d entries", len(got))
	}
	audittest.MustVerify(t, s)
}

// A complete line that is not an entry is reported by Verify, and the
// chain is not extended while its last entry is unreadable.
func TestGarbageLine(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.Append(audittest.Ctx(t), audittest.Records(c0, 0, 3, "g")); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	files{dir}.edit(t, c0, func(lines [][]byte) [][]byte { return append(lines, []byte("garbage")) })
	s = open(t, dir)
	rep, err := audit.Verify(audittest.Ctx(t), s)
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Chains[0].Problem; p == nil || p.Kind != audit.Malformed || p.Position != 4 {
		t.Fatalf("report:\n%s", rep.String())
	}
	if _, err := s.Append(audittest.Ctx(t), audittest.Records(c0, 3, 1, "h")); err == nil {
		t.Fatal("appended after an unreadable last entry")
	}
}
