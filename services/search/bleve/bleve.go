// Package bleve is the embedded search.Index: a Bleve index in memory or in
// a directory, for `ticketing dev` and single-process deployments. Its
// mapping mirrors services/search/opensearch: the same English text
// analysis (ASCII folding, possessives, lower case, stop words, Porter
// stemming), BM25 scoring, keyword fields for filters and facets, a date
// field, a geo point and a numeric price.
//
// Writes are visible to Search as soon as Put or Delete returns.
package bleve

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"

	blevesearch "github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/char/asciifolding"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/search"
)

// Config configures an Index.
type Config struct {
	// Path is the directory of an on-disk index, created if missing and
	// opened if it exists. Empty (the default) keeps the index in memory.
	Path string
}

// Index is the Bleve search.Index.
type Index struct {
	ix blevesearch.Index
}

var _ search.Index = (*Index)(nil)

// Field names of the indexed form of a document (see indexed).
const (
	fID        = "id"
	fName      = "name"
	fDesc      = "description"
	fVenue     = "venue_name"
	fCity      = "city"     // as written: the city facet
	fCityKey   = "city_key" // lower case: the city filter
	fLocation  = "location"
	fStartsAt  = "starts_at"
	fMonth     = "month" // search.MonthKey(StartsAt): the month facet
	fPrice     = "min_price_cents"
	fZoneKinds = "zone_kinds"
	fTags      = "tags"
	fSource    = "source_json" // the document as JSON, stored, not indexed
	textAnalyz = "event_text"
)

// Open opens (or creates) the index.
func Open(cfg Config) (*Index, error) {
	const op = "search.bleve.open"
	m, err := indexMapping()
	if err != nil {
		return nil, errs.E(op, err)
	}
	var ix blevesearch.Index
	switch {
	case cfg.Path == "":
		ix, err = blevesearch.NewMemOnly(m)
	default:
		if _, statErr := os.Stat(cfg.Path); statErr == nil {
			ix, err = blevesearch.Open(cfg.Path)
		} else {
			ix, err = blevesearch.New(cfg.Path, m)
		}
	}
	if err != nil {
		return nil, errs.E(op, err)
	}
	return &Index{ix: ix}, nil
}

// Close closes the index; an in-memory index is gone afterwards.
func (x *Index) Close() error { return x.ix.Close() }

func indexMapping() (*mapping.IndexMappingImpl, error) {
	im := blevesearch.NewIndexMapping()
	err := im.AddCustomAnalyzer(textAnalyz, map[string]any{
		"type":          custom.Name,
		"char_filters":  []any{asciifolding.Name},
		"tokenizer":     unicode.Name,
		"token_filters": []any{en.PossessiveName, lowercase.Name, en.StopName, porter.Name},
	})
	if err != nil {
		return nil, err
	}
	im.ScoringModel = index.BM25Scoring
	im.IndexDynamic, im.StoreDynamic, im.DocValuesDynamic = false, false, false

	text := func() *mapping.FieldMapping {
		f := mapping.NewTextFieldMapping()
		f.Analyzer = textAnalyz
		f.Store, f.IncludeInAll, f.IncludeTermVectors = false, false, false
		return f
	}
	keyword := func() *mapping.FieldMapping {
		f := mapping.NewKeywordFieldMapping()
		f.Store, f.IncludeInAll, f.IncludeTermVectors, f.DocValues = false, false, false, true
		return f
	}
	date := mapping.NewDateTimeFieldMapping()
	date.Store, date.IncludeInAll, date.DocValues = false, false, true
	price := mapping.NewNumericFieldMapping()
	price.Store, price.IncludeInAll, price.DocValues = false, false, true
	geo := mapping.NewGeoPointFieldMapping()
	geo.Store, geo.IncludeInAll = false, false
	source := mapping.NewTextFieldMapping()
	source.Index, source.Store, source.IncludeInAll, source.DocValues = false, true, false, false

	doc := mapping.NewDocumentStaticMapping()
	for name, f := range map[string]*mapping.FieldMapping{
		fID: keyword(), fName: text(), fDesc: text(), fVenue: text(),
		fCity: keyword(), fCityKey: keyword(), fLocation: geo,
		fStartsAt: date, fMonth: keyword(), fPrice: price,
		fZoneKinds: keyword(), fTags: keyword(), fSource: source,
	} {
		doc.AddFieldMappingsAt(name, f)
	}
	im.DefaultMapping = doc
	return im, im.Validate()
}

