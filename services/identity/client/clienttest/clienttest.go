// Package clienttest is the contract suite of client.Store: every
// implementation runs it (the JetStream KV store and the PostgreSQL
// store), so that they behave the same to the token endpoint and the admin
// API above them.
package clienttest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/client"
)

// Run runs the suite. newStore returns an empty store for each subtest;
// stores are used from many goroutines at once.
func Run(t *testing.T, newStore func(t *testing.T) client.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		f    func(*testing.T, client.Store)
	}{
		{"CreateAndRead", testCreateAndRead},
		{"Normalized", testNormalized},
		{"Invalid", testInvalid},
		{"NotFound", testNotFound},
		{"DuplicateID", testDuplicateID},
		{"ConcurrentSameID", testConcurrentSameID},
		{"Update", testUpdate},
		{"UpdateRefused", testUpdateRefused},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"List", testList},
		{"ListOrderIsBytewise", testListOrder},
		{"ListLimit", testListLimit},
		{"SecretRotation", testSecretRotation},
		{"Disable", testDisable},
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

func newClient(id string) (client.Client, string) {
	secret, hash := client.NewSecret()
	return client.Client{
		ID:           id,
		Name:         "Acme Tickets",
		Scopes:       []string{client.ScopeEventsRead, client.ScopeHoldsWrite},
		SecretHashes: []string{hash},
		CreatedAt:    now(),
	}, secret
}

func equal(a, b client.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.SecretHashes, b.SecretHashes) && a.Disabled == b.Disabled &&
		a.CreatedAt.Equal(b.CreatedAt) && a.Channel == b.Channel && a.Version == b.Version
}

