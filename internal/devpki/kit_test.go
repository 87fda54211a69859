package devpki_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ticketing/ticketing/internal/devpki"
)

// tree lists the regular files under dir, relative, with their modes.
func tree(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	files := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestExportKits(t *testing.T) {
	res, err := devpki.Ensure(devpki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	src := res.Layout
	full := tree(t, src.Dir)
	want := map[devpki.Kit][]string{
		devpki.KitCore: {"tls/ca.pem", "tls/core.pem", "tls/core-key.pem", "nkeys/core.nk",
			"nkeys/core.pub", "nkeys/edge.pub", "nkeys/sys.pub", "keys/jetstream.key"},
		devpki.KitKafka:  {"tls/ca.pem", "tls/core.pem", "tls/core-key.pem", "nkeys/core.nk"},
		devpki.KitEdge:   {"tls/ca.pem", "tls/edge.pem", "tls/edge-key.pem", "nkeys/edge.nk"},
		devpki.KitClient: {"tls/ca.pem", "tls/client.pem", "tls/client-key.pem", "nkeys/core.nk"},
		devpki.KitCA:     {"tls/ca.pem"},
	}
	for _, k := range devpki.Kits {
		t.Run(string(k), func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "kit")
			written, err := devpki.Export(src, k, dst)
			if err != nil {
				t.Fatal(err)
			}
			got := tree(t, dst)
			var names []string
			for name, mode := range got {
				names = append(names, name)
				if mode != full[name] {
					t.Errorf("%s: mode %v, want the source's %v", name, mode, full[name])
				}
				a, _ := os.ReadFile(filepath.Join(src.Dir, name))
				b, _ := os.ReadFile(filepath.Join(dst, name))
				if string(a) != string(b) {
					t.Errorf("%s differs from the source", name)
				}
			}
			slices.Sort(names)
			w := slices.Clone(want[k])
			slices.Sort(w)
			if !slices.Equal(names, w) {
				t.Errorf("kit %s holds %v, want %v", k, names, w)
			}
			if len(written) != len(w) {
				t.Errorf("first export wrote %d files, want %d", len(written), len(w))
			}
			// Again: nothing to write.
			if written, err = devpki.Export(src, k, dst); err != nil || len(written) != 0 {
				t.Errorf("second export: wrote %v, %v; want nothing", written, err)
			}
		})
	}

	// A directory that held the whole layout (the CA key too) is cut
	// down to the kit.
	dst := t.TempDir()
	if _, err := devpki.Ensure(devpki.Config{Dir: dst}); err != nil {
		t.Fatal(err)
	}
	if _, err := devpki.Export(src, devpki.KitEdge, dst); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dst); len(got) != len(want[devpki.KitEdge]) {
		t.Errorf("after exporting the edge kit over a full layout: %v", got)
	}
	if _, err := os.Stat(devpki.Layout{Dir: dst}.CAKey()); !os.IsNotExist(err) {
		t.Errorf("the CA key is still there: %v", err)
	}

	if _, err := devpki.ParseKit("everything"); err == nil {
		t.Error("ParseKit accepted an unknown kit")
	}
	if _, err := devpki.Export(devpki.Layout{Dir: t.TempDir()}, devpki.KitCA, t.TempDir()); err == nil {
		t.Error("Export from an empty directory succeeded")
	}
}
