// Package identitytest is the contract suite of identity.Store: every
// implementation runs it (the embedded natskv store and the PostgreSQL
// store), so that they behave the same to the code above them.
package identitytest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity"
)

// Run runs the suite. newStore returns an empty store for each subtest;
// stores are used from many goroutines at once.
func Run(t *testing.T, newStore func(t *testing.T) identity.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, identity.Store)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"EmailNormalized", testEmailNormalized},
		{"Invalid", testInvalid},
		{"NotFound", testNotFound},
		{"DuplicateEmail", testDuplicateEmail},
		{"DuplicateID", testDuplicateID},
		{"ConcurrentSameEmail", testConcurrentSameEmail},
		{"ConcurrentDistinct", testConcurrentDistinct},
		{"CancelledContext", testCancelledContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f(t, newStore(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// now has nanoseconds and a zone, so that the stores' normalization shows.
func now() time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
}

func user(id, email string) identity.User {
	return identity.User{ID: id, Email: email, DisplayName: "Ada Lovelace", CreatedAt: now()}
}

func mustEqual(t *testing.T, got, want identity.User) {
	t.Helper()
	if got != want || !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
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

func testCreateAndRead(t *testing.T, s identity.Store) {
	c := ctx(t)
	u := user(identity.NewID(), "ada@example.com")
	if err := s.Create(c, u); err != nil {
		t.Fatal(err)
	}
	want, _ := identity.Normalize(u)
	got, err := s.ByID(c, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, want)
	if want.CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("normalization kept nanoseconds: %v", want.CreatedAt)
	}
	got, err = s.ByEmail(c, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, want)
}

func testEmailNormalized(t *testing.T, s identity.Store) {
	c := ctx(t)
	u := user(identity.NewID(), "  Grace.Hopper@Example.COM ")
	u.DisplayName = "  Grace Hopper  "
	if err := s.Create(c, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.ByID(c, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "grace.hopper@example.com" || got.DisplayName != "Grace Hopper" {
		t.Fatalf("stored %+v, want the email lower-cased and trimmed, the name trimmed", got)
	}
	for _, q := range []string{"grace.hopper@example.com", "GRACE.HOPPER@EXAMPLE.COM", " grace.hopper@example.com"} {
		got, err := s.ByEmail(c, q)
		if err != nil {
			t.Fatalf("ByEmail(%q): %v", q, err)
		}
		if got.ID != u.ID {
			t.Fatalf("ByEmail(%q) = %s, want %s", q, got.ID, u.ID)
		}
	}
}

func testInvalid(t *testing.T, s identity.Store) {
	c := ctx(t)
	long := strings.Repeat("a", 65) + "@example.com"
	for _, tc := range []struct {
		name string
		u    identity.User
	}{
		{"no id", user("", "x@example.com")},
		{"bad id", user("a/b", "x@example.com")},
		{"long id", user(strings.Repeat("a", 65), "x@example.com")},
		{"no email", user(identity.NewID(), "")},
		{"no at", user(identity.NewID(), "example.com")},
		{"display name form", user(identity.NewID(), "Ada <ada@example.com>")},
		{"space", user(identity.NewID(), "a da@example.com")},
		{"no dot in domain", user(identity.NewID(), "ada@localhost")},
		{"long local part", user(identity.NewID(), long)},
		{"non-ascii", user(identity.NewID(), "adä@example.com")},
		{"control in name", identity.User{ID: identity.NewID(), Email: "x@example.com", DisplayName: "a\x00b", CreatedAt: now()}},
		{"long name", identity.User{ID: identity.NewID(), Email: "x@example.com", DisplayName: strings.Repeat("é", 101), CreatedAt: now()}},
		{"no time", identity.User{ID: identity.NewID(), Email: "x@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, s.Create(c, tc.u), errs.Invalid, "")
			if tc.u.ID != "" && identity.ValidID(tc.u.ID) {
				_, err := s.ByID(c, tc.u.ID)
				wantKind(t, err, errs.NotFound, "")
			}
		})
	}
	// Nothing was written for the valid address used above.
	_, err := s.ByEmail(c, "x@example.com")
	wantKind(t, err, errs.NotFound, "")
}

func testNotFound(t *testing.T, s identity.Store) {
	c := ctx(t)
	_, err := s.ByID(c, identity.NewID())
	wantKind(t, err, errs.NotFound, "")
	_, err = s.ByEmail(c, "nobody@example.com")
	wantKind(t, err, errs.NotFound, "")
	for _, q := range []string{"", "not an address", "../../etc"} {
		_, err = s.ByEmail(c, q)
		wantKind(t, err, errs.NotFound, "")
	}
	for _, q := range []string{"", "a/b", "a.b", "*", ">"} {
		_, err = s.ByID(c, q)
		wantKind(t, err, errs.NotFound, "")
	}
}

func testDuplicateEmail(t *testing.T, s identity.Store) {
	c := ctx(t)
	first := user(identity.NewID(), "alan@example.com")
	if err := s.Create(c, first); err != nil {
		t.Fatal(err)
	}
	second := user(identity.NewID(), "ALAN@example.com")
	wantKind(t, s.Create(c, second), errs.Conflict, identity.ReasonEmailTaken)
	_, err := s.ByID(c, second.ID)
	wantKind(t, err, errs.NotFound, "")
	got, err := s.ByEmail(c, "alan@example.com")
	if err != nil || got.ID != first.ID {
		t.Fatalf("ByEmail = %+v, %v; want the first user", got, err)
	}
}

func testDuplicateID(t *testing.T, s identity.Store) {
	c := ctx(t)
	id := identity.NewID()
	if err := s.Create(c, user(id, "one@example.com")); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Create(c, user(id, "two@example.com")), errs.Conflict, identity.ReasonIDTaken)
	got, err := s.ByID(c, id)
	if err != nil || got.Email != "one@example.com" {
		t.Fatalf("ByID = %+v, %v; want the first user unchanged", got, err)
	}
	// The refused create left the second address free.
	_, err = s.ByEmail(c, "two@example.com")
	wantKind(t, err, errs.NotFound, "")
	if err := s.Create(c, user(identity.NewID(), "two@example.com")); err != nil {
		t.Fatalf("the address of a create refused for its id stayed taken: %v", err)
	}
}

// testConcurrentSameEmail: of many creates with one address at once,
// exactly one succeeds and the others are conflicts.
func testConcurrentSameEmail(t *testing.T, s identity.Store) {
	c := ctx(t)
	const n = 16
	for round := range 3 {
		email := fmt.Sprintf("race%d@example.com", round)
		ids := make([]string, n)
		results := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			ids[i] = identity.NewID()
			wg.Go(func() {
				<-start
				// Vary the case: the race is on the normalized address.
				e := email
				if i%2 == 1 {
					e = strings.ToUpper(email)
				}
				results[i] = s.Create(c, user(ids[i], e))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: creates %d and %d both succeeded for %s", round, winner, i, email)
				}
				winner = i
			case errs.Is(errs.Conflict, err):
			default:
				t.Fatalf("round %d: create %d: %v, want success or conflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no create succeeded: %v", round, results)
		}
		got, err := s.ByEmail(c, email)
		if err != nil || got.ID != ids[winner] {
			t.Fatalf("round %d: ByEmail = %+v, %v; want the winner %s", round, got, err, ids[winner])
		}
		for i, id := range ids {
			if i == winner {
				continue
			}
			if _, err := s.ByID(c, id); !errs.Is(errs.NotFound, err) {
				t.Fatalf("round %d: loser %d is readable by id: %v", round, i, err)
			}
		}
	}
}

func testConcurrentDistinct(t *testing.T, s identity.Store) {
	c := ctx(t)
	const n = 20
	users := make([]identity.User, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = user(identity.NewID(), fmt.Sprintf("user%d@example.com", i))
		wg.Go(func() {
			if err := s.Create(c, users[i]); err != nil {
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for _, u := range users {
		got, err := s.ByEmail(c, u.Email)
		if err != nil || got.ID != u.ID {
			t.Fatalf("ByEmail(%s) = %+v, %v", u.Email, got, err)
		}
	}
}

func testCancelledContext(t *testing.T, s identity.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	u := user(identity.NewID(), "cancel@example.com")
	if err := s.Create(c, u); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
	if _, err := s.ByID(c, u.ID); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID with a cancelled context: %v, want an error other than not found", err)
	}
}
