package main

// The checkout's kill table: the core, the edge, the payment service, the
// gateway simulator and PostgreSQL, each as its own process, killed with
// SIGKILL (PostgreSQL: an immediate stop, its crash) in turn while
// purchases go through the edge, each kill timed to land while orders are
// at every step of the saga; then a checker over the stores, the
// simulator's records and the EVENTS stream proves that no money and no
// seat went astray.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/internal/tlsconf"
)

// The processes a kill may hit, in the order the test kills them.
const (
	victimPSP      = "psp"
	victimPayment  = "payment"
	victimEdge     = "edge"
	victimPostgres = "postgres"
	victimCore     = "core"
)

var killOrder = []string{victimPSP, victimPayment, victimEdge, victimPostgres, victimCore}

// The saga's steps a kill may land in: the rows of the table.
const (
	stepPay     = "pay: payment in flight"
	step3DS     = "3-D Secure: challenge open"
	stepConfirm = "confirm: captured, seats not yet sold"
	stepExpiry  = "expiry: expiring or compensating"
	stepRefund  = "refund: refund running"
)

var killSteps = []string{stepPay, step3DS, stepConfirm, stepExpiry, stepRefund}

// requiredSteps are the steps every kill waits for (confirm's window is
// milliseconds unless a webhook is late: it is taken when it is there).
var requiredSteps = []string{stepPay, step3DS, stepExpiry, stepRefund}

const (
	ktSecretKey     = "sk_test_killtable"
	ktWebhookSecret = "whsec_killtable"
)

// killRig is the system under test: a core with its orders in PostgreSQL,
// the gateway simulator, the payment service with its ledger and vault in
// PostgreSQL, an edge; all processes of the race-built binary.
type killRig struct {
	t    *testing.T
	pg   *privatePG
	core *coreProc
	psp  *proc
	pay  *proc
	edge *proc

	pspAddr, pspOps, payAddr, payOps, edgeAddr string
	// tls trusts the test CA (the edge's API); plain is for the
	// simulator and the payment service's HTTP side; neither follows
	// redirects (a browser's return from 3-D Secure is followed by hand).
	tls, plain *http.Client
	orders     *pgxpool.Pool // the orders database, for snapshots and the checker
	payments   *pgxpool.Pool // the payment service's
	logs       int           // logs kept (keepLog)
	// brokers and topic: the Kafka the bridge mirrors EVENTS into (the
	// devstack's when TICKETING_KAFKA_BROKERS says so, else an embedded
	// broker), named by kafka.
	brokers []string
	topic   string
	kafka   string
	bridge  *proc
}

