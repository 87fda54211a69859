package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/ticketing/ticketing/core/waitroom"
	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/services/catalog"
)

// queueFlags are the core's waiting-room settings on the command line.
type queueFlags struct {
	tick, shopperWindow, tokenTTL *time.Duration
	targetShoppers                *int
}

func addQueueFlags(fs *flag.FlagSet) queueFlags {
	return queueFlags{
		tick:           fs.Duration("queue-tick", time.Second, "how often the core decides admissions for each event with a waiting room"),
		shopperWindow:  fs.Duration("queue-shopper-window", 10*time.Minute, "admissions within this window count as active shoppers"),
		targetShoppers: fs.Int("queue-target-shoppers", 2000, "active shoppers allowed at once per event"),
		tokenTTL:       fs.Duration("admission-ttl", 10*time.Minute, "lifetime of an admission token"),
	}
}

func (q queueFlags) config() waitroom.Config {
	var c waitroom.Config
	c.Controller.Tick = *q.tick
	c.Controller.ShopperWindow = *q.shopperWindow
	// The published admission rate averages over 30 s, or the whole
	// shopper window when that is shorter.
	c.Controller.RateWindow = min(30*time.Second, *q.shopperWindow)
	c.Controller.TargetShoppers = *q.targetShoppers
	c.Tokens.TTL = *q.tokenTTL
	return c
}

// openDemoSale moves the on-sale time of the demo events with a waiting
// room to now+in (when in > 0), so that a fresh dev system shows the
// pre-queue, the draw and the opening. Demo data is loaded only into an
// empty catalog, so a restarted system keeps the time it first had.
func openDemoSale(d *catalog.Dataset, in time.Duration, now time.Time) {
	if in <= 0 {
		return
	}
	for i := range d.Events {
		if d.Events[i].Queue {
			d.Events[i].OnSaleAt = now.Add(in).Truncate(time.Second)
		}
	}
}

// waitingRooms lists the waiting-room pages of e's events with a queue, one
// line each, for the dev banner.
func waitingRooms(e *edge.Edge) string {
	var b strings.Builder
	for _, ev := range e.Catalog.Events() {
		if ev.Queue {
			fmt.Fprintf(&b, "  waiting room: %s/queue/%s (on sale %s)\n", e.URL(), ev.ID, ev.OnSaleAt.Local().Format(time.TimeOnly))
		}
	}
	return b.String()
}
