// Package opensearch is the production search.Index, on OpenSearch through
// opensearch-go.
//
// New creates the index with an explicit mapping (mapping.go) when it does
// not exist, and refuses to use one made for another schema version. Writes
// go through the _bulk API in chunks, and a document that fails is reported
// by id (search.BatchError) while the rest of the batch is applied.
// Searches are one _search request: a bool query (scored full text in must,
// unscored filters in filter), exact totals, and terms / date_histogram /
// range aggregations for the facets.
//
// Writes become visible to Search after the index's refresh interval
// (about a second) unless Config.Refresh says otherwise.
package opensearch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	opensearchgo "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/search"
)

// Refresh policies for writes (the refresh parameter of _bulk).
const (
	RefreshNone    = "false"    // visible after the refresh interval; the cheapest
	RefreshWaitFor = "wait_for" // a write returns once it is visible
	RefreshNow     = "true"     // refresh the shards at once: tests only, costly under load
)

// Config configures an Index.
type Config struct {
	// Index is the name of the OpenSearch index. Default "events".
	Index string
	// Shards is number_of_shards for a new index. Default 1: the search
	// set is one document per event, small enough for one shard.
	Shards int
	// Replicas is number_of_replicas for a new index. Default 0, right for
	// one node; set it to 1 or more in a cluster.
	Replicas int
	// Refresh is the refresh policy of writes: RefreshNone (the default),
	// RefreshWaitFor or RefreshNow.
	Refresh string
	// BulkSize is how many documents go in one _bulk request. Default 500.
	BulkSize int
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Index == "" {
		c.Index = "events"
	}
	if c.Shards == 0 {
		c.Shards = 1
	}
	if c.Refresh == "" {
		c.Refresh = RefreshNone
	}
	if c.BulkSize == 0 {
		c.BulkSize = 500
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return errs.Errorf("search.opensearch.config", errs.Invalid, format, args...)
	}
	switch {
	case !validIndexName(c.Index):
		return bad("index name %q: use lower-case letters, digits, '-' and '_', not starting with '-' or '_'", c.Index)
	case c.Shards < 1 || c.Shards > 64:
		return bad("shards must be 1-64, got %d", c.Shards)
	case c.Replicas < 0 || c.Replicas > 8:
		return bad("replicas must be 0-8, got %d", c.Replicas)
	case c.Refresh != RefreshNone && c.Refresh != RefreshWaitFor && c.Refresh != RefreshNow:
		return bad("refresh must be %q, %q or %q, got %q", RefreshNone, RefreshWaitFor, RefreshNow, c.Refresh)
	case c.BulkSize < 1 || c.BulkSize > search.MaxBatch:
		return bad("bulk size must be 1-%d, got %d", search.MaxBatch, c.BulkSize)
	}
	return nil
}

func validIndexName(s string) bool {
	if s == "" || len(s) > 200 || s[0] == '-' || s[0] == '_' {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// Index is the OpenSearch search.Index.
type Index struct {
	c   *opensearchapi.Client
	cfg Config
}

var _ search.Index = (*Index)(nil)

// New returns an Index on client, creating the OpenSearch index with its
// mapping if it does not exist. An existing index made for another schema
// version is an error (reindex into a new index name instead). The Index
// does not own the client.
func New(ctx context.Context, client *opensearchapi.Client, cfg Config) (*Index, error) {
	const op = "search.opensearch.new"
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	x := &Index{c: client, cfg: cfg}
	body, err := json.Marshal(indexBody(cfg))
	if err != nil {
		return nil, errs.E(op, err)
	}
	_, err = client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: cfg.Index, Body: bytes.NewReader(body)})
	if err == nil {
		return x, nil
	}
	if errType(err) != "resource_already_exists_exception" {
		return nil, wrap(op, "create index "+cfg.Index, err)
	}
	if err := x.checkSchema(ctx); err != nil {
		return nil, err
	}
	return x, nil
}

