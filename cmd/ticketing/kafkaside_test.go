package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/lease"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
	reportingapi "github.com/ticketing/ticketing/services/reporting/natsapi"
)

// proc is a ticketing process other than a core.
type proc struct {
	t    *testing.T
	name string
	args []string
	env  []string
	cmd  *exec.Cmd
	out  *lockedBuffer
}

func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, args: args, env: env}
	p.start()
	return p
}

func (p *proc) start() {
	p.t.Helper()
	p.cmd = exec.Command(binPath, p.args...)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.out = &lockedBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd, out := p.cmd, p.out
	p.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if p.t.Failed() {
			p.t.Logf("--- log of %s ---\n%s", p.name, tail(out.String(), 40))
		}
	})
}

func (p *proc) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// TestBridgeAndConsumersAsProcesses runs the Kafka side as an operator
// would: a core, two `ticketing bridge` processes (one stands by) and a
// `ticketing consume` process on PostgreSQL, against a Kafka-protocol
// broker. Sales go through the edge; the active bridge and the consumers
// are killed with SIGKILL mid-stream; afterwards the report counts every
// sale once and `ticketing audit verify` passes on the PostgreSQL log.
func TestBridgeAndConsumersAsProcesses(t *testing.T) {
	pg := pgtest.Config(t)
	pgURL := pg.URL + "&search_path=" + pg.SearchPath
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = broker.Shutdown(ctx)
	})
	cores := newCores(t, 1)
	c := cores[0]
	c.start()
	c.waitReady(60 * time.Second)
	a := newAPI(t, startEdge(t, cores))
	a.createEvent("kside", 0, 5000, nil)

	brokers := strings.Join(broker.Brokers(), ",")
	natsFlags := []string{"--nats", "tls://" + c.natsAddr, "--log-format", "text", "--secrets", testSecrets.Dir}
	bridgeProc := func(name string) *proc {
		return startProc(t, name, nil, append([]string{"bridge", "--name", name, "--brokers", brokers, "--ops", freeAddr(t),
			"--partitions", "4", "--routes", "ticketing.inventory.=kside.inventory", "--default-topic", "kside.events"}, natsFlags...)...)
	}
	bridges := map[string]*proc{"bridge-1": bridgeProc("bridge-1"), "bridge-2": bridgeProc("bridge-2")}
	// Topics of its own: the mapping is the operator's (--routes,
	// --default-topic), and the consumers follow it.
	consumeArgs := append([]string{"consume", "--brokers", brokers, "--pg-url", pgURL, "--instance", "test",
		"--inventory-topic", "kside.inventory", "--events-topic", "kside.events", "--ops", freeAddr(t)}, natsFlags...)
	consume := startProc(t, "consume", nil, consumeArgs...)

	nc := c.conn()
	inv := &natsapi.Client{NC: nc, Timeout: 10 * time.Second}
	reports := &reportingapi.Client{NC: nc}
	ctx := context.Background()
	// sell places and confirms n holds of 2 tickets each.
	sold := 0
	sell := func(n int) {
		t.Helper()
		for range n {
			h, err := inv.Hold(ctx, "kside.0", inventory.HoldRequest{Zone: "ga", Quantity: 2,
				IdempotencyKey: fmt.Sprintf("anon:kside-%d", sold), Fingerprint: "kside"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inv.Confirm(ctx, inventory.ConfirmRequest{HoldID: h.HoldID, OrderID: fmt.Sprintf("o-%d", sold)}); err != nil {
				t.Fatal(err)
			}
			sold++
		}
	}
	soldInReport := func() (int64, error) {
		r, err := reports.EventReport(ctx, "kside")
		if err != nil {
			return 0, err
		}
		return r.Totals.Sold, nil
	}
	waitSold := func(want int) {
		t.Helper()
		eventually.Nil(t, 90*time.Second, func() error {
			got, err := soldInReport()
			if err == nil && got != int64(want) {
				err = fmt.Errorf("report: %d tickets sold, want %d", got, want)
			}
			return err
		})
	}

	sell(100)
	waitSold(200)
	// Kill the consumers mid-stream, and then the active bridge.
	sell(100)
	consume.kill9()
	consume = startProc(t, "consume", nil, consumeArgs...)
	sell(100)
	active := ""
	eventually.Nil(t, 30*time.Second, func() error {
		b, err := kvHolder(nc, "bridge-leases", "EVENTS")
		active = b
		return err
	})
	bridges[active].kill9()
	sell(100)
	waitSold(800)
	// Every sale once: what Kafka gave the consumers matches the inventory.
	av, err := a.availability("kside")
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range av.Zones {
		if z.ID == "ga" && z.Sold != 800 {
			t.Fatalf("the inventory sold %d tickets, the report 800", z.Sold)
		}
	}
	_ = consume.cmd.Process.Signal(syscall.SIGTERM)
	_ = consume.cmd.Wait()

	cmd := exec.Command(binPath, "audit", "verify", "--pg-url", pgURL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
}

// kvHolder is who holds the lease key of bucket.
func kvHolder(nc *nats.Conn, bucket, key string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return "", err
	}
	r, ok, err := lease.Holder(ctx, kv, key)
	if err == nil && !ok {
		err = fmt.Errorf("nobody holds %s/%s", bucket, key)
	}
	return r.Holder, err
}

// exited waits up to timeout for p to exit and returns its exit code.
func (p *proc) exited(timeout time.Duration) int {
	p.t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("%s: %v", p.name, err)
		}
		return 0
	case <-time.After(timeout):
		p.t.Fatalf("%s did not exit within %v", p.name, timeout)
		return -1
	}
}

