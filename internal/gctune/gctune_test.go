package gctune

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	prevPct := debug.SetGCPercent(-1)
	debug.SetGCPercent(prevPct)
	prevLim := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(prevPct); debug.SetMemoryLimit(prevLim) })

	got, err := Apply(Config{Percent: 300, MemoryLimit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	_, envGOGC := os.LookupEnv("GOGC")
	_, envLimit := os.LookupEnv("GOMEMLIMIT")
	pct := debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	if !envGOGC && (pct != 300 || got.Percent != 300) {
		t.Fatalf("GC percent %d (reported %d), want 300", pct, got.Percent)
	}
	if envGOGC && pct != got.Percent {
		t.Fatalf("GC percent %d, reported %d", pct, got.Percent)
	}
	if lim := debug.SetMemoryLimit(-1); !envLimit && (lim != 1<<30 || got.MemoryLimit != 1<<30) {
		t.Fatalf("memory limit %d (reported %d), want 1 GiB", lim, got.MemoryLimit)
	}
}

func TestDefaultsAndValidate(t *testing.T) {
	var c Config
	c.Defaults()
	if c.Percent != 400 || c.MemoryLimit < 64<<20 {
		t.Fatalf("defaults: %+v", c)
	}
	if m := availableMemory(); m <= 0 {
		t.Fatalf("available memory %d: neither the cgroup nor /proc/meminfo was read", m)
	}
	for _, bad := range []Config{{Percent: 10, MemoryLimit: 1 << 30}, {Percent: 100, MemoryLimit: 1 << 20}} {
		if err := bad.Validate(); err == nil {
			t.Fatalf("%+v: accepted", bad)
		}
	}
	if err := (&Config{Percent: -1, MemoryLimit: 1 << 30}).Validate(); err != nil {
		t.Fatalf("GC off: %v", err)
	}
}
