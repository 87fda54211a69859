package mirror_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/internal/lease"
)

// Environment of a bridge child process (TestBridgeChild).
const (
	childNATS    = "BRIDGE_CHILD_NATS" // url user password, space-separated
	childBrokers = "BRIDGE_CHILD_BROKERS"
	childName    = "BRIDGE_CHILD_NAME"
	childTopics  = "BRIDGE_CHILD_TOPICS" // named(): topics of their own on a shared broker
)

// TestBridgeChild is not a test: it is a bridge process that the crash tests
// start, kill and pause. It runs only with BRIDGE_CHILD_NATS set.
func TestBridgeChild(t *testing.T) {
	env := os.Getenv(childNATS)
	if env == "" {
		return
	}
	f := strings.Fields(env)
	nc, err := nats.Connect(f[0], nats.UserInfo(f[1], f[2]), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(os.Getenv(childName), strings.Split(os.Getenv(childBrokers), ","))
	if id := os.Getenv(childTopics); id != "" {
		cfg = named(cfg, id)
	}
	b, err := mirror.New(cfg, nc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type child struct {
	name string
	cmd  *exec.Cmd
}

func startChild(t *testing.T, name, natsEnv string, brokers []string, topics string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBridgeChild$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), childNATS+"="+natsEnv, childBrokers+"="+strings.Join(brokers, ","), childName+"="+name, childTopics+"="+topics)
	logf, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{name: name, cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("bridge process %s (pid %d) said:\n%s", name, cmd.Process.Pid, b[max(0, len(b)-4000):])
		}
	})
	return c
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// TestCrashesAndPausesLoseAndDuplicateNothing runs two bridge processes
// against one stream and one broker, kills the active one with SIGKILL
// mid-stream, twice, and freezes it with SIGSTOP until the standby has taken
// over and mirrored more, then lets it run again: the resumed process's
// transaction is fenced. Afterwards Kafka holds every event exactly once,
// in order per key.
func TestCrashesAndPausesLoseAndDuplicateNothing(t *testing.T) {
	crashesAndPauses(t, embedded(t, kafka.EmbeddedConfig{}).Brokers(), false)
}

// crashesAndPauses runs the crash test against brokers; shared brokers get
// topics of the test's own.
func crashesAndPauses(t *testing.T, brokers []string, shared bool) {
	ctx := testCtx(t)
	n, _, js := core(t)
	user, pass := n.CoreCredentials()
	natsEnv := n.ClientURL() + " " + user + " " + pass
	topics := ""
	tm := kafka.TopicMap{}
	if shared {
		cfg := unique(config("", brokers))
		topics, tm = cfg.Kafka.TransactionalID, cfg.Kafka.Topics
	}
	children := map[string]*child{}
	for _, name := range []string{"c1", "c2"} {
		children[name] = startChild(t, name, natsEnv, brokers, topics)
	}
	var kv jetstream.KeyValue
	eventually.True(t, wait, "the lease bucket", func() bool { // created by the first child to start
		var err error
		kv, err = js.KeyValue(ctx, "bridge-leases")
		return err == nil
	})
	holder := func() string {
		var name string
		eventually.True(t, wait, "a lease holder", func() bool {
			r, ok, err := lease.Holder(ctx, kv, jsnames.Events)
			name = r.Holder
			return err == nil && ok
		})
		return name
	}
	ackFloor := func() uint64 {
		c, err := js.Consumer(ctx, jsnames.Events, "bridge")
		if err != nil {
			return 0
		}
		info, err := c.Info(ctx)
		if err != nil {
			return 0
		}
		return info.AckFloor.Stream
	}
	// Plain events and batches: a kill must not split a batch.
	p := &publisher{js: js, batch: 6}
	// mirroredPast waits until the bridge has committed past stream seq n.
	mirroredPast := func(n uint64) {
		eventually.True(t, wait, "mirroring", func() bool { return ackFloor() > n })
	}

	// Two kills mid-stream: the active process dies while events arrive
	// and while its transactions are open.
	for round := range 2 {
		before := p.seq()
		p.publish(ctx, t, 4000, 200)
		mirroredPast(before + 100)
		active := holder()
		children[active].kill(t)
		t.Logf("round %d: killed %s at ack floor %d of %d", round, active, ackFloor(), p.seq())
		children[active] = startChild(t, active, natsEnv, brokers, topics)
	}

	// A pause: the active process freezes with transactions in flight,
	// loses its lease, the other takes over; then the frozen one resumes.
	before := p.seq()
	p.publish(ctx, t, 4000, 200)
	mirroredPast(before + 100)
	frozen := holder()
	if err := children[frozen].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	p.publish(ctx, t, 2000, 200)
	eventually.True(t, wait, "takeover", func() bool {
		r, ok, err := lease.Holder(ctx, kv, jsnames.Events)
		return err == nil && ok && r.Holder != frozen
	})
	mirroredPast(p.seq() - 1)
	if err := children[frozen].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s was frozen; the other took over and mirrored up to %d", frozen, ackFloor())
	p.publish(ctx, t, 2000, 200)
	mirroredPast(p.seq() - 1)

	exactlyOnce(t, readAll(ctx, t, brokers, p.count(), tm), p.count())
}
