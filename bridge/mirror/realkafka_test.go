package mirror_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/testservers"
)

// unique gives a bridge config its own topics and transactional id, so
// that tests can share a real broker.
func unique(cfg mirror.Config) mirror.Config {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return named(cfg, "bt-"+hex.EncodeToString(b[:]))
}

// named gives a bridge config the topics and transactional id of id.
func named(cfg mirror.Config, id string) mirror.Config {
	cfg.Kafka.Topics.Routes = map[string]string{"ticketing.inventory.": id + ".inventory"}
	cfg.Kafka.Topics.Default = id + ".events"
	cfg.CheckpointTopic = id + ".checkpoint"
	cfg.UnroutableTopic = id + ".unroutable"
	cfg.Kafka.TransactionalID = id
	cfg.LeaseBucket = "bridge-leases"
	return cfg
}

// TestRealKafka mirrors to the devstack's Kafka broker, restarting the
// bridge in between.
func TestRealKafka(t *testing.T) {
	brokers := testservers.KafkaBrokers(t)
	ctx := testCtx(t)
	_, nc, js := core(t)
	p := &publisher{js: js}
	cfg := unique(config("real", brokers))
	p.publish(ctx, t, 3000, 200)
	b1, stop := run(t, cfg, nc)
	eventually.True(t, wait, "first bridge", func() bool { return b1.Stats().Checkpoint == 3000 })
	stop()
	p.publish(ctx, t, 2000, 200)
	b2, _ := run(t, cfg, nc)
	eventually.True(t, wait, "second bridge", func() bool { return b2.Stats().Checkpoint == 5000 })
	exactlyOnce(t, readAll(ctx, t, brokers, 5000, cfg.Kafka.Topics), 5000)
}

// TestRealKafkaCrashesAndPauses is TestCrashesAndPausesLoseAndDuplicateNothing
// against the devstack's Kafka broker.
func TestRealKafkaCrashesAndPauses(t *testing.T) {
	crashesAndPauses(t, testservers.KafkaBrokers(t), true)
}

// TestRealKafkaBrokerRestart starts a Kafka broker of its own (the
// devstack's, in a temporary directory on free ports), restarts it while the
// bridge mirrors, and checks that every event is in Kafka once.
func TestRealKafkaBrokerRestart(t *testing.T) {
	testservers.KafkaBrokers(t) // the devstack's jars are there when its broker is
	ctx := testCtx(t)
	k := privateKafka(t)
	k.up(ctx, t)
	_, nc, js := core(t)
	p := &publisher{js: js}
	cfg := unique(config("restart", k.brokers()))
	b, _ := run(t, cfg, nc)
	// Events keep coming while the broker stops and starts again: the
	// bridge waits, JetStream keeps them.
	published := p.background(ctx, t, 7000, 200)
	eventually.True(t, wait, "some mirrored", func() bool { return b.Stats().Checkpoint > 0 })
	k.down(ctx, t)
	t.Logf("broker stopped at checkpoint %d, %d events published", b.Stats().Checkpoint, p.count())
	k.up(ctx, t)
	published()
	eventually.True(t, wait, "all mirrored", func() bool { return b.Stats().Checkpoint == 7000 })
	exactlyOnce(t, readAll(ctx, t, k.brokers(), 7000, cfg.Kafka.Topics), 7000)
}

// kafkaBroker is a broker run by compose/devstack in a directory of its own.
type kafkaBroker struct {
	script, dir string
	port, ctl   int
}

func privateKafka(t *testing.T) *kafkaBroker {
	script, err := filepath.Abs("../../compose/devstack")
	if err != nil {
		t.Fatal(err)
	}
	k := &kafkaBroker{script: script, dir: t.TempDir(), port: freePort(t), ctl: freePort(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		k.run(ctx, t, "down", "kafka")
	})
	return k
}

func (k *kafkaBroker) brokers() []string { return []string{"127.0.0.1:" + strconv.Itoa(k.port)} }

func (k *kafkaBroker) up(ctx context.Context, t *testing.T)   { k.run(ctx, t, "up", "kafka") }
func (k *kafkaBroker) down(ctx context.Context, t *testing.T) { k.run(ctx, t, "down", "kafka") }

func (k *kafkaBroker) run(ctx context.Context, t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, k.script, args...)
	cmd.Env = append(os.Environ(),
		"TICKETING_DEVSTACK_DIR="+k.dir,
		"TICKETING_DEVSTACK_KAFKA_PORT="+strconv.Itoa(k.port),
		"TICKETING_DEVSTACK_KAFKA_CONTROLLER_PORT="+strconv.Itoa(k.ctl),
		"TICKETING_DEVSTACK_KAFKA_HEAP=256m",
		"TICKETING_DEVSTACK_STOP_TIMEOUT=30")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("devstack %v: %v\n%s", args, err, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
