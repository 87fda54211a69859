package queue

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/queue"
)

// nShards splits a room's connection set so that joins, leaves and the
// broadcaster's walk contend on 1/nShards of it.
const nShards = 64

// Room is one queue-on event's waiting room at this edge: its queue, the
// core's decisions applied to it, its open sockets and the tokens of its
// admitted users.
type Room struct {
	m          *Manager
	id         string
	q          *queue.Queue
	onSale     time.Time
	commitment string

	view atomic.Pointer[view]

	mu        sync.Mutex // decision state
	lastSeq   uint64
	lastAt    time.Time // of the last decision applied (the core's clock)
	est       *queue.RateEstimator
	drawDone  bool // the seed was applied
	preSent   bool // the pre-queue went to the core (or is on its way)
	stopDecis func() error

	// The journal (nil without Config.JournalDir). qmu orders the queue's
	// changes (new joins, the draw, admissions) with their records, so a
	// replay applies them in the order they happened.
	jl            *journal
	qmu           sync.Mutex
	drawJournaled bool

	jmu   sync.Mutex
	joins map[queue.TicketID]joinRecord // waiting tickets that joined here, for the wait histograms

	tokens tokenCache
	shards [nShards]connShard

	kick   chan struct{}
	urgent atomic.Bool
	done   chan struct{}
	wg     sync.WaitGroup
}

type joinRecord struct {
	at int64 // unix nanoseconds
}

type connShard struct {
	mu    sync.Mutex
	conns []*conn
}

func (m *Manager) openRoom(ctx context.Context, eventID string) (*Room, error) {
	cc, err := m.core.Config(ctx, eventID)
	if err != nil {
		return nil, err
	}
	q, err := queue.New(queue.Config{EventID: eventID, OnSale: cc.OnSaleAt, TicketKey: cc.TicketKey,
		Commitment: cc.Commitment, Capacity: m.cfg.Capacity})
	if err != nil {
		return nil, errs.E("queue.open", errs.Unavailable, "the core sent an unusable queue config", err)
	}
	est, err := queue.NewRateEstimator(queue.RateConfig{HalfLife: m.cfg.RateHalfLife})
	if err != nil {
		return nil, err
	}
	r := &Room{m: m, id: eventID, q: q, onSale: cc.OnSaleAt, commitment: cc.Commitment, est: est,
		joins: map[queue.TicketID]joinRecord{}, kick: make(chan struct{}, 1), done: make(chan struct{})}
	r.tokens.refreshBefore = m.cfg.TokenRefreshBefore
	r.tokens.retryAfter = time.Second
	r.view.Store(&view{})
	var replayedSeed []byte
	if m.cfg.JournalDir != "" {
		r.jl, err = openJournal(journalPath(m.cfg.JournalDir, eventID), journalDigest(cc.TicketKey, cc.OnSaleAt, cc.Commitment),
			m.log.With("event", eventID), func(jr journalRecord) error { return r.replay(jr, &replayedSeed) })
		if err != nil {
			// Unreadable or inconsistent: a fresh queue without a journal
			// rather than no room.
			m.log.Error("queue journal: the room goes on without it", "event", eventID, "err", err)
			if r.q, err = queue.New(queue.Config{EventID: eventID, OnSale: cc.OnSaleAt, TicketKey: cc.TicketKey,
				Commitment: cc.Commitment, Capacity: m.cfg.Capacity}); err != nil {
				return nil, errs.E("queue.open", errs.Unavailable, err)
			}
			q = r.q
			r.joins = map[queue.TicketID]joinRecord{}
			r.jl, replayedSeed = nil, nil
		}
	}
	if replayedSeed != nil {
		r.drawJournaled = true
		r.applySeed(replayedSeed) // a no-op on the queue; resends the pre-queue (the core takes repeats)
	}
	if cc.SoldOut {
		q.MarkSoldOut()
	}
	if len(cc.Seed) > 0 {
		r.applySeed(cc.Seed)
	}
	r.stopDecis, err = m.core.SubscribeDecisions(eventID, r.apply)
	if err != nil {
		r.stopDecis = nil
		r.close() // the next open replays the journal again
		return nil, errs.E("queue.open", errs.Unavailable, "cannot follow the core's decisions", err)
	}
	r.wg.Add(2)
	go r.reportLoop()
	go r.pushLoop()
	m.log.Info("waiting room open", "event", eventID, "on_sale_at", cc.OnSaleAt, "commitment", cc.Commitment)
	return r, nil
}

