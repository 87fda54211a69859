package psp_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/gateway"
	"github.com/ticketing/ticketing/services/payment/psp"
)

const testKey = "sk_test_simulator"

// sim is a simulator behind a loopback HTTP server whose address stays
// when the simulator restarts.
type sim struct {
	t   *testing.T
	cfg psp.Config
	srv atomic.Pointer[psp.Server]
	ts  *httptest.Server
	gw  *gateway.Client
}

func startSim(t *testing.T, mods ...func(*psp.Config)) *sim {
	t.Helper()
	s := &sim{t: t}
	s.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.srv.Load().ServeHTTP(w, r)
	}))
	t.Cleanup(s.ts.Close)
	s.cfg = psp.Config{DataDir: t.TempDir(), SecretKey: testKey, Log: testLogger(t),
		Webhook: psp.WebhookConfig{RetryInitial: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond}}
	for _, m := range mods {
		m(&s.cfg)
	}
	s.open()
	t.Cleanup(func() {
		if err := s.srv.Load().Close(); err != nil {
			t.Error(err)
		}
	})
	gw, err := gateway.New(gateway.Config{BaseURL: s.ts.URL, SecretKey: testKey, WebhookSecret: first(s.cfg.WebhookSecrets)})
	if err != nil {
		t.Fatal(err)
	}
	s.gw = gw
	t.Cleanup(gw.Close)
	return s
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func (s *sim) open() {
	srv, err := psp.New(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv.Store(srv)
}

// restart closes the simulator and opens it again on the same directory.
func (s *sim) restart() {
	s.t.Helper()
	if err := s.srv.Load().Close(); err != nil {
		s.t.Fatal(err)
	}
	s.open()
}

// post sends a form with an idempotency key and returns the status, the
// headers and the body.
func (s *sim) post(path, key string, form url.Values) (int, http.Header, []byte) {
	s.t.Helper()
	req, _ := http.NewRequestWithContext(s.t.Context(), http.MethodPost, s.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return s.do(req)
}

func (s *sim) get(path string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequestWithContext(s.t.Context(), http.MethodGet, s.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	code, _, body := s.do(req)
	return code, body
}

func (s *sim) do(req *http.Request) (int, http.Header, []byte) {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (s *sim) records() psp.Records {
	s.t.Helper()
	code, body := s.get("/_sim/records")
	if code != http.StatusOK {
		s.t.Fatalf("records: %d %s", code, body)
	}
	var r psp.Records
	if err := json.Unmarshal(body, &r); err != nil {
		s.t.Fatal(err)
	}
	return r
}

// pay creates an intent and confirms it with number.
func (s *sim) pay(order string, amount int64, manual bool, number string) payment.Intent {
	s.t.Helper()
	ctx := s.t.Context()
	in, err := s.gw.CreateIntent(ctx, payment.IntentRequest{Amount: amount, Currency: "EUR", OrderID: order, CaptureManual: manual, IdempotencyKey: "order:" + order})
	if err != nil {
		s.t.Fatal(err)
	}
	in, err = s.gw.ConfirmIntent(ctx, in.ID, payment.ConfirmRequest{Card: card(number), ReturnURL: "https://shop.example/return", IdempotencyKey: "confirm:" + order + ":" + number})
	if err != nil {
		s.t.Fatal(err)
	}
	return in
}

func card(number string) payment.Card {
	return payment.Card{Number: number, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}
}

// receiver is a webhook endpoint that verifies what it gets with the
// gateway client and keeps it.
type receiver struct {
	t      *testing.T
	secret string
	ts     *httptest.Server
	fail   atomic.Int64 // answer 500 to this many more deliveries
	mu     sync.Mutex
	events []payment.WebhookEvent
	bad    int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if r.fail.Add(-1) >= 0 {
			http.Error(w, "not now", http.StatusInternalServerError)
			return
		}
		ev, err := gateway.VerifyWebhook(body, req.Header.Get("Stripe-Signature"), r.secret, gateway.DefaultWebhookTolerance, time.Now())
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.bad++
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.events = append(r.events, ev)
	}))
	t.Cleanup(r.ts.Close)
	return r
}

func (r *receiver) got() []payment.WebhookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]payment.WebhookEvent(nil), r.events...)
}

func (r *receiver) badCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// types lists the types of the events received for an intent, in order.
func (r *receiver) types(intent string) []string {
	var out []string
	for _, e := range r.got() {
		if e.Intent != nil && e.Intent.ID == intent || e.Refund != nil && e.Refund.IntentID == intent {
			out = append(out, e.Type)
		}
	}
	return out
}

// testLogger logs to the test, and fails it when a line holds a test
// card's number.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(&testWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	for n := range psp.Cards {
		if strings.Contains(string(p), n) {
			w.t.Errorf("a log line holds a card number: %s", p)
		}
	}
	if testing.Verbose() {
		w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
