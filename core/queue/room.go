// Package queue is the core's side of the waiting room: the "queue"
// micro service (queue.config, queue.prequeue, queue.draw) and the
// "admission" micro service (admission.issue, admission.keys), answered by
// every core node from shared key-value state, and the admission
// controller, which runs on one core node at a time (a lease) and every
// tick turns each queue-on event's inventory and the edges' reports into a
// decision published on queue.edge.<event>.
//
// Secrets (ticket keys, draw seeds, signing keys) live in core-only
// buckets (core/streams); the seed of an event is handed out from its
// on-sale time on, never before.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	keyringkv "github.com/ticketing/ticketing/internal/keyring/natskv"
	"github.com/ticketing/ticketing/services/admission"
	admissionapi "github.com/ticketing/ticketing/services/admission/natsapi"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/queue"
	"github.com/ticketing/ticketing/services/queue/coord"
	"github.com/ticketing/ticketing/services/queue/natsapi"
	queuekv "github.com/ticketing/ticketing/services/queue/natskv"
)

// LeaseKey names the controller's lease in the core's lease bucket
// (partition leases are "<event>.<index>", which never look like this).
const LeaseKey = "queue.controller"

// Config configures the waiting room's core side.
type Config struct {
	// Controller: tick, shopper window, target shoppers, rate window,
	// report age, queue.Decide's tuning.
	Controller coord.Config
	// DrawCollect is how long after the on-sale time the core waits for
	// the edges' pre-queues before the draw record is final without them.
	// Default 2m.
	DrawCollect time.Duration
	// Tokens: issuer, audience, lifetime of admission tokens.
	Tokens admission.Config
	// Keys: signing key rotation.
	Keys keyring.KeyRingConfig
	// KeySyncEvery is how often a node syncs the signing keys with the
	// shared store (rotating when due). Default 1m.
	KeySyncEvery time.Duration
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	c.Controller.Defaults()
	if c.DrawCollect == 0 {
		c.DrawCollect = 2 * time.Minute
	}
	c.Tokens.Defaults()
	c.Keys.Defaults()
	if c.KeySyncEvery == 0 {
		c.KeySyncEvery = time.Minute
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	var bad []error
	if c.DrawCollect < time.Second {
		bad = append(bad, errs.Errorf("queue.config", errs.Invalid, "draw collect %v is below 1s", c.DrawCollect))
	}
	if c.KeySyncEvery < time.Second || c.KeySyncEvery > c.Keys.RotateEvery {
		bad = append(bad, errs.Errorf("queue.config", errs.Invalid, "key sync every %v is not within [1s, rotate every %v]", c.KeySyncEvery, c.Keys.RotateEvery))
	}
	if c.Keys.VerifyFor < c.Tokens.MaxTTL+c.Tokens.ClockSkew {
		bad = append(bad, errs.Errorf("queue.config", errs.Invalid, "keys verify for %v, less than token max TTL + clock skew", c.Keys.VerifyFor))
	}
	return errors.Join(append(bad, c.Controller.Validate(), c.Tokens.Validate(), c.Keys.Validate())...)
}

// Inventory reads a partition's availability with the seats whose hold
// expires within a horizon (the inventory natsapi Client).
type Inventory interface {
	AvailabilityExpiring(ctx context.Context, partition string, within time.Duration) (inventory.Availability, error)
}

// Deps are what the waiting room runs on.
type Deps struct {
	NC        *nats.Conn
	Streams   *streams.Set
	Catalog   *catalog.Cache
	Inventory Inventory
	// Node names this core node (lease holder).
	Node string
	// LeaseTTL is the lease bucket's TTL.
	LeaseTTL time.Duration
	Log      *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// TargetShoppers, when set, gives an event's target at each tick (the
	// live setting queue.target_shoppers) from the configured one.
	TargetShoppers func(event string, configured int) int
}

// Room is the running core side of the waiting room.
type Room struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	now    func() time.Time
	store  coord.Store
	keys   keyring.KeyStore
	ring   *keyring.KeyRing
	signer *admission.Signer

	mu      sync.Mutex
	reports map[string]*coord.Reports // by event
	soldOut map[string]soldOutAt      // by event: the stored state's flag, cached for a tick

	// building serializes this node's building of draw lists (one build
	// at a time instead of one per concurrent request at the close).
	building sync.Mutex

	sub    *nats.Subscription
	svcs   []micro.Service
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start syncs the signing keys, registers the services and starts the
// controller and key-sync loops.
func Start(ctx context.Context, cfg Config, deps Deps) (*Room, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	r := &Room{
		cfg: cfg, deps: deps, log: deps.Log.With("component", "queue"), now: deps.Now,
		store:   &queuekv.Store{KV: deps.Streams.Queue, NC: deps.NC},
		reports: map[string]*coord.Reports{}, soldOut: map[string]soldOutAt{},
	}
	var err error
	if r.keys, err = keyringkv.New(deps.Streams.AdmissionKeys, streams.AdmissionKeysConfig(0)); err != nil {
		return nil, err
	}
	if r.ring, err = keyring.NewKeyRing(cfg.Keys, r.now()); err != nil {
		return nil, err
	}
	if _, err := keyring.Sync(ctx, r.keys, r.ring, r.now()); err != nil {
		return nil, err
	}
	if r.signer, err = admission.NewSigner(r.ring, cfg.Tokens); err != nil {
		return nil, err
	}
	fail := func(err error) (*Room, error) {
		r.Stop(context.Background())
		return nil, err
	}
	if r.sub, err = deps.NC.Subscribe(natsapi.ReportPrefix+"*", r.onReport); err != nil {
		return fail(err)
	}
	qs, err := natsapi.Serve(deps.NC, r)
	if err != nil {
		return fail(err)
	}
	r.svcs = append(r.svcs, qs)
	as, err := admissionapi.Serve(deps.NC, admissionapi.Server{Signer: r.signer, Keys: r.ring, Allow: r.allowIssue, Now: r.now})
	if err != nil {
		return fail(err)
	}
	r.svcs = append(r.svcs, as)
	runCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.syncKeys(runCtx) }()
	go func() { defer r.wg.Done(); r.lead(runCtx) }()
	return r, nil
}

