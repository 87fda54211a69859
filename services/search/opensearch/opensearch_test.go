package opensearch_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	opensearchgo "github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/search"
	"github.com/ticketing/ticketing/services/search/opensearch"
	"github.com/ticketing/ticketing/services/search/searchtest"
)

func client(t testing.TB) *opensearchapi.Client {
	t.Helper()
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearchgo.Config{
		Addresses: []string{testservers.OpenSearchURL(t)},
		Transport: &http.Transport{ResponseHeaderTimeout: time.Minute},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// indexName is unique per test and run, so that tests run in parallel and
// again against the one OpenSearch.
func indexName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "searchtest-" + hex.EncodeToString(b)
}

// newIndex creates a fresh index that is deleted when t ends.
func newIndex(t testing.TB, c *opensearchapi.Client, cfg opensearch.Config) *opensearch.Index {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cfg.Index == "" {
		cfg.Index = indexName()
	}
	ix, err := opensearch.New(ctx, c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ix.DeleteIndex(ctx); err != nil {
			t.Errorf("delete index %s: %v", ix.Name(), err)
		}
	})
	return ix
}

func TestContract(t *testing.T) {
	c := client(t)
	searchtest.Run(t, searchtest.Setup{New: func(t *testing.T) search.Index {
		return newIndex(t, c, opensearch.Config{Refresh: opensearch.RefreshNow})
	}})
}

// New on an existing index of the same schema uses it; on an index made
// for another schema it refuses.
func TestExistingIndex(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ix := newIndex(t, c, opensearch.Config{Refresh: opensearch.RefreshWaitFor})
	if err := ix.Put(ctx, searchtest.Dataset()...); err != nil {
		t.Fatal(err)
	}
	again, err := opensearch.New(ctx, c, opensearch.Config{Index: ix.Name()})
	if err != nil {
		t.Fatalf("New on an existing index: %v", err)
	}
	if r, err := again.Search(ctx, search.Query{}); err != nil || r.Total != len(searchtest.Dataset()) {
		t.Fatalf("search through the second Index: %+v %v", r.Total, err)
	}

	other := indexName()
	_, err = c.Indices.Create(ctx, opensearchapi.IndicesCreateReq{Index: other,
		Body: strings.NewReader(`{"settings":{"number_of_replicas":0},"mappings":{"_meta":{"schema":0},"properties":{"id":{"type":"keyword"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Indices.Delete(context.Background(), opensearchapi.IndicesDeleteReq{Indices: []string{other}})
	})
	if _, err := opensearch.New(ctx, c, opensearch.Config{Index: other}); !errs.Is(errs.Conflict, err) {
		t.Fatalf("New on an index of another schema: err = %v, want kind %v", err, errs.Conflict)
	}
}

// Without a refresh policy, writes become visible within the refresh
// interval; Refresh makes them visible at once.
func TestRefresh(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ix := newIndex(t, c, opensearch.Config{})
	if err := ix.Put(ctx, searchtest.Dataset()...); err != nil {
		t.Fatal(err)
	}
	if err := ix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := ix.Search(ctx, search.Query{}); err != nil || r.Total != len(searchtest.Dataset()) {
		t.Fatalf("after Refresh: Total %d, err %v", r.Total, err)
	}
}

// A write the server refuses per document is reported per document.
func TestBulkItemErrors(t *testing.T) {
	c := client(t)
	ctx := context.Background()
	ix := newIndex(t, c, opensearch.Config{Refresh: opensearch.RefreshWaitFor, BulkSize: 4})
	// Block writes: every item of a _bulk is refused with
	// cluster_block_exception, a temporary condition.
	_, err := c.Indices.Settings.Put(ctx, opensearchapi.SettingsPutReq{Indices: []string{ix.Name()},
		Body: strings.NewReader(`{"index":{"blocks":{"write":true}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Indices.Settings.Put(context.Background(), opensearchapi.SettingsPutReq{Indices: []string{ix.Name()},
			Body: strings.NewReader(`{"index":{"blocks":{"write":false}}}`)})
	})
	docs := searchtest.Dataset()
	err = ix.Put(ctx, docs...)
	var be *search.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Put into a write-blocked index: err = %v, want a *search.BatchError", err)
	}
	if !errs.Is(errs.Unavailable, err) {
		t.Errorf("kind %v, want %v", errs.KindOf(err), errs.Unavailable)
	}
	var want []string
	for _, d := range docs {
		want = append(want, d.ID)
	}
	got := search.FailedIDs(err)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("failed ids %v, want every id %v (across %d bulk requests)", got, want, 3)
	}
	t.Logf("reported: %v", err)
}

func TestUnreachable(t *testing.T) {
	c, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearchgo.Config{
		Addresses: []string{"http://127.0.0.1:1"}, DisableRetry: true,
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = opensearch.New(context.Background(), c, opensearch.Config{Index: indexName()})
	if !errs.Is(errs.Unavailable, err) {
		t.Fatalf("New against nothing: err = %v, want kind %v", err, errs.Unavailable)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []opensearch.Config{
		{Index: "Events"}, {Index: "_events"}, {Index: "a/b"}, {Shards: -1}, {Replicas: -1},
		{Refresh: "sometimes"}, {BulkSize: search.MaxBatch + 1},
	} {
		cfg.Defaults()
		if err := cfg.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("Validate(%+v) = %v, want kind %v", cfg, err, errs.Invalid)
		}
	}
}
