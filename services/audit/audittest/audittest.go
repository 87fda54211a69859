// Package audittest is the contract suite of audit.Store: the PostgreSQL
// store and the embedded file store both run it, including Verify against
// storage tampered with underneath the store (an SQL UPDATE by the table's
// owner, an edited file).
package audittest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/audit"
)

// Tamper edits a store's raw storage behind its back, the way someone with
// direct access to the database or the files would.
type Tamper interface {
	// SetBody replaces the body of entry seq of chain c, keeping its hash.
	SetBody(t *testing.T, c audit.Chain, seq int64, body []byte)
	// SetHash replaces the stored hash of entry seq of chain c.
	SetHash(t *testing.T, c audit.Chain, seq int64, h audit.Hash)
	// Delete removes entry seq of chain c.
	Delete(t *testing.T, c audit.Chain, seq int64)
	// Swap exchanges the stored positions of entries a and b of chain c,
	// each kept intact.
	Swap(t *testing.T, c audit.Chain, a, b int64)
}

// Harness is one store under test.
type Harness struct {
	Store  audit.Store
	Tamper Tamper
	// Reopen returns a new store on the same storage, as after a restart.
	Reopen func(t *testing.T) audit.Store
}

// Run runs the suite; newHarness returns an empty store for each subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"Redelivery", testRedelivery},
		{"DuplicateEventID", testDuplicateEventID},
		{"MalformedBodyKept", testMalformedBodyKept},
		{"OrderRequired", testOrderRequired},
		{"TooLarge", testTooLarge},
		{"ConcurrentChains", testConcurrentChains},
		{"Reopen", testReopen},
		{"VerifyEmpty", testVerifyEmpty},
		{"TamperChangedBody", testChangedBody},
		{"TamperChangedHash", testChangedHash},
		{"TamperDeleted", testDeleted},
		{"TamperSwapped", testSwapped},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newHarness(t)) })
	}
}

// Ctx is a context for one test.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// Body returns a CloudEvents body with id and type.
func Body(id, typ string, at time.Time) []byte {
	b, err := cloudevents.Encode(&cloudevents.Event{
		SpecVersion: cloudevents.SpecVersion, ID: id, Source: "/test", Type: typ, Time: at,
		PartitionKey: "arena-concert",
	}, map[string]any{"event_id": "arena-concert", "at": at})
	if err != nil {
		panic(err)
	}
	return b
}

// at has nanoseconds and a zone, so the stores' normalization shows.
var at = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

// Records returns n records of chain c from offset first, event ids
// prefix-0, prefix-1, …
func Records(c audit.Chain, first int64, n int, prefix string) []audit.Record {
	recs := make([]audit.Record, n)
	for i := range recs {
		recs[i] = audit.Record{Topic: c.Topic, Partition: c.Partition, Offset: first + int64(i),
			Body: Body(fmt.Sprintf("%s-%d", prefix, i), "ticketing.inventory.hold.placed", at.Add(time.Duration(i)*time.Second))}
	}
	return recs
}

// All reads every entry of chain c.
func All(t testing.TB, r audit.Reader, c audit.Chain) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := r.Entries(Ctx(t), c, func(e audit.Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustAppend(t *testing.T, s audit.Store, recs []audit.Record, want audit.AppendResult) {
	t.Helper()
	got, err := s.Append(Ctx(t), recs)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("append: %+v, want %+v", got, want)
	}
}

// MustVerify verifies and fails the test unless every chain verified.
func MustVerify(t testing.TB, r audit.Reader) audit.Report {
	t.Helper()
	rep, err := audit.Verify(Ctx(t), r)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify:\n%s", rep.String())
	}
	return rep
}

var (
	c0 = audit.Chain{Topic: "ticketing.inventory", Partition: 0}
	c1 = audit.Chain{Topic: "ticketing.inventory", Partition: 1}
	c2 = audit.Chain{Topic: "ticketing.events", Partition: 3}
)

