package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/catalog"
	invapi "github.com/ticketing/ticketing/services/inventory/natsapi"
	"github.com/ticketing/ticketing/services/pricing"
)

// repricer applies dynamic pricing (pricing.Service.Reprice) to the events
// whose price list has it switched on: every tick, the demand measured at
// the events' partition owners — sold and capacity per zone, and holds
// placed per minute, estimated from the growth of held and sold seats
// since the last look.
type repricer struct {
	catalog *catalog.Cache
	inv     *invapi.Client
	prices  *pricing.Service
	log     *slog.Logger
	// last is each event's zones' held+sold at the last look.
	last   map[string]map[string]int
	lastAt map[string]time.Time
}

func (r *repricer) run(ctx context.Context, tick time.Duration) {
	r.last, r.lastAt = map[string]map[string]int{}, map[string]time.Time{}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, e := range r.catalog.Events() {
			if err := r.event(ctx, e); err != nil && ctx.Err() == nil {
				r.log.Warn("repricing failed", "event", e.ID, "err", err)
			}
		}
	}
}

// event reprices one event if its price list asks for it.
func (r *repricer) event(ctx context.Context, e catalog.Event) error {
	rules, err := r.prices.Store.Rules(ctx, e.ID)
	if errs.Is(errs.NotFound, err) || (err == nil && (rules.Dynamic == nil || !rules.Dynamic.Enabled)) {
		return nil
	}
	if err != nil {
		return err
	}
	now := time.Now()
	d := pricing.Demand{Zones: map[string]pricing.ZoneDemand{}}
	moving := map[string]int{}
	for i := range e.PartitionCount() {
		a, err := r.inv.Availability(ctx, catalog.PartitionKey(e.ID, i))
		if err != nil {
			return err
		}
		for _, z := range a.Zones {
			zd := d.Zones[z.ID]
			zd.Sold += z.Sold
			zd.Capacity += z.Capacity
			d.Zones[z.ID] = zd
			moving[z.ID] += z.Held + z.Sold
		}
	}
	prev, seen := r.last[e.ID]
	minutes := now.Sub(r.lastAt[e.ID]).Minutes()
	for z, zd := range d.Zones {
		if seen && minutes > 0 {
			zd.HoldsPerMinute = max(0, int(float64(moving[z]-prev[z])/minutes))
		}
		d.Zones[z] = zd
		d.Sold += zd.Sold
		d.Capacity += zd.Capacity
		d.HoldsPerMinute += zd.HoldsPerMinute
	}
	r.last[e.ID], r.lastAt[e.ID] = moving, now
	changed, err := r.prices.Reprice(ctx, e.ID, d, now)
	if changed {
		r.log.Info("prices moved", "event", e.ID, "sold", d.Sold, "capacity", d.Capacity, "holds_per_minute", d.HoldsPerMinute)
	}
	return err
}
