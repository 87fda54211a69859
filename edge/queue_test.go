package edge_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity/auth/authtest"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/websocket"

	"github.com/ticketing/ticketing/conf"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/edge"
	edgequeue "github.com/ticketing/ticketing/edge/queue"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
	"github.com/ticketing/ticketing/leafnodes"
	"github.com/ticketing/ticketing/services/admission"
	admissionapi "github.com/ticketing/ticketing/services/admission/natsapi"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/catalog/natskv"
	"github.com/ticketing/ticketing/services/queue"
	queueapi "github.com/ticketing/ticketing/services/queue/natsapi"
)

// queueCore answers the edge's queue requests as the core would, with a
// fixed ticket key and seed; the test publishes the decisions itself.
type queueCore struct {
	cfg queueapi.Config
	mu  sync.Mutex
	pre []queue.TicketID
}

func (q *queueCore) Config(_ context.Context, id string) (queueapi.Config, error) {
	if id != q.cfg.EventID {
		return queueapi.Config{}, errs.E("queue.config", errs.NotFound, "no queue")
	}
	return q.cfg, nil
}

func (q *queueCore) PreQueue(_ context.Context, c queueapi.PreQueueChunk) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pre = append(q.pre, c.Tickets...)
	return nil
}

func (q *queueCore) Draw(_ context.Context, r queueapi.DrawRequest) (queueapi.DrawRecord, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return queueapi.DrawRecord{EventID: r.EventID, Commitment: q.cfg.Commitment, OnSaleAt: q.cfg.OnSaleAt, Seed: q.cfg.Seed,
		Complete: true, Tickets: queue.Draw(q.cfg.Seed, q.pre), Total: len(q.pre)}, nil
}

