// Package identitytest is the contract suite of identity.Store: every
// implementation runs it (the embedded natskv store and the PostgreSQL
// store), so that they behave the same to the code above them.
package identitytest

import (
	"bytes"
	"context"
	"encoding/json"
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
		{"AllFields", testAllFields},
		{"Update", testUpdate},
		{"UpdateStale", testUpdateStale},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateCreatedAt", testUpdateCreatedAt},
		{"UpdateInvalid", testUpdateInvalid},
		{"UpdateEmailTaken", testUpdateEmailTaken},
		{"UpdateEmailFreesOld", testUpdateEmailFreesOld},
		{"ConcurrentEmailChange", testConcurrentEmailChange},
		{"Link", testLink},
		{"LinkConcurrentTake", testLinkConcurrentTake},
		{"LinkExpired", testLinkExpired},
		{"LinkDuplicate", testLinkDuplicate},
		{"LinkInvalid", testLinkInvalid},
		{"LinkNotFound", testLinkNotFound},
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

func user(id, email string) identity.Account {
	return identity.Account{User: identity.User{ID: id, Email: email, DisplayName: "Ada Lovelace", CreatedAt: now()}}
}

// full is an account with every field set, times with nanoseconds and a
// zone. Each call returns new slices.
func full(id, email string) identity.Account {
	a := user(id, email)
	a.EmailVerified = true
	a.Roles = []string{identity.RoleAdmin, identity.RoleStaffPrefix + "org_1", identity.RoleAdmin}
	a.Password = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNo"
	a.TOTP = identity.TOTP{Secret: "JBSWY3DPEHPK3PXP", Enabled: true, LastStep: 59_213_476}
	a.Recovery = []string{"rc1$" + strings.Repeat("a", 64), "rc1$" + strings.Repeat("b", 64)}
	a.Passkeys = []identity.Passkey{
		{ID: "AQIDBAUGBwgJ", Name: "laptop", CreatedAt: now().Add(time.Hour), LastUsedAt: now().Add(2 * time.Hour),
			Credential: []byte(`{"publicKey":"pQECAyYgASFYIA","signCount":7}` + "\x00\xff")},
		{ID: "CgsMDQ4P", Name: "phone ✓", CreatedAt: now().Add(3 * time.Hour), Credential: []byte{1, 2, 3}},
	}
	a.Failures = 3
	a.FailedAt = now().Add(4 * time.Hour)
	a.Locale = "de-at" // kept as de-AT
	return a
}

// normalized is what a store keeps of a.
func normalized(t *testing.T, a identity.Account) identity.Account {
	t.Helper()
	a.Roles = append([]string(nil), a.Roles...)
	a.Passkeys = append([]identity.Passkey(nil), a.Passkeys...)
	n, err := identity.NormalizeAccount(a)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// times are the account's times, to check that stores return them in UTC.
func times(a identity.Account) []time.Time {
	ts := []time.Time{a.CreatedAt, a.FailedAt}
	for _, p := range a.Passkeys {
		ts = append(ts, p.CreatedAt, p.LastUsedAt)
	}
	return ts
}

// mustEqual compares accounts by their JSON (every field but Version; nil
// and empty lists alike) and their versions, and checks that every time is
// in UTC.
func mustEqual(t *testing.T, got, want identity.Account) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if !bytes.Equal(g, w) || got.Version != want.Version {
		t.Fatalf("got  %s version %d\nwant %s version %d", g, got.Version, w, want.Version)
	}
	for _, ts := range times(got) {
		if ts.Location() != time.UTC {
			t.Fatalf("time %v of %s is not in UTC", ts, g)
		}
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

func create(t *testing.T, s identity.Store, a identity.Account) identity.Account {
	t.Helper()
	got, err := s.Create(ctx(t), a)
	if err != nil {
		t.Fatalf("create %s: %v", a.ID, err)
	}
	return got
}

func byID(t *testing.T, s identity.Store, id string) identity.Account {
	t.Helper()
	got, err := s.ByID(ctx(t), id)
	if err != nil {
		t.Fatalf("ByID(%s): %v", id, err)
	}
	return got
}

func byEmail(t *testing.T, s identity.Store, email string) identity.Account {
	t.Helper()
	got, err := s.ByEmail(ctx(t), email)
	if err != nil {
		t.Fatalf("ByEmail(%s): %v", email, err)
	}
	return got
}

func testCreateAndRead(t *testing.T, s identity.Store) {
	c := ctx(t)
	u := user(identity.NewID(), "ada@example.com")
	want := normalized(t, u)
	if want.CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("normalization kept nanoseconds: %v", want.CreatedAt)
	}
	created, err := s.Create(c, u)
	if err != nil {
		t.Fatal(err)
	}
	if created.Version == 0 {
		t.Fatalf("Create returned version 0: %+v", created)
	}
	want.Version = created.Version
	mustEqual(t, created, want)
	got, err := s.ByID(c, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, want)
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
	created, err := s.Create(c, u)
	if err != nil {
		t.Fatal(err)
	}
	if created.Email != "grace.hopper@example.com" || created.DisplayName != "Grace Hopper" {
		t.Fatalf("Create returned %+v, want the email lower-cased and trimmed, the name trimmed", created)
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

// invalidAccounts are accounts NormalizeAccount refuses; those with a
// valid id have the address x@example.com, or none.
func invalidAccounts() []struct {
	name string
	a    identity.Account
} {
	long := strings.Repeat("a", 65) + "@example.com"
	with := func(f func(*identity.Account)) identity.Account {
		a := full(identity.NewID(), "x@example.com")
		f(&a)
		return a
	}
	return []struct {
		name string
		a    identity.Account
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
		{"control in name", with(func(a *identity.Account) { a.DisplayName = "a\x00b" })},
		{"long name", with(func(a *identity.Account) { a.DisplayName = strings.Repeat("é", 101) })},
		{"no time", with(func(a *identity.Account) { a.CreatedAt = time.Time{} })},
		{"unknown role", with(func(a *identity.Account) { a.Roles = []string{"root"} })},
		{"bad locale", with(func(a *identity.Account) { a.Locale = "not a tag" })},
		{"empty staff role", with(func(a *identity.Account) { a.Roles = []string{identity.RoleStaffPrefix} })},
		{"too many roles", with(func(a *identity.Account) {
			a.Roles = nil
			for i := range identity.MaxRoles + 1 {
				a.Roles = append(a.Roles, fmt.Sprintf("staff:org_%d", i))
			}
		})},
		{"bcrypt password", with(func(a *identity.Account) { a.Password = "$2a$10$abcdefghijklmnopqrstuv" })},
		{"plain password", with(func(a *identity.Account) { a.Password = "hunter2" })},
		{"enabled totp without secret", with(func(a *identity.Account) { a.TOTP = identity.TOTP{Enabled: true} })},
		{"too many recovery codes", with(func(a *identity.Account) { a.Recovery = make([]string, identity.MaxRecovery+1) })},
		{"too many passkeys", with(func(a *identity.Account) {
			a.Passkeys = nil
			for i := range identity.MaxPasskeys + 1 {
				a.Passkeys = append(a.Passkeys, identity.Passkey{ID: fmt.Sprint(i), Credential: []byte{1}})
			}
		})},
		{"passkey without id", with(func(a *identity.Account) { a.Passkeys[0].ID = "" })},
		{"passkeys with one id", with(func(a *identity.Account) { a.Passkeys[1].ID = a.Passkeys[0].ID })},
		{"passkey without credential", with(func(a *identity.Account) { a.Passkeys[1].Credential = nil })},
		{"passkey credential too long", with(func(a *identity.Account) {
			a.Passkeys[1].Credential = make([]byte, identity.MaxCredential+1)
		})},
		{"long passkey name", with(func(a *identity.Account) { a.Passkeys[0].Name = strings.Repeat("é", identity.MaxPasskeyName+1) })},
		{"negative failures", with(func(a *identity.Account) { a.Failures = -1 })},
	}
}

func testInvalid(t *testing.T, s identity.Store) {
	c := ctx(t)
	for _, tc := range invalidAccounts() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(c, tc.a)
			wantKind(t, err, errs.Invalid, "")
			if identity.ValidID(tc.a.ID) {
				_, err := s.ByID(c, tc.a.ID)
				wantKind(t, err, errs.NotFound, "")
			}
		})
	}
	// Nothing was written for the valid address used above.
	_, err := s.ByEmail(c, "x@example.com")
	wantKind(t, err, errs.NotFound, "")
	create(t, s, user(identity.NewID(), "x@example.com"))
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
	first := create(t, s, user(identity.NewID(), "alan@example.com"))
	second := user(identity.NewID(), "ALAN@example.com")
	_, err := s.Create(c, second)
	wantKind(t, err, errs.Conflict, identity.ReasonEmailTaken)
	_, err = s.ByID(c, second.ID)
	wantKind(t, err, errs.NotFound, "")
	mustEqual(t, byEmail(t, s, "alan@example.com"), first)
}

func testDuplicateID(t *testing.T, s identity.Store) {
	c := ctx(t)
	id := identity.NewID()
	first := create(t, s, user(id, "one@example.com"))
	_, err := s.Create(c, user(id, "two@example.com"))
	wantKind(t, err, errs.Conflict, identity.ReasonIDTaken)
	mustEqual(t, byID(t, s, id), first)
	// The refused create left the second address free.
	_, err = s.ByEmail(c, "two@example.com")
	wantKind(t, err, errs.NotFound, "")
	if _, err := s.Create(c, user(identity.NewID(), "two@example.com")); err != nil {
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
				_, results[i] = s.Create(c, user(ids[i], e))
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
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == identity.ReasonEmailTaken:
			default:
				t.Fatalf("round %d: create %d: %v, want success or email taken", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no create succeeded: %v", round, results)
		}
		if got := byEmail(t, s, email); got.ID != ids[winner] {
			t.Fatalf("round %d: ByEmail = %+v; want the winner %s", round, got, ids[winner])
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
	users := make([]identity.Account, n)
	var wg sync.WaitGroup
	for i := range n {
		users[i] = user(identity.NewID(), fmt.Sprintf("user%d@example.com", i))
		wg.Go(func() {
			if _, err := s.Create(c, users[i]); err != nil {
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for _, u := range users {
		if got := byEmail(t, s, u.Email); got.ID != u.ID {
			t.Fatalf("ByEmail(%s) = %+v", u.Email, got)
		}
	}
}

func testCancelledContext(t *testing.T, s identity.Store) {
	existing := create(t, s, user(identity.NewID(), "existing@example.com"))
	l := link(existing, identity.LinkReset, time.Hour)
	if err := s.PutLink(ctx(t), l); err != nil {
		t.Fatal(err)
	}

	c, cancel := context.WithCancel(context.Background())
	cancel()
	u := user(identity.NewID(), "cancel@example.com")
	if _, err := s.Create(c, u); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
	if _, err := s.ByID(c, u.ID); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID with a cancelled context: %v, want an error other than not found", err)
	}
	if _, err := s.ByEmail(c, existing.Email); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("ByEmail with a cancelled context: %v, want an error other than not found", err)
	}
	changed := existing
	changed.DisplayName = "Changed"
	if _, err := s.Update(c, changed); err == nil {
		t.Fatal("Update with a cancelled context succeeded")
	}
	if err := s.PutLink(c, link(existing, identity.LinkVerify, time.Hour)); err == nil {
		t.Fatal("PutLink with a cancelled context succeeded")
	}
	if _, err := s.TakeLink(c, l.Hash); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("TakeLink with a cancelled context: %v, want an error other than not found", err)
	}
	// None of them took effect.
	mustEqual(t, byID(t, s, existing.ID), existing)
	if _, err := s.TakeLink(ctx(t), l.Hash); err != nil {
		t.Fatalf("the link is gone after a cancelled take: %v", err)
	}
}

// testAllFields: every field of an account is kept, at the precision
// NormalizeAccount gives it.
func testAllFields(t *testing.T, s identity.Store) {
	a := full(identity.NewID(), "Full@Example.com")
	want := normalized(t, a)
	if len(want.Roles) != 2 || want.Passkeys[0].CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("normalization did not dedupe roles or truncate times: %+v", want)
	}
	created := create(t, s, a)
	want.Version = created.Version
	mustEqual(t, created, want)
	mustEqual(t, byID(t, s, a.ID), want)
	mustEqual(t, byEmail(t, s, "full@example.com"), want)

	// Every field changes in an update, and back to zero.
	next := byID(t, s, a.ID)
	next.DisplayName = "Ada King"
	next.EmailVerified = false
	next.Roles = []string{identity.RoleStaffPrefix + "org_2"}
	next.Password = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$b3RoZXJoYXNo"
	next.TOTP = identity.TOTP{Secret: "KRSXG5CTMVRXEZLU", LastStep: 1}
	next.Recovery = next.Recovery[1:]
	next.Passkeys = []identity.Passkey{{ID: "EBESExQV", Name: "key", CreatedAt: now().Add(5 * time.Hour),
		LastUsedAt: now().Add(6 * time.Hour), Credential: []byte(`{"v":2}`)}}
	next.Failures = 0
	next.FailedAt = time.Time{}
	updated, err := s.Update(ctx(t), next)
	if err != nil {
		t.Fatal(err)
	}
	want = normalized(t, next)
	want.Version = updated.Version
	mustEqual(t, updated, want)
	mustEqual(t, byID(t, s, a.ID), want)

	next = updated
	next.Roles, next.Password, next.TOTP, next.Recovery, next.Passkeys = nil, "", identity.TOTP{}, nil, nil
	updated, err = s.Update(ctx(t), next)
	if err != nil {
		t.Fatal(err)
	}
	want = normalized(t, next)
	want.Version = updated.Version
	mustEqual(t, byID(t, s, a.ID), want)
}

func testUpdate(t *testing.T, s identity.Store) {
	created := create(t, s, user(identity.NewID(), "upd@example.com"))
	if got := byID(t, s, created.ID); got.Version != created.Version {
		t.Fatalf("ByID version %d, Create returned %d", got.Version, created.Version)
	}
	next := created
	next.DisplayName = " Ada  "
	next.Failures = 1
	next.FailedAt = now()
	updated, err := s.Update(ctx(t), next)
	if err != nil {
		t.Fatal(err)
	}
	// Versions are opaque: the contract says only that a write makes a
	// new one.
	if updated.Version == 0 || updated.Version == created.Version {
		t.Fatalf("Update returned version %d after %d", updated.Version, created.Version)
	}
	want := normalized(t, next)
	want.Version = updated.Version
	mustEqual(t, updated, want)
	mustEqual(t, byID(t, s, created.ID), want)
	mustEqual(t, byEmail(t, s, "upd@example.com"), want)

	// An update that changes nothing still writes a new version.
	again, err := s.Update(ctx(t), updated)
	if err != nil {
		t.Fatal(err)
	}
	if again.Version == updated.Version || again.Version == created.Version {
		t.Fatalf("second update returned version %d after %d, %d", again.Version, created.Version, updated.Version)
	}
	if got := byID(t, s, created.ID); got.Version != again.Version {
		t.Fatalf("ByID version %d, Update returned %d", got.Version, again.Version)
	}
}

func testUpdateStale(t *testing.T, s identity.Store) {
	created := create(t, s, user(identity.NewID(), "stale@example.com"))
	first := created
	first.DisplayName = "First"
	updated, err := s.Update(ctx(t), first)
	if err != nil {
		t.Fatal(err)
	}
	stale := created
	stale.DisplayName = "Stale"
	_, err = s.Update(ctx(t), stale)
	wantKind(t, err, errs.Conflict, identity.ReasonVersionMismatch)
	// A version never handed out (a store could read 0 as "no such key").
	stale.Version = 0
	_, err = s.Update(ctx(t), stale)
	wantKind(t, err, errs.Conflict, identity.ReasonVersionMismatch)
	// A changed email in a stale update neither lands nor takes the
	// address.
	stale.Version = created.Version
	stale.Email = "stale-new@example.com"
	_, err = s.Update(ctx(t), stale)
	wantKind(t, err, errs.Conflict, identity.ReasonVersionMismatch)
	mustEqual(t, byID(t, s, created.ID), updated)
	_, err = s.ByEmail(ctx(t), "stale-new@example.com")
	wantKind(t, err, errs.NotFound, "")
	create(t, s, user(identity.NewID(), "stale-new@example.com"))
}

// testUpdateConcurrent: of many updates from one version, exactly one
// succeeds and the others are version mismatches. Half of them change the
// address, each to its own: the losers' addresses stay free.
func testUpdateConcurrent(t *testing.T, s identity.Store) {
	c := ctx(t)
	const n = 16
	for round := range 3 {
		base := create(t, s, user(identity.NewID(), fmt.Sprintf("conc%d@example.com", round)))
		writes := make([]identity.Account, n)
		results := make([]error, n)
		versions := make([]uint64, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			writes[i] = base
			writes[i].DisplayName = fmt.Sprintf("writer %d", i)
			writes[i].Failures = i
			if i%2 == 1 {
				writes[i].Email = fmt.Sprintf("conc%d-%d@example.com", round, i)
			}
			wg.Go(func() {
				<-start
				got, err := s.Update(c, writes[i])
				results[i], versions[i] = err, got.Version
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: updates %d and %d both succeeded", round, winner, i)
				}
				winner = i
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == identity.ReasonVersionMismatch:
			default:
				t.Fatalf("round %d: update %d: %v, want success or version mismatch", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no update succeeded: %v", round, results)
		}
		want := normalized(t, writes[winner])
		want.Version = versions[winner]
		mustEqual(t, byID(t, s, base.ID), want)
		mustEqual(t, byEmail(t, s, want.Email), want)
		for i, w := range writes {
			if i == winner || w.Email == base.Email {
				continue
			}
			_, err := s.ByEmail(c, w.Email)
			wantKind(t, err, errs.NotFound, "")
			create(t, s, user(identity.NewID(), w.Email))
		}
		if want.Email != base.Email {
			create(t, s, user(identity.NewID(), base.Email))
		}
	}
}

func testUpdateNotFound(t *testing.T, s identity.Store) {
	a := user(identity.NewID(), "ghost@example.com")
	a.Version = 1
	_, err := s.Update(ctx(t), a)
	wantKind(t, err, errs.NotFound, "")
	_, err = s.ByID(ctx(t), a.ID)
	wantKind(t, err, errs.NotFound, "")
	// The update did not keep the address it would have set.
	_, err = s.ByEmail(ctx(t), a.Email)
	wantKind(t, err, errs.NotFound, "")
	create(t, s, user(identity.NewID(), a.Email))
}

func testUpdateCreatedAt(t *testing.T, s identity.Store) {
	created := create(t, s, user(identity.NewID(), "born@example.com"))
	moved := created
	moved.CreatedAt = created.CreatedAt.Add(time.Microsecond)
	moved.DisplayName = "Moved"
	_, err := s.Update(ctx(t), moved)
	wantKind(t, err, errs.Invalid, "")
	mustEqual(t, byID(t, s, created.ID), created)

	// The same instant, in another zone and with nanoseconds that
	// normalization drops, is no change.
	same := created
	same.CreatedAt = now()
	same.DisplayName = "Same"
	if _, err := s.Update(ctx(t), same); err != nil {
		t.Fatalf("update with CreatedAt %v (stored %v): %v", same.CreatedAt, created.CreatedAt, err)
	}
}

func testUpdateInvalid(t *testing.T, s identity.Store) {
	for _, tc := range invalidAccounts() {
		if !identity.ValidID(tc.a.ID) {
			continue // no account to update
		}
		t.Run(tc.name, func(t *testing.T) {
			stored := create(t, s, full(tc.a.ID, fmt.Sprintf("valid-%s@example.com", strings.ToLower(tc.a.ID))))
			a := tc.a
			a.Version = stored.Version
			if !a.CreatedAt.IsZero() {
				a.CreatedAt = stored.CreatedAt // refused for what the case changes, not for this
			}
			_, err := s.Update(ctx(t), a)
			wantKind(t, err, errs.Invalid, "")
			mustEqual(t, byID(t, s, stored.ID), stored)
		})
	}
	_, err := s.ByEmail(ctx(t), "x@example.com")
	wantKind(t, err, errs.NotFound, "")
}

func testUpdateEmailTaken(t *testing.T, s identity.Store) {
	mine := create(t, s, user(identity.NewID(), "mine@example.com"))
	theirs := create(t, s, user(identity.NewID(), "theirs@example.com"))
	a := mine
	a.Email = " THEIRS@example.com"
	a.DisplayName = "Thief"
	_, err := s.Update(ctx(t), a)
	wantKind(t, err, errs.Conflict, identity.ReasonEmailTaken)
	mustEqual(t, byID(t, s, mine.ID), mine)
	mustEqual(t, byEmail(t, s, "mine@example.com"), mine)
	mustEqual(t, byEmail(t, s, "theirs@example.com"), theirs)
	// The refused update still holds its own version: it can be retried
	// with another change.
	a.Email = mine.Email
	if _, err := s.Update(ctx(t), a); err != nil {
		t.Fatalf("update after a refused email change: %v", err)
	}
}

func testUpdateEmailFreesOld(t *testing.T, s identity.Store) {
	c := ctx(t)
	created := create(t, s, user(identity.NewID(), "old@example.com"))
	a := created
	a.Email = "New@Example.com"
	a.EmailVerified = false
	updated, err := s.Update(c, a)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Email != "new@example.com" {
		t.Fatalf("Update returned email %q", updated.Email)
	}
	mustEqual(t, byEmail(t, s, "new@example.com"), updated)
	mustEqual(t, byID(t, s, created.ID), updated)
	_, err = s.ByEmail(c, "old@example.com")
	wantKind(t, err, errs.NotFound, "")

	other := create(t, s, user(identity.NewID(), "old@example.com"))
	mustEqual(t, byEmail(t, s, "old@example.com"), other)
	mustEqual(t, byEmail(t, s, "new@example.com"), updated)

	// A change of case only is no change of address.
	a = updated
	a.Email = "NEW@example.com"
	updated, err = s.Update(c, a)
	if err != nil || updated.Email != "new@example.com" {
		t.Fatalf("Update = %+v, %v", updated, err)
	}
	mustEqual(t, byEmail(t, s, "new@example.com"), updated)

	// And back to an address the account had.
	a = updated
	a.Email = "older@example.com"
	if updated, err = s.Update(c, a); err != nil {
		t.Fatal(err)
	}
	a = updated
	a.Email = "new@example.com"
	if updated, err = s.Update(c, a); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, byEmail(t, s, "new@example.com"), updated)
	_, err = s.ByEmail(c, "older@example.com")
	wantKind(t, err, errs.NotFound, "")
}

// testConcurrentEmailChange: creates and updates racing for one address;
// exactly one gets it, the accounts that lose keep theirs.
func testConcurrentEmailChange(t *testing.T, s identity.Store) {
	c := ctx(t)
	const n = 12
	for round := range 3 {
		email := fmt.Sprintf("wanted%d@example.com", round)
		accounts := make([]identity.Account, n)
		for i := range n {
			if i%2 == 1 {
				accounts[i] = create(t, s, user(identity.NewID(), fmt.Sprintf("had%d-%d@example.com", round, i)))
			} else {
				accounts[i] = user(identity.NewID(), email)
			}
		}
		results := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				if i%2 == 1 {
					a := accounts[i]
					a.Email = email
					_, results[i] = s.Update(c, a)
				} else {
					_, results[i] = s.Create(c, accounts[i])
				}
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: %d and %d both got %s", round, winner, i, email)
				}
				winner = i
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == identity.ReasonEmailTaken:
			default:
				t.Fatalf("round %d: %d: %v, want success or email taken", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody got the address: %v", round, results)
		}
		if got := byEmail(t, s, email); got.ID != accounts[winner].ID {
			t.Fatalf("round %d: ByEmail = %s, want %d's %s", round, got.ID, winner, accounts[winner].ID)
		}
		for i, a := range accounts {
			switch {
			case i == winner:
			case i%2 == 1:
				mustEqual(t, byID(t, s, a.ID), a)
				mustEqual(t, byEmail(t, s, a.Email), a)
			default:
				_, err := s.ByID(c, a.ID)
				wantKind(t, err, errs.NotFound, "")
			}
		}
	}
}

func link(a identity.Account, purpose string, ttl time.Duration) identity.Link {
	_, hash := identity.NewLinkSecret()
	return identity.Link{Hash: hash, Purpose: purpose, UserID: a.ID, Email: a.Email,
		ExpiresAt: time.Now().Add(ttl).In(time.FixedZone("CET", 3600))}
}

func linkEqual(t *testing.T, got, want identity.Link) {
	t.Helper()
	want, err := identity.CheckLink(want)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func testLink(t *testing.T, s identity.Store) {
	c := ctx(t)
	a := create(t, s, user(identity.NewID(), "links@example.com"))
	for _, purpose := range []string{identity.LinkVerify, identity.LinkReset, identity.LinkMFA} {
		l := link(a, purpose, time.Hour)
		l.Email = " Links@EXAMPLE.com"
		if err := s.PutLink(c, l); err != nil {
			t.Fatal(err)
		}
		got, err := s.TakeLink(c, l.Hash)
		if err != nil {
			t.Fatal(err)
		}
		linkEqual(t, got, l)
		_, err = s.TakeLink(c, l.Hash)
		wantKind(t, err, errs.NotFound, "")
	}
	// Links are independent of each other and of the account.
	l1, l2 := link(a, identity.LinkVerify, time.Hour), link(a, identity.LinkVerify, time.Hour)
	for _, l := range []identity.Link{l1, l2} {
		if err := s.PutLink(c, l); err != nil {
			t.Fatal(err)
		}
	}
	next := a
	next.EmailVerified = true
	if _, err := s.Update(c, next); err != nil {
		t.Fatal(err)
	}
	for _, l := range []identity.Link{l2, l1} {
		got, err := s.TakeLink(c, l.Hash)
		if err != nil {
			t.Fatal(err)
		}
		linkEqual(t, got, l)
	}
}

// testLinkConcurrentTake: of many takes of one link at once, exactly one
// gets it.
func testLinkConcurrentTake(t *testing.T, s identity.Store) {
	c := ctx(t)
	a := create(t, s, user(identity.NewID(), "race-link@example.com"))
	const n = 16
	for round := range 3 {
		l := link(a, identity.LinkReset, time.Hour)
		if err := s.PutLink(c, l); err != nil {
			t.Fatal(err)
		}
		results := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				got, err := s.TakeLink(c, l.Hash)
				if err == nil && got.Hash != l.Hash {
					err = fmt.Errorf("took %+v, want %s", got, l.Hash)
				}
				results[i] = err
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: takes %d and %d both got the link", round, winner, i)
				}
				winner = i
			case errs.Is(errs.NotFound, err):
			default:
				t.Fatalf("round %d: take %d: %v, want the link or not found", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no take got the link: %v", round, results)
		}
	}
}

func testLinkExpired(t *testing.T, s identity.Store) {
	c := ctx(t)
	a := create(t, s, user(identity.NewID(), "late@example.com"))
	// A minute ago: well past any clock skew between the test and a
	// store's server.
	expired := link(a, identity.LinkVerify, -time.Minute)
	if err := s.PutLink(c, expired); err != nil {
		t.Fatalf("PutLink of an expired link: %v", err)
	}
	_, err := s.TakeLink(c, expired.Hash)
	wantKind(t, err, errs.NotFound, "")
	// A live one next to it is taken.
	live := link(a, identity.LinkVerify, time.Minute)
	if err := s.PutLink(c, live); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakeLink(c, live.Hash)
	if err != nil {
		t.Fatal(err)
	}
	linkEqual(t, got, live)
}

func testLinkDuplicate(t *testing.T, s identity.Store) {
	c := ctx(t)
	a := create(t, s, user(identity.NewID(), "dup-link@example.com"))
	b := create(t, s, user(identity.NewID(), "dup-link-2@example.com"))
	first := link(a, identity.LinkVerify, time.Hour)
	if err := s.PutLink(c, first); err != nil {
		t.Fatal(err)
	}
	second := link(b, identity.LinkReset, 2*time.Hour)
	second.Hash = first.Hash
	wantKind(t, s.PutLink(c, second), errs.Conflict, "")
	got, err := s.TakeLink(c, first.Hash)
	if err != nil {
		t.Fatal(err)
	}
	linkEqual(t, got, first)
	// Once taken, the hash may be used again.
	if err := s.PutLink(c, second); err != nil {
		t.Fatalf("PutLink of a taken link's hash: %v", err)
	}
	got, err = s.TakeLink(c, second.Hash)
	if err != nil {
		t.Fatal(err)
	}
	linkEqual(t, got, second)
}

func testLinkInvalid(t *testing.T, s identity.Store) {
	c := ctx(t)
	a := create(t, s, user(identity.NewID(), "bad-link@example.com"))
	with := func(f func(*identity.Link)) identity.Link {
		l := link(a, identity.LinkVerify, time.Hour)
		f(&l)
		return l
	}
	for _, tc := range []struct {
		name string
		l    identity.Link
	}{
		{"no hash", with(func(l *identity.Link) { l.Hash = "" })},
		{"short hash", with(func(l *identity.Link) { l.Hash = l.Hash[:62] })},
		{"upper-case hash", with(func(l *identity.Link) { l.Hash = strings.ToUpper(l.Hash) })},
		{"wildcard hash", with(func(l *identity.Link) { l.Hash = strings.Repeat("*", 64) })},
		{"no purpose", with(func(l *identity.Link) { l.Purpose = "" })},
		{"unknown purpose", with(func(l *identity.Link) { l.Purpose = "login" })},
		{"no user", with(func(l *identity.Link) { l.UserID = "" })},
		{"bad user id", with(func(l *identity.Link) { l.UserID = "a.b" })},
		{"bad email", with(func(l *identity.Link) { l.Email = "nobody" })},
		{"no expiry", with(func(l *identity.Link) { l.ExpiresAt = time.Time{} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, s.PutLink(c, tc.l), errs.Invalid, "")
			if identity.ValidLinkHash(tc.l.Hash) {
				_, err := s.TakeLink(c, tc.l.Hash)
				wantKind(t, err, errs.NotFound, "")
			}
		})
	}
	// A link of an account that does not exist (adapters agree; the
	// PostgreSQL store's foreign key decides it).
	l := link(user(identity.NewID(), "nobody@example.com"), identity.LinkVerify, time.Hour)
	wantKind(t, s.PutLink(c, l), errs.Invalid, "")
	_, err := s.TakeLink(c, l.Hash)
	wantKind(t, err, errs.NotFound, "")
}

func testLinkNotFound(t *testing.T, s identity.Store) {
	c := ctx(t)
	_, hash := identity.NewLinkSecret()
	for _, h := range []string{hash, "", "a.b", "*", ">", strings.ToUpper(hash), strings.Repeat("*", 64)} {
		_, err := s.TakeLink(c, h)
		wantKind(t, err, errs.NotFound, "")
	}
}