// checkSchema compares the _meta.schema of an existing index with ours.
func (x *Index) checkSchema(ctx context.Context) error {
	const op = "search.opensearch.new"
	resp, err := x.c.Indices.Mapping.Get(ctx, &opensearchapi.MappingGetReq{Indices: []string{x.cfg.Index}})
	if err != nil {
		return wrap(op, "read mapping of "+x.cfg.Index, err)
	}
	for _, ix := range resp.GetIndices() {
		var m struct {
			Meta struct {
				Schema int `json:"schema"`
			} `json:"_meta"`
		}
		if err := json.Unmarshal(ix.Mappings, &m); err != nil {
			return errs.E(op, errs.Other, "read mapping of "+x.cfg.Index, err)
		}
		if m.Meta.Schema != schemaVersion {
			return errs.Errorf(op, errs.Conflict, "index %s has search schema %d, this build writes %d: reindex into a new index", x.cfg.Index, m.Meta.Schema, schemaVersion)
		}
	}
	return nil
}

// Name is the OpenSearch index name.
func (x *Index) Name() string { return x.cfg.Index }

// Refresh makes every write so far visible to Search.
func (x *Index) Refresh(ctx context.Context) error {
	_, err := x.c.Indices.Refresh(ctx, &opensearchapi.IndicesRefreshReq{Index: []string{x.cfg.Index}})
	return wrap("search.opensearch.refresh", "", err)
}

// DeleteIndex deletes the OpenSearch index and everything in it. A missing
// index is not an error.
func (x *Index) DeleteIndex(ctx context.Context) error {
	_, err := x.c.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: []string{x.cfg.Index}})
	if errType(err) == "index_not_found_exception" {
		return nil
	}
	return wrap("search.opensearch.delete_index", "", err)
}

// Put implements search.Index with the _bulk API, BulkSize documents per
// request.
func (x *Index) Put(ctx context.Context, docs ...search.Document) error {
	const op = "search.opensearch.put"
	docs, err := search.CheckBatch(op, docs)
	if err != nil {
		return err
	}
	var failed []search.ItemError
	for chunk := range chunks(docs, x.cfg.BulkSize) {
		var body bytes.Buffer
		enc := json.NewEncoder(&body)
		for _, d := range chunk {
			if err := enc.Encode(bulkAction{Index: &bulkTarget{Index: x.cfg.Index, ID: d.ID}}); err != nil {
				return errs.E(op, err)
			}
			if err := enc.Encode(toSource(d)); err != nil {
				return errs.E(op, err)
			}
		}
		f, err := x.bulk(ctx, &body)
		if err != nil {
			return errs.E(op, err)
		}
		failed = append(failed, f...)
	}
	return batchError(op, failed)
}

// Delete implements search.Index with the _bulk API.
func (x *Index) Delete(ctx context.Context, ids ...string) error {
	const op = "search.opensearch.delete"
	if err := search.CheckIDs(op, ids); err != nil {
		return err
	}
	var failed []search.ItemError
	for chunk := range chunks(ids, x.cfg.BulkSize) {
		var body bytes.Buffer
		enc := json.NewEncoder(&body)
		for _, id := range chunk {
			if err := enc.Encode(bulkAction{Delete: &bulkTarget{Index: x.cfg.Index, ID: id}}); err != nil {
				return errs.E(op, err)
			}
		}
		f, err := x.bulk(ctx, &body)
		if err != nil {
			return errs.E(op, err)
		}
		failed = append(failed, f...)
	}
	return batchError(op, failed)
}

type bulkAction struct {
	Index  *bulkTarget `json:"index,omitempty"`
	Delete *bulkTarget `json:"delete,omitempty"`
}

type bulkTarget struct {
	Index string `json:"_index"`
	ID    string `json:"_id"`
}