func testAppendAndRead(t *testing.T, h Harness) {
	s := h.Store
	recs := append(Records(c0, 10, 3, "a"), Records(c1, 0, 2, "b")...)
	mustAppend(t, s, recs, audit.AppendResult{Appended: 5})
	got := All(t, s, c0)
	if len(got) != 3 {
		t.Fatalf("chain %s has %d entries, want 3", c0, len(got))
	}
	var prev audit.Hash
	for i, e := range got {
		want := audit.Entry{Seq: int64(i + 1), Topic: c0.Topic, Partition: c0.Partition, Offset: int64(10 + i),
			EventID: fmt.Sprintf("a-%d", i), Type: "ticketing.inventory.hold.placed",
			Time: audit.NormalizeTime(at.Add(time.Duration(i) * time.Second)), Body: recs[i].Body, PrevHash: prev}
		want.Hash = want.ComputeHash()
		if e.Seq != want.Seq || e.Offset != want.Offset || e.EventID != want.EventID || e.Type != want.Type ||
			!e.Time.Equal(want.Time) || e.Time.Location() != time.UTC || string(e.Body) != string(want.Body) ||
			e.PrevHash != want.PrevHash || e.Hash != want.Hash {
			t.Fatalf("entry %d:\n got  %+v\n want %+v", i, e, want)
		}
		prev = e.Hash
	}
	heads, err := s.Heads(Ctx(t), []audit.Chain{c0, c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[c0] != (audit.Head{Seq: 3, Offset: 12, Hash: got[2].Hash}) || heads[c1].Seq != 2 || heads[c1].Offset != 1 {
		t.Fatalf("heads: %+v", heads)
	}
	if n, ok := heads[c0].NextOffset(); !ok || n != 13 {
		t.Fatalf("next offset of %s: %d %v", c0, n, ok)
	}
	chains, err := s.Chains(Ctx(t))
	if err != nil || len(chains) != 2 || chains[0] != c0 || chains[1] != c1 {
		t.Fatalf("chains: %v, %v", chains, err)
	}
	rep := MustVerify(t, s)
	if rep.Chains[0].Entries != 3 || rep.Chains[0].Head != heads[c0] {
		t.Fatalf("report: %+v", rep)
	}
}

func testRedelivery(t *testing.T, h Harness) {
	s := h.Store
	recs := Records(c0, 0, 6, "r")
	mustAppend(t, s, recs[:4], audit.AppendResult{Appended: 4})
	// A batch that overlaps what was appended: the first records are
	// skipped, the rest appended.
	mustAppend(t, s, recs[2:], audit.AppendResult{Appended: 2, Redelivered: 2})
	mustAppend(t, s, recs, audit.AppendResult{Redelivered: 6})
	if got := All(t, s, c0); len(got) != 6 || got[5].Offset != 5 || got[5].Seq != 6 {
		t.Fatalf("entries: %d", len(got))
	}
	MustVerify(t, s)
}

func testDuplicateEventID(t *testing.T, h Harness) {
	s := h.Store
	mustAppend(t, s, Records(c0, 0, 2, "d"), audit.AppendResult{Appended: 2})
	// The bridge produced d-1 again (after a crash) at a new offset, on
	// the same partition and, after a repartition, on another one; and a
	// batch carries one id twice.
	dup := []audit.Record{
		{Topic: c0.Topic, Partition: c0.Partition, Offset: 2, Body: Body("d-1", "ticketing.inventory.hold.placed", at)},
		{Topic: c0.Topic, Partition: c0.Partition, Offset: 3, Body: Body("d-2", "ticketing.inventory.hold.placed", at)},
		{Topic: c1.Topic, Partition: c1.Partition, Offset: 0, Body: Body("d-0", "ticketing.inventory.hold.placed", at)},
		{Topic: c1.Topic, Partition: c1.Partition, Offset: 1, Body: Body("d-2", "ticketing.inventory.hold.placed", at)},
		{Topic: c1.Topic, Partition: c1.Partition, Offset: 2, Body: Body("d-3", "ticketing.inventory.hold.placed", at)},
	}
	mustAppend(t, s, dup, audit.AppendResult{Appended: 2, Duplicates: 3})
	if got := All(t, s, c0); len(got) != 3 || got[2].EventID != "d-2" || got[2].Offset != 3 {
		t.Fatalf("chain %s: %+v", c0, got)
	}
	if got := All(t, s, c1); len(got) != 1 || got[0].EventID != "d-3" || got[0].Seq != 1 {
		t.Fatalf("chain %s: %+v", c1, got)
	}
	MustVerify(t, s)
}

func testMalformedBodyKept(t *testing.T, h Harness) {
	s := h.Store
	recs := []audit.Record{
		{Topic: c0.Topic, Partition: c0.Partition, Offset: 0, Body: []byte("not json")},
		{Topic: c0.Topic, Partition: c0.Partition, Offset: 1, Body: nil},
		{Topic: c0.Topic, Partition: c0.Partition, Offset: 2, Body: []byte(`{"specversion":"1.0"}`)},
	}
	mustAppend(t, s, recs, audit.AppendResult{Appended: 3})
	got := All(t, s, c0)
	if len(got) != 3 || string(got[0].Body) != "not json" || got[0].EventID != "" || len(got[1].Body) != 0 || !got[2].Time.Equal(time.Unix(0, 0)) {
		t.Fatalf("entries: %+v", got)
	}
	MustVerify(t, s)
}

func testOrderRequired(t *testing.T, h Harness) {
	s := h.Store
	recs := Records(c0, 0, 3, "o")
	recs[1], recs[2] = recs[2], recs[1]
	if _, err := s.Append(Ctx(t), recs); !errs.Is(errs.Invalid, err) {
		t.Fatalf("append out of order: %v, want invalid", err)
	}
	if got := All(t, s, c0); len(got) != 0 {
		t.Fatalf("%d entries appended by a refused call", len(got))
	}
}

func testTooLarge(t *testing.T, h Harness) {
	s := h.Store
	recs := Records(c0, 0, 2, "l")
	recs[1].Body = make([]byte, audit.MaxBodyBytes+1)
	if _, err := s.Append(Ctx(t), recs); !errs.Is(errs.TooLarge, err) {
		t.Fatalf("append of a huge body: %v, want too large", err)
	}
	if got := All(t, s, c0); len(got) != 0 {
		t.Fatalf("%d entries appended by a refused call", len(got))
	}
}

func testConcurrentChains(t *testing.T, h Harness) {
	s := h.Store
	const writers, batches, per = 4, 5, 20
	var wg sync.WaitGroup
	errc := make(chan error, 2*writers*batches)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := audit.Chain{Topic: "ticketing.events", Partition: int32(w)}
			for b := range batches {
				recs := Records(c, int64(b*per), per, fmt.Sprintf("w%d-b%d", w, b))
				// Two writers for each chain, as in a rebalance: every
				// record must be appended once.
				for range 2 {
					if _, err := s.Append(Ctx(t), recs); err != nil && !errs.Is(errs.Conflict, err) && !errs.Is(errs.Unavailable, err) {
						errc <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for w := range writers {
		c := audit.Chain{Topic: "ticketing.events", Partition: int32(w)}
		if got := All(t, s, c); len(got) != batches*per {
			t.Fatalf("chain %s has %d entries, want %d", c, len(got), batches*per)
		}
	}
	MustVerify(t, s)
}

func testReopen(t *testing.T, h Harness) {
	mustAppend(t, h.Store, Records(c0, 0, 3, "p"), audit.AppendResult{Appended: 3})
	s := h.Reopen(t)
	heads, err := s.Heads(Ctx(t), []audit.Chain{c0})
	if err != nil || heads[c0].Seq != 3 || heads[c0].Offset != 2 {
		t.Fatalf("heads after reopening: %+v, %v", heads, err)
	}
	// Event ids are remembered too.
	recs := append(Records(c0, 3, 1, "p"), Records(c0, 4, 1, "q")...)
	mustAppend(t, s, recs, audit.AppendResult{Appended: 1, Duplicates: 1})
	MustVerify(t, s)
}

func testVerifyEmpty(t *testing.T, h Harness) {
	rep := MustVerify(t, h.Store)
	if len(rep.Chains) != 0 || rep.String() != "audit log is empty\n" {
		t.Fatalf("report of an empty log: %+v", rep)
	}
}

// tampered appends two chains of 5, lets tamper edit chain c0, and
// returns the report: c1 must still verify.
func tampered(t *testing.T, h Harness, tamper func()) audit.ChainReport {
	t.Helper()
	mustAppend(t, h.Store, append(Records(c0, 100, 5, "t"), Records(c1, 0, 5, "u")...), audit.AppendResult{Appended: 10})
	MustVerify(t, h.Store)
	tamper()
	rep, err := audit.Verify(Ctx(t), h.Store)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Chains) != 2 || rep.Chains[0].Chain != c0 || rep.Chains[1].Problem != nil {
		t.Fatalf("report:\n%s", rep.String())
	}
	cr := rep.Chains[0]
	if cr.Problem == nil {
		t.Fatalf("tampering not detected:\n%s", rep.String())
	}
	t.Logf("report:\n%s", rep.String())
	return cr
}

func wantProblem(t *testing.T, cr audit.ChainReport, kind audit.ProblemKind, seq int64) {
	t.Helper()
	if cr.Problem.Kind != kind || cr.Problem.Seq != seq {
		t.Fatalf("problem %+v, want %s at seq %d", cr.Problem, kind, seq)
	}
}

func testChangedBody(t *testing.T, h Harness) {
	cr := tampered(t, h, func() {
		h.Tamper.SetBody(t, c0, 3, Body("t-2", "ticketing.inventory.hold.released", at))
	})
	wantProblem(t, cr, audit.Changed, 3)
	if cr.Head.Seq != 2 {
		t.Fatalf("head %+v, want seq 2 (the last good entry)", cr.Head)
	}
}

func testChangedHash(t *testing.T, h Harness) {
	cr := tampered(t, h, func() {
		var x audit.Hash
		x[0] = 1
		h.Tamper.SetHash(t, c0, 4, x)
	})
	wantProblem(t, cr, audit.Changed, 4)
}

func testDeleted(t *testing.T, h Harness) {
	cr := tampered(t, h, func() { h.Tamper.Delete(t, c0, 2) })
	// Seq 3 is found where 2 was expected.
	wantProblem(t, cr, audit.Missing, 3)
	if cr.Problem.Position != 2 {
		t.Fatalf("problem at position %d, want 2", cr.Problem.Position)
	}
}

func testSwapped(t *testing.T, h Harness) {
	cr := tampered(t, h, func() { h.Tamper.Swap(t, c0, 2, 4) })
	// Stored order is 1, 4, 3, 2, 5: seq 4 stands where 2 should.
	wantProblem(t, cr, audit.Reordered, 4)
	if cr.Problem.Position != 2 {
		t.Fatalf("problem at position %d, want 2", cr.Problem.Position)
	}
}
