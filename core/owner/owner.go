// Package owner serves one inventory partition while it holds the
// partition's lease. It keeps the partition's state in memory, group-commits
// every decision to the partition's log subject in JetStream before anyone
// hears the answer, and is fenced: each log write expects the subject's last
// sequence to be the one it last wrote, so a deposed owner's late write
// fails. It recovers from the latest snapshot plus the log after it, relays
// decisions as domain events to the EVENTS stream, and writes snapshots from
// a shadow copy of the state so the hot path never pauses for them. The
// shadow, being the state the log replays to, is also what the live state is
// checked against (zone counts at a batch boundary, twice a second) and what
// the zone metrics report (Metrics.Capacity, Held, Sold).
//
// Goroutines of a running owner:
//
//	micro handlers ──cmds──▶ loop (decides, under mu) ──open batch──▶ writer (one fenced write at a time)
//	                                                                    │ committed batches
//	                                                        relay ◀─────┴─────▶ snapshotter (shadow state)
//	lease keeper: renews the lease; losing it stops the owner
package owner

import (
	"context"
	crand "crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/services/inventory"
)

// Config tunes an owner.
type Config struct {
	Node     string // this node's name, written into the log
	MaxBatch int    // decisions per log write; default 4096
	// MaxInflight is how many log writes may be in flight at once; default
	// 1: while one write is synced the next batch grows (fewer, larger
	// writes). On two cores, eleven alternating runs of each could not tell
	// one from four apart in throughput or tail latency, within the shared
	// machine's noise; one is what a clustered log allows (see
	// core.Config), so both run alike.
	MaxInflight   int
	QueueLen      int           // commands waiting before "overloaded"; default 32768
	SnapshotEvery int           // minimum decisions between snapshots; default 50000
	SnapshotIdle  time.Duration // snapshot this long after the last decision; default 30s
	WriteTimeout  time.Duration // one log write; default 5s
	StopTimeout   time.Duration // graceful stop; default 5s
	// EventsFlushLag is how long after the EVENTS stream acknowledged an
	// event the log may be purged past it: EVENTS flushes asynchronously, so
	// a crash can lose its last acknowledged messages, which the relay then
	// publishes again from the log. Default 2s.
	EventsFlushLag time.Duration
	// PurgeEvery is how often the log is purged of what the latest
	// snapshot and the relay no longer need; default 2s. A purge of one
	// subject holds the stream's store while it walks the blocks the
	// subject spans: 5-45 ms a call plus some per record, and every log
	// write of the node waits. Twice a second (the snapshotter's tick) it
	// doubled the median latency at half of peak load; every 10 s each
	// purge took up to 100 ms. 2 s was best in 20 s runs (p99 22-25 ms
	// against 38-133 at 0.5 s and 23-39 at 10 s). Recovery starts at the
	// snapshot, so an unpurged log costs only disk.
	PurgeEvery time.Duration
	LeaseTTL   time.Duration // the lease bucket's TTL
	Limits     inventory.Limits
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.MaxBatch == 0 {
		c.MaxBatch = 4096
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 1
	}
	if c.QueueLen == 0 {
		c.QueueLen = 32768
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 50_000
	}
	if c.SnapshotIdle == 0 {
		c.SnapshotIdle = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.EventsFlushLag == 0 {
		c.EventsFlushLag = 2 * time.Second
	}
	if c.PurgeEvery == 0 {
		c.PurgeEvery = 2 * time.Second
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 5 * time.Second
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.Limits == (inventory.Limits{}) {
		c.Limits = inventory.DefaultLimits()
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case c.Node == "":
		return errors.New("owner: node name required")
	case c.MaxBatch < 1 || c.MaxBatch > 65536:
		return errors.New("owner: max batch must be 1-65536")
	case c.MaxInflight < 1 || c.MaxInflight > 64:
		return errors.New("owner: max in-flight writes must be 1-64")
	case c.PurgeEvery < 0:
		return errors.New("owner: purge interval must not be negative")
	case c.QueueLen < 1:
		return errors.New("owner: queue length must be positive")
	case c.Limits.IdempotencyTTL < 24*time.Hour:
		return errors.New("owner: idempotency keys must be kept at least 24h")
	case c.Limits.MinTTL <= 0 || c.Limits.MaxTTL < c.Limits.MinTTL || c.Limits.DefaultTTL < c.Limits.MinTTL || c.Limits.DefaultTTL > c.Limits.MaxTTL:
		return errors.New("owner: hold TTLs must satisfy 0 < min <= default <= max")
	}
	return nil
}

// Deps are what an owner works with.
type Deps struct {
	NC *nats.Conn
	// Connections apart from NC, which carries the partition's requests and
	// answers, so that nothing queues behind another's traffic; nil: NC.
	RelayNC *nats.Conn // domain events
	LogNC   *nats.Conn // log writes and their acknowledgements
	// SnapshotNC carries snapshots, tens of MB at once for a big partition:
	// on NC, answers waited behind the chunks for up to 600 ms.
	SnapshotNC *nats.Conn
	JS         jetstream.JetStream
	Streams    *streams.Set
	Secret     []byte // hold-token key
	Log        *slog.Logger
	Metrics    *Metrics
}

// conn is c, or NC when c is nil.
func (d Deps) conn(c *nats.Conn) *nats.Conn {
	if c == nil {
		return d.NC
	}
	return c
}

// ErrFenced means another owner wrote to the partition's log.
var ErrFenced = errors.New("owner: fenced by a newer owner")

type op uint8

const (
	opHold op = iota
	opGet
	opRelease
	opConfirm
	opCancel
	opAvailability
)

var opNames = [...]string{"hold", "get", "release", "confirm", "cancel", "availability"}

type call struct {
	op      op
	req     micro.Request
	hold    inventory.HoldRequest
	ref     inventory.HoldRef
	confirm inventory.ConfirmRequest
	within  time.Duration // availability: the expiring horizon
	tr      *callTrace    // a sampled request's tracing; nil for others
	// the answer, set by the loop
	data []byte
	err  error
}

type batch struct {
	gen    uint64 // batch generation (idempotency keys of a generation not yet durable are in flight)
	logGen uint64 // the log record's generation, once sent
	ds     []*inventory.Decision
	calls  []*call
	// counts, when not nil, are the live state's zone counts once the
	// batch's decisions were made, for the snapshotter to check its shadow
	// against (Owner.wantCheck).
	counts []inventory.ZoneCount
}

type committed struct {
	seq    uint64 // log sequence
	gen    uint64 // record generation within the epoch
	ds     []*inventory.Decision
	counts []inventory.ZoneCount // the batch's counts, for the snapshotter
}

// Owner serves one partition. Create it with Run.
type Owner struct {
	cfg    Config
	deps   Deps
	key    string
	layout inventory.Layout
	events *inventory.Events // domain events of decisions, for the relay
	lease  *lease.Lease
	log    *slog.Logger

	logSubj, evSubj, fenceSubj string
	evSource                   string // CloudEvents source of its events
	fenceSeq                   uint64 // sequence of this owner's fence record
	logJS                      jetstream.JetStream
	snaps                      jetstream.ObjectStore
	skipped                    map[uint64]bool // log records after a gap: never acknowledged, never applied
	traces                     tracedRecords   // sampled decisions, from the writer to the relay

	mu       sync.Mutex
	full     *sync.Cond
	part     *inventory.Partition // under mu
	open     *batch               // under mu
	gen      uint64               // under mu
	stopping bool                 // under mu

	durable    atomic.Uint64 // last durable batch generation
	validUntil atomic.Int64  // lease validity, unix nanos
	relayedSeq atomic.Uint64 // every event of records up to here is on EVENTS
	lastSeq    uint64        // writer only: the log subject's last sequence
	logGen     uint64        // writer only: generation of the last record sent in this epoch

	// wantCheck asks for the live zone counts with the next batch that has
	// decisions: the snapshotter sets it on its tick, swap takes the counts
	// (O(zones), at most once a tick) and clears it.
	wantCheck atomic.Bool

	cmds     chan *call
	kick     chan struct{}
	relayCh  chan committed
	shadowCh chan committed
	rng      *rand.ChaCha8          // loop only
	tokens   *inventory.TokenSigner // loop only

	finish   chan struct{} // closed when the loop has stopped: the writer commits what is left
	failOnce sync.Once
	failed   chan struct{}
	failErr  error
}

// Run recovers the partition, serves it until ctx is done or the owner
// fails (lease lost, log write failed or fenced), and stops in order. The
// lease must be held; Run releases it when it stops.
func Run(ctx context.Context, cfg Config, deps Deps, key string, layout inventory.Layout, l *lease.Lease) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = l.Release(rctx)
	}()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	o := &Owner{
		cfg: cfg, deps: deps, key: key, layout: layout, lease: l,
		events:  inventory.NewEvents(key, layout),
		log:     deps.Log.With("partition", key, "epoch", l.Epoch()),
		logSubj: streams.InventoryLogSubject(key), evSubj: jsnames.InventoryEventSubject(key), evSource: "/inventory/" + key,
		fenceSubj: streams.InventoryFenceSubject(key), skipped: map[uint64]bool{},
		cmds: make(chan *call, cfg.QueueLen), kick: make(chan struct{}, 1),
		relayCh: make(chan committed, committedBacklog), shadowCh: make(chan committed, committedBacklog),
		rng: rand.NewChaCha8(seed), failed: make(chan struct{}), finish: make(chan struct{}),
		tokens: inventory.NewTokenSigner(deps.Secret),
	}
	o.full = sync.NewCond(&o.mu)
	var err error
	o.logJS, err = jetstream.New(deps.conn(deps.LogNC), jetstream.WithPublishAsyncTimeout(cfg.WriteTimeout),
		jetstream.WithPublishAsyncMaxPending(4*cfg.MaxInflight))
	if err != nil {
		return err
	}
	o.validUntil.Store(l.ValidUntil().UnixNano())
	if o.snaps, err = o.snapshotStore(ctx); err != nil {
		return fmt.Errorf("owner %s: snapshot store: %w", key, err)
	}

	start := time.Now()
	rec, err := o.recover(ctx)
	if err != nil {
		return fmt.Errorf("owner %s: recover: %w", key, err)
	}
	o.log.Info("partition owned", "recovered_in", time.Since(start).Round(time.Millisecond),
		"snapshot_seq", rec.snapSeq, "replayed_records", rec.replayed, "log_seq", o.lastSeq,
		"previous_owner", rec.previous)
	o.deps.Metrics.Acquired.WithLabelValues(previousLabel(rec.previous, cfg.Node)).Inc()

	var wg sync.WaitGroup
	stopLease := make(chan struct{})
	stopLoop := make(chan struct{})
	run := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	writerDone := make(chan struct{})
	relayDone := make(chan struct{})
	shadowDone := make(chan struct{})
	startSeq := o.lastSeq // read before the writer may change it
	go func() { defer close(writerDone); o.writer() }()
	go func() { defer close(relayDone); o.relay(rec.backlog, rec.relayFrom) }()
	go func() {
		defer close(shadowDone)
		o.snapshotter(rec.shadow, startSeq, rec.shadowGen)
	}()
	run(func() { o.keepLease(stopLease) })
	run(func() { o.loop(stopLoop) })

	svc, err := o.register()
	if err != nil {
		o.fail(err)
	}
	o.deps.Metrics.Owned.Inc()
	defer o.deps.Metrics.Owned.Dec()

	graceful := false
	select {
	case <-ctx.Done():
		graceful = true
	case <-o.failed:
	}
	// Stop in order: no new requests; the loop stops deciding; the writer
	// commits (graceful) or fails what is decided; queued commands are told to
	// retry; the relay and snapshotter finish; the lease goes last (deferred).
	if svc != nil {
		_ = svc.Stop()
	}
	o.mu.Lock()
	o.stopping = true
	o.full.Broadcast()
	o.mu.Unlock()
	close(stopLoop)
	close(stopLease)
	wg.Wait()
	close(o.finish)
	<-writerDone
	o.drainQueue()
	close(o.relayCh)
	close(o.shadowCh)
	deadline := time.NewTimer(o.cfg.StopTimeout)
	defer deadline.Stop()
	for _, done := range []chan struct{}{relayDone, shadowDone} {
		select {
		case <-done:
		case <-deadline.C:
			o.log.Warn("owner stop deadline passed; leaving relay or snapshot unfinished")
		}
	}
	if graceful {
		o.log.Info("partition released", "log_seq", o.lastSeq)
		return nil
	}
	o.log.Warn("partition owner stopped", "err", o.failErr)
	return o.failErr
}

