package settings_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/settings"
)

func TestParseAndDecode(t *testing.T) {
	for _, c := range []struct {
		name, text string
		json       string
		want       string // "" : refused
	}{
		{settings.EdgeDrain, "true", `true`, "true"},
		{settings.EdgeDrain, "yes", `"true"`, ""},
		{settings.EdgeHoldsRate, "50", `50`, "50"},
		{settings.EdgeHoldsRate, "0", `0`, ""},
		{settings.EdgeHoldsRate, "100001", `100001`, ""},
		{settings.EdgeHoldsRate, "1.5", `1.5`, ""},
		{settings.EdgeHoldsRate, "ten", `"10"`, ""},
		{settings.EdgeHoldsRate, "99999999999999999999", `99999999999999999999`, ""},
		{settings.EdgeDrainRetryAfter, "45s", `"45s"`, "45s"},
		{settings.EdgeDrainRetryAfter, "500ms", `"500ms"`, ""},
		{settings.EdgeDrainRetryAfter, "2h", `"2h"`, ""},
		{settings.EdgeDrainRetryAfter, "45", `45`, ""},
		{settings.QueueTargetShoppers, "5000", `5000`, "5000"},
	} {
		d, ok := settings.Known.Lookup(c.name)
		if !ok {
			t.Fatalf("%s unknown", c.name)
		}
		for how, f := range map[string]func() (settings.Value, error){
			"parse":  func() (settings.Value, error) { return d.Parse(c.text) },
			"decode": func() (settings.Value, error) { return d.Decode(json.RawMessage(c.json)) },
		} {
			v, err := f()
			switch {
			case c.want == "" && !errs.Is(errs.Invalid, err):
				t.Errorf("%s %s %q: %v, %v; want refused as invalid", how, c.name, c.text, v, err)
			case c.want != "" && (err != nil || v.String() != c.want):
				t.Errorf("%s %s %q: %v, %v; want %s", how, c.name, c.text, v, err, c.want)
			}
		}
	}
}

func TestRegistryRefusesBadDefinitions(t *testing.T) {
	for _, defs := range [][]settings.Def{
		{{Name: "A", Type: settings.Bool, Default: settings.BoolValue(false)}},
		{{Name: "a", Type: "float", Default: settings.BoolValue(false)}},
		{{Name: "a", Type: settings.Int, Default: settings.IntValue(0), Min: 1, Max: 2}},
		{{Name: "a", Type: settings.Int, Default: settings.BoolValue(true)}},
		{{Name: "a", Type: settings.Bool, Default: settings.BoolValue(false)}, {Name: "a", Type: settings.Bool, Default: settings.BoolValue(false)}},
	} {
		if _, err := settings.NewRegistry(defs...); err == nil {
			t.Errorf("NewRegistry(%+v) accepted", defs)
		}
	}
}

func entry(v string) []byte {
	e := settings.Entry{Value: json.RawMessage(v), By: "ops", At: time.Unix(1, 0).UTC()}
	return e.Encode()
}

// Live applies what is valid, keeps the last good value otherwise, and
// resolves a scoped value before the global one before the fallback.
func TestLive(t *testing.T) {
	l := settings.NewLive(nil)
	var changed []string
	l.OnChange(func(k settings.Key) { changed = append(changed, k.String()) })
	s := l.Snapshot()
	if got := s.Int(settings.EdgeHoldsRate, "edge-1", 7); got != 7 {
		t.Fatalf("nothing set: %d, want the fallback", got)
	}
	must := func(key, v string) {
		t.Helper()
		if err := l.Apply(key, entry(v)); err != nil {
			t.Fatal(err)
		}
	}
	must("setting.edge.holds.rate", `50`)
	must("setting.edge.holds.rate/edge-2", `5`)
	s = l.Snapshot()
	if a, b := s.Int(settings.EdgeHoldsRate, "edge-1", 7), s.Int(settings.EdgeHoldsRate, "edge-2", 7); a != 50 || b != 5 {
		t.Fatalf("edge-1 %d (want the global 50), edge-2 %d (want its own 5)", a, b)
	}
	for _, c := range []struct {
		key  string
		raw  []byte
		kind errs.Kind
	}{
		{"setting.edge.holds.rate", entry(`0`), errs.Invalid},                           // out of bounds
		{"setting.edge.holds.rate", entry(`"x"`), errs.Invalid},                         // wrong type
		{"setting.edge.holds.rate", []byte(`{"value":50}`), errs.Invalid},               // who is missing
		{"setting.edge.holds.rate", []byte(`garbage`), errs.Invalid},                    // not JSON
		{"setting.no.such", entry(`1`), errs.NotFound},                                  // unknown (a newer writer's)
		{"setting.edge.holds.rate/bad scope", entry(`1`), errs.Invalid},                 // not a key
		{"setting.queue.target_shoppers/arena/x", entry(`1`), errs.Invalid},             // not a key
		{"setting.edge.holds.rate", []byte(strings.Repeat(" ", 300<<10)), errs.Invalid}, // too large
	} {
		if err := l.Apply(c.key, c.raw); !errs.Is(c.kind, err) {
			t.Errorf("Apply(%s, %.40q) = %v, want %v", c.key, c.raw, err, c.kind)
		}
	}
	if got := l.Snapshot().Int(settings.EdgeHoldsRate, "edge-1", 7); got != 50 {
		t.Fatalf("after bad entries: %d, want the last good 50", got)
	}
	l.Remove("setting.edge.holds.rate/edge-2")
	if got := l.Snapshot().Int(settings.EdgeHoldsRate, "edge-2", 7); got != 50 {
		t.Fatalf("scoped value removed: %d, want the global 50", got)
	}
	if strings.Join(changed, " ") != "edge.holds.rate edge.holds.rate/edge-2 edge.holds.rate/edge-2" {
		t.Fatalf("changes: %v", changed)
	}
}