func mustEqual(t *testing.T, got, want client.Client) {
	t.Helper()
	if !equal(got, want) || got.CreatedAt.Location() != time.UTC {
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

func create(t *testing.T, s client.Store, c client.Client) client.Client {
	t.Helper()
	got, err := s.Create(ctx(t), c)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testCreateAndRead(t *testing.T, s client.Store) {
	c := ctx(t)
	in, _ := newClient(client.NewID())
	got, err := s.Create(c, in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := client.Normalize(in)
	if got.Version == 0 {
		t.Fatalf("Create returned version 0")
	}
	want.Version = got.Version
	mustEqual(t, got, want)
	if want.CreatedAt.Nanosecond()%1000 != 0 {
		t.Fatalf("normalization kept nanoseconds: %v", want.CreatedAt)
	}
	read, err := s.ByID(c, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, read, want)
}

func testNormalized(t *testing.T, s client.Store) {
	in, _ := newClient(client.NewID())
	in.Name = "  Acme  "
	in.Scopes = []string{client.ScopeReportsRead, client.ScopeHoldsWrite, client.ScopeReportsRead}
	in.SecretHashes = append(in.SecretHashes, in.SecretHashes[0])
	in.Version = 99 // ignored by Create
	got := create(t, s, in)
	read, err := s.ByID(ctx(t), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []client.Client{got, read} {
		if c.Name != "Acme" || !slices.Equal(c.Scopes, []string{client.ScopeHoldsWrite, client.ScopeReportsRead}) ||
			len(c.SecretHashes) != 1 || c.Channel != client.DefaultChannel || c.Disabled {
			t.Fatalf("stored %+v: want the name trimmed, scopes canonical, one hash, channel %q", c, client.DefaultChannel)
		}
	}
	if got.Version != read.Version {
		t.Fatalf("Create returned version %d, ByID %d", got.Version, read.Version)
	}
}

func testInvalid(t *testing.T, s client.Store) {
	c := ctx(t)
	with := func(f func(*client.Client)) client.Client {
		cl, _ := newClient(client.NewID())
		f(&cl)
		return cl
	}
	_, h1 := client.NewSecret()
	_, h2 := client.NewSecret()
	_, h3 := client.NewSecret()
	for _, tc := range []struct {
		name string
		c    client.Client
	}{
		{"no id", with(func(c *client.Client) { c.ID = "" })},
		{"no prefix", with(func(c *client.Client) { c.ID = "u_abc" })},
		{"bad id", with(func(c *client.Client) { c.ID = "c_a/b" })},
		{"wildcard id", with(func(c *client.Client) { c.ID = "c_*" })},
		{"long id", with(func(c *client.Client) { c.ID = "c_" + strings.Repeat("a", 63) })},
		{"no name", with(func(c *client.Client) { c.Name = "  " })},
		{"long name", with(func(c *client.Client) { c.Name = strings.Repeat("é", client.MaxNameLen+1) })},
		{"control in name", with(func(c *client.Client) { c.Name = "a\x00b" })},
		{"no scopes", with(func(c *client.Client) { c.Scopes = nil })},
		{"unknown scope", with(func(c *client.Client) { c.Scopes = append(c.Scopes, "admin") })},
		{"bad hash", with(func(c *client.Client) { c.SecretHashes = []string{"tks_secret"} })},
		{"upper-case hash", with(func(c *client.Client) { c.SecretHashes = []string{strings.ToUpper(h1)} })},
		{"three secrets", with(func(c *client.Client) { c.SecretHashes = []string{h1, h2, h3} })},
		{"bad channel", with(func(c *client.Client) { c.Channel = "Partner" })},
		{"no time", with(func(c *client.Client) { c.CreatedAt = time.Time{} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Create(c, tc.c)
			wantKind(t, err, errs.Invalid, "")
			if client.ValidID(tc.c.ID) {
				_, err := s.ByID(c, tc.c.ID)
				wantKind(t, err, errs.NotFound, "")
			}
		})
	}
}

func testNotFound(t *testing.T, s client.Store) {
	c := ctx(t)
	_, err := s.ByID(c, client.NewID())
	wantKind(t, err, errs.NotFound, "")
	for _, q := range []string{"", "c_", "c_a/b", "c_a.b", "c_*", "c_>", "client.c_x", strings.Repeat("c", 200)} {
		_, err = s.ByID(c, q)
		wantKind(t, err, errs.NotFound, "")
	}
	in, _ := newClient(client.NewID())
	in.Version = 1
	_, err = s.Update(c, in)
	wantKind(t, err, errs.NotFound, "")
	_, err = s.ByID(c, in.ID)
	wantKind(t, err, errs.NotFound, "")
}

func testDuplicateID(t *testing.T, s client.Store) {
	c := ctx(t)
	first, _ := newClient(client.NewID())
	stored := create(t, s, first)
	second, _ := newClient(first.ID)
	second.Name = "Other"
	_, err := s.Create(c, second)
	wantKind(t, err, errs.Conflict, client.ReasonIDTaken)
	got, err := s.ByID(c, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, stored)
}

// testConcurrentSameID: of many creates with one id at once, exactly one
// succeeds, and it is the one stored.
func testConcurrentSameID(t *testing.T, s client.Store) {
	c := ctx(t)
	const n = 16
	for round := range 3 {
		id := client.NewID()
		results := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				cl, _ := newClient(id)
				cl.Name = fmt.Sprintf("client %d", i)
				_, results[i] = s.Create(c, cl)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: creates %d and %d both succeeded", round, winner, i)
				}
				winner = i
			case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == client.ReasonIDTaken:
			default:
				t.Fatalf("round %d: create %d: %v, want success or id taken", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no create succeeded: %v", round, results)
		}
		got, err := s.ByID(c, id)
		if err != nil || got.Name != fmt.Sprintf("client %d", winner) {
			t.Fatalf("round %d: ByID = %+v, %v; want the winner %d", round, got, err, winner)
		}
	}
}

func testUpdate(t *testing.T, s client.Store) {
	c := ctx(t)
	in, _ := newClient(client.NewID())
	v1 := create(t, s, in)

	next := v1
	next.Name = "Acme Tickets GmbH"
	next.Scopes = []string{client.ScopeOrdersRead, client.ScopeOrdersWrite, client.ScopeHoldsWrite}
	next.Channel = "reseller"
	next.CreatedAt = v1.CreatedAt.In(time.FixedZone("X", -7200)) // the same instant
	v2, err := s.Update(c, next)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version == v1.Version || v2.Version == 0 {
		t.Fatalf("Update returned version %d after %d", v2.Version, v1.Version)
	}
	want, _ := client.Normalize(next)
	want.Version = v2.Version
	mustEqual(t, v2, want)
	got, err := s.ByID(c, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, want)
	if !slices.Equal(got.Scopes, []string{client.ScopeHoldsWrite, client.ScopeOrdersWrite, client.ScopeOrdersRead}) {
		t.Fatalf("scopes %v not in canonical order", got.Scopes)
	}

	// A second update from the new version succeeds too, and its version
	// differs from both before.
	got.Disabled = true
	v3, err := s.Update(c, got)
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version == v2.Version || v3.Version == v1.Version || !v3.Disabled {
		t.Fatalf("third version %+v after %d, %d", v3, v1.Version, v2.Version)
	}
}

func testUpdateRefused(t *testing.T, s client.Store) {
	c := ctx(t)
	in, _ := newClient(client.NewID())
	v1 := create(t, s, in)
	next := v1
	next.Name = "second"
	v2, err := s.Update(c, next)
	if err != nil {
		t.Fatal(err)
	}

	stale := v1
	stale.Name = "stale"
	_, err = s.Update(c, stale)
	wantKind(t, err, errs.Conflict, client.ReasonVersionMismatch)

	for _, ver := range []uint64{0, v2.Version + 1000} {
		odd := v2
		odd.Version = ver
		odd.Name = "odd version"
		_, err = s.Update(c, odd)
		wantKind(t, err, errs.Conflict, client.ReasonVersionMismatch)
	}

	moved := v2
	moved.CreatedAt = v2.CreatedAt.Add(time.Second)
	_, err = s.Update(c, moved)
	wantKind(t, err, errs.Invalid, "")

	invalid := v2
	invalid.Scopes = []string{"admin"}
	_, err = s.Update(c, invalid)
	wantKind(t, err, errs.Invalid, "")

	got, err := s.ByID(c, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, v2)
}

// testConcurrentUpdates: of many updates from one version at once, exactly
// one succeeds; the others are version mismatches.
func testConcurrentUpdates(t *testing.T, s client.Store) {
	for round := range 5 {
		concurrentUpdates(t, s, round)
	}
}

func concurrentUpdates(t *testing.T, s client.Store, round int) {
	c := ctx(t)
	in, _ := newClient(client.NewID())
	base := create(t, s, in)
	const n = 16
	results := make([]error, n)
	versions := make([]uint64, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			u := base
			u.Name = fmt.Sprintf("update %d", i)
			got, err := s.Update(c, u)
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
				t.Fatalf("round %d: updates %d and %d from one version both succeeded", round, winner, i)
			}
			winner = i
		case errs.Is(errs.Conflict, err) && errs.ReasonOf(err) == client.ReasonVersionMismatch:
		default:
			t.Fatalf("round %d: update %d: %v, want success or version mismatch", round, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("round %d: no update succeeded: %v", round, results)
	}
	got, err := s.ByID(c, in.ID)
	if err != nil || got.Name != fmt.Sprintf("update %d", winner) || got.Version != versions[winner] {
		t.Fatalf("round %d: ByID = %+v, %v; want update %d at version %d", round, got, err, winner, versions[winner])
	}
}

func ids(cs []client.Client) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func testList(t *testing.T, s client.Store) {
	c := ctx(t)
	got, err := s.List(c, "", 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("List of an empty store = %v, %v", ids(got), err)
	}
	var want []string
	stored := map[string]client.Client{}
	for range 7 {
		in, _ := newClient(client.NewID())
		cl := create(t, s, in)
		want = append(want, cl.ID)
		stored[cl.ID] = cl
	}
	// An update shows in the list.
	first := stored[want[0]]
	first.Disabled = true
	first, err = s.Update(c, first)
	if err != nil {
		t.Fatal(err)
	}
	stored[first.ID] = first
	slices.Sort(want)

	all, err := s.List(c, "", client.MaxList)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(all), want) {
		t.Fatalf("List = %v, want %v", ids(all), want)
	}
	for _, cl := range all {
		mustEqual(t, cl, stored[cl.ID])
	}

	var paged []string
	after := ""
	for page := 0; ; page++ {
		got, err := s.List(c, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 3 {
			t.Fatalf("page %d has %d clients, limit 3", page, len(got))
		}
		paged = append(paged, ids(got)...)
		if len(got) < 3 {
			break
		}
		after = got[len(got)-1].ID
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(paged, want) {
		t.Fatalf("pages = %v, want %v", paged, want)
	}

	// after need not be an id that exists, nor a valid one.
	got, err = s.List(c, want[2]+"-", 2)
	if err != nil || !slices.Equal(ids(got), want[3:5]) {
		t.Fatalf("List after %q = %v, %v; want %v", want[2]+"-", ids(got), err, want[3:5])
	}
	got, err = s.List(c, "~", 2)
	if err != nil || len(got) != 0 {
		t.Fatalf("List after the last = %v, %v", ids(got), err)
	}
}

// testListOrder: ids are ordered by their bytes, whatever a database's
// collation would do with '-', '_' and case.
func testListOrder(t *testing.T, s client.Store) {
	c := ctx(t)
	want := []string{"c_-z", "c_0", "c_A", "c_Z_", "c__", "c_a", "c_a-", "c_a_", "c_b"}
	for _, i := range []int{4, 1, 7, 0, 8, 2, 5, 3, 6} {
		in, _ := newClient(want[i])
		create(t, s, in)
	}
	got, err := s.List(c, "", 100)
	if err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("List = %v, %v; want %v", ids(got), err, want)
	}
	got, err = s.List(c, "c_Z_", 3)
	if err != nil || !slices.Equal(ids(got), want[4:7]) {
		t.Fatalf("List after c_Z_ = %v, %v; want %v", ids(got), err, want[4:7])
	}
}

func testListLimit(t *testing.T, s client.Store) {
	c := ctx(t)
	for _, limit := range []int{0, -1, client.MaxList + 1} {
		_, err := s.List(c, "", limit)
		wantKind(t, err, errs.Invalid, "")
	}
	in, _ := newClient(client.NewID())
	create(t, s, in)
	got, err := s.List(c, "", 1)
	if err != nil || len(got) != 1 || got[0].ID != in.ID {
		t.Fatalf("List limit 1 = %v, %v", ids(got), err)
	}
}

// testSecretRotation runs a rotation through the store and the domain: a
// second secret is added, both work, the first is revoked and stops
// working.
func testSecretRotation(t *testing.T, s client.Store) {
	c := ctx(t)
	in, oldSecret := newClient(client.NewID())
	cl := create(t, s, in)
	if _, err := client.AuthenticateID(c, s, cl.ID, oldSecret); err != nil {
		t.Fatalf("the first secret: %v", err)
	}
	withNew, newSecret, err := client.AddSecret(cl)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.AddSecret(withNew); !errs.Is(errs.Conflict, err) || errs.ReasonOf(err) != client.ReasonTooManySecrets {
		t.Fatalf("a third secret: %v, want too many secrets", err)
	}
	cl, err = s.Update(c, withNew)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{oldSecret, newSecret} {
		if _, err := client.AuthenticateID(c, s, cl.ID, secret); err != nil {
			t.Fatalf("during rotation: %v", err)
		}
	}
	revoked, err := client.RevokeSecret(cl, client.HashSecret(oldSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(c, revoked); err != nil {
		t.Fatal(err)
	}
	_, err = client.AuthenticateID(c, s, cl.ID, oldSecret)
	wantKind(t, err, errs.Unauthorized, client.ReasonInvalidClient)
	got, err := client.AuthenticateID(c, s, cl.ID, newSecret)
	if err != nil || got.ID != cl.ID || len(got.SecretHashes) != 1 {
		t.Fatalf("after rotation: %+v, %v", got, err)
	}
	_, err = client.AuthenticateID(c, s, client.NewID(), newSecret)
	wantKind(t, err, errs.Unauthorized, client.ReasonInvalidClient)
}

func testDisable(t *testing.T, s client.Store) {
	c := ctx(t)
	in, secret := newClient(client.NewID())
	cl := create(t, s, in)
	cl.Disabled = true
	if _, err := s.Update(c, cl); err != nil {
		t.Fatal(err)
	}
	_, err := client.AuthenticateID(c, s, cl.ID, secret)
	wantKind(t, err, errs.Forbidden, client.ReasonUnauthorizedClient)
	_, err = client.AuthenticateID(c, s, cl.ID, "tks_wrong")
	wantKind(t, err, errs.Unauthorized, client.ReasonInvalidClient)
}

func testCancelledContext(t *testing.T, s client.Store) {
	c, cancel := context.WithCancel(context.Background())
	cancel()
	in, _ := newClient(client.NewID())
	if _, err := s.Create(c, in); err == nil {
		t.Fatal("Create with a cancelled context succeeded")
	}
	if _, err := s.ByID(c, in.ID); err == nil || errs.Is(errs.NotFound, err) {
		t.Fatalf("ByID with a cancelled context: %v, want an error other than not found", err)
	}
	if _, err := s.List(c, "", 10); err == nil {
		t.Fatal("List with a cancelled context succeeded")
	}
}
