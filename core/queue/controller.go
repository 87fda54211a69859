package queue

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/queue/coord"
	"github.com/ticketing/ticketing/services/queue/natsapi"
)

// lead takes the controller's lease whenever it is free and runs the
// controller while it holds it.
func (r *Room) lead(ctx context.Context) {
	ttl := r.deps.LeaseTTL
	for ctx.Err() == nil {
		ls, err := lease.Acquire(ctx, r.deps.Streams.Leases, LeaseKey, r.deps.Node, ttl)
		var wait time.Duration
		switch {
		case err == nil:
			r.log.Info("waiting-room controller started", "epoch", ls.Epoch())
			err = r.control(ctx, ls)
			if err != nil && ctx.Err() == nil {
				r.log.Warn("waiting-room controller stopped; will try to take it again", "err", err)
			}
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = ls.Release(rctx)
			cancel()
			wait = 100 * time.Millisecond
		case errors.Is(err, lease.ErrHeld):
			wait = ttl/4 + time.Duration(rand.Int64N(int64(ttl/6)))
		default:
			if ctx.Err() == nil {
				r.log.Warn("controller lease acquisition failed", "err", err)
			}
			wait = time.Second
		}
		if !pause.For(ctx, wait) {
			return
		}
	}
}

// controlled is one event's state under this controller.
type controlled struct {
	state coord.State
	rev   uint64
	seed  []byte
}

// control decides every tick while the lease holds, and at once when an
// event's on-sale time comes. It returns when the lease is lost or ctx
// is done.
func (r *Room) control(ctx context.Context, ls *lease.Lease) error {
	events := map[string]*controlled{}
	renewEvery := min(r.cfg.Controller.Tick, r.deps.LeaseTTL/3)
	lastRenew := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if time.Since(lastRenew) >= renewEvery {
			rctx, cancel := context.WithTimeout(ctx, renewEvery)
			err := ls.Renew(rctx)
			cancel()
			if errors.Is(err, lease.ErrLost) {
				return err
			}
			if err == nil {
				lastRenew = time.Now()
			}
		}
		if !time.Now().Before(ls.ValidUntil()) {
			return errors.New("queue: lease not renewed in time")
		}
		now := r.now()
		next := now.Add(r.cfg.Controller.Tick)
		var queued []catalog.Event
		for _, e := range r.deps.Catalog.Events() {
			if !e.Queue {
				continue
			}
			queued = append(queued, e)
			if e.OnSaleAt.After(now) && e.OnSaleAt.Before(next) {
				next = e.OnSaleAt // reveal the seed on time
			}
			if events[e.ID] == nil {
				c, err := r.takeOver(ctx, e.ID)
				if err != nil {
					r.log.Warn("waiting-room event state unavailable", "event", e.ID, "err", err)
					continue
				}
				events[e.ID] = c
			}
		}
		var wg sync.WaitGroup
		var lostMu sync.Mutex
		var lost error
		for _, e := range queued {
			c := events[e.ID]
			if c == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, cancel := context.WithTimeout(ctx, max(r.cfg.Controller.Tick, time.Second))
				defer cancel()
				if err := r.tick(tctx, e, c, now); err != nil {
					if errs.Is(errs.Conflict, err) {
						lostMu.Lock()
						lost = err
						lostMu.Unlock()
						return
					}
					if ctx.Err() == nil {
						r.log.Warn("waiting-room tick failed", "event", e.ID, "err", err)
					}
				}
			}()
		}
		wg.Wait()
		if lost != nil {
			return lost // another controller wrote an event's state: it leads now
		}
		timer.Reset(max(0, next.Sub(r.now())))
	}
}

// takeOver loads an event's state as the last controller left it.
func (r *Room) takeOver(ctx context.Context, event string) (*controlled, error) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sec, err := r.store.Secrets(lctx, event)
	if err != nil {
		return nil, err
	}
	st, rev, err := r.store.LoadState(lctx, event)
	if err != nil {
		return nil, err
	}
	return &controlled{state: st, rev: rev, seed: sec.Seed}, nil
}

// tick decides for one event: inventory, reports, decision; the state is
// stored (compare-and-set: the fence against a deposed controller) before
// the decision is published.
func (r *Room) tick(ctx context.Context, e catalog.Event, c *controlled, now time.Time) error {
	seats, expiring, err := r.seatsLeft(ctx, e)
	if err != nil {
		return err
	}
	next := c.state
	next.Admits = append([]coord.Admission(nil), c.state.Admits...)
	cfg := r.cfg.Controller
	if r.deps.TargetShoppers != nil {
		cfg.TargetShoppers = r.deps.TargetShoppers(e.ID, cfg.TargetShoppers)
	}
	res, err := next.Tick(cfg, coord.Inputs{
		Now: now, OnSaleAt: e.OnSaleAt, SeatsLeft: seats, ExpiringHolds: expiring,
		Edges: r.freshReports(e.ID, now),
	})
	if err != nil {
		return err
	}
	rev, err := r.store.SaveState(ctx, e.ID, next, c.rev)
	if err != nil {
		return err
	}
	c.state, c.rev = next, rev
	d := natsapi.Decision{
		EventID: e.ID, Seq: res.Seq, At: now.UTC(), SoldOut: res.Decision.SoldOut,
		Reachable: res.Decision.Reachable, Waiting: res.Decision.Waiting, Rate: res.Rate, Spare: res.Decision.Spare, Edges: res.Decision.Edges,
	}
	if res.Revealed {
		d.Seed = c.seed
	}
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if res.Urgent {
		r.log.Info("waiting room changed", "event", e.ID, "revealed", res.Revealed, "sold_out", d.SoldOut, "seq", d.Seq)
	}
	return r.deps.NC.Publish(natsapi.DecisionSubject(e.ID), b)
}

// seatsLeft sums capacity - held - sold over the event's partitions, and
// the held seats whose hold expires within the controller's decision
// window (Controller.ExpiringWithin).
func (r *Room) seatsLeft(ctx context.Context, e catalog.Event) (left, expiring int, err error) {
	for i := range e.PartitionCount() {
		a, err := r.deps.Inventory.AvailabilityExpiring(ctx, e.ID+"."+strconv.Itoa(i), r.cfg.Controller.ExpiringWithin)
		if err != nil {
			return 0, 0, err
		}
		for _, z := range a.Zones {
			left += max(0, z.Capacity-z.Held-z.Sold)
			expiring += min(max(0, z.Expiring), z.Held)
		}
	}
	return left, expiring, nil
}
