package jsonw

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ back`, "<script>&amp;", "tab\tnew\nline", "é ü 日本", "\u2028\u2029", "bad \xff utf8", "\x00\x1f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}

func TestTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 16, 0, 0, 123456789, time.UTC),
		time.Date(2026, 12, 1, 16, 0, 0, 120000000, time.FixedZone("x", 2*3600+30*60)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 17)),
	} {
		want, wantErr := json.Marshal(tm)
		got, err := Time(nil, tm)
		if (err != nil) != (wantErr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Fatalf("Time(%v) = %s, %v; encoding/json %s, %v", tm, got, err, want, wantErr)
		}
	}
}

func BenchmarkString(b *testing.B) {
	s := "ticketing.inventory.hold.placed-bench-peak.0.ABCDEFGHIJKLMNOP-0123456789abcdef0123456789abcdef"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = String(buf[:0], s)
	}
}
