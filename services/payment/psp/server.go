package psp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/dirlock"
)

// Server is a running simulator: an http.Handler over its journal. Make
// one with New; Close it to stop webhook delivery and close the journal.
type Server struct {
	cfg    Config
	log    *slog.Logger
	lock   *dirlock.Lock
	j      *journal
	st     *state
	idem   *idemStore
	locks  keyedMutex
	faults *faultSet
	hooks  *hooks
	m      *metrics
	mux    *http.ServeMux
	seq    atomic.Uint64 // intents' and events' creation order

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New opens (creating) the data directory, replays the journal and
// starts webhook delivery, including the deliveries pending from before.
func New(cfg Config) (*Server, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		lock.Release()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Log, lock: lock, st: newState(), idem: newIdemStore(cfg.IdempotencyTTL),
		faults: newFaultSet(cfg.Faults), m: m, mux: http.NewServeMux(), ctx: ctx, cancel: cancel}
	s.hooks = newHooks(s)
	start := time.Now()
	records := 0
	j, torn, err := openJournal(cfg.DataDir, func(payload []byte) error {
		var r record
		if err := json.Unmarshal(payload, &r); err != nil {
			return err
		}
		records++
		s.apply(&r, false)
		return nil
	})
	if err != nil {
		cancel()
		lock.Release()
		return nil, err
	}
	j.onSync = m.synced
	s.j = j
	s.seq.Store(s.st.seq)
	s.idem.expire(cfg.Clock())
	if torn > 0 {
		s.log.Warn("psp: cut a torn record off the journal's end", "bytes", torn)
	}
	pending := s.hooks.restore()
	s.log.Info("psp: journal replayed", "records", records, "intents", len(s.st.intents), "refunds", len(s.st.refunds),
		"pending_deliveries", pending, "took", time.Since(start).Round(time.Millisecond))
	s.hooks.start()
	s.wg.Go(s.janitor)
	s.routes()
	return s, nil
}

// Close stops webhook delivery, writes what is queued and closes the
// journal. Requests still running answer 500.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.hooks.wait()
		s.wg.Wait()
		s.closeErr = s.j.close()
		s.lock.Release()
	})
	return s.closeErr
}

// ServeHTTP serves the API, the challenge pages and /_sim.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Err is why the simulator cannot store changes any more (its journal
// failed to write or sync: every change is refused from then on), or nil.
func (s *Server) Err() error {
	s.j.mu.Lock()
	defer s.j.mu.Unlock()
	return s.j.err
}

// SetFaults replaces the faults in force.
func (s *Server) SetFaults(f Faults) error {
	f.defaults()
	if err := f.Validate(); err != nil {
		return err
	}
	s.faults.set(f)
	s.log.Info("psp: faults set", "faults", f)
	return nil
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults { return *s.faults.get() }

// Records returns every intent and refund.
func (s *Server) Records() Records {
	r := s.st.records()
	r.PendingDeliveries = s.hooks.pending()
	return r
}

func (s *Server) routes() {
	s.api("POST /v1/payment_intents", "create", nil, s.create)
	s.api("GET /v1/payment_intents/{id}", "retrieve", nil, s.retrieve)
	s.api("POST /v1/payment_intents/{id}/confirm", "confirm", pathID, s.confirm)
	s.api("POST /v1/payment_intents/{id}/capture", "capture", pathID, s.capture)
	s.api("POST /v1/payment_intents/{id}/cancel", "cancel", pathID, s.cancelIntent)
	s.api("POST /v1/refunds", "refund", func(c *call) string { return c.form.Get("payment_intent") }, s.refund)
	s.api("GET /v1/refunds/{id}", "retrieve_refund", nil, s.retrieveRefund)
	s.mux.HandleFunc("GET /3ds/{token}", s.challengePage)
	s.mux.HandleFunc("POST /3ds/{token}", s.challengeAnswer)
	s.mux.HandleFunc("GET /_sim/records", s.admin(s.getRecords))
	s.mux.HandleFunc("GET /_sim/faults", s.admin(s.getFaults))
	s.mux.HandleFunc("POST /_sim/faults", s.admin(s.postFaults))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{apiError{Type: "invalid_request_error", Code: "resource_missing",
			Message: "Unrecognized request URL (" + r.Method + ": " + r.URL.Path + ")."}})
	})
}

func pathID(c *call) string { return c.r.PathValue("id") }

// call is one API request on its way through the pipeline.
type call struct {
	op   string
	r    *http.Request
	form url.Values
	key  string // Idempotency-Key
	now  time.Time
}

// outcome is what an operation did: its answer and the state change
// to make durable before the answer goes out.
type outcome struct {
	status int
	body   any
	rec    record
	// noStore: the request was refused before it began (bad parameters);
	// its idempotency key stays free.
	noStore bool
}

// api registers an operation of the /v1 API. lockOf, when set, names
// the intent the operation changes: operations on one intent run one at
// a time, each from the durable state the previous one left.
func (s *Server) api(pattern, op string, lockOf func(*call) string, run func(*call) outcome) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		out := s.serveAPI(w, r, op, lockOf, run)
		s.m.request(op, out, time.Since(start))
	})
}

// maxKey bounds an idempotency key (Stripe's 255).
const maxKey = 255

