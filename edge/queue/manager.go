package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

// Config configures the edge's waiting rooms.
type Config struct {
	// Edge is this edge's name in reports and decisions (the leaf server
	// name). Required.
	Edge string
	// UpdateEvery is the longest time between two pushes to a socket.
	// Default 5s.
	UpdateEvery time.Duration
	// MinPushInterval is the shortest time between two rounds of pushes
	// caused by admissions (which change everyone's position every tick).
	// Sold out, resume and the draw are pushed at once. Default 1s.
	MinPushInterval time.Duration
	// ReportEvery is how often the edge reports its queue lengths to the
	// core. Default 1s.
	ReportEvery time.Duration
	// WriteTimeout bounds one push to one socket; a socket that cannot
	// take a message in this time is closed. Default 5s.
	WriteTimeout time.Duration
	// RequestTimeout bounds one request to the core. Default 5s.
	RequestTimeout time.Duration
	// TokenRefreshBefore: a cached admission token is replaced this long
	// before it expires. Default 1m.
	TokenRefreshBefore time.Duration
	// RateHalfLife is the half-life of the admission rate behind wait
	// estimates. Default 30s.
	RateHalfLife time.Duration
	// MaxWait caps a wait estimate. Default 12h.
	MaxWait time.Duration
	// MaxSockets bounds the open WebSockets of this edge; an upgrade
	// beyond it is refused with 503. Default 1,000,000.
	MaxSockets int
	// Capacity is how many tickets a room's queue allocates room for up
	// front. Default 0.
	Capacity int
	// Readers is the number of epoll goroutines reading the sockets.
	// Default 1 per 4 CPUs, at least 1.
	Readers int
	// Reader chooses how sockets are read: "epoll" (the default on Linux:
	// no goroutine per socket) or "goroutine" (one blocked goroutine per
	// socket; the only choice elsewhere).
	Reader string
	// Pushers is the broadcaster's parallelism. Default 4 × GOMAXPROCS.
	Pushers int
	// QueueOn reports whether an event's waiting room is on (the
	// catalog's Event.Queue). Nil: every event the core has a queue
	// config for.
	QueueOn func(eventID string) bool
	// AllowOrigin decides whether a WebSocket upgrade's Origin may open
	// the room. Nil: only the request's own host.
	AllowOrigin func(origin string) bool
	// Events receives the domain events ticketing.queue.joined (a new
	// ticket) and ticketing.queue.admitted. Nil: none are written.
	Events EventSink
	// JournalDir, when set, keeps a journal of every room's queue in
	// <JournalDir>/<event>.journal, so that an edge restarted with the
	// same directory rebuilds each line exactly (see journal.go and the
	// package doc). Empty: the queue is in memory only.
	JournalDir string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.UpdateEvery, 5*time.Second)
	def(&c.MinPushInterval, time.Second)
	def(&c.ReportEvery, time.Second)
	def(&c.WriteTimeout, 5*time.Second)
	def(&c.RequestTimeout, 5*time.Second)
	def(&c.TokenRefreshBefore, time.Minute)
	def(&c.RateHalfLife, 30*time.Second)
	def(&c.MaxWait, 12*time.Hour)
	if c.MaxSockets == 0 {
		c.MaxSockets = 1_000_000
	}
	if c.Readers == 0 {
		c.Readers = max(1, runtime.GOMAXPROCS(0)/4)
	}
	if c.Reader == "" {
		c.Reader = "epoll"
	}
	if c.Pushers == 0 {
		c.Pushers = defaultPushers()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "queue.config"
	switch {
	case c.Edge == "":
		return errs.E(op, errs.Invalid, "the edge needs a name")
	case c.UpdateEvery < 100*time.Millisecond || c.MinPushInterval < 0 || c.MinPushInterval > c.UpdateEvery:
		return errs.E(op, errs.Invalid, "update every must be at least 100ms and min push interval within [0, update every]")
	case c.ReportEvery < 10*time.Millisecond, c.WriteTimeout <= 0, c.RequestTimeout <= 0:
		return errs.E(op, errs.Invalid, "report every, write timeout and request timeout must be positive")
	case c.TokenRefreshBefore < 0, c.MaxWait < time.Second:
		return errs.E(op, errs.Invalid, "token refresh must not be negative and max wait at least 1s")
	case c.MaxSockets < 1, c.Capacity < 0, c.Readers < 1 || c.Readers > 64, c.Pushers < 1:
		return errs.E(op, errs.Invalid, "max sockets, readers (1-64) and pushers must be positive, capacity not negative")
	case c.Reader != "epoll" && c.Reader != "goroutine":
		return errs.Errorf(op, errs.Invalid, "reader %q is neither epoll nor goroutine", c.Reader)
	}
	return nil
}