// EventID is the room's event.
func (r *Room) EventID() string { return r.id }

// Queue is the room's queue.
func (r *Room) Queue() *queue.Queue { return r.q }

// apply applies one decision of the core: the draw when the seed appears,
// sold out and resume, and this edge's share of admissions.
func (r *Room) apply(d Decision) {
	now := r.m.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if d.EventID != r.id || (d.Seq != 0 && d.Seq <= r.lastSeq) {
		return
	}
	r.lastSeq = d.Seq
	next := r.nextDecision(d)
	r.m.metrics.decisions.WithLabelValues(r.id).Inc()
	urgent := false
	if len(d.Seed) > 0 && !r.drawDone {
		urgent = r.applySeedLocked(d.Seed)
	}
	st := r.q.Stats()
	switch {
	case d.SoldOut && !st.SoldOut:
		r.q.MarkSoldOut()
		urgent = true
	case !d.SoldOut && st.SoldOut:
		r.q.Resume()
		urgent = true
	}
	mine, listed := share(&d, r.m.cfg.Edge)
	admitted := 0
	if mine.Admit > 0 && !d.SoldOut {
		r.qmu.Lock()
		ts, err := r.q.Admit(mine.Admit, now)
		if r.jl != nil && len(ts) > 0 {
			r.jl.admitted(len(ts), now)
		}
		r.qmu.Unlock()
		if err != nil {
			r.m.log.Debug("admit", "event", r.id, "err", err)
		}
		admitted = len(ts)
		r.admitted(ts, now)
	}
	if !now.Before(r.onSale) && r.drawDone {
		r.est.Observe(admitted, now)
	}
	r.view.Store(&view{rate: r.est.Rate(), reachable: mine.Reachable, known: listed, spare: d.Spare, next: next})
	r.m.metrics.rate.WithLabelValues(r.id).Set(r.est.Rate())
	r.notify(urgent)
}

// applySeed applies the draw's seed (from the config, before the room is
// shared).
func (r *Room) applySeed(seed []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applySeedLocked(seed)
}

func (r *Room) applySeedLocked(seed []byte) bool {
	r.qmu.Lock()
	err := r.q.ApplyDraw(seed)
	if err == nil && r.jl != nil && !r.drawJournaled {
		r.jl.draw(seed)
		r.drawJournaled = true
	}
	r.qmu.Unlock()
	if err != nil {
		r.m.log.Error("the core's draw seed does not apply", "event", r.id, "err", err)
		return false
	}
	r.drawDone = true
	if !r.preSent {
		r.preSent = true
		r.wg.Add(1)
		go r.sendPreQueue()
	}
	return true
}

// sendPreQueue sends this edge's pre-queue to the core in chunks, retrying
// until the core has it or the room closes.
func (r *Room) sendPreQueue() {
	defer r.wg.Done()
	tickets := r.q.ClosePreQueue()
	for i := 0; ; i += MaxPreQueueChunk {
		end := min(i+MaxPreQueueChunk, len(tickets))
		chunk := PreQueueChunk{EventID: r.id, Edge: r.m.cfg.Edge, Tickets: tickets[i:end], Last: end == len(tickets)}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), r.m.cfg.RequestTimeout)
			err := r.m.core.PreQueue(ctx, chunk)
			cancel()
			if err == nil {
				break
			}
			r.m.log.Warn("sending the pre-queue to the core", "event", r.id, "err", err)
			select {
			case <-r.done:
				return
			case <-time.After(time.Second):
			}
		}
		r.m.metrics.prequeueSent.WithLabelValues(r.id).Add(float64(len(chunk.Tickets)))
		if chunk.Last {
			return
		}
	}
}