// memStore is a settings.Store in memory with the bucket's revision
// semantics, for the domain's tests; the real one is tested in natskv.
type memStore struct {
	mu      sync.Mutex
	rev     uint64
	entries map[string]settings.Stored
	fail    error
}

func newMemStore() *memStore { return &memStore{entries: map[string]settings.Stored{}} }

func (m *memStore) Get(_ context.Context, key string) (settings.Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.entries[key]
	if !ok {
		return settings.Stored{}, errs.E("mem.get", errs.NotFound, "not set")
	}
	return st, nil
}

func (m *memStore) List(_ context.Context, prefix string) ([]settings.Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []settings.Stored
	for k, st := range m.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, st)
		}
	}
	return out, nil
}

func (m *memStore) Put(_ context.Context, key string, value []byte, last uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return 0, m.fail
	}
	if m.entries[key].Revision != last {
		return 0, errs.E("mem.put", errs.Conflict, "moved")
	}
	e, err := settings.DecodeEntry(value)
	if err != nil {
		return 0, err
	}
	m.rev++
	m.entries[key] = settings.Stored{Key: key, Entry: e, Revision: m.rev}
	return m.rev, nil
}

func (m *memStore) Delete(_ context.Context, key string, last uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries[key].Revision != last {
		return 0, errs.E("mem.delete", errs.Conflict, "moved")
	}
	m.rev++
	delete(m.entries, key)
	return m.rev, nil
}

type recorder struct {
	mu      sync.Mutex
	changes []settings.Change
	fail    error
}

func (r *recorder) Audit(_ context.Context, c settings.Change) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.changes = append(r.changes, c)
	return nil
}

func (r *recorder) LastAudited(_ context.Context, key string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last uint64
	for _, c := range r.changes {
		if c.Key == key {
			last = max(last, c.Revision)
		}
	}
	return last, nil
}

func (r *recorder) all() []settings.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]settings.Change(nil), r.changes...)
}

