package bleve_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ticketing/ticketing/services/search"
	"github.com/ticketing/ticketing/services/search/bleve"
	"github.com/ticketing/ticketing/services/search/searchtest"
)

func open(t testing.TB, cfg bleve.Config) *bleve.Index {
	t.Helper()
	ix, err := bleve.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestContract(t *testing.T) {
	searchtest.Run(t, searchtest.Setup{New: func(t *testing.T) search.Index {
		ix := open(t, bleve.Config{})
		t.Cleanup(func() { ix.Close() })
		return ix
	}})
}

// An on-disk index keeps its documents across Close and Open.
func TestOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	ctx := context.Background()
	ix := open(t, bleve.Config{Path: dir})
	if err := ix.Put(ctx, searchtest.Dataset()...); err != nil {
		t.Fatal(err)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = open(t, bleve.Config{Path: dir})
	defer ix.Close()
	r, err := ix.Search(ctx, search.Query{Text: "jazz"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Total != 2 || r.Hits[0].ID != "jazz-night" {
		t.Fatalf("after reopening: %+v", r)
	}
}
