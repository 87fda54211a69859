// Package search finds events: full text over names, descriptions and
// venues, filters by city, date, zone kind, tag and distance, and facet
// counts to narrow a search down. It is the domain only: the search
// document, the query and its limits, and the Index interface that adapters
// implement: services/search/bleve (embedded, for `ticketing dev`) and
// services/search/opensearch (production). services/search/searchtest is the
// contract suite both pass.
//
// The index is a read model: the catalog stays the source of truth, and a
// document can always be rebuilt from it (FromCatalog) plus the optional
// fields the catalog does not hold (description, location, tags).
package search

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
)

// Limits. They bound the work one query can ask for and the size of what is
// indexed.
const (
	MaxTextLen        = 200    // query text, bytes
	DefaultLimit      = 20     // page size when Query.Limit is 0
	MaxLimit          = 100    // page size
	MaxWindow         = 10_000 // Offset+Limit: deep paging is refused, as OpenSearch's max_result_window does
	MaxRadiusKm       = 20_000 // half the earth's circumference
	MaxDescriptionLen = 10_000 // bytes
	MaxTags           = 20
	MaxBatch          = 5_000 // documents or ids in one Put or Delete
	MaxFacetBuckets   = 50    // buckets per facet (cities); months and kinds are few
	MaxMonthBuckets   = 240   // months in the month facet: 20 years
)

// GeoPoint is a place on earth in degrees (WGS 84).
type GeoPoint struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// Validate checks the point's range.
func (p GeoPoint) Validate() error {
	if math.IsNaN(p.Lat) || p.Lat < -90 || p.Lat > 90 {
		return errs.Errorf("search.geo", errs.Invalid, "latitude %v is not in [-90, 90]", p.Lat)
	}
	if math.IsNaN(p.Lon) || p.Lon < -180 || p.Lon > 180 {
		return errs.Errorf("search.geo", errs.Invalid, "longitude %v is not in [-180, 180]", p.Lon)
	}
	return nil
}

// Document is what the index holds for one event.
type Document struct {
	ID   string `json:"id"` // the event id
	Name string `json:"name"`
	// Description is free text: performers, the programme, anything a
	// user might search for. Optional.
	Description string `json:"description,omitempty"`
	VenueID     string `json:"venue_id,omitempty"`
	VenueName   string `json:"venue_name,omitempty"`
	City        string `json:"city,omitempty"`
	// Location is where the venue is, for distance filters. Optional: a
	// document without one never matches a distance filter.
	Location *GeoPoint `json:"location,omitempty"`
	StartsAt time.Time `json:"starts_at"`
	OnSaleAt time.Time `json:"on_sale_at"`
	// MinPriceCents is the cheapest zone's price, in Currency.
	MinPriceCents int64              `json:"min_price_cents"`
	Currency      string             `json:"currency,omitempty"`
	ZoneKinds     []catalog.ZoneKind `json:"zone_kinds,omitempty"`
	// Tags are lower-case ids (catalog.ValidID), e.g. "rock", "family".
	Tags []string `json:"tags,omitempty"`
}

// FromCatalog builds the document for an event at its venue: everything the
// catalog knows. Description, Location and Tags are left for the caller.
func FromCatalog(e catalog.Event, v catalog.Venue) Document {
	d := Document{
		ID:        e.ID,
		Name:      e.Name,
		VenueID:   v.ID,
		VenueName: v.Name,
		City:      v.City,
		StartsAt:  e.StartsAt,
		OnSaleAt:  e.OnSaleAt,
	}
	for i, z := range v.Zones {
		if i == 0 || z.PriceCents < d.MinPriceCents {
			d.MinPriceCents, d.Currency = z.PriceCents, z.Currency
		}
		if !slices.Contains(d.ZoneKinds, z.Kind) {
			d.ZoneKinds = append(d.ZoneKinds, z.Kind)
		}
	}
	slices.Sort(d.ZoneKinds)
	return d.Normalize()
}

// Normalize returns the document as the index keeps it: times in UTC and
// truncated to the millisecond (the precision of OpenSearch dates), zone
// kinds and tags sorted and without duplicates, empty lists as nil.
func (d Document) Normalize() Document {
	d.StartsAt = d.StartsAt.UTC().Truncate(time.Millisecond)
	d.OnSaleAt = d.OnSaleAt.UTC().Truncate(time.Millisecond)
	d.ZoneKinds = sortedSet(d.ZoneKinds)
	d.Tags = sortedSet(d.Tags)
	if d.Location != nil {
		p := *d.Location
		d.Location = &p
	}
	return d
}