// admitted records the wait of tickets just admitted.
func (r *Room) admitted(ts []queue.TicketID, now time.Time) {
	if len(ts) == 0 {
		return
	}
	r.m.metrics.admitted.WithLabelValues(r.id).Add(float64(len(ts)))
	hist := r.m.metrics.actual.WithLabelValues(r.id)
	start := r.onSale.UnixNano()
	r.jmu.Lock()
	for _, t := range ts {
		if j, ok := r.joins[t]; ok {
			delete(r.joins, t)
			hist.Observe(float64(now.UnixNano()-max(j.at, start)) / 1e9)
		}
	}
	r.jmu.Unlock()
	if ev := r.m.cfg.Events; ev != nil {
		for _, t := range ts {
			ev.QueueEvent(TypeQueueAdmitted, r.id, t, now)
		}
	}
}

// join puts the session in the queue and reports whether it is new here.
func (r *Room) join(session string, now time.Time) (queue.Status, bool, error) {
	t := r.q.TicketFor(session)
	if r.jl != nil {
		r.qmu.Lock()
	}
	_, err := r.q.Status(t)
	created := errs.KindOf(err) == errs.NotFound
	st, err := r.q.Join(session, now)
	if r.jl != nil {
		if err == nil && created {
			r.jl.join(t, now, st.Position == 0) // a new ticket has no place only in the pre-queue
		}
		r.qmu.Unlock()
	}
	if err != nil {
		return st, false, err
	}
	if created {
		r.m.metrics.joins.WithLabelValues(r.id).Inc()
		r.jmu.Lock()
		r.joins[t] = joinRecord{at: now.UnixNano()}
		r.jmu.Unlock()
		if ev := r.m.cfg.Events; ev != nil {
			ev.QueueEvent(TypeQueueJoined, r.id, t, now)
		}
		if st.Position > 0 {
			if w, ok := r.estimate(st.Position); ok {
				r.m.metrics.estimate.WithLabelValues(r.id).Observe(w.Seconds())
			}
		}
	}
	return st, created, nil
}

// nextDecision is how soon a user who joins now is counted in a decision:
// this edge's next report, then the core's next decision (its interval
// measured between the last two decisions, on the core's clock). Called
// with r.mu held, before lastAt moves to d.
func (r *Room) nextDecision(d Decision) time.Duration {
	tick := time.Second
	if !r.lastAt.IsZero() && d.At.After(r.lastAt) {
		tick = min(d.At.Sub(r.lastAt), time.Minute)
	}
	if d.At.After(r.lastAt) {
		r.lastAt = d.At
	}
	return r.m.cfg.ReportEvery + tick
}

// estimate is the estimated wait of a position: when the last decision
// had room to spare for this many, the time until the line is in the next
// decision; otherwise the position over the view's rate.
func (r *Room) estimate(position int) (time.Duration, bool) {
	v := r.view.Load()
	if position >= 1 && position <= v.spare {
		return v.next, true
	}
	if position < 1 || v.rate <= 0 {
		return 0, false
	}
	secs := float64(position) / v.rate
	if maxWait := r.m.cfg.MaxWait.Seconds(); secs > maxWait {
		secs = maxWait
	}
	return time.Duration(secs * float64(time.Second)), true
}

// statusOf builds the status of a ticket, fetching its token when it is
// admitted.
func (r *Room) statusOf(ctx context.Context, st queue.Status) Status {
	var tok token
	if st.State == queue.Admitted {
		tok, _ = r.token(ctx, st.Ticket)
	}
	return r.status(st, r.view.Load(), r.estimate, tok)
}

