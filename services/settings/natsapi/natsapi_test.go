package natsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/flags"
	flagsof "github.com/ticketing/ticketing/services/flags/openfeature"
	"github.com/ticketing/ticketing/services/settings"
	"github.com/ticketing/ticketing/services/settings/natsapi"
	"github.com/ticketing/ticketing/services/settings/natskv"
)

type system struct {
	coreNC, edgeNC *nats.Conn
	set            *streams.Set
	client         *natsapi.Client
	live           *settings.Live // the edge's, over its leaf node
	flags          *flags.Set     // the edge's
}

// start runs a core node with its streams and the config and flags
// services, and an edge leaf node (user edge, conf/nats/core.conf) whose
// watcher follows the settings bucket.
func start(t *testing.T) *system {
	t.Helper()
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core, coreNC, js := nodetest.Start(t)
	set, err := streams.Ensure(ctx, js, streams.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc := &settings.Service{
		Store:   &natskv.Store{KV: set.Settings, JS: js, NC: coreNC},
		Auditor: &natskv.Auditor{JS: js, Events: set.Events, Prefix: jsnames.EventsSubjPx, Source: "/core/t/config"},
	}
	svcs, err := natsapi.Serve(coreNC, svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svcs.Stop)

	leaf, err := leafnodes.StartEdge(leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leaf.Shutdown)
	if err := leafnodes.WaitConnected(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	edgeNC, err := nats.Connect("", nats.InProcessServer(leaf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(edgeNC.Close)
	ejs, err := jetstream.NewWithDomain(edgeNC, jsnames.Domain)
	if err != nil {
		t.Fatal(err)
	}
	var kv jetstream.KeyValue
	eventually.Nil(t, 0, func() (err error) { kv, err = ejs.KeyValue(ctx, streams.SettingsBucket); return err })
	s := &system{coreNC: coreNC, edgeNC: edgeNC, set: set, client: &natsapi.Client{NC: coreNC, Timeout: 5 * time.Second},
		live: settings.NewLive(nil), flags: flags.NewSet()}
	go func() {
		if err := natskv.Watch(ctx, kv, s.live, s.flags, log, natskv.NewMetrics(nil)); err != nil {
			t.Error(err)
		}
	}()
	eventually.True(t, 0, "the edge's settings loaded", func() bool {
		select {
		case <-s.live.Ready():
			return true
		default:
			return false
		}
	})
	return s
}

// events reads every change event on EVENTS so far.
func (s *system) events(t *testing.T) []*cloudevents.Event {
	t.Helper()
	ctx := t.Context()
	info, err := s.set.Events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*cloudevents.Event
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.set.Events.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cloudevents.Unmarshal(m.Data)
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		if m.Header.Get(cloudevents.HeaderID) != ev.ID || m.Header.Get(nats.MsgIdHdr) != ev.ID {
			t.Fatalf("event %d: headers %v do not carry its id %s", seq, m.Header, ev.ID)
		}
		out = append(out, ev)
	}
	return out
}

func (s *system) rate() int64 { return s.live.Snapshot().Int(settings.EdgeHoldsRate, "edge-t", -1) }

// A change reaches a watcher over the leaf node within a second; a bad
// value is refused with nothing changed and no event; every accepted
// change is exactly one domain event, with who, old, new and revision.
func TestChangesReachTheEdgeAndAreAudited(t *testing.T) {
	s := start(t)
	ctx := t.Context()

	t0 := time.Now()
	got, err := s.client.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Text: "50", By: "alice", Note: "on-sale"})
	if err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "edge.holds.rate 50 at the edge", func() bool { return s.rate() == 50 })
	t.Logf("a change reached the edge's watcher in %v", time.Since(t0))

	// Refused: out of bounds, wrong type, unknown, a scope the setting
	// has not; nothing changes, no event.
	before := len(s.events(t))
	for _, r := range []settings.SetRequest{
		{Name: settings.EdgeHoldsRate, Text: "0", By: "alice"},
		{Name: settings.EdgeHoldsRate, Value: json.RawMessage(`"fast"`), By: "alice"},
		{Name: "edge.nonsense", Text: "1", By: "alice"},
		{Name: settings.EdgeHoldsRate, Scope: "not a name", Text: "5", By: "alice"},
		{Name: settings.EdgeHoldsRate, Text: "60", By: "alice", Revision: got.Revision + 1},
	} {
		_, err := s.client.Set(ctx, r)
		if k := errs.KindOf(err); k != errs.Invalid && k != errs.NotFound && k != errs.Conflict {
			t.Fatalf("Set(%+v) = %v, want refused", r, err)
		}
		if errs.Message(err) == "" {
			t.Fatalf("a refusal without a message: %v", err)
		}
	}
	if _, err := s.client.SetFlag(ctx, settings.SetFlagRequest{Definition: json.RawMessage(`{"key":"x","variants":{"a":1,"b":"s"},"default_variant":"a"}`), By: "alice"}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("an invalid flag: %v", err)
	}
	cur, err := s.client.Settings(ctx, settings.EdgeHoldsRate)
	if err != nil || len(cur) != 1 || string(cur[0].Value) != "50" || cur[0].Revision != got.Revision {
		t.Fatalf("after refusals: %+v %v", cur, err)
	}
	if n := len(s.events(t)); n != before {
		t.Fatalf("refused changes published %d events", n-before)
	}

	// More changes: a scoped value, a flag, an unset, a flag deletion, and
	// one repeated value (no change, no event).
	if _, err := s.client.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Scope: "edge-t", Text: "5", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Scope: "edge-t", Text: "5", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "the edge's own value", func() bool { return s.rate() == 5 })
	def := `{"key":"sales.enabled","enabled":true,"variants":{"on":true,"off":false},"default_variant":"on","rules":[{"events":["arena"],"variant":"off"}]}`
	if _, err := s.client.SetFlag(ctx, settings.SetFlagRequest{Definition: json.RawMessage(def), By: "carol"}); err != nil {
		t.Fatal(err)
	}
	// The flag reaches the edge's OpenFeature client within a second.
	api := isolated.NewAPI()
	t.Cleanup(func() { _ = api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(ctx, flagsof.New(s.flags)); err != nil {
		t.Fatal(err)
	}
	client := api.NewClient()
	arena := of.NewEvaluationContext("acct-1", map[string]any{flagsof.AttrEvent: "arena"})
	eventually.True(t, time.Second, "sales paused for arena at the edge", func() bool { return !client.Boolean(ctx, "sales.enabled", true, arena) })
	if !client.Boolean(ctx, "sales.enabled", false, of.NewEvaluationContext("acct-1", map[string]any{flagsof.AttrEvent: "club"})) {
		t.Fatal("sales paused for another event")
	}
	if _, err := s.client.Unset(ctx, settings.UnsetRequest{Name: settings.EdgeHoldsRate, Scope: "edge-t", By: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := s.client.DeleteFlag(ctx, settings.DeleteFlagRequest{Key: "sales.enabled", By: "carol"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "the edge back on the global value", func() bool { return s.rate() == 50 })
	eventually.True(t, time.Second, "the flag gone at the edge", func() bool { _, ok := s.flags.Get("sales.enabled"); return !ok })

	events := s.events(t)
	want := []struct{ typ, subject, old, new, by string }{
		{natskv.TypeSettingsChanged, "edge.holds.rate", "", "50", "alice"},
		{natskv.TypeSettingsChanged, "edge.holds.rate/edge-t", "", "5", "bob"},
		{natskv.TypeFlagsChanged, "sales.enabled", "", "", "carol"},
		{natskv.TypeSettingsChanged, "edge.holds.rate/edge-t", "5", "", "bob"},
		{natskv.TypeFlagsChanged, "sales.enabled", "x", "", "carol"},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d (one per accepted change)", len(events), len(want))
	}
	for i, w := range want {
		ev := events[i]
		var d natskv.ChangeData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			t.Fatal(err)
		}
		if ev.Type != w.typ || ev.Subject != w.subject || d.By != w.by || d.Revision == 0 || ev.ID != natskv.EventID(d.Key, d.Revision) {
			t.Errorf("event %d: %s %s %+v", i, ev.Type, ev.Subject, d)
		}
		if w.typ == natskv.TypeSettingsChanged && (string(d.Old) != w.old || string(d.New) != w.new) {
			t.Errorf("event %d: old %s new %s, want %q %q", i, d.Old, d.New, w.old, w.new)
		}
	}
	if d := events[0]; d.PartitionKey != "setting.edge.holds.rate" {
		t.Errorf("partition key %q", d.PartitionKey)
	}
}

// A value that got into the bucket without the service (a hand-made put
// by a core user) is refused by the watchers, which keep the last good
// value; the edge can read the bucket but neither write it nor call the
// services.
func TestWatchersRefuseBadEntriesAndEdgesCannotWrite(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	if _, err := s.client.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Text: "50", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "edge.holds.rate 50 at the edge", func() bool { return s.rate() == 50 })
	for _, bad := range []string{`{"value":0,"by":"x","at":"2026-01-01T00:00:00Z"}`, `garbage`} {
		if _, err := s.set.Settings.Put(ctx, "setting.edge.holds.rate", []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	// A good value written after the bad ones arrives; the bad ones never
	// did (the value stayed 50 until the good one).
	if _, err := s.set.Settings.Put(ctx, "setting.edge.drain", (&settings.Entry{Value: json.RawMessage(`true`), By: "x", At: time.Now()}).Encode()); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "drain at the edge", func() bool { return s.live.Snapshot().Bool(settings.EdgeDrain, "", false) })
	if r := s.rate(); r != 50 {
		t.Fatalf("after bad entries the edge has %d, want the last good 50", r)
	}
	// The service can overwrite a bad entry.
	if _, err := s.client.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Text: "40", By: "alice"}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Second, "edge.holds.rate 40 at the edge", func() bool { return s.rate() == 40 })

	ejs, err := jetstream.NewWithDomain(s.edgeNC, jsnames.Domain)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := ejs.KeyValue(ctx, streams.SettingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "setting.edge.holds.rate"); err != nil || e.Revision() == 0 {
		t.Fatalf("the edge cannot read the bucket: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := kv.Put(wctx, "setting.edge.holds.rate", []byte(`{"value":1,"by":"edge","at":"2026-01-01T00:00:00Z"}`)); err == nil {
		t.Fatal("the edge wrote to the settings bucket")
	}
	edgeClient := &natsapi.Client{NC: s.edgeNC, Timeout: 500 * time.Millisecond}
	if _, err := edgeClient.Set(ctx, settings.SetRequest{Name: settings.EdgeHoldsRate, Text: "1", By: "edge"}); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("the edge reached the config service: %v", err)
	}
	if r := s.rate(); r != 40 {
		t.Fatalf("the edge changed the setting to %d", r)
	}
}