// readyz is a process's /readyz answer: its supervisor's report.
func readyz(addr string) (supervisor.Report, error) {
	var r supervisor.Report
	resp, err := httpsClient(testSecrets).Get("https://" + addr + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, err
	}
	if resp.StatusCode != http.StatusOK || !r.Ready() {
		return r, fmt.Errorf("readyz %d: %+v", resp.StatusCode, r)
	}
	return r, nil
}

// TestKafkaSideBridgeFails: `ticketing bridge` exits non-zero when its
// ops address is taken at start, and when a component fails after the
// start: the core it connects to goes away for good and its connection
// gives up reconnecting. (TestProcessesStopInOrder stops it with SIGTERM.)
func TestKafkaSideBridgeFails(t *testing.T) {
	broker, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Shutdown(context.Background()) })
	cores := newCores(t, 1)
	c := cores[0]
	c.start()
	c.waitReady(60 * time.Second)
	bridgeProc := func(name, ops string) *proc {
		return startProc(t, name, nil, "bridge", "--name", name, "--brokers", strings.Join(broker.Brokers(), ","), "--ops", ops,
			"--nats", "tls://"+c.natsAddr, "--nats-max-reconnects", "2", "--shutdown-timeout", "15s", "--log-format", "json",
			"--secrets", testSecrets.Dir)
	}

	// Its ops address is taken: it exits non-zero at once.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	b := bridgeProc("bridge-taken", taken.Addr().String())
	if code := b.exited(60 * time.Second); code == 0 || !strings.Contains(b.out.String(), "ops listener") {
		t.Fatalf("a bridge with its ops address taken exited %d, want non-zero\n%s", code, tail(b.out.String(), 20))
	}

	// The core goes away for good: after its reconnects the bridge fails
	// and exits non-zero, naming the component, its components stopped.
	ops := freeAddr(t)
	b = bridgeProc("bridge-1", ops)
	eventually.Nil(t, 60*time.Second, func() error { _, err := readyz(ops); return err })
	// Once the mirror holds the lease it rides out any error; only the
	// connection can fail then.
	eventually.Nil(t, 60*time.Second, func() error {
		resp, err := httpsClient(testSecrets).Get("https://" + ops + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && !strings.Contains(string(b), "\nticketing_bridge_active 1\n") {
			err = errors.New("the mirror is not active yet")
		}
		return err
	})
	c.kill9()
	if code := b.exited(90 * time.Second); code == 0 {
		t.Fatalf("the bridge exited 0 after its core went away, want non-zero\n%s", tail(b.out.String(), 20))
	}
	out := b.out.String()
	if !strings.Contains(out, "nats-bridge failed") || !strings.Contains(out, "connection closed") {
		t.Fatalf("the bridge does not say which component failed:\n%s", tail(out, 20))
	}
	if got, want := stopped(t, out), []string{"ops", "mirror", "nats-bridge"}; !slices.Equal(got, want) {
		t.Fatalf("the bridge stopped %v, want %v", got, want)
	}
}