func startKillRig(t *testing.T) *killRig {
	t.Helper()
	r := &killRig{t: t, pg: startPrivatePG(t)}
	r.pg.createDB("orders")
	r.pg.createDB("payments")
	r.pspAddr, r.pspOps, r.payAddr, r.payOps, r.edgeAddr = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	noFollow := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tc, err := tlsconf.Client(tlsconf.Files{CA: testSecrets.CA()})
	if err != nil {
		t.Fatal(err)
	}
	r.tls = &http.Client{Timeout: 45 * time.Second, CheckRedirect: noFollow,
		Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 128}}
	r.plain = &http.Client{Timeout: 20 * time.Second, CheckRedirect: noFollow,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(func() { r.tls.CloseIdleConnections(); r.plain.CloseIdleConnections() })

	r.core = newCores(t, 1, "--orders-pg-url", r.pg.url("orders"), "--purchase-limit", "10000")[0]
	r.core.start()
	dir := t.TempDir()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyring := filepath.Join(dir, "keyring.json")
	if err := os.WriteFile(keyring, []byte(`{"active":"k1","keys":{"k1":"`+hex.EncodeToString(key)+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The gateway's faults widen the windows a kill lands in: answers
	// held before the operation (slow) and after it (timeout), effects
	// whose answers are lost (error after), late, repeated webhooks.
	r.psp = startProc(t, "psp", nil, "psp", "--addr", r.pspAddr, "--ops", r.pspOps, "--data", filepath.Join(dir, "psp"),
		"--secret-key", ktSecretKey, "--webhook-url", "http://"+r.payAddr+"/v1/webhooks/gateway", "--webhook-secret", ktWebhookSecret,
		"--webhook-retry-initial", "100ms", "--webhook-retry-max", "1s", "--log-format", "text",
		"--seed", "7", "--fault-ops", "create,confirm,cancel,refund",
		"--fault-slow", "0.3", "--fault-slow-latency", "1500ms",
		"--fault-timeout", "0.05", "--fault-timeout-hold", "2s",
		"--fault-error-after", "0.08",
		"--fault-webhook-duplicate", "0.2", "--fault-webhook-delay", "0.2", "--fault-webhook-delay-by", "1s")
	r.core.waitReady(120 * time.Second)
	r.pay = startProc(t, "payment", nil, "payment", "--name", "payment-1", "--nats", "tls://"+r.core.natsAddr,
		"--secrets", testSecrets.Dir, "--payment-http", r.payAddr, "--ops", r.payOps,
		"--checkout-origin", "https://"+r.edgeAddr, "--gateway-url", "http://"+r.pspAddr,
		"--gateway-secret-key", ktSecretKey, "--gateway-webhook-secret", ktWebhookSecret,
		"--payment-pg-url", r.pg.url("payments"), "--keyring-file", keyring, "--log-format", "text")
	r.edge = startProc(t, "edge", nil, "edge", "--name", "edge-kill", "--http", r.edgeAddr,
		"--hubs", "nats-leaf://"+r.core.leafAddr, "--secrets", testSecrets.Dir, "--no-limits", "--log-format", "text")
	// A bridge of its own, into topics of its own: on the devstack's
	// Kafka when it is configured (other tests share it), else on a
	// Kafka-protocol broker in the test process (kfake).
	if b := strings.TrimSpace(os.Getenv(testservers.EnvKafkaBrokers)); b != "" {
		r.brokers = strings.Split(b, ",")
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := testservers.PingKafka(pctx, r.brokers)
		cancel()
		if err != nil {
			t.Fatalf("%s is set, but Kafka does not answer: %v", testservers.EnvKafkaBrokers, err)
		}
		r.kafka = "Kafka at " + b
	} else {
		broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = broker.Shutdown(ctx)
		})
		r.brokers, r.kafka = broker.Brokers(), "an embedded broker (kfake; no TICKETING_KAFKA_BROKERS)"
	}
	var run [4]byte
	_, _ = rand.Read(run[:])
	prefix := "killtable-" + hex.EncodeToString(run[:])
	r.topic = prefix + ".events"
	r.bridge = startProc(t, "bridge", nil, "bridge", "--name", "bridge-kill", "--nats", "tls://"+r.core.natsAddr,
		"--secrets", testSecrets.Dir, "--brokers", strings.Join(r.brokers, ","), "--ops", freeAddr(t), "--partitions", "2",
		"--routes", "ticketing.inventory.="+prefix+".inventory", "--default-topic", r.topic, "--log-format", "text")
	for _, v := range []string{victimPSP, victimPayment, victimEdge} {
		r.waitUp(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range []struct {
		name string
		pool **pgxpool.Pool
	}{{"orders", &r.orders}, {"payments", &r.payments}} {
		pool, err := postgres.Open(ctx, postgres.Config{URL: r.pg.url(db.name), MaxConns: 4, ApplicationName: "killtable-checker"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		*db.pool = pool
	}
	return r
}

// keepLog writes the victim's log so far into $TICKETING_KILLTABLE_LOGS,
// when set (the logs of every incarnation, for a failure's inquest).
func (r *killRig) keepLog(victim string) {
	dir := os.Getenv("TICKETING_KILLTABLE_LOGS")
	if dir == "" {
		return
	}
	var out *lockedBuffer
	switch victim {
	case victimCore:
		out = r.core.out
	case victimPSP:
		out = r.psp.out
	case victimPayment:
		out = r.pay.out
	case victimEdge:
		out = r.edge.out
	default:
		return
	}
	r.logs++
	name := filepath.Join(dir, fmt.Sprintf("%02d-%s.log", r.logs, victim))
	if err := os.WriteFile(name, []byte(out.String()), 0o644); err != nil {
		r.t.Log(err)
	}
}

// kill kills a process with SIGKILL, or crashes PostgreSQL.
func (r *killRig) kill(victim string) {
	r.t.Helper()
	defer r.keepLog(victim)
	switch victim {
	case victimCore:
		r.core.kill9()
	case victimPSP:
		r.psp.kill9()
	case victimPayment:
		r.pay.kill9()
	case victimEdge:
		r.edge.kill9()
	case victimPostgres:
		r.pg.crash()
	}
}

// restart starts the victim again and waits until it is ready.
func (r *killRig) restart(victim string) {
	r.t.Helper()
	switch victim {
	case victimCore:
		r.core.start()
	case victimPSP:
		r.psp.start()
	case victimPayment:
		r.pay.start()
	case victimEdge:
		r.edge.start()
	case victimPostgres:
		r.pg.start()
	}
	r.waitUp(victim)
}

// waitUp waits until the process answers its readiness probe.
func (r *killRig) waitUp(victim string) {
	r.t.Helper()
	switch victim {
	case victimCore:
		r.core.waitReady(120 * time.Second)
	case victimPSP:
		eventually.Nil(r.t, 60*time.Second, func() error {
			if r.psp.cmd.ProcessState != nil {
				return fmt.Errorf("psp exited: %v", r.psp.cmd.ProcessState)
			}
			resp, err := r.plain.Get("http://" + r.pspOps + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("psp readyz %d", resp.StatusCode)
			}
			return nil
		})
	case victimPayment:
		waitReadyz(r.t, r.pay.cmd, "https://"+r.payOps+"/readyz", testSecrets)
	case victimEdge:
		waitReadyz(r.t, r.edge.cmd, "https://"+r.edgeAddr+"/readyz", testSecrets)
	case victimPostgres:
		// pg_ctl start -w has waited.
	}
}

// simGet reads one of the simulator's /_sim resources.
func (r *killRig) simGet(ctx context.Context, path string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.pspAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+ktSecretKey)
	resp, err := r.plain.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return b, err
}

// killPoint is one kill: what was killed, when, and which orders were at
// which step of the saga as it happened.
type killPoint struct {
	victim   string
	at       time.Duration // since the workload started
	waited   time.Duration // for the steps to fill
	back     time.Duration // from the kill until it answered again
	steps    map[string][]string
	unfilled []string // steps with no order at the kill
}

// TestCheckoutKillTable is the checkout's kill table. 24 buyers purchase
// concurrently through the edge's HTTP API (hold → order → card at the
// payment service → pay), with vouchers and add-ons: frictionless cards,
// 3-D Secure cards whose challenge the buyer completes, declines, a card
// declined then another, a challenge that declines, challenges abandoned
// and orders left unpaid to expire on short holds, seats paid as their
// holds end (late payments, a rival after the seat), orders cancelled,
// orders refunded by an admin. Meanwhile each process is killed in turn
// (killOrder) at a moment when orders are at each step of the saga
// (killSteps), kept down a moment, and started again. Then, with
// everything up and the saga settled, the checker (checkKillTable) proves
// the invariants (killInvariants) over the stores, the simulator, EVENTS
// and Kafka, and the table (step × process killed → the orders'
// outcomes) is logged. TICKETING_KILLTABLE_LOGS=dir keeps every process's
// log.
func TestCheckoutKillTable(t *testing.T) {
	if testing.Short() {
		t.Skip("a multi-process kill test")
	}
	r := startKillRig(t)
	t.Cleanup(func() {
		for _, v := range []string{victimCore, victimPSP, victimPayment, victimEdge} {
			r.keepLog(v)
		}
	})
	w := newKillWorkload(t, r)
	start := time.Now()
	w.start(24)
	var kills []killPoint
	for _, victim := range killOrder {
		// Each kill's orders run on a while before the next kill.
		kp := w.killWhenStepsFill(victim, start, 3*time.Second)
		kills = append(kills, kp)
		t.Logf("killed %s at %v after waiting %v for the steps; back in %v", victim, kp.at.Round(time.Millisecond),
			kp.waited.Round(time.Millisecond), kp.back.Round(time.Millisecond))
	}
	w.stopAndWait()
	t.Logf("workload done after %v: %s", time.Since(start).Round(time.Millisecond), w.summary())
	facts := w.settle(start)
	res := checkKillTable(facts)
	t.Log(killTable(kills, facts, res))
	for _, inv := range killInvariants {
		if v := res.violations[inv]; len(v) > 0 {
			t.Errorf("invariant %q broken %d times:\n  %s", inv, len(v), strings.Join(first(v, 12), "\n  "))
		}
	}
	for _, kp := range kills {
		for _, s := range kp.unfilled {
			if slices.Contains(requiredSteps, s) {
				t.Errorf("the %s kill hit no order at step %q", kp.victim, s)
			}
		}
	}
	if len(facts.orders) < 40 {
		t.Errorf("only %d orders: the table says little", len(facts.orders))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("… and %d more", len(s)-n))
	}
	return s
}
