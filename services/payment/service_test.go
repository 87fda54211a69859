package payment_test

// The service against real parts: the ledger and the vault in JetStream
// key-value buckets, the gateway simulator over HTTP delivering its
// webhooks to the service. Counting wrappers around them show what a
// payment costs: ledger writes, vault reads, gateway calls, events.

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	paymentkv "github.com/ticketing/ticketing/services/payment/natskv"
	"github.com/ticketing/ticketing/services/payment/psp"
	"github.com/ticketing/ticketing/services/payment/vault"
	vaultkv "github.com/ticketing/ticketing/services/payment/vault/natskv"
	"github.com/ticketing/ticketing/services/payment/vault/vaulttest"
)

const (
	simKey        = "sk_test_service"
	webhookSecret = "whsec_service"
	approve       = "4242424242424242"
	challenge     = "4000002760003184"
	declined      = "4000000000000002"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// countingLedger counts a ledger's calls and the writes they made.
type countingLedger struct {
	payment.Ledger
	gets, updates, writes atomic.Int64 // Get and Update calls (each reads), writes
}

func (l *countingLedger) Get(ctx context.Context, id string) (payment.Payment, error) {
	l.gets.Add(1)
	return l.Ledger.Get(ctx, id)
}

// seen wraps fn, keeping the version of the payment it was last called
// on: a result at another version was written.
func seen(fn func(*payment.Payment, bool) error, version *int64) func(*payment.Payment, bool) error {
	return func(p *payment.Payment, exists bool) error {
		*version = p.Version
		return fn(p, exists)
	}
}

func (l *countingLedger) Update(ctx context.Context, id string, fn func(*payment.Payment, bool) error) (payment.Payment, error) {
	l.updates.Add(1)
	v := int64(-1)
	p, err := l.Ledger.Update(ctx, id, seen(fn, &v))
	if err == nil && p.Version != v {
		l.writes.Add(1)
	}
	return p, err
}

func (l *countingLedger) UpdateFrom(ctx context.Context, from payment.Payment, fn func(*payment.Payment, bool) error) (payment.Payment, error) {
	v := int64(-1)
	p, err := l.Ledger.UpdateFrom(ctx, from, seen(fn, &v))
	if err == nil && p.Version != v {
		l.writes.Add(1)
	}
	return p, err
}

// countingVault counts the vault's calls.
type countingVault struct {
	*vault.Vault
	opens, forgets atomic.Int64
}

func (v *countingVault) OpenCard(ctx context.Context, token string) (payment.Card, payment.CardSummary, error) {
	v.opens.Add(1)
	return v.Vault.OpenCard(ctx, token)
}

func (v *countingVault) ForgetCVC(ctx context.Context, token string) error {
	v.forgets.Add(1)
	return v.Vault.ForgetCVC(ctx, token)
}

// checkedGateway counts the gateway's calls, checks that the ledger
// records an intent before it is confirmed, and loses answers on demand
// (the call is made; its answer is replaced by errs.Unavailable).
type checkedGateway struct {
	payment.Gateway
	ledger                   payment.Ledger
	creates, confirms, reads atomic.Int64
	loseCreate, loseConfirm  atomic.Int64 // answers still to lose
	mu                       sync.Mutex
	unrecorded               []string // intents confirmed before the ledger recorded them
}

func (g *checkedGateway) CreateIntent(ctx context.Context, r payment.IntentRequest) (payment.Intent, error) {
	g.creates.Add(1)
	in, err := g.Gateway.CreateIntent(ctx, r)
	if err == nil && g.loseCreate.Add(-1) >= 0 {
		return payment.Intent{}, errs.E(errs.Unavailable, "the create's answer was lost")
	}
	return in, err
}

func (g *checkedGateway) ConfirmIntent(ctx context.Context, id string, r payment.ConfirmRequest) (payment.Intent, error) {
	g.confirms.Add(1)
	order := strings.TrimPrefix(r.IdempotencyKey[:strings.LastIndexByte(r.IdempotencyKey, ':')], "confirm:")
	if p, err := g.ledger.Get(ctx, order); err != nil || p.IntentID != id {
		g.mu.Lock()
		g.unrecorded = append(g.unrecorded, id)
		g.mu.Unlock()
	}
	in, err := g.Gateway.ConfirmIntent(ctx, id, r)
	if err == nil && g.loseConfirm.Add(-1) >= 0 {
		return payment.Intent{}, errs.E(errs.Unavailable, "the confirm's answer was lost")
	}
	return in, err
}

func (g *checkedGateway) GetIntent(ctx context.Context, id string) (payment.Intent, error) {
	g.reads.Add(1)
	return g.Gateway.GetIntent(ctx, id)
}

// published records the events published, in order.
type published struct {
	mu  sync.Mutex
	evs []payment.Payment
}

func (p *published) Publish(_ context.Context, pay payment.Payment) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.evs = append(p.evs, pay.Clone())
	return nil
}

