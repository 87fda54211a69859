package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/queue/natsapi"
	"github.com/ticketing/ticketing/services/settings"
	settingsapi "github.com/ticketing/ticketing/services/settings/natsapi"
)

// The controller takes its target from the live setting
// queue.target_shoppers for the event: set to 3, it admits 3 of a line of
// 500; raised to 10, 7 more.
func TestTargetFromLiveSettings(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	nc := e.core.NC
	config := &settingsapi.Client{NC: nc}
	set := func(n string) {
		t.Helper()
		if _, err := config.Set(ctx, settings.SetRequest{Name: settings.QueueTargetShoppers, Scope: "open", Text: n, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	set("3")
	eventually.True(t, time.Second, "the target at the core", func() bool {
		return e.core.Settings().Snapshot().Int(settings.QueueTargetShoppers, "open", 0) == 3
	})
	ds := watch(t, nc, "open")
	stop := make(chan struct{})
	defer close(stop)
	go report(nc, "edge-a", "open", 500, stop)
	admitted := func() int {
		n := 0
		for _, d := range ds.snapshot() {
			n += sum(d)
		}
		return n
	}
	eventually.True(t, 5*time.Second, "3 admitted", func() bool { return admitted() == 3 })
	last := ds.await(t, "a decision", 2*time.Second, func(natsapi.Decision) bool { return true })
	ds.await(t, "five ticks on", 3*time.Second, func(d natsapi.Decision) bool { return d.Seq >= last.Seq+5 })
	if n := admitted(); n != 3 {
		t.Fatalf("%d admitted with a target of 3", n)
	}
	set("10")
	eventually.True(t, 5*time.Second, "10 admitted", func() bool { return admitted() == 10 })
}
