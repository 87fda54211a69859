package migrations_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ticketing/ticketing/internal/migrations"
)

func TestLoad(t *testing.T) {
	fs := fstest.MapFS{
		"db/0010_ten.up.sql":   {Data: []byte("select 10")},
		"db/0002_two.up.sql":   {Data: []byte("select 2")},
		"db/0002_two.down.sql": {Data: []byte("ignored")},
		"db/1_one.up.sql":      {Data: []byte("select 1")},
		"db/sub/x.txt":         {Data: []byte("directories are skipped")},
		"db/README.md":         {Data: []byte("other files too")},
		"db/0003_cql.up.cql":   {Data: []byte("and other extensions")},
	}
	got, err := migrations.Load(migrations.Source{Component: "c", FS: fs, Dir: "db"}, "sql")
	if err != nil {
		t.Fatal(err)
	}
	var versions []int64
	for _, m := range got {
		versions = append(versions, m.Version)
	}
	if !slices.Equal(versions, []int64{1, 2, 10}) {
		t.Fatalf("versions %v", versions)
	}
	if got[1].Name != "two" || got[1].File != "db/0002_two.up.sql" || got[1].Body != "select 2" || len(got[1].Checksum) != 64 {
		t.Fatalf("migration 2: %+v", got[1])
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		component string
		files     fstest.MapFS
		want      string
	}{
		{"misnamed", "c", fstest.MapFS{"0001_a.sql": {Data: []byte("x")}}, "not named"},
		{"upper case", "c", fstest.MapFS{"0001_A.up.sql": {Data: []byte("x")}}, "not named"},
		{"version 0", "c", fstest.MapFS{"0000_a.up.sql": {Data: []byte("x")}}, "positive"},
		{"duplicate", "c", fstest.MapFS{"01_a.up.sql": {Data: []byte("x")}, "1_b.up.sql": {Data: []byte("y")}}, "same version"},
		{"empty file", "c", fstest.MapFS{"0001_a.up.sql": {Data: []byte(" \n")}}, "empty"},
		{"none", "c", fstest.MapFS{"README.md": {Data: []byte("x")}}, "no *.up.sql"},
		{"component", "Bad Name", fstest.MapFS{"0001_a.up.sql": {Data: []byte("x")}}, "component"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := migrations.Load(migrations.Source{Component: tc.component, FS: tc.files}, "sql")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	files := []migrations.Migration{{Version: 1, Name: "a", Checksum: "aaa"}, {Version: 2, Name: "b", Checksum: "bbb"}}
	unknown, err := migrations.Verify("c", files, []migrations.Applied{{Version: 1, Checksum: "aaa"}, {Version: 3, Checksum: "ccc"}})
	if err != nil || !slices.Equal(unknown, []int64{3}) {
		t.Fatalf("Verify = %v, %v", unknown, err)
	}
	_, err = migrations.Verify("c", files, []migrations.Applied{{Version: 2, Name: "b", Checksum: "changed"}})
	if !errors.Is(err, migrations.ErrChecksumMismatch) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("Verify = %v, want a checksum mismatch for version 2", err)
	}
}