// of returns the order's events' versions and statuses.
func (p *published) of(order string) (versions []int64, statuses []payment.PaymentStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.evs {
		if e.OrderID == order {
			versions = append(versions, e.Version)
			statuses = append(statuses, e.Status)
		}
	}
	return versions, statuses
}

type rig struct {
	t      *testing.T
	svc    *payment.Service
	ledger *countingLedger
	vault  *countingVault
	gw     *checkedGateway
	events *published
	sim    *psp.Server

	mu    sync.Mutex
	hooks map[string][][]byte // webhook bodies handled, by order
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := t.Context()
	_, _, js := nodetest.Start(t)
	l, err := paymentkv.Open(ctx, js, paymentkv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := vaultkv.Open(ctx, js, vaultkv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(ctx, vs, vault.Config{Keyring: vaulttest.Keyring(t, "k1", "", "k1")})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ledger: &countingLedger{Ledger: l}, vault: &countingVault{Vault: v}, events: &published{},
		hooks: map[string][][]byte{}}

	hooks := httptest.NewServer(http.HandlerFunc(r.webhook))
	t.Cleanup(hooks.Close)
	var sim atomic.Pointer[psp.Server]
	gwSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { sim.Load().ServeHTTP(w, req) }))
	t.Cleanup(gwSrv.Close)
	s, err := psp.New(psp.Config{DataDir: t.TempDir(), SecretKey: simKey, Log: quiet,
		WebhookURLs: []string{hooks.URL}, WebhookSecrets: []string{webhookSecret},
		Webhook: psp.WebhookConfig{RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	sim.Store(s)
	r.sim = s
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	client, err := gateway.New(gateway.Config{BaseURL: gwSrv.URL, SecretKey: simKey, WebhookSecret: webhookSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	r.gw = &checkedGateway{Gateway: client, ledger: l}
	r.svc = r.service()
	return r
}

// service is a payment service on the rig's parts, as another process
// (or this one after a restart) has it.
func (r *rig) service() *payment.Service {
	return &payment.Service{Ledger: r.ledger, Vault: r.vault, Gateway: r.gw, Events: r.events, Log: quiet}
}

func (r *rig) webhook(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err == nil {
		var ev payment.WebhookEvent
		if ev, err = gateway.VerifyWebhook(body, req.Header.Get("Stripe-Signature"), webhookSecret, time.Minute, time.Now()); err == nil {
			err = r.svc.Webhook(req.Context(), body, req.Header.Get("Stripe-Signature"))
			if err == nil && ev.Intent != nil {
				r.mu.Lock()
				r.hooks[ev.Intent.OrderID] = append(r.hooks[ev.Intent.OrderID], body)
				r.mu.Unlock()
			}
		}
	}
	if err != nil {
		r.t.Logf("webhook: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// settled waits until the simulator has no webhook left to deliver.
func (r *rig) settled() {
	r.t.Helper()
	eventually.True(r.t, 30*time.Second, "the webhooks delivered", func() bool { return r.sim.Records().PendingDeliveries == 0 })
}

func (r *rig) card(number string) string {
	r.t.Helper()
	tok, err := r.vault.Seal(r.t.Context(), payment.Card{Number: number, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"})
	if err != nil {
		r.t.Fatal(err)
	}
	return tok.ID
}

func (r *rig) pay(order, token string, attempt int) (payment.Payment, error) {
	return r.svc.Pay(r.t.Context(), payment.PayRequest{Order: order, Account: "u_1", Event: "ev_1", Amount: 5000, Currency: "eur",
		Method: token, ReturnURL: "https://shop.example/return", Attempt: attempt})
}

// counts is what the rig's wrappers counted.
type counts struct {
	writes, opens, forgets, creates, confirms, reads int64
}

func (r *rig) counts() counts {
	return counts{r.ledger.writes.Load(), r.vault.opens.Load(), r.vault.forgets.Load(), r.gw.creates.Load(), r.gw.confirms.Load(), r.gw.reads.Load()}
}

func (r *rig) noneUnrecorded() {
	r.t.Helper()
	r.gw.mu.Lock()
	defer r.gw.mu.Unlock()
	if len(r.gw.unrecorded) > 0 {
		r.t.Fatalf("intents confirmed before the ledger recorded them: %v", r.gw.unrecorded)
	}
}

// A frictionless payment: two ledger writes (the intent, the capture),
// each published once, one vault read, one CVC forgotten; the webhook
// that follows writes and publishes nothing and asks the gateway
// nothing.
func TestPayFrictionless(t *testing.T) {
	r := newRig(t)
	token := r.card(approve)
	p, err := r.pay("o1", token, 1)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payment.StatusSucceeded || p.Captured != 5000 || len(p.Entries) != 1 || p.Attempts != 1 ||
		p.Card == nil || p.Card.Last4 != "4242" || p.Currency != "EUR" || p.Event != "ev_1" {
		t.Fatalf("paid %+v", p)
	}
	r.settled()
	if got, want := r.counts(), (counts{writes: 2, opens: 1, forgets: 1, creates: 1, confirms: 1}); got != want {
		t.Fatalf("counted %+v, want %+v", got, want)
	}
	versions, statuses := r.events.of("o1")
	if !slices.Equal(statuses, []payment.PaymentStatus{payment.StatusPending, payment.StatusSucceeded}) || versions[1] != p.Version {
		t.Fatalf("events %v %v; the payment is at %d", versions, statuses, p.Version)
	}
	r.mu.Lock()
	hooks := len(r.hooks["o1"])
	r.mu.Unlock()
	if hooks != 1 {
		t.Fatalf("%d webhooks handled", hooks)
	}
	stored, err := r.ledger.Ledger.Get(t.Context(), "o1")
	if err != nil || stored.Version != p.Version {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	// PCI: the CVC is gone.
	if c, err := r.vault.Open(t.Context(), token); err != nil || c.CVC != "" {
		t.Fatalf("after the payment the vault opens the card with %d CVC digits (%v)", len(c.CVC), err)
	}
	r.noneUnrecorded()
	// Paying again answers the capture, writing and publishing nothing.
	again, err := r.pay("o1", token, 2)
	if err != nil || again.Version != p.Version || again.Status != payment.StatusSucceeded {
		t.Fatalf("paid again: %+v, %v", again, err)
	}
	if got, want := r.counts(), (counts{writes: 2, opens: 1, forgets: 1, creates: 1, confirms: 1}); got != want {
		t.Fatalf("after paying again: counted %+v, want %+v", got, want)
	}
}

// Looks that change nothing publish nothing, except the first look of a
// process that has not published the payment's version (a writer may
// have died between its write and its publish).
func TestLooksPublishOnce(t *testing.T) {
	r := newRig(t)
	p, err := r.pay("o1", r.card(approve), 1)
	if err != nil {
		t.Fatal(err)
	}
	r.settled()
	before, _ := r.events.of("o1")
	writes := r.ledger.writes.Load()
	ctx := t.Context()
	for i := 0; i < 2; i++ {
		if q, err := r.svc.Status(ctx, "o1"); err != nil || q.Version != p.Version {
			t.Fatalf("Status: %+v, %v", q, err)
		}
		if q, err := r.svc.Void(ctx, "o1"); err != nil || q.Version != p.Version || q.Status != payment.StatusSucceeded {
			t.Fatalf("Void: %+v, %v", q, err)
		}
	}
	// The webhook delivered again: this process published the payment
	// captured, by that charge: nothing to read.
	r.mu.Lock()
	body := r.hooks["o1"][0]
	r.mu.Unlock()
	reads, gwReads := r.ledger.gets.Load()+r.ledger.updates.Load(), r.gw.reads.Load()
	if err := r.svc.Webhook(ctx, body, psp.Sign(body, time.Now(), webhookSecret)); err != nil {
		t.Fatal(err)
	}
	if n, g := r.ledger.gets.Load()+r.ledger.updates.Load()-reads, r.gw.reads.Load()-gwReads; n != 0 || g != 0 {
		t.Fatalf("a repeated webhook of a settled payment read the ledger %d times, the gateway %d", n, g)
	}
	if after, _ := r.events.of("o1"); len(after) != len(before) || r.ledger.writes.Load() != writes {
		t.Fatalf("looks that changed nothing: events %v → %v, %d more writes", before, after, r.ledger.writes.Load()-writes)
	}
	// Another process publishes the version once, however many look at
	// once.
	other := r.service()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			if err := other.Webhook(ctx, body, psp.Sign(body, time.Now(), webhookSecret)); err != nil {
				t.Error(err)
			}
			if _, err := other.Status(ctx, "o1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	after, _ := r.events.of("o1")
	if want := append(slices.Clone(before), p.Version); !slices.Equal(after, want) || r.ledger.writes.Load() != writes {
		t.Fatalf("another process's looks: events %v, want %v; %d more writes", after, want, r.ledger.writes.Load()-writes)
	}
}

// A create whose answer is lost: the ledger has recorded nothing, the
// retry (the next attempt) makes and records another intent, and only
// that one is confirmed: one capture.
func TestPayCreateAnswerLost(t *testing.T) {
	r := newRig(t)
	token := r.card(approve)
	r.gw.loseCreate.Store(1)
	if _, err := r.pay("o1", token, 1); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("pay with the create's answer lost: %v", err)
	}
	if _, err := r.ledger.Get(t.Context(), "o1"); !errs.Is(errs.NotFound, err) {
		t.Fatalf("the ledger after a lost create: %v", err)
	}
	if r.gw.confirms.Load() != 0 {
		t.Fatal("an intent whose create's answer was lost was confirmed")
	}
	p, err := r.pay("o1", token, 2)
	if err != nil || p.Status != payment.StatusSucceeded || len(p.Entries) != 1 || p.Attempts != 2 {
		t.Fatalf("the retry: %+v, %v", p, err)
	}
	r.settled()
	var intents, captured int
	for _, in := range r.sim.Records().Intents {
		if in.OrderID == "o1" {
			intents++
			if in.AmountReceived > 0 {
				captured++
				if in.ID != p.IntentID {
					t.Fatalf("intent %s captured; the ledger records %s", in.ID, p.IntentID)
				}
			}
		}
	}
	if intents != 2 || captured != 1 {
		t.Fatalf("the gateway has %d intents of the order, %d captured", intents, captured)
	}
	r.noneUnrecorded()
}

// A confirm whose answer is lost: the webhook records the capture; the
// buyer's retry answers it; one capture.
func TestPayConfirmAnswerLost(t *testing.T) {
	r := newRig(t)
	token := r.card(approve)
	r.gw.loseConfirm.Store(1)
	if _, err := r.pay("o1", token, 1); !errs.Is(errs.Unavailable, err) {
		t.Fatalf("pay with the confirm's answer lost: %v", err)
	}
	r.settled()
	p, err := r.ledger.Get(t.Context(), "o1")
	if err != nil || p.Status != payment.StatusSucceeded || len(p.Entries) != 1 || p.Entries[0].Source != payment.SourceWebhook {
		t.Fatalf("after the webhook: %+v, %v", p, err)
	}
	again, err := r.pay("o1", r.card(approve), 2)
	if err != nil || again.Version != p.Version || again.Captured != 5000 || r.gw.confirms.Load() != 1 {
		t.Fatalf("the retry: %+v, %v (%d confirms)", again, err, r.gw.confirms.Load())
	}
	if _, statuses := r.events.of("o1"); !slices.Equal(statuses, []payment.PaymentStatus{payment.StatusPending, payment.StatusSucceeded}) {
		t.Fatalf("events %v", statuses)
	}
}

// A decline, then another card: the intent is recorded once, each
// outcome is one write; a 3-D Secure challenge's webhook (not final)
// reads the intent from the gateway.
func TestPayDeclineThenChallenge(t *testing.T) {
	r := newRig(t)
	p, err := r.pay("o1", r.card(declined), 1)
	if err != nil || p.Status != payment.StatusFailed || p.Decline == nil || p.Attempts != 1 {
		t.Fatalf("declined: %+v, %v", p, err)
	}
	r.settled()
	if got, want := r.counts(), (counts{writes: 2, opens: 1, forgets: 1, creates: 1, confirms: 1, reads: 1}); got != want {
		t.Fatalf("after the decline: counted %+v, want %+v", got, want)
	}
	q, err := r.pay("o1", r.card(challenge), 2)
	if err != nil || q.Status != payment.StatusRequiresAction || q.RedirectURL == "" || q.Attempts != 2 || q.IntentID != p.IntentID ||
		q.Decline != nil || q.Card == nil || q.Card.Last4 != "3184" {
		t.Fatalf("challenged: %+v, %v", q, err)
	}
	r.settled()
	// One write, or two when the webhook records the challenge before
	// the pay's answer does (the answer then adds the attempt and its
	// card).
	got := r.counts()
	if want := (counts{writes: got.writes, opens: 2, forgets: 2, creates: 1, confirms: 2, reads: 2}); got != want || got.writes < 3 || got.writes > 4 {
		t.Fatalf("after the challenge: counted %+v, want %+v with 3 or 4 writes", got, want)
	}
	versions, statuses := r.events.of("o1")
	if len(statuses) != int(got.writes) || statuses[len(statuses)-1] != payment.StatusRequiresAction || versions[len(versions)-1] != q.Version ||
		!slices.Equal(statuses[:3], []payment.PaymentStatus{payment.StatusPending, payment.StatusFailed, payment.StatusRequiresAction}) {
		t.Fatalf("events %v %v; the payment is at %d", versions, statuses, q.Version)
	}
	r.noneUnrecorded()
}

// Concurrent pays of one order (two attempts at once): one intent is
// recorded and confirmed; the other attempt's intent never is.
func TestPayConcurrentAttempts(t *testing.T) {
	r := newRig(t)
	var wg sync.WaitGroup
	results := make([]error, 4)
	for i := range results {
		token := r.card(approve)
		wg.Go(func() {
			_, results[i] = r.pay("o1", token, i+1)
		})
	}
	wg.Wait()
	for i, err := range results {
		if err != nil && !errs.Is(errs.Conflict, err) {
			t.Errorf("attempt %d: %v", i+1, err)
		}
	}
	r.settled()
	p, err := r.ledger.Get(t.Context(), "o1")
	if err != nil || p.Status != payment.StatusSucceeded || len(p.Entries) != 1 {
		t.Fatalf("after concurrent attempts: %+v, %v", p, err)
	}
	captured := 0
	for _, in := range r.sim.Records().Intents {
		if in.AmountReceived > 0 {
			captured++
		}
	}
	if captured != 1 {
		t.Fatalf("%d intents captured", captured)
	}
	r.noneUnrecorded()
	if versions, _ := r.events.of("o1"); versions[len(versions)-1] != p.Version {
		t.Fatalf("the last event is version %d, the ledger's %d", versions[len(versions)-1], p.Version)
	}
}
