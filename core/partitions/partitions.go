// Package partitions decides which inventory partitions a core node serves.
// For every partition of every event in the catalog it keeps trying to take
// the partition's lease; when it gets it, it runs an owner until the owner
// stops, then tries again. With several core nodes, each partition is served
// by whichever node holds its lease, and taken over by another within about a
// lease TTL when that node dies.
package partitions

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ticketing/ticketing/core/owner"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/internal/pause"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
)

// Manager runs the owners of one core node.
type Manager struct {
	cfg  owner.Config
	deps owner.Deps
	log  *slog.Logger

	ctx     context.Context
	mu      sync.Mutex
	claimed map[string]bool
	wg      sync.WaitGroup
}

// New makes a manager; cfg.Node names this node.
func New(cfg owner.Config, deps owner.Deps) *Manager {
	cfg.Defaults()
	return &Manager{cfg: cfg, deps: deps, log: deps.Log.With("component", "partitions"), claimed: map[string]bool{}}
}

// Start claims every partition of every event the cache knows or learns of,
// until ctx is done. Call Wait after cancelling ctx.
func (m *Manager) Start(ctx context.Context, cache *catalog.Cache) {
	m.ctx = ctx
	cache.OnEvent(func(e catalog.Event, v catalog.Venue) {
		for _, pl := range e.Layouts(&v) {
			m.claim(catalog.PartitionKey(e.ID, pl.Index), pl.Inventory())
		}
	})
}

// Wait waits for every owner to stop.
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) claim(key string, l inventory.Layout) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.claimed[key] || m.ctx.Err() != nil {
		return
	}
	m.claimed[key] = true
	m.deps.Metrics.Known.Set(float64(len(m.claimed)))
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.serve(key, l)
	}()
}

// serve takes the partition's lease whenever it is free and owns the
// partition while it holds it.
func (m *Manager) serve(key string, l inventory.Layout) {
	ctx := m.ctx
	log := m.log.With("partition", key)
	ttl := m.cfg.LeaseTTL
	for ctx.Err() == nil {
		ls, err := lease.Acquire(ctx, m.deps.Streams.Leases, key, m.cfg.Node, ttl)
		var wait time.Duration
		switch {
		case err == nil:
			err = owner.Run(ctx, m.cfg, m.deps, key, l, ls)
			if err != nil && ctx.Err() == nil {
				log.Warn("owner stopped; will try to take the partition again", "err", err)
			}
			wait = 100 * time.Millisecond
		case errors.Is(err, lease.ErrHeld):
			// Someone serves it; look again within a third of the TTL, with
			// jitter so that nodes do not race in step.
			wait = ttl/4 + time.Duration(rand.Int64N(int64(ttl/6)))
		default:
			if ctx.Err() == nil {
				log.Warn("lease acquisition failed", "err", err)
			}
			wait = time.Second
		}
		if !pause.For(ctx, wait) {
			return
		}
	}
}
