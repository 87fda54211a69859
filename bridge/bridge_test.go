package bridge_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ticketing/ticketing/bridge"
	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/supervisor"
	"github.com/ticketing/ticketing/internal/supervisor/supervisortest"
)

// process is the Kafka side of one process, in the test's.
type process struct {
	t     *testing.T
	sup   *supervisor.Supervisor
	b     *bridge.Bridge
	stops *supervisortest.Stops
	mu    sync.Mutex
	conns map[string]*nats.Conn // by name, as the runtime dialed them
}

// core starts a core node with its streams.
func core(t *testing.T) *node.Node {
	t.Helper()
	n, _, js := nodetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return n
}

// start starts cfg's parts under a supervisor of their own, connected to
// n, and waits until they are ready.
func start(t *testing.T, n *node.Node, cfg bridge.Config) *process {
	t.Helper()
	p := &process{t: t, conns: map[string]*nats.Conn{}}
	p.sup, p.stops = supervisortest.Recording(t)
	dial := func(name string, opts ...nats.Option) (*nats.Conn, error) {
		nc, err := n.Connect(name, opts...)
		if err == nil {
			p.mu.Lock()
			p.conns[name] = nc
			p.mu.Unlock()
		}
		return nc, err
	}
	var err error
	if p.b, err = bridge.Start(t.Context(), cfg, p.sup, dial, quiet, nil); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, time.Minute, "every component ready", func() bool { return p.sup.Report().Ready() })
	return p
}

// conn is the connection the runtime dialed as name.
func (p *process) conn(name string) *nats.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	nc := p.conns[name]
	if nc == nil {
		p.t.Fatalf("no connection %s", name)
	}
	return nc
}

// components are the names of the running components, in start order.
func (p *process) components() []string {
	var names []string
	for _, c := range p.sup.Report().Components {
		names = append(names, c.Name)
	}
	return names
}

// failed waits for the supervisor to end after a failure, and checks that
// its error names the failed component, and that every component was
// stopped in the reverse of start order.
func (p *process) failed(started []string, component, because string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := p.sup.Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), component+" failed") || !strings.Contains(err.Error(), because) {
		p.t.Fatalf("wait: %v, want the failure of %s (%s)", err, component, because)
	}
	if ctx.Err() != nil {
		p.t.Fatal("the supervisor did not shut down after the failure")
	}
	want := slices.Clone(started)
	slices.Reverse(want)
	if got := p.stops.Names(); !slices.Equal(got, want) {
		p.t.Fatalf("stopped in the order %v, want %v", got, want)
	}
	for _, c := range p.sup.Report().Components {
		if c.State == supervisor.Running || c.State == supervisor.Stopping || (c.State == supervisor.Failed) != (c.Name == component) {
			p.t.Errorf("after the shutdown: %+v", c)
		}
	}
	p.t.Logf("%v, stopped in order %v", err, want)
}

func mirrorConfig(replicas int) *mirror.Config {
	return &mirror.Config{Name: "test", Replicas: replicas, LeaseTTL: 2 * time.Second, Kafka: kafka.ProducerConfig{Topics: kafka.TopicMap{Partitions: 2}}}
}

// TestBridgeFailsWhenTheMirrorStops: the process shape of `ticketing
// bridge`. A mirror that stops on its own (here: it cannot make its lease
// bucket, asked for three replicas on one server) fails the process: the
// supervisor stops the rest in order and Wait says why.
func TestBridgeFailsWhenTheMirrorStops(t *testing.T) {
	n := core(t)
	p := &process{t: t}
	p.sup, p.stops = supervisortest.Recording(t)
	_, err := bridge.Start(t.Context(), bridge.Config{Kafka: kafka.ClientConfig{Brokers: embeddedBroker(t)}, Mirror: mirrorConfig(3)},
		p.sup, n.Connect, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.failed([]string{"nats-bridge", "mirror"}, "mirror", "lease bucket")
}

// TestBridgeFailsWhenItsConnectionCloses: `ticketing bridge` whose
// connection to the core closes for good fails; a clean stop is no
// failure.
func TestBridgeFailsWhenItsConnectionCloses(t *testing.T) {
	n := core(t)
	brokers := embeddedBroker(t)
	cfg := bridge.Config{Kafka: kafka.ClientConfig{Brokers: brokers}, Mirror: mirrorConfig(1)}
	p := start(t, n, cfg)
	eventually.True(t, time.Minute, "the mirror active", func() bool { return p.b.Mirror().Stats().Active })
	started := p.components()
	p.conn("bridge").Close()
	p.failed(started, "nats-bridge", "connection closed")

	clean := start(t, n, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := clean.sup.Wait(ctx); err != nil {
		t.Fatalf("a shutdown asked for: %v", err)
	}
}

// TestConsumeFailsWhenItsConnectionCloses: the process shape of `ticketing
// consume`, every consumer on its embedded store; the consumers'
// connection to the core (their micro services, reporting's store) closes
// for good.
func TestConsumeFailsWhenItsConnectionCloses(t *testing.T) {
	n := core(t)
	p := start(t, n, bridge.Config{Kafka: kafka.ClientConfig{Brokers: embeddedBroker(t)},
		Consumers: bridge.ConsumersConfig{Run: bridge.ConsumerNames, Dir: t.TempDir(), Export: discard{}}})
	started := p.components()
	want := []string{"nats-consumers", "reporting-consumer", "reporting-api", "reporting-export",
		"analytics-consumer", "analytics-api", "audit-log", "audit-consumer"}
	if !slices.Equal(started, want) {
		t.Fatalf("components %v, want %v", started, want)
	}
	p.conn("consumers").Close()
	p.failed(started, "nats-consumers", "connection closed")
}

// TestDevKafkaSideFails: the Kafka side of `ticketing dev` (the embedded
// broker, the mirror, every consumer); the mirror's connection closes for
// good: the consumers stop first, then the mirror, the broker last.
func TestDevKafkaSideFails(t *testing.T) {
	n := core(t)
	p := start(t, n, bridge.Config{Embedded: &kafka.EmbeddedConfig{DataDir: t.TempDir()}, Mirror: mirrorConfig(1),
		Consumers: bridge.ConsumersConfig{Run: bridge.ConsumerNames, Dir: t.TempDir(), Instance: "dev"}})
	started := p.components()
	if started[0] != "kafka-broker" || started[1] != "nats-bridge" || started[2] != "mirror" {
		t.Fatalf("components %v: want the broker, then the mirror, then the consumers", started)
	}
	// Active, the mirror rides out errors: only its connection fails.
	eventually.True(t, time.Minute, "the mirror active", func() bool { return p.b.Mirror().Stats().Active })
	p.conn("bridge").Close()
	p.failed(started, "nats-bridge", "connection closed")
}

// discard is an export sink that keeps nothing.
type discard struct{}

func (discard) Put(context.Context, string, []byte) error { return nil }