// Stop stops the controller (releasing its lease), the services and the
// report subscription, waiting for the loops until ctx is done.
func (r *Room) Stop(ctx context.Context) {
	if r.cancel != nil {
		r.cancel()
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			r.log.Warn("shutdown deadline passed with the waiting-room controller still stopping")
		}
	}
	for _, s := range r.svcs {
		_ = s.Stop()
	}
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
}

// Ring is the node's signing key ring (for tests and metrics).
func (r *Room) Ring() *keyring.KeyRing { return r.ring }

func (r *Room) syncKeys(ctx context.Context) {
	keyring.Keep(ctx, r.keys, r.ring, r.cfg.KeySyncEvery, r.now, r.log, "admission")
}

// onReport records an edge's report (on every node: any node may lead).
func (r *Room) onReport(m *nats.Msg) {
	event := strings.TrimPrefix(m.Subject, natsapi.ReportPrefix)
	var rep natsapi.Report
	if json.Unmarshal(m.Data, &rep) != nil || rep.EventID != event || !coord.ValidEdge(rep.Edge) || rep.Waiting < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.reports[event]
	if t == nil {
		if _, ok := r.queueEvent(event); !ok {
			return
		}
		t = &coord.Reports{}
		r.reports[event] = t
	}
	t.Put(coord.Report{Edge: rep.Edge, Waiting: rep.Waiting, At: r.now()})
}

// freshReports lists an event's fresh edge reports.
func (r *Room) freshReports(event string, now time.Time) []queue.EdgeQueue {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.reports[event]
	if t == nil {
		return nil
	}
	return t.Fresh(now, r.cfg.Controller.ReportMaxAge())
}

// queueEvent returns the event if it exists and its queue is on.
func (r *Room) queueEvent(id string) (catalog.Event, bool) {
	e, _, ok := r.deps.Catalog.Event(id)
	return e, ok && e.Queue
}

func (r *Room) event(op, id string) (catalog.Event, error) {
	e, ok := r.queueEvent(id)
	if !ok {
		return catalog.Event{}, errs.Errorf(op, errs.NotFound, "no event %q with a waiting room", id)
	}
	return e, nil
}

// soldOutAt is an event's sold-out flag as read from the stored
// controller state, and when it was read.
type soldOutAt struct {
	soldOut bool
	read    time.Time
}

// allowIssue admits only tickets (32 lowercase hex digits) of queue-on
// events whose sale is open: from the on-sale time on, and not sold out.
// The edge asks only for users the controller admitted; this is the
// core's own check that it is not signing for a closed sale. The sold-out
// flag is the controller's stored state, read at most once a tick per
// event per node (tokens are asked for at the admission rate).
func (r *Room) allowIssue(ctx context.Context, eventID, subject string) error {
	const op = "admission.issue"
	e, err := r.event(op, eventID)
	if err != nil {
		return err
	}
	t, err := queue.ParseTicketID(subject)
	if err != nil || t.String() != subject {
		return errs.E(op, errs.Invalid, "the subject must be a ticket id: 32 lowercase hex digits")
	}
	now := r.now()
	if now.Before(e.OnSaleAt) {
		return errs.Errorf(op, errs.Conflict, "the sale of %q opens at %s", eventID, e.OnSaleAt.UTC().Format(time.RFC3339)).
			WithReason(admissionapi.ReasonNotOnSale)
	}
	soldOut, err := r.isSoldOut(ctx, eventID)
	if err != nil {
		return err
	}
	if soldOut {
		return errs.Errorf(op, errs.Conflict, "%q is sold out", eventID).WithReason(admissionapi.ReasonSoldOut)
	}
	return nil
}

