package opensearch

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/search"
)

// schemaVersion is recorded in the index mapping's _meta; bump it when the
// mapping changes incompatibly (New then refuses an old index).
const schemaVersion = 1

// obj keeps the request bodies below readable.
type obj = map[string]any

// indexBody is the settings and explicit mapping of a new index. Text is
// analysed like the Bleve adapter's: possessives, lower case, ASCII
// folding, English stop words and Porter stemming. Keyword subfields carry
// the facets and exact filters: city.raw as written (facet), city.key lower
// case (filter).
func indexBody(cfg Config) obj {
	text := obj{"type": "text", "analyzer": "event_text"}
	keyword := obj{"type": "keyword", "ignore_above": 256}
	return obj{
		"settings": obj{
			"number_of_shards":   cfg.Shards,
			"number_of_replicas": cfg.Replicas,
			"max_result_window":  search.MaxWindow,
			"analysis": obj{
				"filter": obj{
					"event_possessive": obj{"type": "stemmer", "language": "possessive_english"},
					"event_stop":       obj{"type": "stop", "stopwords": "_english_"},
					"event_porter":     obj{"type": "stemmer", "language": "english"}, // Porter
				},
				"analyzer": obj{
					"event_text": obj{
						"type":      "custom",
						"tokenizer": "standard",
						"filter":    []string{"event_possessive", "lowercase", "asciifolding", "event_stop", "event_porter"},
					},
				},
				"normalizer": obj{
					"event_lowercase": obj{"type": "custom", "filter": []string{"lowercase"}},
				},
			},
		},
		"mappings": obj{
			"dynamic": "strict",
			"_meta":   obj{"schema": schemaVersion},
			"properties": obj{
				"id":          keyword,
				"name":        text,
				"description": text,
				"venue_id":    keyword,
				"venue_name":  obj{"type": "text", "analyzer": "event_text", "fields": obj{"raw": keyword}},
				"city": obj{"type": "text", "analyzer": "event_text", "fields": obj{
					"raw": keyword,
					"key": obj{"type": "keyword", "ignore_above": 256, "normalizer": "event_lowercase"},
				}},
				"location":        obj{"type": "geo_point"},
				"starts_at":       obj{"type": "date"},
				"on_sale_at":      obj{"type": "date"},
				"min_price_cents": obj{"type": "long"},
				"currency":        keyword,
				"zone_kinds":      keyword,
				"tags":            keyword,
			},
		},
	}
}

// source is a document as stored in _source. It is this package's own type
// so that the index schema does not move with the domain's JSON.
type source struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Description   string    `json:"description,omitempty"`
	VenueID       string    `json:"venue_id,omitempty"`
	VenueName     string    `json:"venue_name,omitempty"`
	City          string    `json:"city,omitempty"`
	Location      *geoPoint `json:"location,omitempty"`
	StartsAt      time.Time `json:"starts_at"`
	OnSaleAt      time.Time `json:"on_sale_at"`
	MinPriceCents int64     `json:"min_price_cents"`
	Currency      string    `json:"currency,omitempty"`
	ZoneKinds     []string  `json:"zone_kinds,omitempty"`
	Tags          []string  `json:"tags,omitempty"`
}

type geoPoint struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

func toSource(d search.Document) source {
	s := source{
		ID: d.ID, Name: d.Name, Description: d.Description, VenueID: d.VenueID,
		VenueName: d.VenueName, City: d.City, StartsAt: d.StartsAt, OnSaleAt: d.OnSaleAt,
		MinPriceCents: d.MinPriceCents, Currency: d.Currency, Tags: d.Tags,
	}
	if d.Location != nil {
		s.Location = &geoPoint{Lat: d.Location.Lat, Lon: d.Location.Lon}
	}
	for _, k := range d.ZoneKinds {
		s.ZoneKinds = append(s.ZoneKinds, string(k))
	}
	return s
}

func (s source) document() search.Document {
	d := search.Document{
		ID: s.ID, Name: s.Name, Description: s.Description, VenueID: s.VenueID,
		VenueName: s.VenueName, City: s.City, StartsAt: s.StartsAt.UTC(), OnSaleAt: s.OnSaleAt.UTC(),
		MinPriceCents: s.MinPriceCents, Currency: s.Currency, Tags: s.Tags,
	}
	if s.Location != nil {
		d.Location = &search.GeoPoint{Lat: s.Location.Lat, Lon: s.Location.Lon}
	}
	for _, k := range s.ZoneKinds {
		d.ZoneKinds = append(d.ZoneKinds, catalog.ZoneKind(k))
	}
	return d
}