// serveAPI is the pipeline every API request takes: credentials, form,
// idempotency, injected latency, injected errors, the operation, the
// journal, the injected timeout, the answer. It returns the outcome's
// metric label.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, op string, lockOf func(*call) string, run func(*call) outcome) string {
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, apiError{Type: "invalid_request_error", Code: "api_key_invalid",
			Message: "Invalid API Key provided. Give it as Authorization: Bearer sk_test_…"})
		return outcomeRefused
	}
	c := &call{op: op, r: r, now: s.cfg.Clock()}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
		if err != nil {
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "parameter_invalid", Message: "The body could not be read: " + err.Error()})
			return outcomeRefused
		}
		if c.form, err = decodeForm(string(body)); err != nil {
			writeError(w, http.StatusBadRequest, paramAPIError(err))
			return outcomeRefused
		}
		if c.key = r.Header.Get("Idempotency-Key"); len(c.key) > maxKey {
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "idempotency_key_too_long",
				Message: fmt.Sprintf("Idempotency keys are at most %d characters.", maxKey)})
			return outcomeRefused
		}
	}
	f := s.faults.get()
	faulty := f.appliesTo(op)
	fkey := s.faults.requestKey(op, c.key)
	var fp string
	if c.key != "" {
		fp = fingerprint(r.Method, r.URL.Path, c.form)
		switch v, e := s.idem.begin(c.key, fp, c.now); v {
		case idemReplay:
			w.Header().Set("Idempotent-Replayed", "true")
			writeRaw(w, e.status, e.body)
			return outcomeReplayed
		case idemMismatch:
			writeError(w, http.StatusBadRequest, apiError{Type: "idempotency_error", Code: "idempotency_key_reused",
				Message: "Keys for idempotent requests can only be used with the same parameters they were first used with."})
			return outcomeRefused
		case idemInFlight:
			writeError(w, http.StatusConflict, apiError{Type: "idempotency_error", Code: "idempotency_key_in_use",
				Message: "There is currently another in-progress request using this Idempotent Key. Try again later."})
			return outcomeRefused
		}
		// The key is ours: released unless an answer was stored under it
		// (abandon leaves stored answers be), even if the operation panics.
		defer s.idem.abandon(c.key)
	}
	if faulty && f.hit("slow", f.Slow, fkey) {
		// After the key is claimed: a retry meanwhile is in flight.
		s.wait(r.Context(), time.Duration(f.SlowLatency))
	}
	label := ""
	var o outcome
	var body []byte
	var err error
	if faulty && f.hit("error_before", f.ErrorBefore, fkey) {
		o, label = faultAnswer("before"), outcomeFault
		body, err = s.record(c, fp, &o)
	} else {
		o, body, err = s.execute(c, fp, lockOf, run, func(o *outcome) {
			if faulty && !o.noStore && f.hit("error_after", f.ErrorAfter, fkey) {
				fa := faultAnswer("after")
				o.status, o.body, label = fa.status, fa.body, outcomeFault
			}
		})
	}
	if err != nil {
		s.log.Error("psp: a change could not be made durable", "op", op, "err", err)
		writeError(w, http.StatusInternalServerError, apiError{Type: "api_error", Message: "The change could not be made durable: its outcome is unknown."})
		return outcomeError
	}
	if faulty && f.hit("timeout", f.Timeout, fkey) {
		s.wait(r.Context(), time.Duration(f.TimeoutHold))
		label = outcomeTimeout
	}
	writeRaw(w, o.status, body)
	if label != "" {
		return label
	}
	switch {
	case o.status < 400:
		return outcomeOK
	case o.status == http.StatusPaymentRequired:
		return outcomeDeclined
	case o.status < 500:
		return outcomeRefused
	}
	return outcomeError
}

// execute runs an operation, with its intent locked when lockOf names
// one, and makes its outcome durable (record) before the lock is
// released; alter may change the answer (not the effect) first.
func (s *Server) execute(c *call, fp string, lockOf func(*call) string, run func(*call) outcome, alter func(*outcome)) (outcome, []byte, error) {
	if lockOf != nil {
		if id := lockOf(c); id != "" {
			defer s.locks.lock(id)()
		}
	}
	o := run(c)
	alter(&o)
	body, err := s.record(c, fp, &o)
	return o, body, err
}

// record encodes an outcome's answer and commits its state change with
// the answer stored under the request's idempotency key.
func (s *Server) record(c *call, fp string, o *outcome) ([]byte, error) {
	body, err := json.Marshal(o.body)
	if err != nil {
		return nil, err
	}
	if c.key != "" && !o.noStore {
		o.rec.Idem = &idemRecord{Key: c.key, Fingerprint: fp, Status: o.status, Body: body, Created: c.now.Unix()}
	}
	if !o.rec.empty() {
		if err := s.commit(&o.rec); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// wait waits d, or less when the client goes away (its request's context
// ends: the connection closed, or the HTTP server shutting down) or the
// server closes. The request goes on either way.
func (s *Server) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// commit makes a record durable, then visible: the state, the stored
// answer, the webhook deliveries.
func (s *Server) commit(r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.j.append(b); err != nil {
		return err
	}
	s.apply(r, true)
	return nil
}

// apply makes a durable record visible; live is false during replay.
func (s *Server) apply(r *record, live bool) {
	s.st.install(r)
	if r.Idem != nil {
		s.idem.store(r.Idem)
	}
	for _, e := range r.Events {
		s.hooks.add(e, live)
	}
	for _, d := range r.Delivered {
		s.hooks.acked(d)
	}
}

// janitor forgets expired idempotency keys.
func (s *Server) janitor() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if n := s.idem.expire(s.cfg.Clock()); n > 0 {
				s.log.Debug("psp: idempotency keys expired", "keys", n)
			}
		}
	}
}

func (s *Server) authorized(r *http.Request) bool {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		// Stripe also takes the key as basic auth's user name.
		if user, _, basic := r.BasicAuth(); basic {
			key, ok = user, true
		}
	}
	return ok && subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.SecretKey)) == 1
}

// publicURL is the base of the links buyers' browsers follow.
func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