// previousLabel is the Acquired label of a partition whose log was last
// written by owner previous ("" when none), taken by node.
func previousLabel(previous, node string) string {
	switch previous {
	case "":
		return previousNone
	case node:
		return previousThisNode
	default:
		return previousOtherNode
	}
}

// snapshotStore is the snapshot store on the snapshots' own connection.
func (o *Owner) snapshotStore(ctx context.Context) (jetstream.ObjectStore, error) {
	if o.deps.SnapshotNC == nil {
		return o.deps.Streams.Snapshots, nil // already bound to NC
	}
	js, err := jetstream.New(o.deps.SnapshotNC)
	if err != nil {
		return nil, err
	}
	return js.ObjectStore(ctx, streams.SnapshotStore)
}

// fail stops the owner for err; the first cause wins.
func (o *Owner) fail(err error) {
	o.failOnce.Do(func() {
		o.failErr = err
		close(o.failed)
	})
}

func (o *Owner) isFailed() bool {
	select {
	case <-o.failed:
		return true
	default:
		return false
	}
}

func (o *Owner) signal() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// newID makes a hold id suffix: 80 random bits, base32.
func (o *Owner) newID() string {
	var b [10]byte
	_, _ = o.rng.Read(b[:])
	return idEncoding.EncodeToString(b[:])
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// keepLease renews the lease every third of its TTL. Losing it, or failing
// to renew before it runs out, stops the owner.
func (o *Owner) keepLease(stop <-chan struct{}) {
	every := o.cfg.LeaseTTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-o.failed:
			return
		case <-t.C:
		}
		// A slow renewal is not a lost lease: allow it up to half the TTL;
		// the owner stops only once the lease may really have run out.
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.LeaseTTL/2)
		err := o.lease.Renew(ctx)
		cancel()
		switch {
		case errors.Is(err, lease.ErrLost):
			o.fail(err)
			return
		case err != nil:
			o.log.Warn("lease renewal failed", "err", err)
			if time.Now().After(o.lease.ValidUntil()) {
				o.fail(fmt.Errorf("owner: lease expired: %w", err))
				return
			}
		default:
			o.validUntil.Store(o.lease.ValidUntil().UnixNano())
		}
	}
}

// leaseValid reports whether the lease is surely still ours.
func (o *Owner) leaseValid() bool { return time.Now().UnixNano() < o.validUntil.Load() }

// drainQueue tells every command still queued to try again.
func (o *Owner) drainQueue() {
	for {
		select {
		case c := <-o.cmds:
			o.deps.Metrics.Queue.Dec()
			o.respond(c, errs.E("inventory."+opNames[c.op], errs.Unavailable, "the partition is changing owner; try again"))
		default:
			return
		}
	}
}