// indexed is the form of a document that Bleve indexes.
func indexed(d search.Document) (map[string]any, error) {
	src, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	m := map[string]any{
		fID:       d.ID,
		fName:     d.Name,
		fStartsAt: d.StartsAt,
		fMonth:    search.MonthKey(d.StartsAt),
		fPrice:    float64(d.MinPriceCents),
		fSource:   string(src),
	}
	if d.Description != "" {
		m[fDesc] = d.Description
	}
	if d.VenueName != "" {
		m[fVenue] = d.VenueName
	}
	if d.City != "" {
		m[fCity] = d.City
		m[fCityKey] = strings.ToLower(d.City)
	}
	if d.Location != nil {
		m[fLocation] = map[string]any{"lat": d.Location.Lat, "lon": d.Location.Lon}
	}
	if len(d.ZoneKinds) > 0 {
		kinds := make([]string, len(d.ZoneKinds))
		for i, k := range d.ZoneKinds {
			kinds[i] = string(k)
		}
		m[fZoneKinds] = kinds
	}
	if len(d.Tags) > 0 {
		m[fTags] = d.Tags
	}
	return m, nil
}

// Put implements search.Index: one Bleve batch, applied atomically.
func (x *Index) Put(ctx context.Context, docs ...search.Document) error {
	const op = "search.bleve.put"
	docs, err := search.CheckBatch(op, docs)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	b := x.ix.NewBatch()
	for _, d := range docs {
		m, err := indexed(d)
		if err != nil {
			return errs.E(op, err)
		}
		if err := b.Index(d.ID, m); err != nil {
			return errs.E(op, err)
		}
	}
	if err := x.ix.Batch(b); err != nil {
		return errs.E(op, closedKind(err), err)
	}
	return nil
}

// Delete implements search.Index.
func (x *Index) Delete(ctx context.Context, ids ...string) error {
	const op = "search.bleve.delete"
	if err := search.CheckIDs(op, ids); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return errs.E(op, errs.Unavailable, err)
	}
	b := x.ix.NewBatch()
	for _, id := range ids {
		b.Delete(id)
	}
	if err := x.ix.Batch(b); err != nil {
		return errs.E(op, closedKind(err), err)
	}
	return nil
}