// token is the admitted ticket's token, from the cache or the core.
func (r *Room) token(ctx context.Context, t queue.TicketID) (token, error) {
	tok, fetched, err := r.tokens.get(ctx, t, r.m.now(), func(ctx context.Context) (token, error) {
		ctx, cancel := context.WithTimeout(ctx, r.m.cfg.RequestTimeout)
		defer cancel()
		v, _, exp, err := r.m.adm.Issue(ctx, r.id, t.String())
		return token{value: v, expires: exp}, err
	})
	if fetched {
		outcome := "ok"
		if err != nil {
			outcome = "error"
			r.m.log.Warn("admission token", "event", r.id, "err", err)
		}
		r.m.metrics.tokens.WithLabelValues(outcome).Inc()
	}
	return tok, err
}

// notify asks the broadcaster for a round; urgent rounds (sold out, resume,
// the draw) skip the wait of MinPushInterval.
func (r *Room) notify(urgent bool) {
	if urgent {
		r.urgent.Store(true)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// reportLoop publishes this edge's queue lengths every ReportEvery and
// keeps the gauges and the token cache tidy.
func (r *Room) reportLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.m.cfg.ReportEvery)
	defer t.Stop()
	for {
		r.report()
		select {
		case <-r.done:
			return
		case <-t.C:
		}
	}
}

func (r *Room) report() {
	now := r.m.now()
	st := r.q.Stats()
	pre := 0
	if !st.Drawn {
		pre = st.PreQueue
	}
	if err := r.m.core.Report(Report{Edge: r.m.cfg.Edge, EventID: r.id, Waiting: st.Waiting, PreQueue: pre,
		Admitted: st.Admitted, Joined: st.Tickets, At: now}); err != nil {
		r.m.log.Debug("queue report", "event", r.id, "err", err)
	}
	r.m.metrics.waiting.WithLabelValues(r.id).Set(float64(st.Waiting))
	admitting := 0.0
	if st.Drawn && !st.SoldOut {
		admitting = 1
	}
	r.m.metrics.admitting.WithLabelValues(r.id).Set(admitting)
	r.tokens.sweep(now)
}

// pushLoop is the room's broadcaster: a round of pushes to every socket
// when the queue's version moved (at most every MinPushInterval, at once
// for urgent changes) and at least every UpdateEvery.
func (r *Room) pushLoop() {
	defer r.wg.Done()
	every := time.NewTimer(r.m.cfg.UpdateEvery)
	defer every.Stop()
	var last time.Time
	var lastVersion uint64
	for {
		select {
		case <-r.done:
			return
		case <-every.C:
		case <-r.kick:
			if v := r.q.Version(); v == lastVersion && !r.urgent.Load() {
				continue
			}
			if wait := r.m.cfg.MinPushInterval - time.Since(last); wait > 0 && !r.urgent.Load() {
				t := time.NewTimer(wait)
				select {
				case <-r.done:
					t.Stop()
					return
				case <-t.C:
				case <-r.kick: // an urgent change while waiting ends the wait too
					t.Stop()
				}
			}
		}
		r.urgent.Store(false)
		lastVersion = r.q.Version()
		last = time.Now()
		r.pushAll()
		every.Reset(r.m.cfg.UpdateEvery)
	}
}

// pushAll pushes the current status to every socket of the room, from
// Pushers goroutines that take the shards in turn and write with a
// deadline; a socket whose write fails is closed.
func (r *Room) pushAll() {
	start := time.Now()
	var next atomic.Int32
	var wg sync.WaitGroup
	workers := min(r.m.cfg.Pushers, nShards)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var list []*conn
			buf := make([]byte, 0, 1024)
			for {
				i := int(next.Add(1)) - 1
				if i >= nShards {
					return
				}
				s := &r.shards[i]
				s.mu.Lock()
				list = append(list[:0], s.conns...)
				s.mu.Unlock()
				for _, c := range list {
					buf = r.push(c, buf)
				}
				clear(list)
			}
		}()
	}
	wg.Wait()
	r.m.metrics.pushSeconds.Observe(time.Since(start).Seconds())
}