// The waiting room through a real edge: its leaf node, the edge user's
// permissions, the HTTP API and real WebSocket clients. Joins are pushed
// their place, first come first served; reconnecting keeps the place; an
// admission is pushed with a token that verifies for the user's ticket;
// a sell-out reaches every waiting socket; the edge reports its line to
// the core.
func TestWaitingRoomThroughTheEdge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	core, coreNC, js := nodetest.Start(t)
	authtest.Start(t, coreNC, js, "http://localhost:8080") // the identity service the edge asks at start
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: jsnames.CatalogBucket})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := conf.Files.ReadFile("demo/demo.json")
	d, err := catalog.ParseDataset(raw)
	if err != nil {
		t.Fatal(err)
	}
	store := &natskv.Store{KV: kv}
	for _, v := range d.Venues {
		if v.ID == "arena" {
			if err := store.CreateVenue(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	const event = "arena-onsale"
	for _, e := range d.Events {
		if e.ID == event {
			if !e.Queue {
				t.Fatal("the demo's waiting-room event has no queue")
			}
			if err := store.CreateEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	seed := queue.NewSeed()
	key := queue.NewTicketKey()
	qc := &queueCore{cfg: queueapi.Config{EventID: event, TicketKey: key, Commitment: queue.Commitment(seed),
		OnSaleAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), Seed: seed}}
	qs, err := queueapi.Serve(coreNC, qc)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = qs.Stop() }()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	as, err := admissionapi.Serve(coreNC, admissionapi.Server{Signer: signer, Keys: ring,
		Allow: func(context.Context, string, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = as.Stop() }()
	reports := make(chan queueapi.Report, 100)
	rsub, err := coreNC.Subscribe(queueapi.ReportSubject(event), func(m *nats.Msg) {
		var r queueapi.Report
		if json.Unmarshal(m.Data, &r) == nil {
			select {
			case reports <- r:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rsub.Unsubscribe() }()

	sup := supervisortest.New(t)
	defer func() { _ = sup.Shutdown() }()
	e, err := edge.Start(ctx, edge.Config{
		HTTPAddr:  "127.0.0.1:0",
		Leaf:      leafnodes.EdgeConfig{Name: "edge-t", ClientAddr: "-", Hubs: []string{core.LeafURL()}},
		RateLimit: edge.RateLimitConfig{Disabled: true},
		Queue:     edgequeue.Config{MinPushInterval: 1}, // push admissions at once
	}, sup, discard(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}

	host := strings.TrimPrefix(e.URL(), "http://")
	dial := func(session string) *websocket.Conn {
		t.Helper()
		cfg, err := websocket.NewConfig("ws://"+host+"/v1/events/"+event+"/queue", e.URL())
		if err != nil {
			t.Fatal(err)
		}
		cfg.Header = http.Header{"Cookie": {"tq_session=" + session}}
		ws, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ws.Close() })
		return ws
	}
	next := func(ws *websocket.Conn, what string, ok func(edgequeue.Status) bool) edgequeue.Status {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			var s edgequeue.Status
			if err := json.Unmarshal([]byte(msg), &s); err != nil {
				t.Fatalf("push %q: %v", msg, err)
			}
			if ok(s) {
				return s
			}
		}
	}
	const n = 5
	sessions := make([]string, n)
	socks := make([]*websocket.Conn, n)
	for i := range n {
		sessions[i] = base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("test-session-%03d", i)))
		socks[i] = dial(sessions[i])
		s := next(socks[i], "the first push", func(edgequeue.Status) bool { return true })
		if s.State != "queued" || s.Position != i+1 || s.EventID != event {
			t.Fatalf("join %d: %+v", i, s)
		}
	}
	// The edge reports its line to the core over the leaf node.
	deadline := time.After(20 * time.Second)
	for got := false; !got; {
		select {
		case r := <-reports:
			got = r.Edge == "edge-t" && r.Waiting == n && r.Joined == n
		case <-deadline:
			t.Fatal("no report of the line reached the core")
		}
	}
	decide := func(seq uint64, d queueapi.Decision) {
		d.EventID, d.Seq, d.At = event, seq, time.Now()
		b, _ := json.Marshal(d)
		if err := coreNC.Publish(queueapi.DecisionSubject(event), b); err != nil {
			t.Fatal(err)
		}
	}
	// The core admits one: the first in line is pushed its token.
	decide(1, queueapi.Decision{Edges: []queue.EdgeAdmit{{Edge: "edge-t", Admit: 1, Reachable: n}}})
	s := next(socks[0], "admission", func(s edgequeue.Status) bool { return s.State == "admitted" })
	v, err := admission.NewVerifier(ring.PublicKeys(), nil, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ticket := queue.TicketFor(key, sessions[0])
	if _, err := v.Verify(s.Token, event, ticket.String(), time.Now()); err != nil {
		t.Fatalf("the pushed token does not verify for the user's ticket: %v", err)
	}
	// Everyone else moved up one.
	for i := 1; i < n; i++ {
		next(socks[i], "the new place", func(s edgequeue.Status) bool { return s.Position == i })
	}
	// Reconnecting keeps the place.
	_ = socks[3].Close()
	socks[3] = dial(sessions[3])
	if s := next(socks[3], "the push after reconnecting", func(edgequeue.Status) bool { return true }); s.State != "queued" || s.Position != 3 {
		t.Fatalf("after reconnecting: %+v", s)
	}
	// Sold out reaches every waiting socket; the admitted user stays admitted.
	decide(2, queueapi.Decision{SoldOut: true})
	for i := 1; i < n; i++ {
		next(socks[i], "sold out", func(s edgequeue.Status) bool { return s.State == "sold_out" && s.LikelySoldOut })
	}
	// The JSON status agrees, and the key set is served.
	resp, err := httpGetCookie(e.URL()+"/v1/events/"+event+"/queue/status", sessions[2])
	if err != nil || resp.State != "sold_out" {
		t.Fatalf("JSON status: %+v %v", resp, err)
	}
	r, err := http.Get(e.URL() + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var jwks keyring.JWKS
	if err := json.NewDecoder(r.Body).Decode(&jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].KID != ring.ActiveKID() {
		t.Fatalf("jwks: %+v %v", jwks, err)
	}
}

func httpGetCookie(url, session string) (edgequeue.Status, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Cookie", "tq_session="+session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return edgequeue.Status{}, err
	}
	defer resp.Body.Close()
	var s edgequeue.Status
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