// Manager holds the edge's waiting rooms, one per queue-on event, opened on
// first use. Safe for concurrent use.
type Manager struct {
	cfg     Config
	core    Core
	adm     Admission
	log     *slog.Logger
	metrics *metrics
	reader  reader

	mu      sync.Mutex
	rooms   map[string]*roomEntry
	sockets atomic.Int64
	closing atomic.Bool

	shutOnce sync.Once
	shutErr  error

	jwksMu sync.Mutex
	jwks   []byte
	jwksAt time.Time
}

type roomEntry struct {
	ready chan struct{}
	room  *Room
	err   error
}

// New returns a manager. Its metrics are registered with reg (may be nil).
func New(cfg Config, core Core, adm Admission, log *slog.Logger, reg prometheus.Registerer) (*Manager, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.JournalDir != "" {
		if err := os.MkdirAll(cfg.JournalDir, 0o700); err != nil {
			return nil, fmt.Errorf("queue: queue journal directory: %w", err)
		}
	}
	m := &Manager{cfg: cfg, core: core, adm: adm, log: log.With("component", "queue"), rooms: map[string]*roomEntry{}}
	m.metrics = newMetrics(reg)
	r, err := newReader(m, cfg.Readers)
	if err != nil {
		return nil, fmt.Errorf("queue: socket reader: %w", err)
	}
	m.reader = r
	return m, nil
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// QueueOn reports whether the event's waiting room is on.
func (m *Manager) QueueOn(eventID string) bool {
	if m.cfg.QueueOn != nil {
		return m.cfg.QueueOn(eventID)
	}
	m.mu.Lock()
	e := m.rooms[eventID]
	m.mu.Unlock()
	if e == nil {
		return false
	}
	<-e.ready
	return e.err == nil
}

// Room returns the event's room, opening it (a request to the core) on
// first use. errs.NotFound for an event whose queue is off.
func (m *Manager) Room(ctx context.Context, eventID string) (*Room, error) {
	if m.cfg.QueueOn != nil && !m.cfg.QueueOn(eventID) {
		return nil, errs.Errorf("queue.room", errs.NotFound, "event %q has no waiting room", eventID)
	}
	if m.closing.Load() {
		return nil, errs.E("queue.room", errs.Unavailable, "the edge is shutting down")
	}
	m.mu.Lock()
	e := m.rooms[eventID]
	if e == nil {
		e = &roomEntry{ready: make(chan struct{})}
		m.rooms[eventID] = e
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
		e.room, e.err = m.openRoom(ctx, eventID)
		cancel()
		if e.err != nil {
			m.mu.Lock()
			delete(m.rooms, eventID) // the next request tries again
			m.mu.Unlock()
		}
		close(e.ready)
	} else {
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, errs.E("queue.room", errs.Unavailable, ctx.Err())
		}
	}
	return e.room, e.err
}

// TicketFor is the session's ticket in the event's queue, for the hold
// endpoint to bind an admission token to; false when the event has no
// waiting room (or the core cannot be asked for its ticket key).
func (m *Manager) TicketFor(eventID, session string) (queue.TicketID, bool) {
	r, err := m.Room(context.Background(), eventID)
	if err != nil {
		return queue.TicketID{}, false
	}
	return r.q.TicketFor(session), true
}