// push sends c its status; buf is scratch space, returned for reuse.
func (r *Room) push(c *conn, buf []byte) []byte {
	if c.closed.Load() {
		return buf
	}
	st, err := r.q.Status(c.ticket)
	if err != nil {
		return buf
	}
	s := r.statusOf(context.Background(), st)
	buf = s.appendJSON(buf[:0])
	if err := c.write(opText, buf, r.m.cfg.WriteTimeout); err != nil {
		r.m.metrics.pushes.WithLabelValues("failed").Inc()
		r.m.closeConn(c, 0)
		return buf
	}
	r.m.metrics.pushes.WithLabelValues("sent").Inc()
	return buf
}

// addConn puts c in the room's connection set.
func (r *Room) addConn(c *conn) {
	var h uint32
	for _, b := range c.ticket[:4] {
		h = h<<8 | uint32(b)
	}
	i := h % nShards
	s := &r.shards[i]
	s.mu.Lock()
	c.shard = uint16(i)
	c.slot = int32(len(s.conns))
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

// removeConn takes c out of the room's connection set.
func (r *Room) removeConn(c *conn) {
	s := &r.shards[c.shard]
	s.mu.Lock()
	if i := int(c.slot); i >= 0 && i < len(s.conns) && s.conns[i] == c {
		last := len(s.conns) - 1
		s.conns[i] = s.conns[last]
		s.conns[i].slot = int32(i)
		s.conns[last] = nil
		s.conns = s.conns[:last]
		c.slot = -1
		if cap(s.conns) > 64 && len(s.conns) < cap(s.conns)/4 {
			s.conns = append([]*conn(nil), s.conns...) // give memory back after a rush
		}
	}
	s.mu.Unlock()
}

// conns is a snapshot of the room's sockets.
func (r *Room) conns() []*conn {
	var out []*conn
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out = append(out, s.conns...)
		s.mu.Unlock()
	}
	return out
}

// Sockets is the number of sockets open in the room.
func (r *Room) Sockets() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		n += len(s.conns)
		s.mu.Unlock()
	}
	return n
}

// close stops the room's loops and its subscription; sockets are closed by
// the manager first.
func (r *Room) close() {
	if r.stopDecis != nil {
		_ = r.stopDecis()
	}
	close(r.done)
	r.wg.Wait()
	if r.jl != nil {
		if err := r.jl.close(); err != nil {
			r.m.log.Error("queue journal", "event", r.id, "err", err)
		}
	}
}

// replay applies one journal record to the fresh queue, before the room is
// shared: joins with their times (closing the pre-queue first where the
// join went behind it), the draw (its seed in *seed) and admissions, which
// must admit as many as they did.
func (r *Room) replay(jr journalRecord, seed *[]byte) error {
	switch jr.typ {
	case recJoin:
		if !jr.pre && !r.q.Stats().PreClosed {
			r.q.ClosePreQueue()
		}
		if _, _, err := r.q.JoinTicket(jr.ticket, jr.at); err != nil {
			return err
		}
		r.joins[jr.ticket] = joinRecord{at: jr.at.UnixNano()}
	case recDraw:
		if err := r.q.ApplyDraw(jr.seed); err != nil {
			return err
		}
		*seed = jr.seed
	case recAdmit:
		ts, err := r.q.Admit(jr.n, jr.at)
		if err != nil {
			return err
		}
		if len(ts) != jr.n {
			return fmt.Errorf("an admission of %d admits %d on replay", jr.n, len(ts))
		}
		for _, t := range ts {
			delete(r.joins, t)
		}
	}
	return nil
}

// defaultPushers is the broadcaster's parallelism: writes are short
// syscalls, so a few per core keep the walk fast while one slow socket
// waits for its deadline.
func defaultPushers() int { return 4 * runtime.GOMAXPROCS(0) }