func TestServiceValidatesWritesAndAudits(t *testing.T) {
	ctx := context.Background()
	store, audit := newMemStore(), &recorder{}
	svc := &settings.Service{Store: store, Auditor: audit}

	// Refused: nothing written, nothing audited.
	for _, r := range []settings.SetRequest{
		{Name: "edge.holds.rate", Text: "0", By: "ops"},
		{Name: "edge.holds.rate", Text: "fast", By: "ops"},
		{Name: "edge.holds.rate", Value: json.RawMessage(`"10"`), By: "ops"},
		{Name: "edge.holds.rate", Text: "10", Value: json.RawMessage(`10`), By: "ops"},
		{Name: "edge.holds.rate", By: "ops"},
		{Name: "edge.holds.rate", Text: "10"},
		{Name: "edge.holds.rate", Text: "10", By: "ops\n"},
		{Name: "edge.holds.rate", Text: "10", By: "ops", Scope: "a b"},
		{Name: "no.such.setting", Text: "10", By: "ops"},
	} {
		if _, err := svc.Set(ctx, r); err == nil || (!errs.Is(errs.Invalid, err) && !errs.Is(errs.NotFound, err)) {
			t.Errorf("Set(%+v) = %v, want refused", r, err)
		}
	}
	if len(store.entries) != 0 || len(audit.all()) != 0 {
		t.Fatalf("refused writes left %d entries and %d events", len(store.entries), len(audit.all()))
	}

	got, err := svc.Set(ctx, settings.SetRequest{Name: "edge.holds.rate", Text: "50", By: "alice", Note: "on-sale"})
	if err != nil || string(got.Value) != "50" || got.By != "alice" || got.Revision == 0 {
		t.Fatalf("Set: %+v %v", got, err)
	}
	// The same value again changes nothing.
	if _, err := svc.Set(ctx, settings.SetRequest{Name: "edge.holds.rate", Value: json.RawMessage(`50`), By: "bob"}); err != nil {
		t.Fatal(err)
	}
	// A scoped value; then a write that read an old revision is refused.
	if _, err := svc.Set(ctx, settings.SetRequest{Name: "edge.holds.rate", Scope: "edge-2", Text: "5", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Set(ctx, settings.SetRequest{Name: "edge.holds.rate", Text: "60", By: "bob", Revision: got.Revision + 100}); !errs.Is(errs.Conflict, err) {
		t.Fatalf("stale revision: %v", err)
	}
	if _, err := svc.Unset(ctx, settings.UnsetRequest{Name: "edge.holds.rate", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Unset(ctx, settings.UnsetRequest{Name: "edge.holds.rate", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	events := audit.all()
	if len(events) != 3 {
		t.Fatalf("%d events, want 3 (set, scoped set, unset): %+v", len(events), events)
	}
	if e := events[0]; e.Old != nil || string(e.New) != "50" || e.By != "alice" || e.Note != "on-sale" || e.Kind != settings.KindSetting {
		t.Fatalf("first event %+v", e)
	}
	if e := events[2]; string(e.Old) != "50" || e.New != nil {
		t.Fatalf("unset event %+v", e)
	}

	list, err := svc.Settings(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range list {
		lines = append(lines, fmt.Sprintf("%s/%s=%s", s.Name, s.Scope, s.Value))
	}
	want := "edge.drain/= edge.drain.retry_after/= edge.holds.rate/= edge.holds.rate/edge-2=5 edge.holds.burst/= queue.target_shoppers/="
	if strings.Join(lines, " ") != want {
		t.Fatalf("settings:\n%s\nwant\n%s", strings.Join(lines, " "), want)
	}
}

func TestServiceFlags(t *testing.T) {
	ctx := context.Background()
	store, audit := newMemStore(), &recorder{}
	svc := &settings.Service{Store: store, Auditor: audit}
	if _, err := svc.SetFlag(ctx, settings.SetFlagRequest{Definition: json.RawMessage(`{"key":"x","variants":{}}`), By: "ops"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("invalid definition: %v", err)
	}
	def := `{"key":"sales.enabled","enabled":true,"variants":{"on":true,"off":false},"default_variant":"on"}`
	f, err := svc.SetFlag(ctx, settings.SetFlagRequest{Definition: json.RawMessage(def), By: "ops"})
	if err != nil || f.Revision == 0 {
		t.Fatalf("SetFlag: %+v %v", f, err)
	}
	if _, err := svc.Flags(ctx, "nope"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("unknown flag: %v", err)
	}
	if err := svc.DeleteFlag(ctx, settings.DeleteFlagRequest{Key: "sales.enabled", By: "ops"}); err != nil {
		t.Fatal(err)
	}
	events := audit.all()
	if len(events) != 2 || events[0].Kind != settings.KindFlag || events[0].Name != "sales.enabled" || events[1].New != nil {
		t.Fatalf("events %+v", events)
	}
}

// An audit that fails leaves the change written and says so; Reconcile
// publishes its event later, once.
func TestReconcilePublishesMissedEvents(t *testing.T) {
	ctx := context.Background()
	store, audit := newMemStore(), &recorder{fail: errs.E("rec", errs.Unavailable, "down")}
	svc := &settings.Service{Store: store, Auditor: audit}
	_, err := svc.Set(ctx, settings.SetRequest{Name: settings.EdgeDrain, Text: "true", By: "ops"})
	if !errs.Is(errs.Unavailable, err) || !strings.Contains(errs.Message(err), "not published yet") {
		t.Fatalf("Set with the audit down: %v", err)
	}
	if _, err := store.Get(ctx, "setting.edge.drain"); err != nil {
		t.Fatalf("the change was not written: %v", err)
	}
	audit.fail = nil
	for range 2 {
		if _, err := svc.Reconcile(ctx, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if ev := audit.all(); len(ev) != 1 || !ev[0].Reconciled || string(ev[0].New) != "true" {
		t.Fatalf("reconciled events: %+v", ev)
	}
	// An entry older than the window is left alone.
	if n, err := (&settings.Service{Store: store, Auditor: &recorder{}}).Reconcile(ctx, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("reconcile outside the window: %d %v", n, err)
	}
}
