package core

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ticketing/ticketing/core/streams"
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
	svcs  *settingsapi.Services
	live  *settings.Live
	flags *flags.Set
}

// startSettings serves the config and flags services and follows the
// settings bucket until runCtx ends; it returns once the bucket's values
// are applied (or ctx ends). Changes whose audit event was missed (a
// crash between the write and the event) are published in the background.
func (c *Core) startSettings(ctx, runCtx context.Context, reg prometheus.Registerer) error {
	cs := &coreSettings{live: settings.NewLive(nil), flags: flags.NewSet()}
	c.settings = cs
	svc := &settings.Service{
		Store: &settingskv.Store{KV: c.Streams.Settings, JS: c.JS, NC: c.NC},
		Auditor: &settingskv.Auditor{JS: c.JS, Events: c.Streams.Events, Prefix: streams.EventsSubjPx,
			Source: "/core/" + c.cfg.Node.Name + "/config"},
	}
	var err error
	if cs.svcs, err = settingsapi.Serve(c.NC, svc, reg); err != nil {
		return fmt.Errorf("core: config service: %w", err)
	}
	go func() {
		// Events older than the stream keeps are gone; look only at
		// changes well within it, so none is published twice.
		window := min(24*time.Hour, c.cfg.Streams.EventsMaxAge/2)
		n, err := svc.Reconcile(runCtx, time.Now().Add(-window))
		if err != nil && runCtx.Err() == nil {
			c.log.Warn("settings: audit reconcile incomplete", "published", n, "err", err)
		} else if n > 0 {
			c.log.Info("settings: published missed audit events", "published", n)
		}
	}()
	if err := settingskv.Watch(runCtx, c.Streams.Settings, cs.live, cs.flags, c.log.With("component", "settings"), settingskv.NewMetrics(reg)); err != nil {
		return err
	}
	select {
	case <-cs.live.Ready():
		return nil
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

func (cs *coreSettings) stop() {
	if cs != nil && cs.svcs != nil {
		cs.svcs.Stop()
	}
}