func closedKind(err error) errs.Kind {
	if errors.Is(err, blevesearch.ErrorIndexClosed) {
		return errs.Unavailable
	}
	return errs.Other
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Results, error) {
	const op = "search.bleve.search"
	q, err := q.Normalize()
	if err != nil {
		return search.Results{}, err
	}
	if err := ctx.Err(); err != nil {
		return search.Results{}, errs.E(op, errs.Unavailable, err)
	}
	req := blevesearch.NewSearchRequestOptions(buildQuery(q), q.Limit, q.Offset, false)
	req.Fields = []string{fSource}
	if q.Sort == search.ByDate {
		req.SortBy([]string{fStartsAt, fID})
	} else {
		req.SortBy([]string{"-_score", fStartsAt, fID})
	}
	if q.Facets {
		req.AddFacet("cities", blevesearch.NewFacetRequest(fCity, search.MaxFacetBuckets))
		req.AddFacet("months", blevesearch.NewFacetRequest(fMonth, search.MaxMonthBuckets))
		req.AddFacet("zone_kinds", blevesearch.NewFacetRequest(fZoneKinds, search.MaxFacetBuckets))
		prices := blevesearch.NewFacetRequest(fPrice, len(search.PriceRanges))
		for _, r := range search.PriceRanges {
			from := float64(r.From)
			var to *float64
			if r.To > 0 {
				t := float64(r.To)
				to = &t
			}
			prices.AddNumericRange(r.Key, &from, to)
		}
		req.AddFacet("prices", prices)
	}
	res, err := x.ix.SearchInContext(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return search.Results{}, errs.E(op, errs.Unavailable, errors.Join(ctx.Err(), err))
		}
		return search.Results{}, errs.E(op, closedKind(err), err)
	}
	out := search.Results{Total: int(res.Total), Hits: make([]search.Hit, 0, len(res.Hits))}
	for _, h := range res.Hits {
		src, _ := h.Fields[fSource].(string)
		var d search.Document
		if err := json.Unmarshal([]byte(src), &d); err != nil {
			return search.Results{}, errs.E(op, errs.Other, "document "+h.ID+" has no readable source", err)
		}
		score := h.Score
		if q.Sort == search.ByDate {
			score = 0
		}
		out.Hits = append(out.Hits, search.Hit{Document: d, Score: score})
	}
	if q.Facets {
		f := &search.Facets{}
		terms := func(name string) []search.Bucket {
			var bs []search.Bucket
			if fr, ok := res.Facets[name]; ok && fr != nil {
				for _, t := range fr.Terms.Terms() {
					bs = append(bs, search.Bucket{Key: t.Term, Count: t.Count})
				}
			}
			return bs
		}
		f.Cities, f.Months, f.ZoneKinds = terms("cities"), terms("months"), terms("zone_kinds")
		if fr, ok := res.Facets["prices"]; ok && fr != nil {
			for _, r := range fr.NumericRanges {
				f.Prices = append(f.Prices, search.Bucket{Key: r.Name, Count: r.Count})
			}
		}
		f.Canonical()
		out.Facets = f
	}
	return out, nil
}

// buildQuery is the text query, scored, with the filters as a Bleve filter
// clause, which does not score: a filter keeps or drops a document and
// never changes the order, as in OpenSearch's bool filter.
func buildQuery(q search.Query) query.Query {
	var text query.Query
	var filters []query.Query
	if q.Text != "" {
		var fields []query.Query
		for _, f := range []struct {
			name  string
			boost float64
		}{{fName, 3}, {fVenue, 2}, {fDesc, 1}} {
			m := query.NewMatchQuery(q.Text)
			m.SetField(f.name)
			m.SetBoost(f.boost)
			fields = append(fields, m)
		}
		text = query.NewDisjunctionQuery(fields)
	}
	term := func(field, value string) query.Query {
		t := query.NewTermQuery(value)
		t.SetField(field)
		return t
	}
	if q.City != "" {
		filters = append(filters, term(fCityKey, strings.ToLower(q.City)))
	}
	if q.ZoneKind != "" {
		filters = append(filters, term(fZoneKinds, string(q.ZoneKind)))
	}
	if q.Tag != "" {
		filters = append(filters, term(fTags, q.Tag))
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		yes, no := true, false
		r := query.NewDateRangeInclusiveQuery(q.From, q.To, &yes, &no)
		r.SetField(fStartsAt)
		filters = append(filters, r)
	}
	if q.Near != nil {
		g := query.NewGeoDistanceQuery(q.Near.Point.Lon, q.Near.Point.Lat,
			strconv.FormatFloat(q.Near.RadiusKm*1000, 'f', -1, 64)+"m")
		g.SetField(fLocation)
		filters = append(filters, g)
	}
	if len(filters) == 0 {
		if text == nil {
			return query.NewMatchAllQuery()
		}
		return text
	}
	b := query.NewBooleanQuery(nil, nil, nil)
	if text != nil {
		b.AddMust(text)
	}
	b.AddFilter(query.NewConjunctionQuery(filters))
	return b
}
