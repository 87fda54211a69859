package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/queue"
)

func testRecords() []journalRecord {
	at := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	var rs []journalRecord
	for i := range 5 {
		var t queue.TicketID
		t[0], t[15] = byte(i), 0xee
		rs = append(rs, journalRecord{typ: recJoin, ticket: t, at: at.Add(time.Duration(i) * time.Millisecond), pre: i%2 == 0})
	}
	rs = append(rs, journalRecord{typ: recDraw, seed: bytes.Repeat([]byte{7}, queue.SeedSize)})
	rs = append(rs, journalRecord{typ: recAdmit, n: 3, at: at.Add(time.Minute)})
	var t queue.TicketID
	t[3] = 9
	return append(rs, journalRecord{typ: recJoin, ticket: t, at: at.Add(2 * time.Minute)})
}

func writeRecords(j *journal, rs []journalRecord) {
	for _, r := range rs {
		switch r.typ {
		case recJoin:
			j.join(r.ticket, r.at, r.pre)
		case recDraw:
			j.draw(r.seed)
		case recAdmit:
			j.admitted(r.n, r.at)
		}
	}
}

func readAll(t *testing.T, path string, digest []byte) []journalRecord {
	t.Helper()
	var got []journalRecord
	j, err := openJournal(path, digest, discardLog(), func(r journalRecord) error {
		got = append(got, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	return got
}

func sameRecord(a, b journalRecord) bool {
	return a.typ == b.typ && a.ticket == b.ticket && a.at.Equal(b.at) && a.pre == b.pre && bytes.Equal(a.seed, b.seed) && a.n == b.n
}

func checkRecords(t *testing.T, got, want []journalRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// Records come back in order; a torn tail (the file cut anywhere) keeps
// every whole record and later appends follow them.
func TestJournalRoundTripAndTornTail(t *testing.T) {
	dir := t.TempDir()
	path := journalPath(dir, "ev-1")
	digest := journalDigest([]byte("key"), time.Unix(100, 0), "c")
	j, err := openJournal(path, digest, discardLog(), func(journalRecord) error {
		t.Fatal("a new journal has no records")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := testRecords()
	writeRecords(j, want)
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, path, digest), want)

	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Record boundaries: the header, then each record.
	ends := []int{1 + journalDigestSize + 4}
	for _, r := range want {
		ends = append(ends, ends[len(ends)-1]+1+payloadSize(r.typ)+4)
	}
	if ends[len(ends)-1] != len(full) {
		t.Fatalf("file is %d bytes, records end at %d", len(full), ends[len(ends)-1])
	}
	if n := 1 + payloadSize(recJoin) + 4; n != 30 {
		t.Fatalf("a join record is %d bytes", n)
	}
	for cut := ends[0]; cut < len(full); cut++ {
		if err := os.WriteFile(path, full[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		whole := 0
		for whole < len(want) && ends[whole+1] <= cut {
			whole++
		}
		checkRecords(t, readAll(t, path, digest), want[:whole])
		if st, _ := os.Stat(path); st.Size() != int64(ends[whole]) {
			t.Fatalf("cut at %d: the torn tail was not dropped (%d bytes)", cut, st.Size())
		}
	}
	// Append after a torn tail.
	if err := os.WriteFile(path, full[:ends[3]+5], 0o600); err != nil {
		t.Fatal(err)
	}
	j, err = openJournal(path, digest, discardLog(), func(journalRecord) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	writeRecords(j, want[3:])
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, path, digest), want)

	// A flipped byte stops the replay at that record.
	bad := bytes.Clone(full)
	bad[ends[2]+3] ^= 1
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, path, digest), want[:2])

	// A journal of another sale is set aside, not replayed.
	if err := os.WriteFile(path, full, 0o600); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, path, journalDigest([]byte("key"), time.Unix(200, 0), "c")), nil)
	if old, err := os.ReadFile(path + ".stale"); err != nil || !bytes.Equal(old, full) {
		t.Fatalf("the other sale's journal was not kept aside: %v", err)
	}
}

// Records reach the file within the flush interval without a close: a
// process crash loses at most that much.
func TestJournalFlushesWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ev.journal")
	digest := journalDigest([]byte("key"), time.Unix(100, 0), "")
	j, err := openJournal(path, digest, discardLog(), func(journalRecord) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.close() })
	want := testRecords()
	writeRecords(j, want)
	var got []journalRecord
	eventually.Nil(t, 5*time.Second, func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		got = got[:0]
		_, err = readJournal(f, digest, func(r journalRecord) error { got = append(got, r); return nil })
		_ = f.Close()
		if err == nil && len(got) != len(want) {
			err = fmt.Errorf("%d of %d records in the file", len(got), len(want))
		}
		return err
	})
	checkRecords(t, got, want)
}

func TestJournalPath(t *testing.T) {
	for id, want := range map[string]string{"finals-2026": "finals-2026.journal", "a/b": "x-612f62.journal", "..": "x-2e2e.journal"} {
		if got := filepath.Base(journalPath("d", id)); got != want {
			t.Errorf("journalPath(%q) = %q, want %q", id, got, want)
		}
	}
}

