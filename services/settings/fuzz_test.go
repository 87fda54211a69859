package settings_test

import (
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/settings"
)

// FuzzApply: whatever an entry in the bucket holds, Live either applies a
// value its definition accepts or refuses it and keeps what it had.
func FuzzApply(f *testing.F) {
	f.Add("setting.edge.holds.rate", []byte(`{"value":50,"by":"ops","at":"2026-01-01T00:00:00Z"}`))
	f.Add("setting.edge.drain/edge-1", []byte(`{"value":true,"by":"ops","at":"2026-01-01T00:00:00Z","note":"n"}`))
	f.Add("setting.edge.drain.retry_after", []byte(`{"value":"30s","by":"ops","at":"2026-01-01T00:00:00Z"}`))
	f.Add("setting.queue.target_shoppers/arena", []byte(`{"value":1e3,"by":"ops","at":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, key string, raw []byte) {
		l := settings.NewLive(nil)
		if err := l.Apply("setting.edge.holds.rate", []byte(`{"value":7,"by":"x","at":"2026-01-01T00:00:00Z"}`)); err != nil {
			t.Fatal(err)
		}
		err := l.Apply(key, raw)
		s := l.Snapshot()
		if err != nil {
			if !errs.Is(errs.Invalid, err) && !errs.Is(errs.NotFound, err) {
				t.Fatalf("a refusal of another kind: %v", err)
			}
			if s.Len() != 1 || s.Int(settings.EdgeHoldsRate, "", 0) != 7 {
				t.Fatal("a refused entry changed the settings")
			}
			return
		}
		k, ok := settings.ParseBucketKey(key)
		if !ok {
			t.Fatalf("applied under %q, not a key", key)
		}
		d, _ := settings.Known.Lookup(k.Name)
		v, ok := s.Lookup(k.Name, k.Scope)
		if !ok || d.Check(v) != nil {
			t.Fatalf("applied %v for %s, which its definition refuses", v, key)
		}
		if _, err := settings.DecodeEntry(raw); err != nil {
			t.Fatalf("applied an entry that does not decode: %v", err)
		}
	})
}