// bulk sends one _bulk request and returns the items that failed. A delete
// of a missing document is not a failure.
func (x *Index) bulk(ctx context.Context, body io.Reader) ([]search.ItemError, error) {
	resp, err := x.c.Bulk(ctx, opensearchapi.BulkReq{Body: body, Params: opensearchapi.BulkParams{Refresh: x.cfg.Refresh}})
	if err != nil && !opensearchapi.IsPartialFailure(err) {
		return nil, wrap("", "bulk request", err)
	}
	var failed []search.ItemError
	for _, item := range resp.Items {
		for action, it := range item {
			if it.Error == nil && it.Status < 300 {
				continue
			}
			if action == "delete" && it.Status == http.StatusNotFound {
				continue
			}
			item := search.ItemError{ID: it.ID, Reason: fmt.Sprintf("status %d", it.Status)}
			if it.Error != nil {
				item.Reason = it.Error.Type + ": " + it.Error.Reason
			}
			// Overload, server trouble or a write block (disk full) are
			// passing conditions; anything else is a bug in the mapping or
			// in this package.
			item.Temporary = it.Status == http.StatusTooManyRequests || it.Status >= 500 ||
				(it.Error != nil && it.Error.Type == "cluster_block_exception")
			failed = append(failed, item)
		}
	}
	return failed, nil
}

func batchError(op string, failed []search.ItemError) error {
	if len(failed) == 0 {
		return nil
	}
	kind := errs.Unavailable
	for _, it := range failed {
		if !it.Temporary {
			kind = errs.Other
		}
	}
	return errs.E(op, kind, fmt.Sprintf("%d document(s) were not written", len(failed)), &search.BatchError{Items: failed})
}

func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// Search implements search.Index.
func (x *Index) Search(ctx context.Context, q search.Query) (search.Results, error) {
	const op = "search.opensearch.search"
	q, err := q.Normalize()
	if err != nil {
		return search.Results{}, err
	}
	if err := ctx.Err(); err != nil {
		return search.Results{}, errs.E(op, errs.Unavailable, err)
	}
	body, err := json.Marshal(searchBody(q))
	if err != nil {
		return search.Results{}, errs.E(op, err)
	}
	resp, err := x.c.Search(ctx, &opensearchapi.SearchReq{Indices: []string{x.cfg.Index}, Body: bytes.NewReader(body)})
	if err != nil && !opensearchapi.IsPartialFailure(err) {
		return search.Results{}, wrap(op, "search", err)
	}
	if resp.Shards.Failed > 0 || resp.Timeout {
		// Counts and facets over part of the index would be wrong without
		// a sign; better to fail and let the caller retry.
		return search.Results{}, errs.Errorf(op, errs.Unavailable, "%d of %d shards failed (timed out: %v)", resp.Shards.Failed, resp.Shards.Total, resp.Timeout)
	}
	out := search.Results{Total: resp.Hits.Total.Value, Hits: make([]search.Hit, 0, len(resp.Hits.Hits))}
	for _, h := range resp.Hits.Hits {
		var s source
		if err := json.Unmarshal(h.Source, &s); err != nil {
			return search.Results{}, errs.E(op, errs.Other, "decode hit "+h.ID, err)
		}
		score := float64(h.Score)
		if q.Sort == search.ByDate {
			score = 0
		}
		out.Hits = append(out.Hits, search.Hit{Document: s.document(), Score: score})
	}
	if q.Facets {
		f, err := decodeFacets(resp.Aggregations)
		if err != nil {
			return search.Results{}, errs.E(op, errs.Other, "decode aggregations", err)
		}
		out.Facets = f
	}
	return out, nil
}

// errType is the OpenSearch error type of err ("index_not_found_exception"
// …), or "".
func errType(err error) string {
	var se *opensearchgo.StructError
	if errors.As(err, &se) {
		return se.Err.Type
	}
	return ""
}

// wrap classifies a client error: cancelled, unreachable, throttled or
// failing servers are errs.Unavailable; anything else (a request this
// package built wrong) is errs.Other.
func wrap(op, msg string, err error) error {
	if err == nil {
		return nil
	}
	kind := errs.Other
	var se *opensearchgo.StructError
	var str *opensearchgo.StringError
	switch {
	case errors.As(err, &se):
		if se.Status == http.StatusTooManyRequests || se.Status >= 500 {
			kind = errs.Unavailable
		}
	case errors.As(err, &str):
		if str.Status == http.StatusTooManyRequests || str.Status >= 500 {
			kind = errs.Unavailable
		}
	default:
		// No answer from the server: connection refused, timeout,
		// cancelled context.
		kind = errs.Unavailable
	}
	if msg == "" {
		return errs.E(op, kind, err)
	}
	return errs.E(op, kind, msg, err)
}