// A manager restarted on the same journal directory rebuilds the line:
// pre-queue joins, the draw, an admission and later joins give every
// session the same state and place as before.
func TestManagerRestartKeepsTheLine(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, time.Minute, func(c *Config) { c.JournalDir = dir })
	var sessions []string
	for i := range 20 {
		sessions = append(sessions, session(i))
		join(t, f, session(i))
	}
	f.clk.add(time.Minute)
	f.core.decide(t, Decision{Seed: f.core.seed, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Reachable: 100}}})
	<-f.core.lastChunk
	f.clk.add(time.Second)
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 4, Reachable: 100}}})
	for i := 20; i < 27; i++ {
		f.clk.add(time.Millisecond)
		sessions = append(sessions, session(i))
		join(t, f, session(i))
	}
	f.clk.add(time.Second)
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 2, Reachable: 100}}})
	before := map[string]queue.Status{}
	r, _ := f.m.Room(context.Background(), testEvent)
	for _, s := range sessions {
		st, err := r.q.SessionStatus(s)
		if err != nil {
			t.Fatal(err)
		}
		before[s] = st
	}
	if err := f.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	m, err := New(Config{Edge: "edge-t", Now: f.clk.now, UpdateEvery: time.Hour, MinPushInterval: 0, ReportEvery: time.Hour, JournalDir: dir},
		f.core, f.adm, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	r2, err := m.Room(context.Background(), testEvent)
	if err != nil {
		t.Fatal(err)
	}
	admitted := 0
	for _, s := range sessions {
		a := before[s]
		b, err := r2.q.SessionStatus(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if a.State != b.State || a.Position != b.Position || a.Waiting != b.Waiting {
			t.Fatalf("%s after the restart: %s at %d of %d, before %s at %d of %d", s, b.State, b.Position, b.Waiting, a.State, a.Position, a.Waiting)
		}
		if b.State == queue.Admitted {
			admitted++
		}
	}
	if admitted != 6 {
		t.Fatalf("%d admitted, want 6", admitted)
	}
	// The line goes on: a new join is at the back, and admission continues
	// where it stopped.
	st, created, err := m.Join(context.Background(), testEvent, "newcomer")
	if err != nil || !created || st.Position != len(sessions)-admitted+1 {
		t.Fatalf("newcomer: %+v created %v, %v", st, created, err)
	}
	f.clk.add(time.Second)
	f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 1, Reachable: 100}}})
	for _, s := range sessions {
		if before[s].Position == 1 {
			if st, _ := r2.q.SessionStatus(s); st.State != queue.Admitted {
				t.Fatalf("the first in line after the restart is %s", st.State)
			}
		}
	}
}

// A join that went behind a pre-queue closed before the on-sale time (by
// the room, not by the clock) goes behind it again on replay.
func TestManagerRestartEarlyClose(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, time.Minute, func(c *Config) { c.JournalDir = dir })
	for i := range 3 {
		join(t, f, session(i))
	}
	r, _ := f.m.Room(context.Background(), testEvent)
	r.q.ClosePreQueue()
	for i := 3; i < 5; i++ {
		if st := join(t, f, session(i)); st.State != "queued" {
			t.Fatalf("a join after the close: %+v", st)
		}
	}
	before := map[string]queue.Status{}
	for i := range 5 {
		before[session(i)], _ = r.q.SessionStatus(session(i))
	}
	r2 := restart(t, f, dir)
	for s, a := range before {
		if b, _ := r2.q.SessionStatus(s); a.State != b.State || a.Position != b.Position {
			t.Fatalf("%s after the restart: %+v, before %+v", s, b, a)
		}
	}
}

// Joins racing the on-sale time, the draw and admissions replay to the
// same line: the journal's order is the queue's.
func TestManagerRestartConcurrent(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, time.Minute, func(c *Config) { c.JournalDir = dir })
	const workers, per = 4, 150
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range per {
				if _, _, err := f.m.Join(context.Background(), testEvent, session(w*per+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	f.clk.add(time.Minute)
	f.core.decide(t, Decision{Seed: f.core.seed, Edges: []queue.EdgeAdmit{{Edge: "edge-t", Reachable: 1000}}})
	for range 5 {
		f.clk.add(time.Millisecond)
		f.core.decide(t, Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 7, Reachable: 1000}}})
	}
	for range workers {
		<-done
	}
	r, _ := f.m.Room(context.Background(), testEvent)
	before := map[string]queue.Status{}
	for i := range workers * per {
		before[session(i)], _ = r.q.SessionStatus(session(i))
	}
	r2 := restart(t, f, dir)
	for s, a := range before {
		if b, _ := r2.q.SessionStatus(s); a.State != b.State || a.Position != b.Position || a.Waiting != b.Waiting {
			t.Fatalf("%s after the restart: %+v, before %+v", s, b, a)
		}
	}
	if a, b := r.q.Stats(), r2.q.Stats(); a.Admitted != b.Admitted || a.PreQueue != b.PreQueue || a.Tickets != b.Tickets {
		t.Fatalf("stats after the restart %+v, before %+v", b, a)
	}
}

// restart shuts f's manager down and opens a new one on the same journal
// directory and core; it returns the new manager's room of testEvent.
func restart(t *testing.T, f *fixture, dir string) *Room {
	t.Helper()
	if err := f.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Edge: "edge-t", Now: f.clk.now, UpdateEvery: time.Hour, ReportEvery: time.Hour, JournalDir: dir}, f.core, f.adm, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	r, err := m.Room(context.Background(), testEvent)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