// Join puts the session in the event's queue (idempotent: a rejoin keeps
// the place) and returns its status; created is true for a new ticket.
func (m *Manager) Join(ctx context.Context, eventID, session string) (s Status, created bool, err error) {
	r, err := m.Room(ctx, eventID)
	if err != nil {
		return Status{}, false, err
	}
	st, created, err := r.join(session, m.now())
	if err != nil {
		return Status{}, false, err
	}
	return r.statusOf(ctx, st), created, nil
}

// Joined reports whether the session has a ticket in the event's open
// room (without opening one).
func (m *Manager) Joined(eventID, session string) bool {
	m.mu.Lock()
	e := m.rooms[eventID]
	m.mu.Unlock()
	if e == nil {
		return false
	}
	select {
	case <-e.ready:
	default:
		return false
	}
	if e.room == nil {
		return false
	}
	_, err := e.room.q.SessionStatus(session)
	return err == nil
}

// Status is the session's status; errs.NotFound if it has not joined.
func (m *Manager) Status(ctx context.Context, eventID, session string) (Status, error) {
	r, err := m.Room(ctx, eventID)
	if err != nil {
		return Status{}, err
	}
	st, err := r.q.SessionStatus(session)
	if err != nil {
		return Status{}, err
	}
	return r.statusOf(ctx, st), nil
}

