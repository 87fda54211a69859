package search_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/search"
)

func TestFromCatalog(t *testing.T) {
	v := catalog.Venue{ID: "arena", Name: "Arena", City: "Berlin", Zones: []catalog.Zone{
		{ID: "floor", Name: "Floor", Kind: catalog.GA, Capacity: 100, PriceCents: 4900, Currency: "EUR"},
		{ID: "tier", Name: "Tier", Kind: catalog.Reserved, PriceCents: 2900, Currency: "EUR"},
		{ID: "box", Name: "Box", Kind: catalog.Reserved, PriceCents: 9900, Currency: "EUR"},
	}}
	cest := time.FixedZone("CEST", 2*3600)
	e := catalog.Event{ID: "show", Name: "Show", VenueID: "arena",
		StartsAt: time.Date(2031, 5, 1, 20, 0, 0, 123456789, cest), OnSaleAt: time.Date(2031, 3, 1, 10, 0, 0, 0, cest)}
	d := search.FromCatalog(e, v)
	if d.ID != "show" || d.VenueName != "Arena" || d.City != "Berlin" || d.MinPriceCents != 2900 || d.Currency != "EUR" {
		t.Errorf("FromCatalog = %+v", d)
	}
	if !slices.Equal(d.ZoneKinds, []catalog.ZoneKind{catalog.GA, catalog.Reserved}) {
		t.Errorf("zone kinds %v", d.ZoneKinds)
	}
	if want := time.Date(2031, 5, 1, 18, 0, 0, 123000000, time.UTC); !d.StartsAt.Equal(want) || d.StartsAt.Location() != time.UTC {
		t.Errorf("starts_at %v, want %v in UTC, to the millisecond", d.StartsAt, want)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("a document from a valid catalog entry: %v", err)
	}
}

func TestNormalizeQuery(t *testing.T) {
	q, err := search.Query{Text: "  rock  "}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if q.Text != "rock" || q.Limit != search.DefaultLimit || q.Sort != search.ByRelevance {
		t.Errorf("normalized %+v", q)
	}
	if _, err := (search.Query{Limit: search.MaxLimit + 1}).Normalize(); !errs.Is(errs.Invalid, err) {
		t.Errorf("limit too large: %v", err)
	}
}

func TestCanonicalFacets(t *testing.T) {
	f := search.Facets{
		Cities:    []search.Bucket{{"b", 1}, {"a", 1}, {"c", 5}, {"z", 0}},
		Months:    []search.Bucket{{"2031-02", 9}, {"2030-12", 1}},
		ZoneKinds: []search.Bucket{{"reserved", 1}, {"ga", 2}},
		Prices:    []search.Bucket{{"200-and-up", 1}, {"under-25", 3}, {"25-50", 0}},
	}
	f.Canonical()
	want := search.Facets{
		Cities:    []search.Bucket{{"c", 5}, {"a", 1}, {"b", 1}},
		Months:    []search.Bucket{{"2030-12", 1}, {"2031-02", 9}},
		ZoneKinds: []search.Bucket{{"ga", 2}, {"reserved", 1}},
		Prices:    []search.Bucket{{"under-25", 3}, {"200-and-up", 1}},
	}
	for _, c := range [][2][]search.Bucket{{f.Cities, want.Cities}, {f.Months, want.Months}, {f.ZoneKinds, want.ZoneKinds}, {f.Prices, want.Prices}} {
		if !slices.Equal(c[0], c[1]) {
			t.Errorf("got %v, want %v", c[0], c[1])
		}
	}
}

func TestFailedIDs(t *testing.T) {
	err := errs.E("op", errs.Unavailable, &search.BatchError{Items: []search.ItemError{{ID: "a"}, {ID: "b"}}})
	if got := search.FailedIDs(err); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("FailedIDs = %v", got)
	}
	if search.FailedIDs(errs.E("op", errs.Other)) != nil {
		t.Errorf("FailedIDs of an error without a batch")
	}
}
