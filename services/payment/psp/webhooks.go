package psp

import (
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Webhook delivery. Every event is kept (in the journal, and in memory
// until every endpoint it is for has acknowledged it). Each endpoint has a
// dispatcher, which hands the deliveries that are due to Concurrency
// workers in the order they became due; a failed attempt is due again
// after an exponential backoff. An acknowledgement is journaled without
// waiting for its fsync: one lost in a crash means one more delivery,
// which at-least-once allows.

// event is the body of a webhook.
type event struct {
	ID       string    `json:"id"`
	Object   string    `json:"object"` // "event"
	Type     string    `json:"type"`
	Created  int64     `json:"created"`
	Data     eventData `json:"data"`
	Livemode bool      `json:"livemode"`
}

type eventData struct {
	Object any `json:"object"`
}

// event makes the webhook event of a change, or nil when there are no
// endpoints to send it to.
func (s *Server) event(typ string, obj any, now time.Time) *eventRecord {
	if len(s.cfg.WebhookURLs) == 0 {
		return nil
	}
	e := &eventRecord{ID: newID("evt"), Seq: s.seq.Add(1), Created: now.Unix(), Endpoints: s.cfg.WebhookURLs}
	body, err := json.Marshal(event{ID: e.ID, Object: "event", Type: typ, Created: e.Created, Data: eventData{obj}})
	if err != nil {
		panic(err) // intents and refunds always encode
	}
	e.Body = body
	return e
}

// Sign is the Stripe-Signature header of body at t: one v1 signature per
// secret, hex HMAC-SHA256 of "<t>.<body>".
func Sign(body []byte, t time.Time, secrets ...string) string {
	var b bytes.Buffer
	ts := strconv.FormatInt(t.Unix(), 10)
	b.WriteString("t=" + ts)
	for _, secret := range secrets {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
		m.Write(body)
		b.WriteString(",v1=" + hex.EncodeToString(m.Sum(nil)))
	}
	return b.String()
}

type hooks struct {
	s         *Server
	client    *http.Client
	endpoints map[string]*endpoint

	mu     sync.Mutex
	events map[string]*pendingEvent // events some endpoint has still to acknowledge

	wg sync.WaitGroup
}

type pendingEvent struct {
	rec  *eventRecord
	left map[string]bool // endpoints still to acknowledge
}

type endpoint struct {
	url  string
	wake chan struct{}
	work chan *delivery

	mu        sync.Mutex
	due       dueHeap
	n         uint64    // deliveries queued, for the heap's order among equals
	held      *delivery // reorder fault: waits for the next event
	heldUntil time.Time
}

type delivery struct {
	ev      *eventRecord
	attempt int // failed attempts so far
	due     time.Time
	order   uint64
	dup     bool // the duplicate of a delivered event
}

func newHooks(s *Server) *hooks {
	h := &hooks{s: s, endpoints: map[string]*endpoint{}, events: map[string]*pendingEvent{},
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
			TLSClientConfig: &tls.Config{RootCAs: s.cfg.Webhook.RootCAs, MinVersion: tls.VersionTLS12}}}}
	for _, u := range s.cfg.WebhookURLs {
		h.endpoints[u] = &endpoint{url: u, wake: make(chan struct{}, 1), work: make(chan *delivery)}
	}
	return h
}

// add takes a durable event: queued at once when live, kept for restore
// during replay.
func (h *hooks) add(e *eventRecord, live bool) {
	pe := &pendingEvent{rec: e, left: map[string]bool{}}
	for _, u := range e.Endpoints {
		pe.left[u] = true
	}
	h.mu.Lock()
	h.events[e.ID] = pe
	h.mu.Unlock()
	if live {
		for _, u := range e.Endpoints {
			if ep := h.endpoints[u]; ep != nil {
				h.queue(ep, &delivery{ev: e}, true)
			}
		}
	}
}

// acked records an acknowledgement (or an abandonment).
func (h *hooks) acked(d delivered) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pe := h.events[d.Event]; pe != nil {
		delete(pe.left, d.Endpoint)
		if len(pe.left) == 0 {
			delete(h.events, d.Event)
		}
	}
}

// restore queues, after replay, every delivery not acknowledged before,
// in the events' order, and returns how many.
func (h *hooks) restore() int {
	h.mu.Lock()
	var all []*pendingEvent
	for _, pe := range h.events {
		all = append(all, pe)
	}
	h.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].rec.Seq < all[j].rec.Seq })
	n := 0
	for _, pe := range all {
		for _, u := range pe.rec.Endpoints {
			h.mu.Lock()
			left := pe.left[u]
			h.mu.Unlock()
			if !left {
				continue
			}
			ep := h.endpoints[u]
			if ep == nil {
				h.s.log.Warn("psp: an event's endpoint is no longer configured; not delivered", "event", pe.rec.ID, "endpoint", u)
				h.acked(delivered{Event: pe.rec.ID, Endpoint: u})
				continue
			}
			h.queue(ep, &delivery{ev: pe.rec}, true)
			n++
		}
	}
	return n
}

// pending counts the deliveries not acknowledged yet.
func (h *hooks) pending() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, pe := range h.events {
		n += len(pe.left)
	}
	return n
}

