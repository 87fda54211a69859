package filestore_test

import (
	"path/filepath"
	"testing"

	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/analyticstest"
	"github.com/ticketing/ticketing/services/analytics/filestore"
)

func open(t *testing.T, path string) analytics.Store {
	t.Helper()
	s, err := filestore.Open(filestore.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	analyticstest.Run(t, func(t *testing.T) analyticstest.Harness {
		path := filepath.Join(t.TempDir(), "analytics.json")
		return analyticstest.Harness{Store: open(t, path), Reopen: func(t *testing.T) analytics.Store { return open(t, path) }}
	})
}

func TestConfig(t *testing.T) {
	if _, err := filestore.Open(filestore.Config{}); err == nil {
		t.Fatal("no path accepted")
	}
}