// searchBody is the _search request for a normalized query.
func searchBody(q search.Query) obj {
	var must, filter []any
	if q.Text != "" {
		must = append(must, obj{"multi_match": obj{
			"query":       q.Text,
			"fields":      []string{"name^3", "venue_name^2", "description"},
			"type":        "best_fields",
			"tie_breaker": 0.3,
		}})
	} else {
		must = append(must, obj{"match_all": obj{}})
	}
	term := func(field, value string) obj { return obj{"term": obj{field: value}} }
	if q.City != "" {
		filter = append(filter, term("city.key", strings.ToLower(q.City)))
	}
	if q.ZoneKind != "" {
		filter = append(filter, term("zone_kinds", string(q.ZoneKind)))
	}
	if q.Tag != "" {
		filter = append(filter, term("tags", q.Tag))
	}
	if !q.From.IsZero() || !q.To.IsZero() {
		r := obj{"format": "strict_date_optional_time"}
		if !q.From.IsZero() {
			r["gte"] = q.From.Format(time.RFC3339Nano)
		}
		if !q.To.IsZero() {
			r["lt"] = q.To.Format(time.RFC3339Nano)
		}
		filter = append(filter, obj{"range": obj{"starts_at": r}})
	}
	if q.Near != nil {
		filter = append(filter, obj{"geo_distance": obj{
			"distance": strconv.FormatFloat(q.Near.RadiusKm*1000, 'f', -1, 64) + "m",
			"location": obj{"lat": q.Near.Point.Lat, "lon": q.Near.Point.Lon},
		}})
	}
	sort := []any{obj{"starts_at": "asc"}, obj{"id": "asc"}}
	if q.Sort == search.ByRelevance {
		sort = append([]any{obj{"_score": "desc"}}, sort...)
	}
	body := obj{
		"from":             q.Offset,
		"size":             q.Limit,
		"track_total_hits": true,
		"query":            obj{"bool": obj{"must": must, "filter": filter}},
		"sort":             sort,
	}
	if q.Sort == search.ByRelevance {
		body["track_scores"] = true
	}
	if q.Facets {
		ranges := make([]obj, len(search.PriceRanges))
		for i, r := range search.PriceRanges {
			ranges[i] = obj{"key": r.Key, "from": r.From}
			if r.To > 0 {
				ranges[i]["to"] = r.To
			}
		}
		body["aggs"] = obj{
			"cities":     obj{"terms": obj{"field": "city.raw", "size": search.MaxFacetBuckets}},
			"zone_kinds": obj{"terms": obj{"field": "zone_kinds", "size": search.MaxFacetBuckets}},
			"months": obj{"date_histogram": obj{
				"field": "starts_at", "calendar_interval": "month", "format": "yyyy-MM",
				"time_zone": "UTC", "min_doc_count": 1,
			}},
			"prices": obj{"range": obj{"field": "min_price_cents", "ranges": ranges}},
		}
	}
	return body
}

type aggBuckets struct {
	Buckets []struct {
		Key         any    `json:"key"`
		KeyAsString string `json:"key_as_string"`
		DocCount    int    `json:"doc_count"`
	} `json:"buckets"`
}

func (a aggBuckets) buckets(asString bool) []search.Bucket {
	out := make([]search.Bucket, 0, len(a.Buckets))
	for _, b := range a.Buckets {
		key, _ := b.Key.(string)
		if asString {
			key = b.KeyAsString
		}
		out = append(out, search.Bucket{Key: key, Count: b.DocCount})
	}
	return out
}

func decodeFacets(raw json.RawMessage) (*search.Facets, error) {
	var a struct {
		Cities    aggBuckets `json:"cities"`
		Months    aggBuckets `json:"months"`
		ZoneKinds aggBuckets `json:"zone_kinds"`
		Prices    aggBuckets `json:"prices"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	f := &search.Facets{
		Cities:    a.Cities.buckets(false),
		Months:    a.Months.buckets(true),
		ZoneKinds: a.ZoneKinds.buckets(false),
		Prices:    a.Prices.buckets(false),
	}
	f.Canonical()
	return f, nil
}
