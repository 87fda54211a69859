package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/flags"
	"github.com/ticketing/ticketing/services/settings"
	settingsapi "github.com/ticketing/ticketing/services/settings/natsapi"
	settingskv "github.com/ticketing/ticketing/services/settings/natskv"
)

// coreSettings is the core's side of dynamic configuration: the "config"
// and "flags" micro services (the one write path: validated,
// compare-and-set, audited on EVENTS), and this node's watcher of the
// settings bucket, which the waiting-room controller reads its target
// from.
type coreSettings struct {
	live  *settings.Live
	flags *flags.Set
}

// startSettings serves the config and flags services and follows the
// settings bucket, as components of sup ("settings-services",
// "settings-follower"), and returns once the bucket's values are applied.
// Changes whose audit event was missed (a crash between the write and the
// event) are published in the background.
func (c *Core) startSettings(ctx context.Context, sup *supervisor.Supervisor, reg prometheus.Registerer) error {
	cs := &coreSettings{live: settings.NewLive(nil), flags: flags.NewSet()}
	c.settings = cs
	svc := &settings.Service{
		Store: &settingskv.Store{KV: c.Streams.Settings, JS: c.JS, NC: c.NC},
		Auditor: &settingskv.Auditor{JS: c.JS, Events: c.Streams.Events, Prefix: jsnames.EventsSubjPx,
			Source: "/core/" + c.cfg.Node.Name + "/config"},
	}
	svcs, err := settingsapi.Serve(c.NC, svc, reg)
	if err != nil {
		return fmt.Errorf("core: config service: %w", err)
	}
	if _, err := sup.Add("settings-services", func(context.Context) error { svcs.Stop(); return nil }); err != nil {
		return err
	}
	log := c.log.With("component", "settings")
	metrics := settingskv.NewMetrics(reg)
	if _, err := sup.Start(supervisor.Component{Name: "settings-follower", Run: func(ctx context.Context) error {
		go func() {
			// Events older than the stream keeps are gone; look only at
			// changes well within it, so none is published twice.
			window := min(24*time.Hour, c.cfg.Streams.EventsMaxAge/2)
			n, err := svc.Reconcile(ctx, time.Now().Add(-window))
			if err != nil && ctx.Err() == nil {
				log.Warn("audit reconcile incomplete", "published", n, "err", err)
			} else if n > 0 {
				log.Info("published missed audit events", "published", n)
			}
		}()
		return settingskv.Watch(ctx, c.Streams.Settings, cs.live, cs.flags, log, metrics)
	}}); err != nil {
		return err
	}
	select {
	case <-cs.live.Ready():
		return nil
	case <-sup.Failed():
		return errors.New("core: a component failed while the settings loaded")
	case <-ctx.Done():
		return fmt.Errorf("core: settings not loaded: %w", ctx.Err())
	}
}

// Settings are this node's current dynamic settings.
func (c *Core) Settings() *settings.Live { return c.settings.live }

// Flags are this node's current flag definitions.
func (c *Core) Flags() *flags.Set { return c.settings.flags }

// targetShoppers is the waiting room's target for event: the setting
// queue.target_shoppers for the event, or for everyone, or configured.
func (cs *coreSettings) targetShoppers(event string, configured int) int {
	return int(cs.live.Snapshot().Int(settings.QueueTargetShoppers, event, int64(configured)))
}
