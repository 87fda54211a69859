package testservers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePromtool writes an executable file named promtool in a new directory.
func fakePromtool(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "promtool")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPromtoolLookup(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(EnvRequireServers, "")
	t.Setenv("PATH", t.TempDir()) // no promtool on PATH

	t.Run("variable", func(t *testing.T) {
		p := fakePromtool(t, t.TempDir())
		t.Setenv(EnvPromtool, p)
		if f, got := call(Promtool); f.failed || f.skipped || got != p {
			t.Fatalf("got %q (failed=%v skipped=%v %s), want %s", got, f.failed, f.skipped, f.msg, p)
		}
	})
	t.Run("variable not executable fails", func(t *testing.T) {
		t.Setenv(EnvPromtool, filepath.Join(t.TempDir(), "nothing"))
		if f, _ := call(Promtool); !f.failed {
			t.Fatalf("a %s naming no executable must fail the test; skipped=%v", EnvPromtool, f.skipped)
		}
	})
	t.Run("devstack", func(t *testing.T) {
		dir := t.TempDir()
		p := fakePromtool(t, filepath.Join(dir, filepath.Dir(DevstackPromtool)))
		t.Setenv(EnvPromtool, "")
		t.Setenv("TICKETING_DEVSTACK_DIR", dir)
		if f, got := call(Promtool); f.failed || f.skipped || got != p {
			t.Fatalf("got %q (failed=%v skipped=%v %s), want %s", got, f.failed, f.skipped, f.msg, p)
		}
	})
	t.Run("path", func(t *testing.T) {
		bin := t.TempDir()
		p := fakePromtool(t, bin)
		t.Setenv(EnvPromtool, "")
		t.Setenv("TICKETING_DEVSTACK_DIR", t.TempDir())
		t.Setenv("PATH", bin)
		if f, got := call(Promtool); f.failed || f.skipped || got != p {
			t.Fatalf("got %q (failed=%v skipped=%v %s), want %s", got, f.failed, f.skipped, f.msg, p)
		}
	})
	for _, required := range []bool{false, true} {
		t.Run(map[bool]string{false: "missing skips", true: "missing fails when required"}[required], func(t *testing.T) {
			t.Setenv(EnvPromtool, "")
			t.Setenv("TICKETING_DEVSTACK_DIR", t.TempDir())
			t.Setenv(EnvRequireServers, map[bool]string{false: "0", true: "1"}[required])
			f, _ := call(Promtool)
			if f.skipped == required || f.failed != required {
				t.Fatalf("skipped=%v failed=%v, want failed=%v", f.skipped, f.failed, required)
			}
			for _, want := range []string{EnvPromtool, "compose/devstack tools promtool"} {
				if !strings.Contains(f.msg, want) {
					t.Errorf("message %q does not name %q", f.msg, want)
				}
			}
		})
	}
}
