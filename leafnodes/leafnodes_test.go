package leafnodes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	analyticsapi "github.com/ticketing/ticketing/services/analytics/natsapi"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/reporting"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
	"github.com/ticketing/ticketing/services/reporting/natskv"
)

// TestEdgePermissions: through its leaf node an edge reaches the public
// inventory operations, can read the catalog and ask for event reports, and
// nothing else: not the internal confirm and cancel, not the JetStream API
// beyond the catalog, not the micro services' $SRV discovery and stats, and
// it cannot attract requests meant for the core's services.
func TestEdgePermissions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	core, coreNC, js := nodetest.Start(t)
	// A responder for every operation of one partition, and a stream the
	// edge must not delete.
	for _, op := range natsapi.Ops {
		if _, err := coreNC.Subscribe(natsapi.Subject("ev.0", op), func(m *nats.Msg) { _ = m.Respond([]byte(op)) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "catalog"}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "INVENTORY", Subjects: []string{"inv.log.>"}}); err != nil {
		t.Fatal(err)
	}
	// The real reporting micro service, on an embedded store.
	store, err := natskv.Open(ctx, js, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := reportingapi.Serve(coreNC, &reporting.Service{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	// The real analytics micro service, on its embedded (file) store.
	funnels, err := filestore.Open(filestore.Config{Path: filepath.Join(t.TempDir(), "analytics.json")})
	if err != nil {
		t.Fatal(err)
	}
	asvc, err := analyticsapi.Serve(coreNC, funnels)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = asvc.Stop() }()
	_ = coreNC.Flush()

	leaf, err := leafnodes.StartEdge(leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Shutdown()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := leafnodes.WaitConnected(wctx, leaf); err != nil {
		t.Fatal(err)
	}
	edgeNC, err := nats.Connect("", nats.InProcessServer(leaf))
	if err != nil {
		t.Fatal(err)
	}
	defer edgeNC.Close()

	allowed := map[string]bool{natsapi.OpHold: true, natsapi.OpGet: true, natsapi.OpRelease: true, natsapi.OpAvailability: true}
	for _, op := range natsapi.Ops {
		subj := natsapi.Subject("ev.0", op)
		var m *nats.Msg
		var err error
		if allowed[op] {
			// Interest crosses the leaf connection asynchronously: retry.
			eventually.Nil(t, 5*time.Second, func() error {
				m, err = edgeNC.Request(subj, nil, time.Second)
				return err
			})
			if string(m.Data) != op {
				t.Fatalf("%s from the edge: %q", op, m.Data)
			}
			continue
		}
		m, err = edgeNC.Request(subj, nil, 500*time.Millisecond)
		if err == nil {
			t.Fatalf("%s from the edge was answered (%q); edges must not reach it", op, m.Data)
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("%s from the edge: unexpected error %v", op, err)
		}
	}

	// Reports and funnels: the request subjects are answered (an event
	// without records is the service's not found, not the client's
	// unavailable)…
	reports := &reportingapi.Client{NC: edgeNC}
	funnelClient := &analyticsapi.Client{NC: edgeNC, Timeout: time.Second}
	for name, call := range map[string]func(context.Context) error{
		"event report": func(ctx context.Context) error { _, err := reports.EventReport(ctx, "ev"); return err },
		"funnel":       func(ctx context.Context) error { _, err := funnelClient.Funnel(ctx, "ev"); return err },
	} {
		eventually.Nil(t, 5*time.Second, func() error {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			defer rcancel()
			if err = call(rctx); errs.Is(errs.Unavailable, err) {
				return err
			}
			return nil
		})
		if !errs.Is(errs.NotFound, err) {
			t.Fatalf("%s from the edge: %v, want the service's not found", name, err)
		}
	}
	// … the services' discovery, info and stats are not.
	for _, subj := range []string{"$SRV.PING", "$SRV.PING.reporting", "$SRV.INFO.reporting", "$SRV.STATS.reporting",
		"$SRV.INFO.analytics", "$SRV.STATS.analytics"} {
		m, err := edgeNC.Request(subj, nil, 500*time.Millisecond)
		if err == nil {
			t.Fatalf("%s from the edge was answered (%q)", subj, m.Data)
		}
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("%s from the edge: unexpected error %v", subj, err)
		}
	}
	// An edge cannot subscribe to the service's requests: the core does not
	// send them over the leaf connection. A probe on a subject the edge may
	// receive, published after each request by the same connection, shows
	// when the request would have arrived.
	stolen, err := edgeNC.SubscribeSync(reportingapi.SubjEventReport)
	if err != nil {
		t.Fatal(err)
	}
	stolenFunnels, err := edgeNC.SubscribeSync(analyticsapi.SubjFunnel)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := edgeNC.SubscribeSync("_INBOX.probe")
	if err != nil {
		t.Fatal(err)
	}
	_ = edgeNC.Flush()
	eventually.Nil(t, 5*time.Second, func() error {
		for _, subj := range []string{reportingapi.SubjEventReport, analyticsapi.SubjFunnel} {
			if err := coreNC.Publish(subj, []byte(`{"event_id":"ev"}`)); err != nil {
				return err
			}
		}
		if err := coreNC.Publish("_INBOX.probe", nil); err != nil {
			return err
		}
		_, err := probe.NextMsg(100 * time.Millisecond)
		return err
	})
	for _, sub := range []*nats.Subscription{stolen, stolenFunnels} {
		if n, _, _ := sub.Pending(); n != 0 {
			t.Fatalf("the edge received %d requests on %s meant for the core", n, sub.Subject)
		}
	}

	ejs, err := jetstream.NewWithDomain(edgeNC, jsnames.Domain)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	kv, err := ejs.KeyValue(rctx, "catalog")
	if err != nil {
		t.Fatalf("the edge cannot open the catalog: %v", err)
	}
	if _, err := kv.Put(rctx, "venue.x", []byte("{}")); err == nil {
		t.Fatal("the edge wrote to the catalog")
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	defer dcancel()
	if err := ejs.DeleteStream(dctx, "INVENTORY"); err == nil {
		t.Fatal("the edge deleted the INVENTORY stream")
	}
	if _, err := js.Stream(ctx, "INVENTORY"); err != nil {
		t.Fatalf("INVENTORY is gone: %v", err)
	}
}