// isSoldOut reads the event's sold-out flag from the stored controller
// state, cached for one controller tick.
func (r *Room) isSoldOut(ctx context.Context, eventID string) (bool, error) {
	at := time.Now()
	r.mu.Lock()
	c, ok := r.soldOut[eventID]
	r.mu.Unlock()
	if ok && at.Sub(c.read) < r.cfg.Controller.Tick {
		return c.soldOut, nil
	}
	st, _, err := r.store.LoadState(ctx, eventID)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	r.soldOut[eventID] = soldOutAt{soldOut: st.SoldOut, read: at}
	r.mu.Unlock()
	return st.SoldOut, nil
}

// Config implements natsapi.Service.
func (r *Room) Config(ctx context.Context, eventID string) (natsapi.Config, error) {
	e, err := r.event("queue.config", eventID)
	if err != nil {
		return natsapi.Config{}, err
	}
	sec, err := r.store.Secrets(ctx, eventID)
	if err != nil {
		return natsapi.Config{}, err
	}
	st, _, err := r.store.LoadState(ctx, eventID)
	if err != nil {
		return natsapi.Config{}, err
	}
	c := natsapi.Config{
		EventID: eventID, TicketKey: sec.TicketKey, Commitment: queue.Commitment(sec.Seed),
		OnSaleAt: e.OnSaleAt, SoldOut: st.SoldOut,
	}
	if !r.now().Before(e.OnSaleAt) {
		c.Seed = sec.Seed
	}
	return c, nil
}

// PreQueue implements natsapi.Service. Every edge with a room for the
// event sends its pre-queue, an empty one as one empty last chunk.
func (r *Room) PreQueue(ctx context.Context, c natsapi.PreQueueChunk) error {
	const op = "queue.prequeue"
	if _, err := r.event(op, c.EventID); err != nil {
		return err
	}
	if !coord.ValidEdge(c.Edge) {
		return errs.Errorf(op, errs.Invalid, "edge name %q: use 1-64 letters, digits, dashes and underscores", c.Edge)
	}
	// The store refuses chunks once the draw is closed (on any node).
	return r.store.AddPreQueue(ctx, c.EventID, c.Edge, c.Tickets, c.Last)
}

// Draw implements natsapi.Service. The draw list is final (and closed to
// further pre-queue chunks) when DrawComplete says so on the first node
// that is asked; that node closes it in the store (create-once: the
// first close on any node wins), builds the list from the chunks before
// the cut and stores it. Every node answers pages of the stored list from
// then on, so all of them give the same record.
func (r *Room) Draw(ctx context.Context, req natsapi.DrawRequest) (natsapi.DrawRecord, error) {
	e, err := r.event("queue.draw", req.EventID)
	if err != nil {
		return natsapi.DrawRecord{}, err
	}
	if err := req.Normalize(); err != nil {
		return natsapi.DrawRecord{}, err
	}
	sec, err := r.store.Secrets(ctx, e.ID)
	if err != nil {
		return natsapi.DrawRecord{}, err
	}
	now := r.now()
	rec := natsapi.DrawRecord{EventID: e.ID, Commitment: queue.Commitment(sec.Seed), OnSaleAt: e.OnSaleAt, Offset: req.Offset}
	if now.Before(e.OnSaleAt) {
		return rec, nil
	}
	rec.Seed = sec.Seed
	page := func() (natsapi.DrawRecord, bool, error) {
		ts, total, ok, err := r.store.DrawPage(ctx, e.ID, req.Offset, req.Limit)
		if err != nil || !ok {
			return natsapi.DrawRecord{}, false, err
		}
		out := rec
		out.Tickets, out.Total, out.Complete = ts, total, true
		if len(out.Tickets) == 0 {
			out.Tickets = nil
		}
		return out, true, nil
	}
	if out, ok, err := page(); ok || err != nil {
		return out, err
	}
	cut, err := r.store.DrawCut(ctx, e.ID)
	if err != nil {
		return natsapi.DrawRecord{}, err
	}
	if cut == 0 {
		pq, err := r.store.PreQueue(ctx, e.ID, 0)
		if err != nil {
			return natsapi.DrawRecord{}, err
		}
		expected := append([]string(nil), pq.Sent...)
		for _, eq := range r.freshReports(e.ID, now) {
			expected = append(expected, eq.Edge)
		}
		if !coord.DrawComplete(now, e.OnSaleAt, r.cfg.DrawCollect, expected, pq.Done) {
			return rec, nil
		}
	}
	r.building.Lock()
	defer r.building.Unlock()
	if out, ok, err := page(); ok || err != nil {
		return out, err // built meanwhile (here or on another node)
	}
	if cut, err = r.store.CloseDraw(ctx, e.ID); err != nil {
		return natsapi.DrawRecord{}, err
	}
	pq, err := r.store.PreQueue(ctx, e.ID, cut)
	if err != nil {
		return natsapi.DrawRecord{}, err
	}
	if err := r.store.SaveDraw(ctx, e.ID, coord.DrawTickets(sec.Seed, pq.Chunks...)); err != nil {
		return natsapi.DrawRecord{}, err
	}
	out, ok, err := page()
	if err == nil && !ok {
		err = errs.E("queue.draw", errs.Unavailable, "the draw record is not readable yet; try again")
	}
	return out, err
}
