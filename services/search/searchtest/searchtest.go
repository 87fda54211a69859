// Package searchtest is the contract suite for search.Index: every
// implementation runs Run in its tests (as watermill runs one pub/sub suite
// against every backend), so that the embedded index and OpenSearch answer
// the same queries alike: indexing, full-text relevance, filters, distance,
// paging, facet counts, updates, deletes and validation.
package searchtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/search"
)

// Setup tells the suite how to get the index under test.
type Setup struct {
	// New returns a new, empty index of its own, and removes it when t
	// ends. Writes to it must be visible to Search when Put or Delete
	// returns (for OpenSearch: refresh "true" or "wait_for").
	New func(t *testing.T) search.Index
}

// Places used by the dataset and the distance tests.
var (
	Berlin  = search.GeoPoint{Lat: 52.5200, Lon: 13.4050}
	Hamburg = search.GeoPoint{Lat: 53.5511, Lon: 9.9937}
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func pt(lat, lon float64) *search.GeoPoint { return &search.GeoPoint{Lat: lat, Lon: lon} }

const (
	R = catalog.Reserved
	G = catalog.GA
)

// Dataset is the documents every read test searches: nine events in five
// cities over four months. The comments give what the tests rely on.
func Dataset() []search.Document {
	doc := func(id, name, desc, venue, city string, loc *search.GeoPoint, starts string, price int64, kinds []catalog.ZoneKind, tags ...string) search.Document {
		s := at(starts)
		return search.Document{
			ID: id, Name: name, Description: desc, VenueID: "v-" + id, VenueName: venue, City: city,
			Location: loc, StartsAt: s, OnSaleAt: s.Add(-60 * 24 * time.Hour),
			MinPriceCents: price, Currency: "EUR", ZoneKinds: kinds, Tags: tags,
		}
	}
	return []search.Document{
		// "rock festival": the only one with both words in its name.
		doc("rock-fest-hh", "Hamburg Rock Festival", "Three stages, twenty bands.", "Trabrennbahn Bahrenfeld", "Hamburg", pt(53.5686, 9.8906), "2031-06-20T14:00:00Z", 8900, []catalog.ZoneKind{G}, "rock", "festival"),
		// 4.3 km from Berlin's centre.
		doc("rock-classics", "Rock Classics Night", "The anthems of the seventies, played live.", "Columbiahalle", "Berlin", pt(52.4836, 13.3853), "2031-05-10T19:00:00Z", 3900, []catalog.ZoneKind{G, R}, "rock"),
		// 5.9 km from Berlin's centre; "jazz" in its name.
		doc("jazz-night", "Jazz Night", "A late set of standards.", "A-Trane", "Berlin", pt(52.5066, 13.3211), "2031-05-03T20:00:00Z", 2500, []catalog.ZoneKind{R}, "jazz"),
		// "jazz" in its description only.
		doc("phil-5", "Beethoven Symphony No. 5", "The orchestra plays Beethoven, with a jazz pianist as guest.", "Elbphilharmonie", "Hamburg", pt(53.5413, 9.9842), "2031-07-01T19:30:00Z", 4500, []catalog.ZoneKind{R}, "classical"),
		doc("phil-9", "Beethoven Symphony No. 9", "Choir and orchestra.", "Elbphilharmonie", "Hamburg", pt(53.5413, 9.9842), "2031-07-08T19:30:00Z", 12000, []catalog.ZoneKind{R}, "classical"),
		// 28 km from Berlin's centre.
		doc("potsdam-open-air", "Sanssouci Open Air", "Baroque music in the park.", "Park Sanssouci", "Potsdam", pt(52.4010, 13.0380), "2031-06-01T18:00:00Z", 1900, []catalog.ZoneKind{G}, "classical", "family"),
		// In Berlin but without a location: never within a distance.
		doc("kids-show", "Circus for Kids", "", "Tempodrom", "Berlin", nil, "2031-05-20T15:00:00Z", 1500, []catalog.ZoneKind{G}, "family"),
		doc("munich-rock", "Isar Rock Open", "", "Olympiastadion", "München", pt(48.1731, 11.5466), "2031-08-15T16:00:00Z", 25000, []catalog.ZoneKind{G, R}, "rock"),
		// An accent in the name, a city with an umlaut, a price on a
		// bucket boundary (50.00 is in 50-100).
		doc("koeln-comedy", "Comédie Evening", "Stand-up in three languages.", "Lanxess Arena", "Köln", pt(50.9384, 6.9830), "2031-06-10T20:00:00Z", 5000, []catalog.ZoneKind{R}, "comedy"),
	}
}

// byDate is every dataset id in start order.
var byDate = []string{"jazz-night", "rock-classics", "kids-show", "potsdam-open-air", "koeln-comedy", "rock-fest-hh", "phil-5", "phil-9", "munich-rock"}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, ix search.Index, docs ...search.Document) {
	t.Helper()
	if err := ix.Put(ctxT(t), docs...); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func find(t *testing.T, ix search.Index, q search.Query) search.Results {
	t.Helper()
	r, err := ix.Search(ctxT(t), q)
	if err != nil {
		t.Fatalf("Search(%+v): %v", q, err)
	}
	if len(r.Hits) > r.Total {
		t.Errorf("Search(%+v): %d hits but Total %d", q, len(r.Hits), r.Total)
	}
	return r
}

func ids(r search.Results) []string {
	out := make([]string, len(r.Hits))
	for i, h := range r.Hits {
		out[i] = h.ID
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// expectSet checks the hits (all of them: the query must fit a page) as a
// set, and Total.
func expectSet(t *testing.T, what string, r search.Results, want ...string) {
	t.Helper()
	if got := sorted(ids(r)); !slices.Equal(got, sorted(want)) || r.Total != len(want) {
		t.Errorf("%s: got %v (Total %d), want %v", what, got, r.Total, sorted(want))
	}
}

// Run runs the contract suite.
func Run(t *testing.T, s Setup) {
	t.Run("Read", func(t *testing.T) {
		ix := s.New(t)
		put(t, ix, Dataset()...)
		read := []struct {
			name string
			fn   func(*testing.T, search.Index)
		}{
			{"RoundTrip", testRoundTrip},
			{"Relevance", testRelevance},
			{"TextAnalysis", testTextAnalysis},
			{"Filters", testFilters},
			{"Geo", testGeo},
			{"Paging", testPaging},
			{"Facets", testFacets},
			{"InvalidQueries", testInvalidQueries},
			{"CancelledContext", testCancelled},
		}
		for _, c := range read {
			t.Run(c.name, func(t *testing.T) { t.Parallel(); c.fn(t, ix) })
		}
	})
	t.Run("Upsert", func(t *testing.T) { t.Parallel(); testUpsert(t, s.New(t)) })
	t.Run("Delete", func(t *testing.T) { t.Parallel(); testDelete(t, s.New(t)) })
	t.Run("InvalidDocuments", func(t *testing.T) { t.Parallel(); testInvalidDocuments(t, s.New(t)) })
	t.Run("ConcurrentWriters", func(t *testing.T) { t.Parallel(); testConcurrent(t, s.New(t)) })
}

func testRoundTrip(t *testing.T, ix search.Index) {
	r := find(t, ix, search.Query{Sort: search.ByDate, Limit: search.MaxLimit})
	if r.Total != len(byDate) || !slices.Equal(ids(r), byDate) {
		t.Fatalf("all by date: %v (Total %d), want %v", ids(r), r.Total, byDate)
	}
	want := map[string]search.Document{}
	for _, d := range Dataset() {
		want[d.ID] = d.Normalize()
	}
	for _, h := range r.Hits {
		got, _ := json.Marshal(h.Document)
		exp, _ := json.Marshal(want[h.ID])
		if string(got) != string(exp) {
			t.Errorf("document %s came back as\n%s\nwant\n%s", h.ID, got, exp)
		}
	}
}

func testRelevance(t *testing.T, ix search.Index) {
	r := find(t, ix, search.Query{Text: "rock festival"})
	if len(r.Hits) == 0 || r.Hits[0].ID != "rock-fest-hh" {
		t.Errorf("rock festival: %v, want rock-fest-hh first", ids(r))
	}
	expectSet(t, "rock festival", r, "rock-fest-hh", "rock-classics", "munich-rock")
	for i := 1; i < len(r.Hits); i++ {
		if r.Hits[i].Score > r.Hits[i-1].Score {
			t.Errorf("rock festival: hit %d scores %v, above hit %d's %v", i, r.Hits[i].Score, i-1, r.Hits[i-1].Score)
		}
	}
	if len(r.Hits) > 1 && !(r.Hits[0].Score > r.Hits[1].Score) {
		t.Errorf("rock festival: best match does not score above the rest: %v vs %v", r.Hits[0].Score, r.Hits[1].Score)
	}

	// A match in the name outweighs one in the description.
	r = find(t, ix, search.Query{Text: "jazz"})
	if !slices.Equal(ids(r), []string{"jazz-night", "phil-5"}) {
		t.Errorf("jazz: %v, want [jazz-night phil-5] (name before description)", ids(r))
	}

	// Venue names are searched.
	expectSet(t, "elbphilharmonie", find(t, ix, search.Query{Text: "Elbphilharmonie"}), "phil-5", "phil-9")

	// No match is an empty result, not an error.
	expectSet(t, "nothing", find(t, ix, search.Query{Text: "zzyzx"}))
}

func testTextAnalysis(t *testing.T, ix search.Index) {
	// Case and English stemming: "SYMPHONIES" finds "Symphony".
	expectSet(t, "SYMPHONIES", find(t, ix, search.Query{Text: "SYMPHONIES"}), "phil-5", "phil-9")
	// ASCII folding: "comedie" finds "Comédie", and so does "Comédie".
	expectSet(t, "comedie", find(t, ix, search.Query{Text: "comedie"}), "koeln-comedy")
	expectSet(t, "Comédie", find(t, ix, search.Query{Text: "Comédie"}), "koeln-comedy")
	// Possessives and stop words do not match on their own.
	expectSet(t, "the", find(t, ix, search.Query{Text: "the"}))
	expectSet(t, "kid's", find(t, ix, search.Query{Text: "kid's"}), "kids-show")
}

func testFilters(t *testing.T, ix search.Index) {
	all := search.Query{Limit: search.MaxLimit}
	with := func(f func(q *search.Query)) search.Query { q := all; f(&q); return q }

	expectSet(t, "city berlin", find(t, ix, with(func(q *search.Query) { q.City = "berlin" })), "rock-classics", "jazz-night", "kids-show")
	expectSet(t, "city KÖLN", find(t, ix, with(func(q *search.Query) { q.City = "KÖLN" })), "koeln-comedy")
	expectSet(t, "city nowhere", find(t, ix, with(func(q *search.Query) { q.City = "Nowhere" })))
	expectSet(t, "kind ga", find(t, ix, with(func(q *search.Query) { q.ZoneKind = catalog.GA })),
		"rock-fest-hh", "rock-classics", "potsdam-open-air", "kids-show", "munich-rock")
	expectSet(t, "tag classical", find(t, ix, with(func(q *search.Query) { q.Tag = "classical" })), "phil-5", "phil-9", "potsdam-open-air")

	// [From, To): a start exactly at From is in, exactly at To is out.
	expectSet(t, "june", find(t, ix, with(func(q *search.Query) {
		q.From, q.To = at("2031-06-01T18:00:00Z"), at("2031-07-01T19:30:00Z")
	})), "potsdam-open-air", "koeln-comedy", "rock-fest-hh")
	expectSet(t, "from july", find(t, ix, with(func(q *search.Query) { q.From = at("2031-07-01T19:30:00Z") })), "phil-5", "phil-9", "munich-rock")
	expectSet(t, "before may 10th 19:00", find(t, ix, with(func(q *search.Query) { q.To = at("2031-05-10T19:00:00Z") })), "jazz-night")
	// Times in other zones mean the same instants.
	cest := time.FixedZone("CEST", 2*3600)
	expectSet(t, "from july, CEST", find(t, ix, with(func(q *search.Query) { q.From = at("2031-07-01T19:30:00Z").In(cest) })), "phil-5", "phil-9", "munich-rock")

	// Filters combine with each other and with text, and do not change
	// the order of a text search.
	expectSet(t, "rock in hamburg", find(t, ix, with(func(q *search.Query) { q.Text, q.City = "rock", "Hamburg" })), "rock-fest-hh")
	expectSet(t, "ga and family", find(t, ix, with(func(q *search.Query) { q.ZoneKind, q.Tag = catalog.GA, "family" })), "potsdam-open-air", "kids-show")
	r := find(t, ix, with(func(q *search.Query) { q.Text, q.From = "jazz", at("2031-05-01T00:00:00Z") }))
	if !slices.Equal(ids(r), []string{"jazz-night", "phil-5"}) {
		t.Errorf("jazz from may: %v, want [jazz-night phil-5]", ids(r))
	}
}

func testGeo(t *testing.T, ix search.Index) {
	near := func(p search.GeoPoint, km float64) search.Query {
		return search.Query{Near: &search.Near{Point: p, RadiusKm: km}, Limit: search.MaxLimit}
	}
	expectSet(t, "10 km of Berlin", find(t, ix, near(Berlin, 10)), "rock-classics", "jazz-night")
	expectSet(t, "5 km of Berlin", find(t, ix, near(Berlin, 5)), "rock-classics")
	expectSet(t, "50 km of Berlin", find(t, ix, near(Berlin, 50)), "rock-classics", "jazz-night", "potsdam-open-air")
	expectSet(t, "20 km of Hamburg", find(t, ix, near(Hamburg, 20)), "rock-fest-hh", "phil-5", "phil-9")
	// The whole earth: every document with a location, none without.
	r := find(t, ix, near(Berlin, search.MaxRadiusKm))
	if r.Total != len(byDate)-1 || slices.Contains(ids(r), "kids-show") {
		t.Errorf("whole earth: %v (Total %d), want all but kids-show", ids(r), r.Total)
	}
	// With text and a filter.
	q := near(Berlin, 50)
	q.Text, q.Tag = "music", "classical"
	expectSet(t, "music near Berlin", find(t, ix, q), "potsdam-open-air")
}

func testPaging(t *testing.T, ix search.Index) {
	for _, sort := range []search.Sort{search.ByDate, search.ByRelevance} {
		// Without text, relevance ties everywhere and falls back to date.
		var got []string
		for off := 0; off < len(byDate)+4; off += 4 {
			r := find(t, ix, search.Query{Sort: sort, Offset: off, Limit: 4})
			if r.Total != len(byDate) {
				t.Errorf("%s offset %d: Total %d, want %d", sort, off, r.Total, len(byDate))
			}
			if want := min(4, max(0, len(byDate)-off)); len(r.Hits) != want {
				t.Errorf("%s offset %d: %d hits, want %d", sort, off, len(r.Hits), want)
			}
			got = append(got, ids(r)...)
		}
		if !slices.Equal(got, byDate) {
			t.Errorf("%s: pages of 4 give %v, want %v", sort, got, byDate)
		}
	}
	// Pages of a text search: the best match on page one, no hit twice.
	var got []string
	for off := range 3 {
		r := find(t, ix, search.Query{Text: "rock festival", Offset: off, Limit: 1})
		if r.Total != 3 {
			t.Errorf("rock festival offset %d: Total %d, want 3", off, r.Total)
		}
		got = append(got, ids(r)...)
	}
	if len(got) != 3 || got[0] != "rock-fest-hh" || !slices.Equal(sorted(got), []string{"munich-rock", "rock-classics", "rock-fest-hh"}) {
		t.Errorf("rock festival in pages of 1: %v", got)
	}
	// Default page size.
	if r := find(t, ix, search.Query{}); len(r.Hits) != min(len(byDate), search.DefaultLimit) {
		t.Errorf("default limit: %d hits", len(r.Hits))
	}
	// Past the end: no hits, the same total.
	if r := find(t, ix, search.Query{Offset: 100, Limit: 10}); len(r.Hits) != 0 || r.Total != len(byDate) {
		t.Errorf("past the end: %d hits, Total %d", len(r.Hits), r.Total)
	}
}

func b(key string, n int) search.Bucket { return search.Bucket{Key: key, Count: n} }

func testFacets(t *testing.T, ix search.Index) {
	check := func(what string, got *search.Facets, want search.Facets) {
		t.Helper()
		if got == nil {
			t.Errorf("%s: no facets", what)
			return
		}
		for _, f := range []struct {
			name      string
			got, want []search.Bucket
		}{
			{"cities", got.Cities, want.Cities},
			{"months", got.Months, want.Months},
			{"zone kinds", got.ZoneKinds, want.ZoneKinds},
			{"prices", got.Prices, want.Prices},
		} {
			if !slices.Equal(f.got, f.want) && !(len(f.got) == 0 && len(f.want) == 0) {
				t.Errorf("%s: %s facet %v, want %v", what, f.name, f.got, f.want)
			}
		}
	}
	// Counts cover every match, not only the page.
	r := find(t, ix, search.Query{Facets: true, Limit: 1})
	check("all", r.Facets, search.Facets{
		Cities:    []search.Bucket{b("Berlin", 3), b("Hamburg", 3), b("Köln", 1), b("München", 1), b("Potsdam", 1)},
		Months:    []search.Bucket{b("2031-05", 3), b("2031-06", 3), b("2031-07", 2), b("2031-08", 1)},
		ZoneKinds: []search.Bucket{b("reserved", 6), b("ga", 5)},
		Prices:    []search.Bucket{b("under-25", 2), b("25-50", 3), b("50-100", 2), b("100-200", 1), b("200-and-up", 1)},
	})
	r = find(t, ix, search.Query{Facets: true, City: "Berlin"})
	check("berlin", r.Facets, search.Facets{
		Cities:    []search.Bucket{b("Berlin", 3)},
		Months:    []search.Bucket{b("2031-05", 3)},
		ZoneKinds: []search.Bucket{b("ga", 2), b("reserved", 2)},
		Prices:    []search.Bucket{b("under-25", 1), b("25-50", 2)},
	})
	r = find(t, ix, search.Query{Facets: true, Text: "rock"})
	check("rock", r.Facets, search.Facets{
		Cities:    []search.Bucket{b("Berlin", 1), b("Hamburg", 1), b("München", 1)},
		Months:    []search.Bucket{b("2031-05", 1), b("2031-06", 1), b("2031-08", 1)},
		ZoneKinds: []search.Bucket{b("ga", 3), b("reserved", 2)},
		Prices:    []search.Bucket{b("25-50", 1), b("50-100", 1), b("200-and-up", 1)},
	})
	r = find(t, ix, search.Query{Facets: true, Text: "zzyzx"})
	check("no match", r.Facets, search.Facets{})
	if r := find(t, ix, search.Query{}); r.Facets != nil {
		t.Errorf("facets not asked for, got %+v", r.Facets)
	}
}

func testInvalidQueries(t *testing.T, ix search.Index) {
	bad := map[string]search.Query{
		"negative limit":        {Limit: -1},
		"limit too large":       {Limit: search.MaxLimit + 1},
		"negative offset":       {Offset: -1},
		"paging too deep":       {Offset: search.MaxWindow, Limit: 1},
		"text too long":         {Text: strings.Repeat("a", search.MaxTextLen+1)},
		"text not utf-8":        {Text: "\xff\xfe"},
		"city too long":         {City: strings.Repeat("x", catalog.MaxNameLen+1)},
		"unknown zone kind":     {ZoneKind: "standing"},
		"bad tag":               {Tag: "Not A Tag"},
		"unknown sort":          {Sort: "price"},
		"from after to":         {From: at("2031-07-01T00:00:00Z"), To: at("2031-06-01T00:00:00Z")},
		"from equals to":        {From: at("2031-07-01T00:00:00Z"), To: at("2031-07-01T00:00:00Z")},
		"latitude above 90":     {Near: &search.Near{Point: search.GeoPoint{Lat: 90.5, Lon: 0}, RadiusKm: 1}},
		"longitude below -180":  {Near: &search.Near{Point: search.GeoPoint{Lat: 0, Lon: -181}, RadiusKm: 1}},
		"latitude NaN":          {Near: &search.Near{Point: search.GeoPoint{Lat: math.NaN(), Lon: 0}, RadiusKm: 1}},
		"zero radius":           {Near: &search.Near{Point: Berlin}},
		"negative radius":       {Near: &search.Near{Point: Berlin, RadiusKm: -5}},
		"radius beyond earth":   {Near: &search.Near{Point: Berlin, RadiusKm: search.MaxRadiusKm + 1}},
		"radius infinite":       {Near: &search.Near{Point: Berlin, RadiusKm: math.Inf(1)}},
		"radius NaN":            {Near: &search.Near{Point: Berlin, RadiusKm: math.NaN()}},
		"limit and offset past": {Offset: search.MaxWindow - 5, Limit: 10},
	}
	for name, q := range bad {
		if _, err := ix.Search(ctxT(t), q); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: err = %v, want kind %v", name, err, errs.Invalid)
		}
	}
	// The largest valid page at the edge of the window is fine.
	find(t, ix, search.Query{Offset: search.MaxWindow - search.MaxLimit, Limit: search.MaxLimit})
}

func testCancelled(t *testing.T, ix search.Index) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, search.Query{Text: "rock"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Search with a cancelled context: err = %v, want one wrapping context.Canceled", err)
	}
}

func testUpsert(t *testing.T, ix search.Index) {
	docs := Dataset()
	put(t, ix, docs...)
	d := docs[slices.IndexFunc(docs, func(d search.Document) bool { return d.ID == "phil-9" })]
	d.Name = "Beethoven Symphony No. 9 (Ode to Joy)"
	d.City, d.Tags, d.Location = "Lübeck", nil, nil
	put(t, ix, d)
	expectSet(t, "joy", find(t, ix, search.Query{Text: "joy"}), "phil-9")
	if r := find(t, ix, search.Query{}); r.Total != len(docs) {
		t.Errorf("after replacing a document: Total %d, want %d", r.Total, len(docs))
	}
	// The old values are gone from every field, filter and facet.
	expectSet(t, "tag classical", find(t, ix, search.Query{Tag: "classical"}), "phil-5", "potsdam-open-air")
	expectSet(t, "city lübeck", find(t, ix, search.Query{City: "LÜBECK"}), "phil-9")
	expectSet(t, "near Hamburg", find(t, ix, search.Query{Near: &search.Near{Point: Hamburg, RadiusKm: 20}}), "rock-fest-hh", "phil-5")
	r := find(t, ix, search.Query{Facets: true, Limit: 1})
	if !slices.Contains(r.Facets.Cities, b("Hamburg", 2)) || !slices.Contains(r.Facets.Cities, b("Lübeck", 1)) {
		t.Errorf("city facet after the update: %v", r.Facets.Cities)
	}
	// The same document twice in one batch: the last one wins.
	d2 := d
	d2.Name = "Second Version"
	d.Name = "First Version"
	put(t, ix, d, d2)
	expectSet(t, "second version", find(t, ix, search.Query{Text: "second"}), "phil-9")
	expectSet(t, "first version", find(t, ix, search.Query{Text: "first"}))
}

func testDelete(t *testing.T, ix search.Index) {
	put(t, ix, Dataset()...)
	if err := ix.Delete(ctxT(t), "phil-9", "no-such-event"); err != nil {
		t.Fatalf("Delete of one known and one unknown id: %v", err)
	}
	expectSet(t, "elbphilharmonie", find(t, ix, search.Query{Text: "elbphilharmonie"}), "phil-5")
	r := find(t, ix, search.Query{Facets: true, Limit: 1})
	if r.Total != len(byDate)-1 {
		t.Errorf("after one delete: Total %d, want %d", r.Total, len(byDate)-1)
	}
	if !slices.Contains(r.Facets.Months, b("2031-07", 1)) {
		t.Errorf("month facet after the delete: %v", r.Facets.Months)
	}
	if err := ix.Delete(ctxT(t)); err != nil {
		t.Errorf("Delete of nothing: %v", err)
	}
	if err := ix.Delete(ctxT(t), "Not An Id"); !errs.Is(errs.Invalid, err) {
		t.Errorf("Delete of an invalid id: err = %v, want kind %v", err, errs.Invalid)
	}
	all := slices.Clone(byDate)
	if err := ix.Delete(ctxT(t), all...); err != nil {
		t.Fatalf("Delete all: %v", err)
	}
	if r := find(t, ix, search.Query{Facets: true}); r.Total != 0 || len(r.Hits) != 0 {
		t.Errorf("after deleting all: Total %d, hits %v", r.Total, ids(r))
	}
}

func testInvalidDocuments(t *testing.T, ix search.Index) {
	good := Dataset()[0]
	mod := func(f func(d *search.Document)) search.Document {
		d := good
		d.ID = "other"
		f(&d)
		return d
	}
	bad := map[string]search.Document{
		"empty id":          mod(func(d *search.Document) { d.ID = "" }),
		"upper-case id":     mod(func(d *search.Document) { d.ID = "Rock" }),
		"empty name":        mod(func(d *search.Document) { d.Name = "" }),
		"name too long":     mod(func(d *search.Document) { d.Name = strings.Repeat("n", catalog.MaxNameLen+1) }),
		"description long":  mod(func(d *search.Document) { d.Description = strings.Repeat("d", search.MaxDescriptionLen+1) }),
		"no start":          mod(func(d *search.Document) { d.StartsAt = time.Time{} }),
		"negative price":    mod(func(d *search.Document) { d.MinPriceCents = -1 }),
		"bad latitude":      mod(func(d *search.Document) { d.Location = pt(-91, 0) }),
		"bad longitude":     mod(func(d *search.Document) { d.Location = pt(0, 180.5) }),
		"unknown zone kind": mod(func(d *search.Document) { d.ZoneKinds = []catalog.ZoneKind{"vip"} }),
		"bad tag":           mod(func(d *search.Document) { d.Tags = []string{"Rock Music"} }),
		"too many tags": mod(func(d *search.Document) {
			d.Tags = nil
			for i := range search.MaxTags + 1 {
				d.Tags = append(d.Tags, fmt.Sprintf("t%d", i))
			}
		}),
		"bad currency": mod(func(d *search.Document) { d.Currency = "EURO" }),
		"not utf-8":    mod(func(d *search.Document) { d.Description = "\xff" }),
	}
	for name, d := range bad {
		// One valid and one invalid document: nothing is written.
		if err := ix.Put(ctxT(t), good, d); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: err = %v, want kind %v", name, err, errs.Invalid)
		}
	}
	if r := find(t, ix, search.Query{}); r.Total != 0 {
		t.Errorf("a batch with an invalid document wrote %v", ids(r))
	}
	many := make([]search.Document, search.MaxBatch+1)
	if err := ix.Put(ctxT(t), many...); !errs.Is(errs.TooLarge, err) {
		t.Errorf("Put of %d documents: err = %v, want kind %v", len(many), err, errs.TooLarge)
	}
	if err := ix.Put(ctxT(t)); err != nil {
		t.Errorf("Put of nothing: %v", err)
	}
}

// testConcurrent has writers and readers at once; every write lands.
func testConcurrent(t *testing.T, ix search.Index) {
	const writers, each = 4, 10
	base := Dataset()[1]
	var wg sync.WaitGroup
	errc := make(chan error, writers*2)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				d := base
				d.ID = fmt.Sprintf("w%d-%d", w, i)
				if err := ix.Put(context.Background(), d); err != nil {
					errc <- err
					return
				}
			}
		})
		wg.Go(func() {
			for range each {
				if _, err := ix.Search(context.Background(), search.Query{Text: "rock", Facets: true}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Errorf("concurrent: %v", err)
	}
	if r := find(t, ix, search.Query{Text: "rock"}); r.Total != writers*each {
		t.Errorf("after concurrent writes: Total %d, want %d", r.Total, writers*each)
	}
}
