package psp

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func replayAll(t *testing.T, dir string) (got []string, torn int64) {
	t.Helper()
	j, torn, err := openJournal(dir, func(p []byte) error { got = append(got, string(p)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	return got, torn
}

func TestJournalReplaysWhatWasAppended(t *testing.T) {
	dir := t.TempDir()
	j, _, err := openJournal(dir, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if err := j.append(fmt.Appendf(nil, "record %d", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	j.appendLater([]byte("later"))
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	if err := j.append([]byte("x")); err != errJournalClosed {
		t.Errorf("append after close: %v", err)
	}
	got, torn := replayAll(t, dir)
	if len(got) != 101 || torn != 0 || got[100] != "later" {
		t.Fatalf("%d records (torn %d): %q", len(got), torn, got)
	}
	if syncs := j.syncs.Load(); syncs > 101 {
		t.Errorf("%d syncs for 101 records", syncs)
	}
}

// TestJournalCutsATornTail: whatever a crash left after the last whole
// record is cut off, and appends go on from there.
func TestJournalCutsATornTail(t *testing.T) {
	flipped := frame([]byte("flipped"))
	flipped[10] ^= 1
	for _, c := range []struct {
		tail  []byte
		whole int // records in the journal after the cut
	}{
		{[]byte{1, 0}, 1},                          // half a header
		{[]byte{200, 0, 0, 0, 1, 2, 3, 4, 'x'}, 1}, // a header and half its payload
		{append(frame([]byte("whole")), 0xff), 2},  // a stray byte after a whole record
		{flipped, 1}, // a checksum that fails
	} {
		tail, wantN := c.tail, c.whole
		dir := t.TempDir()
		j, _, err := openJournal(dir, func([]byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := j.append([]byte("first")); err != nil {
			t.Fatal(err)
		}
		j.close()
		f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(tail)
		f.Close()
		got, torn := replayAll(t, dir)
		if len(got) != wantN || torn == 0 {
			t.Errorf("tail %v: %q, torn %d", tail, got, torn)
		}
		j, _, err = openJournal(dir, func([]byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		j.append([]byte("after"))
		j.close()
		if got, torn := replayAll(t, dir); len(got) != wantN+1 || got[len(got)-1] != "after" || torn != 0 {
			t.Errorf("tail %v, then an append: %q, torn %d", tail, got, torn)
		}
	}
}

// BenchmarkJournalAppend: records of a confirm's size appended by many
// goroutines at once, each waiting for its fsync: the group commit's
// throughput. ns/op is per record; records/sync says how many share one
// fsync.
func BenchmarkJournalAppend(b *testing.B) {
	for _, par := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprint("goroutines_per_cpu=", par), func(b *testing.B) {
			j, _, err := openJournal(b.TempDir(), func([]byte) error { return nil })
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 1200)
			for i := range payload {
				payload[i] = 'a' + byte(i%26)
			}
			b.SetParallelism(par)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := j.append(payload); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(j.frames.Load())/float64(max(j.syncs.Load(), 1)), "records/sync")
			j.close()
		})
	}
}
