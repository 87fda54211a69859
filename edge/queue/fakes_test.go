package queue

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
	"github.com/ticketing/ticketing/services/queue"
)

// fakeCore is the core's queue service in memory: the test publishes
// decisions by calling decide.
type fakeCore struct {
	mu        sync.Mutex
	cfg       CoreConfig
	seed      []byte
	subs      map[string]func(Decision)
	chunks    []PreQueueChunk
	reports   []Report
	configs   atomic.Int32
	lastChunk chan struct{}
}

func newFakeCore(event string, onSale time.Time) *fakeCore {
	seed := queue.NewSeed()
	return &fakeCore{
		cfg:       CoreConfig{EventID: event, TicketKey: queue.NewTicketKey(), Commitment: queue.Commitment(seed), OnSaleAt: onSale},
		seed:      seed,
		subs:      map[string]func(Decision){},
		lastChunk: make(chan struct{}),
	}
}

func (f *fakeCore) Config(_ context.Context, eventID string) (CoreConfig, error) {
	f.configs.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if eventID != f.cfg.EventID {
		return CoreConfig{}, errs.Errorf("queue.config", errs.NotFound, "no queue for %q", eventID)
	}
	return f.cfg, nil
}

func (f *fakeCore) PreQueue(_ context.Context, c PreQueueChunk) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chunks = append(f.chunks, c)
	if c.Last {
		select {
		case <-f.lastChunk: // sent again (a restarted room)
		default:
			close(f.lastChunk)
		}
	}
	return nil
}

func (f *fakeCore) DrawPage(_ context.Context, r DrawRequest) (DrawRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return DrawRecord{EventID: r.EventID, Commitment: f.cfg.Commitment, OnSaleAt: f.cfg.OnSaleAt, Offset: r.Offset}, nil
}

func (f *fakeCore) Report(r Report) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, r)
	return nil
}

func (f *fakeCore) SubscribeDecisions(eventID string, fn func(Decision)) (func() error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[eventID] = fn
	return func() error {
		f.mu.Lock()
		delete(f.subs, eventID)
		f.mu.Unlock()
		return nil
	}, nil
}

var seq atomic.Uint64

// decide publishes a decision as the core's controller would.
func (f *fakeCore) decide(t testing.TB, d Decision) {
	t.Helper()
	f.mu.Lock()
	fn := f.subs[f.cfg.EventID]
	f.mu.Unlock()
	if fn == nil {
		t.Fatal("no subscriber for decisions")
	}
	d.EventID = f.cfg.EventID
	d.Seq = seq.Add(1)
	fn(d)
}

// fakeAdmission signs tokens with a real key ring, as the core does.
type fakeAdmission struct {
	ring   *keyring.KeyRing
	signer *admission.Signer
	issued atomic.Int32
	now    func() time.Time
}

func newFakeAdmission(t testing.TB, now func() time.Time) *fakeAdmission {
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeAdmission{ring: ring, signer: s, now: now}
}

func (a *fakeAdmission) Issue(_ context.Context, eventID, subject string) (string, string, time.Time, error) {
	a.issued.Add(1)
	tok, c, err := a.signer.Issue(eventID, subject, a.now())
	return tok, c.ID, c.Expiry, err
}

func (a *fakeAdmission) JWKS(context.Context) ([]byte, *keyring.PublicKeys, error) {
	b, err := json.Marshal(a.ring.PublicJWKS())
	return b, a.ring.PublicKeys(), err
}

func (a *fakeAdmission) verifier(t testing.TB) *admission.Verifier {
	v, err := admission.NewVerifier(a.ring.PublicKeys(), nil, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// clock is a settable clock.
type clock struct{ t atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.t.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) {
	c.t.Add(int64(d))
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type fixture struct {
	core *fakeCore
	adm  *fakeAdmission
	clk  *clock
	m    *Manager
}

const testEvent = "finals"

func newFixture(t testing.TB, onSaleIn time.Duration, change func(*Config)) *fixture {
	t.Helper()
	clk := newClock(time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC))
	f := &fixture{core: newFakeCore(testEvent, clk.now().Add(onSaleIn)), clk: clk}
	f.adm = newFakeAdmission(t, clk.now)
	cfg := Config{Edge: "edge-t", Now: clk.now, UpdateEvery: time.Hour, MinPushInterval: 0, ReportEvery: time.Hour}
	if change != nil {
		change(&cfg)
	}
	m, err := New(cfg, f.core, f.adm, discardLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	if _, err := m.Room(context.Background(), testEvent); err != nil {
		t.Fatal(err)
	}
	return f
}

// session is a test session id.
func session(i int) string { return "session-" + string(rune('a'+i%26)) + "-" + itoa(i) }

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