// Draw is a page of the event's public draw record (limit tickets from
// offset; 0 for the core's default and maximum), from the core.
func (m *Manager) Draw(ctx context.Context, eventID string, offset, limit int) (DrawRecord, error) {
	if m.cfg.QueueOn != nil && !m.cfg.QueueOn(eventID) {
		return DrawRecord{}, errs.Errorf("queue.draw", errs.NotFound, "event %q has no waiting room", eventID)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	r := DrawRequest{EventID: eventID, Offset: offset, Limit: limit}
	if err := r.Normalize(); err != nil {
		return DrawRecord{}, err
	}
	return m.core.DrawPage(ctx, r)
}

// jwksTTL is how long the edge serves the admission keys it fetched.
const jwksTTL = time.Minute

// JWKS is the admission public key set as the core serves it, cached for a
// minute (keys rotate daily and retired keys verify for an hour after).
func (m *Manager) JWKS(ctx context.Context) ([]byte, error) {
	m.jwksMu.Lock()
	defer m.jwksMu.Unlock()
	if m.jwks != nil && time.Since(m.jwksAt) < jwksTTL {
		return m.jwks, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	raw, _, err := m.adm.JWKS(ctx)
	if err != nil {
		if m.jwks != nil {
			return m.jwks, nil // stale keys beat none
		}
		return nil, err
	}
	m.jwks, m.jwksAt = raw, time.Now()
	return raw, nil
}

// Upgrade answers a WebSocket handshake on the event's room: it joins the
// session (idempotent), writes 101 Switching Protocols and hands the socket
// to the room, which pushes the status at once and then on every change.
// The caller has set the session cookie on ctx's response and applied the
// join limits. The fasthttp server must have KeepHijackedConns set: the
// socket outlives the handler (see the package doc). Errors come before
// anything is written: errs.Invalid/Forbidden for a bad handshake,
// errs.NotFound for a queue-off event, errs.Unavailable when full or
// shutting down.
func (m *Manager) Upgrade(ctx *fasthttp.RequestCtx, eventID, session string) error {
	const op = "queue.upgrade"
	accept, err := Handshake(&ctx.Request.Header, m.cfg.AllowOrigin)
	if err != nil {
		return err
	}
	if m.closing.Load() {
		return errs.E(op, errs.Unavailable, "the edge is shutting down")
	}
	if m.sockets.Load() >= int64(m.cfg.MaxSockets) {
		return errs.E(op, errs.Unavailable, "this edge holds as many waiting-room sockets as it may").WithReason("sockets_full")
	}
	// Not the request's context: fasthttp's RequestCtx as a context reads
	// the server's done channel, which its Shutdown writes (a data race
	// under -race); Room bounds the wait by RequestTimeout anyway.
	r, err := m.Room(context.Background(), eventID)
	if err != nil {
		return err
	}
	st, _, err := r.join(session, m.now())
	if err != nil {
		return err
	}
	ticket := st.Ticket
	ctx.Response.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set(fasthttp.HeaderUpgrade, "websocket")
	ctx.Response.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	ctx.Response.Header.Set("Sec-WebSocket-Accept", accept)
	ctx.Response.Header.SetNoDefaultContentType(true)
	ctx.Response.ResetBody()
	ctx.Hijack(func(nc net.Conn) {
		// The handler returns at once, so fasthttp frees the request's
		// context and read buffer; the raw socket stays open
		// (KeepHijackedConns) and belongs to the room from here on.
		if u, ok := nc.(interface{ UnsafeConn() net.Conn }); ok {
			nc = u.UnsafeConn()
		}
		m.attach(r, nc, ticket)
	})
	return nil
}

// attach makes a hijacked socket one of the room's connections.
func (m *Manager) attach(r *Room, nc net.Conn, ticket queue.TicketID) {
	c := &conn{nc: nc, room: r, ticket: ticket, slot: -1}
	if m.closing.Load() {
		_ = c.write(opClose, closePayload(CloseGoingAway), time.Second)
		_ = nc.Close()
		return
	}
	m.sockets.Add(1)
	m.metrics.sockets.Inc()
	r.addConn(c)
	if err := m.reader.add(c); err != nil {
		m.log.Warn("cannot watch a waiting-room socket", "err", err)
		m.closeConn(c, CloseGoingAway)
		return
	}
	buf := framePool.Get().(*[]byte)
	*buf = r.push(c, (*buf)[:0])[:0]
	framePool.Put(buf)
}

// closeConn closes a socket once: a close frame with code (none when 0),
// out of the reader and the room, then the socket itself.
func (m *Manager) closeConn(c *conn, code int) {
	c.wmu.Lock()
	if c.closed.Load() {
		c.wmu.Unlock()
		return
	}
	if code != 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.nc.Write(appendFrame(nil, opClose, closePayload(code)))
	}
	c.closed.Store(true)
	c.wmu.Unlock()
	if c.rc != nil {
		m.reader.remove(c)
	}
	c.room.removeConn(c)
	_ = c.nc.Close()
	m.sockets.Add(-1)
	m.metrics.sockets.Dec()
}

// Sockets is the number of waiting-room sockets open.
func (m *Manager) Sockets() int { return int(m.sockets.Load()) }

// Shutdown closes every socket (close code 1001, going away), in parallel,
// then stops the rooms and the readers. New upgrades are refused from the
// start. Calling it again does nothing.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shutOnce.Do(func() { m.shutErr = m.shutdown(ctx) })
	return m.shutErr
}

func (m *Manager) shutdown(ctx context.Context) error {
	m.closing.Store(true)
	m.mu.Lock()
	var rooms []*Room
	for _, e := range m.rooms {
		select {
		case <-e.ready:
			if e.room != nil {
				rooms = append(rooms, e.room)
			}
		default:
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range rooms {
		conns := r.conns()
		workers := min(m.cfg.Pushers, max(1, len(conns)))
		var next atomic.Int64
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(conns) || ctx.Err() != nil {
						return
					}
					m.closeConn(conns[i], CloseGoingAway)
				}
			}()
		}
	}
	wg.Wait()
	for _, r := range rooms {
		r.close()
	}
	m.reader.close()
	if err := ctx.Err(); err != nil {
		return errors.Join(errors.New("queue: shutdown deadline passed before every socket was closed"), err)
	}
	return nil
}