// queue makes d due now, or later as the faults say when first.
func (h *hooks) queue(ep *endpoint, d *delivery, first bool) {
	now := time.Now()
	if d.due.IsZero() {
		d.due = now
	}
	f := h.s.faults.get()
	fkey := d.ev.ID + " " + ep.url
	ep.mu.Lock()
	switch {
	case !first:
		ep.push(d)
	case f.hit("webhook_delay", f.WebhookDelay, fkey) && !d.dup:
		d.due = now.Add(time.Duration(f.WebhookDelayBy))
		ep.push(d)
	case ep.held != nil:
		// The held event goes after this one.
		held := ep.held
		ep.held = nil
		ep.push(d)
		held.due = d.due
		ep.push(held)
	case f.hit("webhook_reorder", f.WebhookReorder, fkey) && !d.dup:
		ep.held = d
		ep.heldUntil = now.Add(time.Duration(f.WebhookReorderWindow))
	default:
		ep.push(d)
	}
	ep.mu.Unlock()
	select {
	case ep.wake <- struct{}{}:
	default:
	}
}

func (ep *endpoint) push(d *delivery) {
	ep.n++
	d.order = ep.n
	heap.Push(&ep.due, d)
}

func (h *hooks) start() {
	for _, ep := range h.endpoints {
		h.wg.Go(func() { h.dispatch(ep) })
		for range h.s.cfg.Webhook.Concurrency {
			h.wg.Go(func() { h.work(ep) })
		}
	}
}

func (h *hooks) wait() { h.wg.Wait() }

// dispatch hands ep's due deliveries to its workers.
func (h *hooks) dispatch(ep *endpoint) {
	ctx := h.s.ctx
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		var ready []*delivery
		next := now.Add(time.Hour)
		ep.mu.Lock()
		if ep.held != nil && !now.Before(ep.heldUntil) {
			ep.push(ep.held)
			ep.held = nil
		}
		for ep.due.Len() > 0 && !ep.due[0].due.After(now) {
			ready = append(ready, heap.Pop(&ep.due).(*delivery))
		}
		if ep.due.Len() > 0 {
			next = ep.due[0].due
		}
		if ep.held != nil && ep.heldUntil.Before(next) {
			next = ep.heldUntil
		}
		ep.mu.Unlock()
		for _, d := range ready {
			select {
			case ep.work <- d:
			case <-ctx.Done():
				return
			}
		}
		if len(ready) > 0 {
			continue
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-ep.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// work delivers what dispatch hands it.
func (h *hooks) work(ep *endpoint) {
	ctx := h.s.ctx
	cfg := h.s.cfg.Webhook
	for {
		var d *delivery
		select {
		case <-ctx.Done():
			return
		case d = <-ep.work:
		}
		status, err := h.post(ctx, ep.url, d.ev.Body)
		if ctx.Err() != nil {
			return
		}
		log := h.s.log.With("event", d.ev.ID, "endpoint", ep.url, "attempt", d.attempt+1)
		if err == nil && status/100 == 2 {
			if d.dup {
				h.s.m.deliveries.WithLabelValues("duplicate").Inc()
				continue
			}
			h.s.m.deliveries.WithLabelValues("delivered").Inc()
			log.Debug("psp: webhook delivered")
			h.done(delivered{Event: d.ev.ID, Endpoint: ep.url})
			if f := h.s.faults.get(); f.hit("webhook_duplicate", f.WebhookDuplicate, d.ev.ID+" "+ep.url) {
				h.queue(ep, &delivery{ev: d.ev, dup: true}, false)
			}
			continue
		}
		h.s.m.deliveries.WithLabelValues("failed").Inc()
		if err == nil {
			log = log.With("status", status)
		} else {
			log = log.With("err", err)
		}
		d.attempt++
		if age := h.s.cfg.Clock().Sub(time.Unix(d.ev.Created, 0)); age > cfg.MaxAge && !d.dup {
			h.s.m.deliveries.WithLabelValues("abandoned").Inc()
			log.Warn("psp: webhook abandoned", "age", age)
			h.done(delivered{Event: d.ev.ID, Endpoint: ep.url, Abandoned: true})
			continue
		}
		wait := cfg.RetryInitial << min(d.attempt-1, 30)
		if wait <= 0 || wait > cfg.RetryMax {
			wait = cfg.RetryMax
		}
		log.Info("psp: webhook failed; retrying", "in", wait)
		d.due = time.Now().Add(wait)
		h.queue(ep, d, false)
	}
}

// done journals an acknowledgement (without waiting) and forgets it.
func (h *hooks) done(d delivered) {
	b, _ := json.Marshal(record{Delivered: []delivered{d}})
	h.s.j.appendLater(b)
	h.acked(d)
}

// post makes one attempt, signed now.
func (h *hooks) post(ctx context.Context, url string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.s.cfg.Webhook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "ticketing-psp/1 (+webhooks)")
	req.Header.Set("Stripe-Signature", Sign(body, h.s.cfg.Clock(), h.s.cfg.WebhookSecrets...))
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dueHeap orders deliveries by due time, then by when they were queued.
type dueHeap []*delivery

func (q dueHeap) Len() int { return len(q) }
func (q dueHeap) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].order < q[j].order
}
func (q dueHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *dueHeap) Push(x any)   { *q = append(*q, x.(*delivery)) }
func (q *dueHeap) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return d
}
