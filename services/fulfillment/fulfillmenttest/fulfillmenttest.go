// Package fulfillmenttest is the contract suite of fulfillment.Store: the
// embedded natskv store and the CQL store both run it, so that one ticket
// per slot holds the same way on either.
package fulfillmenttest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fulfillment"
)

// Run runs the suite. newStore returns a store for a subtest; it need not
// be empty (the suite uses fresh event and order ids), so an
// implementation may share one backing store between subtests. Stores are
// used from many goroutines at once.
func Run(t *testing.T, newStore func(t *testing.T) fulfillment.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, fulfillment.Store)
	}{
		{"IssueAndRead", testIssueAndRead},
		{"FillsIDAndTime", testFillsIDAndTime},
		{"GeneralAdmission", testGeneralAdmission},
		{"SecondIssueConflicts", testSecondIssueConflicts},
		{"RetryIsNotAConflict", testRetryIsNotAConflict},
		{"IDTaken", testIDTaken},
		{"ByOrder", testByOrder},
		{"ByHolder", testByHolder},
		{"CheckIn", testCheckIn},
		{"ConcurrentCheckIns", testConcurrentCheckIns},
		{"Revocations", testRevocations},
		{"Invalid", testInvalid},
		{"NotFound", testNotFound},
		{"ConcurrentSameSlot", testConcurrentSameSlot},
		{"ConcurrentDistinctSlots", testConcurrentDistinctSlots},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func rnd(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// seat is a reserved-seat ticket for a fresh order.
func seat(event, seat string) fulfillment.Ticket {
	return fulfillment.Ticket{
		ID: fulfillment.NewID(), EventID: event, HoldID: event + ".0." + rnd("h"), OrderID: rnd("o-"), Holder: rnd("u_"), Seat: seat,
		IssuedAt:  time.Date(2026, 5, 1, 20, 0, 0, 123456789, time.FixedZone("EST", -5*3600)),
		ValidFrom: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC),
		Device: hash(rnd(""))[:16], KeyID: "k-" + rnd(""), TokenHash: hash(rnd("token")),
	}
}

func mustEqual(t *testing.T, got, want fulfillment.Ticket) {
	t.Helper()
	if got != want || got.IssuedAt.Location() != time.UTC {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func wantKind(t *testing.T, err error, k errs.Kind, reason string) {
	t.Helper()
	if !errs.Is(k, err) {
		t.Fatalf("error %v (kind %v), want kind %v", err, errs.KindOf(err), k)
	}
	if reason != "" && errs.ReasonOf(err) != reason {
		t.Fatalf("error %v has reason %q, want %q", err, errs.ReasonOf(err), reason)
	}
}

func normalized(t *testing.T, tk fulfillment.Ticket) fulfillment.Ticket {
	t.Helper()
	n, err := fulfillment.Normalize(tk, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testIssueAndRead(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	tk := seat(rnd("ev-"), "a-1-1")
	got, err := s.Issue(c, tk)
	if err != nil {
		t.Fatal(err)
	}
	want := normalized(t, tk)
	mustEqual(t, got, want)
	if got.IssuedAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("issued at kept sub-millisecond precision: %v", got.IssuedAt)
	}
	byID, err := s.ByID(c, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, byID, want)
	list, err := s.ByOrder(c, tk.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("ByOrder = %+v, want one ticket", list)
	}
	mustEqual(t, list[0], want)
}

func testFillsIDAndTime(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	tk := seat(rnd("ev-"), "a-1-2")
	tk.ID, tk.IssuedAt = "", time.Time{}
	before := time.Now().Add(-time.Second)
	got, err := s.Issue(c, tk)
	if err != nil {
		t.Fatal(err)
	}
	if !fulfillment.ValidRef(got.ID) || got.IssuedAt.Before(before) || got.IssuedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("Issue filled id %q and time %v", got.ID, got.IssuedAt)
	}
	byID, err := s.ByID(c, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, byID, got)
}

func testGeneralAdmission(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	order := rnd("o-")
	hold := rnd("h-")
	var issued []fulfillment.Ticket
	for i := 1; i <= 3; i++ {
		tk := seat(event, "")
		tk.Zone, tk.Index, tk.OrderID, tk.HoldID = "floor", i, order, hold
		got, err := s.Issue(c, tk)
		if err != nil {
			t.Fatalf("GA slot %d: %v", i, err)
		}
		issued = append(issued, got)
	}
	// Unit 2 of the hold again, for another order: taken.
	again := seat(event, "")
	again.Zone, again.Index, again.HoldID = "floor", 2, hold
	existing, err := s.Issue(c, again)
	wantKind(t, err, errs.Conflict, fulfillment.ReasonSlotIssued)
	mustEqual(t, existing, issued[1])
	// The same index of another hold, of the same hold in another zone,
	// or of another event, is another slot.
	otherHold, otherZone, otherEvent := seat(event, ""), seat(event, ""), seat(rnd("ev-"), "")
	otherHold.Zone, otherHold.Index = "floor", 2
	otherZone.Zone, otherZone.Index, otherZone.HoldID = "balcony", 2, hold
	otherEvent.Zone, otherEvent.Index, otherEvent.HoldID = "floor", 2, hold
	for _, other := range []fulfillment.Ticket{otherHold, otherZone, otherEvent} {
		if _, err := s.Issue(c, other); err != nil {
			t.Fatalf("index 2 of %s in %s of %s: %v", other.HoldID, other.Zone, other.EventID, err)
		}
	}
	list, err := s.ByOrder(c, order)
	if err != nil || len(list) != 3 {
		t.Fatalf("ByOrder = %d tickets, %v; want 3", len(list), err)
	}
}

func testSecondIssueConflicts(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	first, err := s.Issue(c, seat(event, "b-2-7"))
	if err != nil {
		t.Fatal(err)
	}
	second := seat(event, "b-2-7")
	existing, err := s.Issue(c, second)
	wantKind(t, err, errs.Conflict, fulfillment.ReasonSlotIssued)
	if !strings.Contains(err.Error(), first.ID) {
		t.Errorf("the conflict %q does not name the existing ticket %s", err, first.ID)
	}
	mustEqual(t, existing, first)
	// The loser left nothing behind: not by its id, not in its order.
	_, err = s.ByID(c, second.ID)
	wantKind(t, err, errs.NotFound, "")
	if list, err := s.ByOrder(c, second.OrderID); err != nil || len(list) != 0 {
		t.Fatalf("the losing order has tickets: %+v, %v", list, err)
	}
	// Its id is still free for another slot.
	second.Seat = "b-2-8"
	if _, err := s.Issue(c, second); err != nil {
		t.Fatalf("the loser's id on a free slot: %v", err)
	}
}

func testRetryIsNotAConflict(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	tk := seat(rnd("ev-"), "c-3-1")
	first, err := s.Issue(c, tk)
	if err != nil {
		t.Fatal(err)
	}
	// The same issue again, with a later time as a retry would have.
	tk.IssuedAt = tk.IssuedAt.Add(time.Minute)
	again, err := s.Issue(c, tk)
	if err != nil {
		t.Fatalf("retried issue: %v", err)
	}
	mustEqual(t, again, first)
	// The same id and slot for another order is not a retry.
	tk.OrderID = rnd("o-")
	_, err = s.Issue(c, tk)
	wantKind(t, err, errs.Conflict, fulfillment.ReasonSlotIssued)
	if list, _ := s.ByOrder(c, first.OrderID); len(list) != 1 {
		t.Fatalf("ByOrder after retries = %+v, want the one ticket", list)
	}
}

func testIDTaken(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	first, err := s.Issue(c, seat(event, "d-1-1"))
	if err != nil {
		t.Fatal(err)
	}
	dup := seat(event, "d-1-2")
	dup.ID = first.ID
	_, err = s.Issue(c, dup)
	wantKind(t, err, errs.Conflict, fulfillment.ReasonIDTaken)
	got, err := s.ByID(c, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, first)
	// The refused ticket's slot stays free.
	dup.ID = fulfillment.NewID()
	if _, err := s.Issue(c, dup); err != nil {
		t.Fatalf("the slot of a ticket refused for its id: %v", err)
	}
}

func testByOrder(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	order := rnd("o-")
	var ids []string
	for i := range 5 {
		tk := seat(event, fmt.Sprintf("e-1-%d", i+1))
		tk.OrderID = order
		got, err := s.Issue(c, tk)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	if _, err := s.Issue(c, seat(event, "e-2-1")); err != nil { // another order
		t.Fatal(err)
	}
	list, err := s.ByOrder(c, order)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range list {
		if tk.OrderID != order {
			t.Fatalf("ByOrder returned a ticket of order %s", tk.OrderID)
		}
		got = append(got, tk.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("ByOrder ids %v, want %v sorted", got, ids)
	}
	list, err = s.ByOrder(c, rnd("o-"))
	if err != nil || len(list) != 0 {
		t.Fatalf("ByOrder of an order without tickets = %+v, %v", list, err)
	}
}

// A holder's tickets, of several orders and events, and no one else's;
// a ticket whose slot another issue won is not listed.
func testByHolder(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	holder := rnd("u_")
	var ids []string
	for i := range 4 {
		tk := seat(rnd("ev-"), fmt.Sprintf("h-1-%d", i+1))
		tk.Holder = holder
		got, err := s.Issue(c, tk)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got.ID)
	}
	other := seat(rnd("ev-"), "h-9-9")
	if _, err := s.Issue(c, other); err != nil { // another holder's
		t.Fatal(err)
	}
	lost := seat(other.EventID, "h-9-9")
	lost.Holder = holder
	if _, err := s.Issue(c, lost); !errs.Is(errs.Conflict, err) { // the slot is taken
		t.Fatalf("issue of a taken slot: %v", err)
	}
	list, err := s.ByHolder(c, holder)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range list {
		if tk.Holder != holder {
			t.Fatalf("ByHolder returned a ticket of %s", tk.Holder)
		}
		got = append(got, tk.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("ByHolder ids %v, want %v sorted", got, ids)
	}
	for _, who := range []string{rnd("u_"), "", "u.bad"} {
		if list, err := s.ByHolder(c, who); err != nil || len(list) != 0 {
			t.Fatalf("ByHolder(%q) = %+v, %v", who, list, err)
		}
	}
}

// The first check-in of a ticket wins; another gate's is refused with the
// first; the same scan again (its nonce) is the first; another event's
// ticket of the same id is another ticket; a bad check-in writes nothing.
func testCheckIn(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event, ticket := rnd("ev-"), fulfillment.NewID()
	at := time.Date(2026, 6, 1, 19, 30, 0, 123456789, time.FixedZone("X", 3600))
	first := fulfillment.CheckIn{TicketID: ticket, EventID: event, Gate: "north-1", Nonce: rnd("n"), At: at}
	got, err := s.CheckIn(c, first)
	want := first
	want.At = at.UTC().Truncate(time.Millisecond)
	if err != nil || got != want {
		t.Fatalf("first check-in = %+v, %v; want %+v", got, err, want)
	}
	again, err := s.CheckIn(c, first)
	if err != nil || again != want {
		t.Fatalf("the same scan again = %+v, %v", again, err)
	}
	second := fulfillment.CheckIn{TicketID: ticket, EventID: event, Gate: "south-2", Nonce: rnd("n"), At: at.Add(time.Minute)}
	refused, err := s.CheckIn(c, second)
	wantKind(t, err, errs.Conflict, fulfillment.ReasonCheckedIn)
	if refused != want {
		t.Fatalf("a second scan's answer = %+v, want the first %+v", refused, want)
	}
	other := second
	other.EventID = rnd("ev-")
	if _, err := s.CheckIn(c, other); err != nil {
		t.Fatalf("the same id at another event: %v", err)
	}
	for _, bad := range []fulfillment.CheckIn{
		{TicketID: "", EventID: event, Gate: "g", Nonce: "n", At: at},
		{TicketID: fulfillment.NewID(), EventID: "Ev.1", Gate: "g", Nonce: "n", At: at},
		{TicketID: fulfillment.NewID(), EventID: event, Gate: "g 1", Nonce: "n", At: at},
		{TicketID: fulfillment.NewID(), EventID: event, Gate: "g", Nonce: "", At: at},
		{TicketID: fulfillment.NewID(), EventID: event, Gate: "g", Nonce: "n"},
	} {
		if _, err := s.CheckIn(c, bad); !errs.Is(errs.Invalid, err) {
			t.Fatalf("check-in %+v: %v, want invalid", bad, err)
		}
		good := bad
		good.TicketID, good.EventID, good.Gate, good.Nonce, good.At = cmp.Or(bad.TicketID, fulfillment.NewID()), event, "g", "n", at
		if _, err := s.CheckIn(c, good); err != nil {
			t.Fatalf("the invalid check-in wrote something: %v", err)
		}
	}
}

// Many gates check one ticket in at once: exactly one is admitted, and
// every other learns of that one.
func testConcurrentCheckIns(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event, ticket := rnd("ev-"), fulfillment.NewID()
	const n = 8
	got := make([]fulfillment.CheckIn, n)
	errors := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errors[i] = s.CheckIn(c, fulfillment.CheckIn{TicketID: ticket, EventID: event, Gate: fmt.Sprintf("gate-%d", i),
				Nonce: rnd("n"), At: time.Now()})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i, err := range errors {
		switch {
		case err == nil:
			winners++
		case !errs.Is(errs.Conflict, err):
			t.Fatalf("gate %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d gates admitted the ticket", winners)
	}
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("gate %d was told of %+v, gate 0 of %+v", i, got[i], got[0])
		}
	}
}

// A revocation is kept once (the first stays), found by ticket and listed
// per event; another event's are not listed; a bad one writes nothing.
func testRevocations(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	at := time.Date(2026, 6, 1, 19, 30, 0, 123456789, time.UTC)
	var ids []string
	for range 3 {
		r := fulfillment.Revocation{TicketID: fulfillment.NewID(), EventID: event, Reason: "refunded", At: at}
		got, err := s.Revoke(c, r)
		r.At = at.Truncate(time.Millisecond)
		if err != nil || got != r {
			t.Fatalf("Revoke = %+v, %v; want %+v", got, err, r)
		}
		ids = append(ids, r.TicketID)
	}
	again, err := s.Revoke(c, fulfillment.Revocation{TicketID: ids[0], EventID: event, Reason: "transferred", At: at.Add(time.Hour)})
	if err != nil || again.Reason != "refunded" || !again.At.Equal(at.Truncate(time.Millisecond)) {
		t.Fatalf("a second revocation = %+v, %v; want the first", again, err)
	}
	if r, err := s.Revoked(c, event, ids[1]); err != nil || r.TicketID != ids[1] {
		t.Fatalf("Revoked = %+v, %v", r, err)
	}
	if _, err := s.Revoked(c, event, fulfillment.NewID()); !errs.Is(errs.NotFound, err) {
		t.Fatalf("a ticket not revoked: %v", err)
	}
	if _, err := s.Revoked(c, rnd("ev-"), ids[1]); !errs.Is(errs.NotFound, err) {
		t.Fatalf("the ticket at another event: %v", err)
	}
	if _, err := s.Revoke(c, fulfillment.Revocation{TicketID: fulfillment.NewID(), EventID: rnd("ev-"), Reason: "refunded", At: at}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Revocations(c, event)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list {
		got = append(got, r.TicketID)
	}
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("Revocations = %v, want %v", got, ids)
	}
	for _, bad := range []fulfillment.Revocation{
		{TicketID: "", EventID: event, Reason: "refunded", At: at},
		{TicketID: fulfillment.NewID(), EventID: event, Reason: "", At: at},
		{TicketID: fulfillment.NewID(), EventID: event, Reason: "refunded"},
	} {
		if _, err := s.Revoke(c, bad); !errs.Is(errs.Invalid, err) {
			t.Fatalf("Revoke(%+v) = %v, want invalid", bad, err)
		}
	}
	if list, err := s.Revocations(c, event); err != nil || len(list) != 3 {
		t.Fatalf("after invalid revocations: %d, %v", len(list), err)
	}
}

func testInvalid(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	for _, tc := range []struct {
		name string
		edit func(*fulfillment.Ticket)
	}{
		{"bad id", func(tk *fulfillment.Ticket) { tk.ID = "t/1" }},
		{"no event", func(tk *fulfillment.Ticket) { tk.EventID = "" }},
		{"bad event", func(tk *fulfillment.Ticket) { tk.EventID = "Ev.1" }},
		{"no order", func(tk *fulfillment.Ticket) { tk.OrderID = "" }},
		{"no hold", func(tk *fulfillment.Ticket) { tk.HoldID = "" }},
		{"hold with an empty part", func(tk *fulfillment.Ticket) { tk.HoldID = "ev..h1" }},
		{"no slot", func(tk *fulfillment.Ticket) { tk.Seat = "" }},
		{"bad seat", func(tk *fulfillment.Ticket) { tk.Seat = "a.1" }},
		{"seat and zone", func(tk *fulfillment.Ticket) { tk.Zone, tk.Index = "floor", 1 }},
		{"zone without index", func(tk *fulfillment.Ticket) { tk.Seat, tk.Zone = "", "floor" }},
		{"index out of range", func(tk *fulfillment.Ticket) { tk.Seat, tk.Zone, tk.Index = "", "floor", fulfillment.MaxGAIndex+1 }},
		{"no holder", func(tk *fulfillment.Ticket) { tk.Holder = "" }},
		{"bad holder", func(tk *fulfillment.Ticket) { tk.Holder = "u 1" }},
		{"no key id", func(tk *fulfillment.Ticket) { tk.KeyID = "" }},
		{"bad key id", func(tk *fulfillment.Ticket) { tk.KeyID = "k.1" }},
		{"bad device", func(tk *fulfillment.Ticket) { tk.Device = "ABCDEF0123456789" }},
		{"no validity", func(tk *fulfillment.Ticket) { tk.ValidFrom = time.Time{} }},
		{"valid until before from", func(tk *fulfillment.Ticket) { tk.ValidUntil = tk.ValidFrom }},
		{"no token hash", func(tk *fulfillment.Ticket) { tk.TokenHash = "" }},
		{"upper-case token hash", func(tk *fulfillment.Ticket) { tk.TokenHash = strings.ToUpper(tk.TokenHash) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := seat(event, "f-1-1")
			tc.edit(&tk)
			_, err := s.Issue(c, tk)
			wantKind(t, err, errs.Invalid, "")
		})
	}
	// Nothing was written: the slot is free.
	if _, err := s.Issue(c, seat(event, "f-1-1")); err != nil {
		t.Fatalf("the slot after refused issues: %v", err)
	}
}

func testNotFound(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	for _, id := range []string{fulfillment.NewID(), "", "a.b", "*", ">", strings.Repeat("x", 200)} {
		_, err := s.ByID(c, id)
		wantKind(t, err, errs.NotFound, "")
	}
	for _, order := range []string{"", "a.b", "*"} {
		list, err := s.ByOrder(c, order)
		if err != nil || len(list) != 0 {
			t.Fatalf("ByOrder(%q) = %+v, %v; want none", order, list, err)
		}
	}
}

// testConcurrentSameSlot: N issues of one slot at once, each a different
// ticket for a different order: exactly one succeeds; every other is a
// conflict that names the winner.
func testConcurrentSameSlot(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	const n = 12
	for round := range 3 {
		event := rnd("ev-")
		tickets := make([]fulfillment.Ticket, n)
		got := make([]fulfillment.Ticket, n)
		results := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			tickets[i] = seat(event, "g-1-1")
			if round == 2 { // a general-admission slot
				tickets[i].Seat, tickets[i].Zone, tickets[i].Index, tickets[i].HoldID = "", "pit", 42, "h-pit"
			}
			wg.Go(func() {
				<-start
				got[i], results[i] = s.Issue(c, tickets[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: issues %d and %d both succeeded", round, winner, i)
				}
				winner = i
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == fulfillment.ReasonSlotIssued:
			default:
				t.Fatalf("round %d: issue %d: %v, want success or slot conflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no issue succeeded: %v", round, results)
		}
		for i := range n {
			if got[i].ID != tickets[winner].ID {
				t.Fatalf("round %d: issue %d returned ticket %q, want the winner %s", round, i, got[i].ID, tickets[winner].ID)
			}
			if i == winner {
				continue
			}
			if _, err := s.ByID(c, tickets[i].ID); !errs.Is(errs.NotFound, err) {
				t.Fatalf("round %d: loser %d readable by id: %v", round, i, err)
			}
			if list, err := s.ByOrder(c, tickets[i].OrderID); err != nil || len(list) != 0 {
				t.Fatalf("round %d: loser %d's order has tickets: %+v, %v", round, i, list, err)
			}
		}
		if list, err := s.ByOrder(c, tickets[winner].OrderID); err != nil || len(list) != 1 {
			t.Fatalf("round %d: winner's order: %+v, %v", round, list, err)
		}
	}
}

func testConcurrentDistinctSlots(t *testing.T, s fulfillment.Store) {
	c := ctx(t)
	event := rnd("ev-")
	order := rnd("o-")
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tk := seat(event, fmt.Sprintf("h-1-%d", i+1))
			tk.OrderID = order
			if _, err := s.Issue(c, tk); err != nil {
				t.Errorf("issue %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	list, err := s.ByOrder(c, order)
	if err != nil || len(list) != n {
		t.Fatalf("ByOrder = %d tickets, %v; want %d", len(list), err, n)
	}
}

func testCancelledContext(t *testing.T, s fulfillment.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	tk := seat(rnd("ev-"), "i-1-1")
	if _, err := s.Issue(c, tk); err == nil || errs.Is(errs.Conflict, err) {
		t.Fatalf("Issue with a cancelled context: %v, want an error other than conflict", err)
	}
	if _, err := s.ByID(c, tk.ID); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID with a cancelled context: %v, want an error other than not found", err)
	}
}
