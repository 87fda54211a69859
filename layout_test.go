package ticketing_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLayoutTableMatchesTheTree checks the README's layout table against
// the tree: every path it names exists, and every package directory one
// level under a top-level folder (edge/httpapi, internal/eventually,
// services/inventory, …) is named in its folder's row, as top/name or, in
// that row, as name. Deeper packages are the adapters and helpers of the
// ones above them.
func TestLayoutTableMatchesTheTree(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	rows := map[string]string{} // top-level folder → its row
	rowRe := regexp.MustCompile("(?m)^\\| `([a-z]+)/?[^`]*` \\|(.*)\\|$")
	for _, m := range rowRe.FindAllStringSubmatch(table, -1) {
		rows[m[1]] = m[0]
	}
	if len(rows) < 8 {
		t.Fatalf("the layout table has %d rows: %v", len(rows), rows)
	}
	named := regexp.MustCompile("`([a-z][a-z0-9_/.-]*)`")
	for top, row := range rows {
		if _, err := os.Stat(top); err != nil {
			t.Errorf("the layout table names %s/, which does not exist", top)
		}
		for _, m := range named.FindAllStringSubmatch(row, -1) {
			p := m[1]
			if strings.HasPrefix(p, top+"/") {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("the layout table names %s, which does not exist", p)
				}
			}
		}
	}
	err = filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata" || d.Name() == "data" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		parts := strings.Split(dir, "/")
		if len(parts) != 2 {
			return nil
		}
		row, ok := rows[parts[0]]
		if !ok {
			t.Errorf("package %s: its folder %s/ has no row in the layout table", dir, parts[0])
			return nil
		}
		if !strings.Contains(row, "`"+dir+"`") && !strings.Contains(row, "`"+dir+"/") && !strings.Contains(row, "`"+parts[1]+"`") && !strings.Contains(row, "`"+parts[1]+"/") {
			t.Errorf("package %s is not in the layout table's %s/ row", dir, parts[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