func sortedSet[T cmp.Ordered](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// Validate checks the document's fields and limits.
func (d Document) Validate() error {
	const op = "search.document"
	bad := func(format string, args ...any) error { return errs.Errorf(op, errs.Invalid, format, args...) }
	if !catalog.ValidID(d.ID) {
		return bad("id %q: use 1-63 lower-case letters, digits and dashes", d.ID)
	}
	if d.Name == "" || len(d.Name) > catalog.MaxNameLen {
		return bad("%s: name must be 1-%d bytes", d.ID, catalog.MaxNameLen)
	}
	if len(d.Description) > MaxDescriptionLen {
		return bad("%s: description longer than %d bytes", d.ID, MaxDescriptionLen)
	}
	for _, s := range []string{d.Name, d.Description, d.VenueName, d.City} {
		if !utf8.ValidString(s) {
			return bad("%s: text is not valid UTF-8", d.ID)
		}
	}
	if d.VenueID != "" && !catalog.ValidID(d.VenueID) {
		return bad("%s: venue id %q is not a valid id", d.ID, d.VenueID)
	}
	if len(d.VenueName) > catalog.MaxNameLen || len(d.City) > catalog.MaxNameLen {
		return bad("%s: venue name and city are at most %d bytes", d.ID, catalog.MaxNameLen)
	}
	if d.Location != nil {
		if err := d.Location.Validate(); err != nil {
			return errs.E(op, fmt.Sprintf("%s: location", d.ID), err)
		}
	}
	if d.StartsAt.IsZero() {
		return bad("%s: starts_at is required", d.ID)
	}
	if d.MinPriceCents < 0 {
		return bad("%s: negative price", d.ID)
	}
	if d.Currency != "" && len(d.Currency) != 3 {
		return bad("%s: currency must be an ISO 4217 code", d.ID)
	}
	for _, k := range d.ZoneKinds {
		if k != catalog.Reserved && k != catalog.GA {
			return bad("%s: zone kind %q is not %q or %q", d.ID, k, catalog.Reserved, catalog.GA)
		}
	}
	if len(d.Tags) > MaxTags {
		return bad("%s: at most %d tags", d.ID, MaxTags)
	}
	for _, t := range d.Tags {
		if !catalog.ValidID(t) {
			return bad("%s: tag %q: use 1-63 lower-case letters, digits and dashes", d.ID, t)
		}
	}
	return nil
}

// CheckBatch validates and normalizes the documents of one Put; adapters
// call it first so that an invalid document fails the whole batch before
// anything is written.
func CheckBatch(op string, docs []Document) ([]Document, error) {
	if len(docs) > MaxBatch {
		return nil, errs.Errorf(op, errs.TooLarge, "%d documents in one batch; at most %d", len(docs), MaxBatch)
	}
	out := make([]Document, len(docs))
	for i, d := range docs {
		if err := d.Validate(); err != nil {
			return nil, errs.E(op, err)
		}
		out[i] = d.Normalize()
	}
	return out, nil
}

// CheckIDs validates the ids of one Delete.
func CheckIDs(op string, ids []string) error {
	if len(ids) > MaxBatch {
		return errs.Errorf(op, errs.TooLarge, "%d ids in one batch; at most %d", len(ids), MaxBatch)
	}
	for _, id := range ids {
		if !catalog.ValidID(id) {
			return errs.Errorf(op, errs.Invalid, "id %q is not a valid id", id)
		}
	}
	return nil
}

// Sort orders the hits.
type Sort string

const (
	// ByRelevance puts the best text match first; ties (and every hit of a
	// query without text) in date order. The default.
	ByRelevance Sort = "relevance"
	// ByDate puts the earliest start first.
	ByDate Sort = "date"
)

// Near filters by distance: documents whose Location is within RadiusKm of
// Point, great-circle distance.
type Near struct {
	Point    GeoPoint `json:"point"`
	RadiusKm float64  `json:"radius_km"`
}

// Query is one search. The zero value (besides paging defaults) matches
// every document.
type Query struct {
	// Text is matched against name, venue name and description (in that
	// order of weight), after lower-casing, ASCII folding and English
	// stemming; a document matches if any word does.
	Text string `json:"text,omitempty"`
	// City keeps documents in this city, compared without regard to case.
	City     string           `json:"city,omitempty"`
	ZoneKind catalog.ZoneKind `json:"zone_kind,omitempty"` // keeps documents with a zone of this kind
	Tag      string           `json:"tag,omitempty"`       // keeps documents with this tag
	// From and To keep documents starting in [From, To); a zero value is
	// unbounded.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	Near *Near     `json:"near,omitempty"`
	Sort Sort      `json:"sort,omitempty"` // default ByRelevance
	// Offset and Limit page through the hits: Limit 0 means DefaultLimit,
	// at most MaxLimit, and Offset+Limit at most MaxWindow.
	Offset int `json:"offset,omitempty"`
	Limit  int `json:"limit,omitempty"`
	// Facets asks for Results.Facets.
	Facets bool `json:"facets,omitempty"`
}

// Normalize validates q and returns it with defaults applied: trimmed text,
// the default sort and page size, and times in UTC. Adapters call it first,
// so that they all reject the same queries (with errs.Invalid).
func (q Query) Normalize() (Query, error) {
	const op = "search.query"
	bad := func(format string, args ...any) (Query, error) {
		return Query{}, errs.Errorf(op, errs.Invalid, format, args...)
	}
	q.Text = strings.TrimSpace(q.Text)
	if len(q.Text) > MaxTextLen {
		return bad("query text is longer than %d bytes", MaxTextLen)
	}
	if !utf8.ValidString(q.Text) || !utf8.ValidString(q.City) {
		return bad("query text is not valid UTF-8")
	}
	if len(q.City) > catalog.MaxNameLen {
		return bad("city is longer than %d bytes", catalog.MaxNameLen)
	}
	switch q.ZoneKind {
	case "", catalog.Reserved, catalog.GA:
	default:
		return bad("zone kind %q is not %q or %q", q.ZoneKind, catalog.Reserved, catalog.GA)
	}
	if q.Tag != "" && !catalog.ValidID(q.Tag) {
		return bad("tag %q is not a valid tag", q.Tag)
	}
	q.From, q.To = q.From.UTC(), q.To.UTC()
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return bad("from (%s) must be before to (%s)", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Near != nil {
		if err := q.Near.Point.Validate(); err != nil {
			return Query{}, errs.E(op, err)
		}
		if math.IsNaN(q.Near.RadiusKm) || q.Near.RadiusKm <= 0 || q.Near.RadiusKm > MaxRadiusKm {
			return bad("radius must be in (0, %d] km, got %v", MaxRadiusKm, q.Near.RadiusKm)
		}
		n := *q.Near
		q.Near = &n
	}
	switch q.Sort {
	case "":
		q.Sort = ByRelevance
	case ByRelevance, ByDate:
	default:
		return bad("sort %q is not %q or %q", q.Sort, ByRelevance, ByDate)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return bad("limit must be 1-%d, got %d", MaxLimit, q.Limit)
	}
	if q.Offset < 0 {
		return bad("negative offset %d", q.Offset)
	}
	if q.Offset+q.Limit > MaxWindow {
		return bad("offset + limit must be at most %d; narrow the search instead of paging this deep", MaxWindow)
	}
	return q, nil
}

// Results is one page of hits and, if asked for, the facets of every
// document that matched.
type Results struct {
	// Total is how many documents matched, exactly.
	Total int
	Hits  []Hit
	// Facets counts the matching documents (all of them, not only this
	// page) by city, month, zone kind and price; nil unless Query.Facets.
	Facets *Facets
}

// Hit is a matching document and its score. Scores are comparable within
// one result and are zero when sorted ByDate.
type Hit struct {
	Document
	Score float64
}

// Bucket is one value of a facet and how many matching documents have it.
type Bucket struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// Facets are counts of the matching documents. A document with two zone
// kinds counts in both; buckets with a count of zero are left out.
type Facets struct {
	// Cities, most documents first, ties by name; at most MaxFacetBuckets.
	Cities []Bucket `json:"cities"`
	// Months of StartsAt in UTC as "2006-01", in calendar order; at most
	// MaxMonthBuckets.
	Months []Bucket `json:"months"`
	// ZoneKinds, most documents first.
	ZoneKinds []Bucket `json:"zone_kinds"`
	// Prices counts MinPriceCents in PriceRanges, in their order.
	Prices []Bucket `json:"prices"`
}

// PriceRange is a bucket of the price facet: MinPriceCents in [From, To);
// To 0 is unbounded.
type PriceRange struct {
	Key      string
	From, To int64
}

// PriceRanges are the buckets of the price facet.
var PriceRanges = []PriceRange{
	{Key: "under-25", From: 0, To: 2500},
	{Key: "25-50", From: 2500, To: 5000},
	{Key: "50-100", From: 5000, To: 10000},
	{Key: "100-200", From: 10000, To: 20000},
	{Key: "200-and-up", From: 20000},
}

// MonthKey is the key of the month facet bucket of t.
func MonthKey(t time.Time) string { return t.UTC().Format("2006-01") }

// Canonical puts every facet in its documented order and bounds, and drops
// empty buckets, so that all adapters answer alike.
func (f *Facets) Canonical() {
	byCount := func(a, b Bucket) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	}
	f.Cities = clean(f.Cities, byCount, MaxFacetBuckets)
	f.Months = clean(f.Months, func(a, b Bucket) int { return cmp.Compare(a.Key, b.Key) }, MaxMonthBuckets)
	f.ZoneKinds = clean(f.ZoneKinds, byCount, MaxFacetBuckets)
	order := map[string]int{}
	for i, r := range PriceRanges {
		order[r.Key] = i
	}
	f.Prices = clean(f.Prices, func(a, b Bucket) int { return cmp.Compare(order[a.Key], order[b.Key]) }, len(PriceRanges))
}

func clean(bs []Bucket, order func(a, b Bucket) int, limit int) []Bucket {
	out := make([]Bucket, 0, len(bs))
	for _, b := range bs {
		if b.Count > 0 {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, order)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Index is a searchable set of event documents.
//
// Implementations are safe for concurrent use by any number of goroutines.
//
// Put adds or replaces (by ID) documents; Delete removes documents by ID,
// and an ID not in the index is not an error. Both validate the whole batch
// first (errs.Invalid, or errs.TooLarge above MaxBatch) and then write
// nothing on error. When the write itself fails for some documents only,
// the others are applied and the error wraps a *BatchError naming the
// failed ones. Whether a write is visible to Search as soon as it returns
// is the adapter's to document (the embedded index: always; OpenSearch:
// per its refresh setting).
//
// Search fails with errs.Invalid for a query that Query.Normalize rejects.
//
// Cancelling ctx abandons the call and returns an error wrapping ctx.Err().
// A Put or Delete that was abandoned, or failed otherwise than by a
// BatchError, may have been applied in part: repeat it (writes are
// idempotent). A backend that cannot be reached or is overloaded gives
// errs.Unavailable.
type Index interface {
	Put(ctx context.Context, docs ...Document) error
	Delete(ctx context.Context, ids ...string) error
	Search(ctx context.Context, q Query) (Results, error)
}

// ItemError is the failure of one document of a batch.
type ItemError struct {
	ID     string
	Reason string
	// Temporary says the same write may succeed later (the backend was
	// overloaded or refused writes for a while).
	Temporary bool
}

// BatchError lists the documents of a Put or Delete that failed; the rest
// of the batch was applied. The error that wraps it has kind
// errs.Unavailable when every failure is Temporary, errs.Other otherwise.
type BatchError struct {
	Items []ItemError
}

func (e *BatchError) Error() string {
	if len(e.Items) == 0 {
		return "no documents failed"
	}
	return fmt.Sprintf("%d document(s) failed, first %s: %s", len(e.Items), e.Items[0].ID, e.Items[0].Reason)
}

// FailedIDs returns the ids of the documents that failed in err's batch
// error, or nil when err carries none.
func FailedIDs(err error) []string {
	var be *BatchError
	if !errors.As(err, &be) {
		return nil
	}
	ids := make([]string, len(be.Items))
	for i, it := range be.Items {
		ids[i] = it.ID
	}
	return ids
}
