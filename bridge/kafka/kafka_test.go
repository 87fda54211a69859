package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/kafka/kafkatest"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/testservers"
)

// TestContractKafka runs the contract suite against the real broker of
// `make test` (compose/devstack: Kafka 4, KRaft).
func TestContractKafka(t *testing.T) {
	brokers := testservers.KafkaBrokers(t)
	kafkatest.Run(t, kafkatest.Features{Transactions: true}, func(*testing.T) []string { return brokers })
}

// TestContractEmbedded runs the contract suite against the embedded broker
// of `ticketing dev`, with a data directory as dev runs it.
func TestContractEmbedded(t *testing.T) {
	e := startEmbedded(t, kafka.EmbeddedConfig{DataDir: t.TempDir()})
	kafkatest.Run(t, kafkatest.Features{Transactions: true}, func(*testing.T) []string { return e.Brokers() })
}

func startEmbedded(t *testing.T, c kafka.EmbeddedConfig) *kafka.Embedded {
	t.Helper()
	e, err := kafka.StartEmbedded(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEmbeddedPersists: with a data directory, topics, records and a
// group's committed offsets survive a restart of the embedded broker.
func TestEmbeddedPersists(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	const topic, group = "persisted", "persisted-readers"
	ensure(ctx, t, client, kafka.TopicSpec{Name: topic, Partitions: 2})
	produceN(ctx, t, client, topic, 0, 20)
	// Read and commit the first 8 records of each partition, or all.
	consumed := consume(ctx, t, client, group, topic, 8)
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	e = startEmbedded(t, kafka.EmbeddedConfig{DataDir: dir})
	client.Brokers = e.Brokers()
	a, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if n, err := a.Partitions(ctx, topic); err != nil || n != 2 {
		t.Fatalf("after a restart the topic has %d partitions, %v; want 2", n, err)
	}
	produceN(ctx, t, client, topic, 20, 10)
	rest := consume(ctx, t, client, group, topic, 30-len(consumed))
	seen := map[string]int{}
	for _, r := range append(consumed, rest...) {
		seen[string(r.Value)]++
	}
	for i := range 30 {
		if seen[strconv.Itoa(i)] != 1 {
			t.Fatalf("record %d read %d times across the restart (committed offsets or records lost)", i, seen[strconv.Itoa(i)])
		}
	}
}

// TestEmbeddedSurvivesProcessCrash: a process that dies without Shutdown
// (kill -9, a panic) loses nothing the broker acknowledged: records, topics
// and committed offsets are written to the data directory as they happen.
// The test runs the broker in a child process that exits mid-flight.
func TestEmbeddedSurvivesProcessCrash(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "kafka")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedSurvivesProcessCrash$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != crashExitCode {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ctx := testCtx(t)
	e := startEmbedded(t, kafka.EmbeddedConfig{DataDir: dir})
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	a, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ends, err := a.Kadm().ListEndOffsets(ctx, "crashed")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 20 {
		t.Fatalf("after a crash the topic holds %d records, want 20", total)
	}
	offsets, err := a.Kadm().FetchOffsets(ctx, "crashed-readers")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + ".committed")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseInt(string(b), 10, 64)
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != want || want == 0 {
		t.Fatalf("after a crash the group has committed %d records, want %d", committed, want)
	}
}

const (
	crashChildEnv = "KAFKATEST_CRASH_CHILD_DIR"
	crashExitCode = 3
)

func crashChild(t *testing.T, dir string) {
	ctx := testCtx(t)
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	ensure(ctx, t, client, kafka.TopicSpec{Name: "crashed", Partitions: 2})
	produceN(ctx, t, client, "crashed", 0, 20)
	got := consume(ctx, t, client, "crashed-readers", "crashed", 8)
	if err := os.WriteFile(dir+".committed", []byte(strconv.Itoa(len(got))), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Exit(crashExitCode) // no Shutdown: the broker never saves its state
}

// TestEmbeddedWithoutDataDirForgets documents the in-memory mode: a restart
// starts empty.
func TestEmbeddedWithoutDataDirForgets(t *testing.T) {
	ctx := testCtx(t)
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	ensure(ctx, t, client, kafka.TopicSpec{Name: "gone", Partitions: 1})
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e = startEmbedded(t, kafka.EmbeddedConfig{})
	client.Brokers = e.Brokers()
	a, err := kafka.NewAdmin(client)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Partitions(ctx, "gone"); errs.KindOf(err) != errs.NotFound {
		t.Fatalf("in-memory broker after a restart: %v, want the topic gone", err)
	}
}

func ensure(ctx context.Context, t *testing.T, c kafka.ClientConfig, specs ...kafka.TopicSpec) {
	t.Helper()
	a, err := kafka.NewAdmin(c)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.EnsureTopics(ctx, specs...); err != nil {
		t.Fatal(err)
	}
}

func produceN(ctx context.Context, t *testing.T, c kafka.ClientConfig, topic string, from, n int) {
	t.Helper()
	p, err := kafka.NewProducer(kafka.ProducerConfig{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	var recs []*kafka.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 5)), Value: []byte(strconv.Itoa(i))})
	}
	if err := p.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
}

// consume reads and commits at least n records, whole batches, and closes.
func consume(ctx context.Context, t *testing.T, c kafka.ClientConfig, group, topic string, n int) []*kafka.Record {
	t.Helper()
	cons, err := kafka.NewConsumer(kafka.ConsumerConfig{Client: c, Group: group, Topics: []string{topic}, MaxPollRecords: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close(ctx)
	var got []*kafka.Record
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = cons.Consume(cctx, func(_ context.Context, recs []*kafka.Record) error {
		got = append(got, recs...)
		if len(got) >= n {
			cancel() // after this batch is committed
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || ctx.Err() != nil {
		t.Fatalf("consume: %v", err)
	}
	return got
}

func TestConfigValidate(t *testing.T) {
	ok := kafka.ClientConfig{Brokers: []string{"127.0.0.1:9092"}}
	tests := []struct {
		name string
		err  func() error
	}{
		{"no brokers", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{})
			return err
		}},
		{"broker without port", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Client: kafka.ClientConfig{Brokers: []string{"kafka"}}})
			return err
		}},
		{"linger too long", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Client: ok, Linger: time.Minute})
			return err
		}},
		{"unknown compression", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Client: ok, Compression: "brotli"})
			return err
		}},
		{"bad topic in map", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Client: ok, Topics: kafka.TopicMap{Default: "a topic"}})
			return err
		}},
		{"transactional id on a plain producer", func() error {
			_, err := kafka.NewProducer(kafka.ProducerConfig{Client: ok, TransactionalID: "x"})
			return err
		}},
		{"transactional producer without id", func() error {
			_, err := kafka.NewTxProducer(kafka.ProducerConfig{Client: ok})
			return err
		}},
		{"consumer without group", func() error {
			_, err := kafka.NewConsumer(kafka.ConsumerConfig{Client: ok, Topics: []string{"t"}})
			return err
		}},
		{"consumer without topics", func() error {
			_, err := kafka.NewConsumer(kafka.ConsumerConfig{Client: ok, Group: "g"})
			return err
		}},
		{"consumer start at", func() error {
			_, err := kafka.NewConsumer(kafka.ConsumerConfig{Client: ok, Group: "g", Topics: []string{"t"}, StartAt: "middle"})
			return err
		}},
		{"heartbeat above session timeout", func() error {
			_, err := kafka.NewConsumer(kafka.ConsumerConfig{Client: ok, Group: "g", Topics: []string{"t"},
				SessionTimeout: time.Second, HeartbeatInterval: 2 * time.Second})
			return err
		}},
		{"embedded port", func() error {
			_, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Port: 70000})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.err(); errs.KindOf(err) != errs.Invalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
		})
	}

	var c kafka.ProducerConfig
	c.Client = ok
	c.Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestTopicMap(t *testing.T) {
	var m kafka.TopicMap
	m.Defaults()
	for typ, want := range map[string]string{
		"ticketing.inventory.seat_held": "ticketing.inventory",
		"ticketing.orders.placed":       "ticketing.events",
	} {
		if got, err := m.Topic(typ); err != nil || got != want {
			t.Errorf("Topic(%q) = %q, %v; want %q", typ, got, err, want)
		}
	}
	m = kafka.TopicMap{Routes: map[string]string{"a.": "short", "a.b.": "long"}}
	m.Defaults()
	if got, _ := m.Topic("a.b.c"); got != "long" {
		t.Errorf("longest prefix: got %q", got)
	}
	if got, _ := m.Topic("a.c"); got != "short" {
		t.Errorf("prefix: got %q", got)
	}
	if _, err := m.Topic("z"); errs.KindOf(err) != errs.Invalid {
		t.Errorf("no route and no default: %v", err)
	}
	specs := m.Specs()
	if len(specs) != 2 || specs[0].Name != "long" || specs[0].Partitions != 12 || specs[0].ReplicationFactor != -1 {
		t.Errorf("specs: %+v", specs)
	}
	for _, bad := range []string{"", ".", "..", "a/b", string(make([]byte, 250))} {
		if kafka.ValidateTopicName(bad) == nil {
			t.Errorf("topic name %q accepted", bad)
		}
	}
}

func TestRunnerConfig(t *testing.T) {
	c := kafka.RunnerConfig{Consumer: kafka.ConsumerConfig{Client: kafka.ClientConfig{Brokers: []string{"127.0.0.1:9092"}}, Group: "g", Topics: []string{"t"}}}
	c.Defaults()
	if err := c.Validate(); err != nil || c.RetryBackoff <= 0 || c.MaxRetryBackoff < c.RetryBackoff || c.Logger == nil {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for name, mut := range map[string]func(*kafka.RunnerConfig){
		"negative backoff":        func(c *kafka.RunnerConfig) { c.RetryBackoff = -1 },
		"max below the first":     func(c *kafka.RunnerConfig) { c.MaxRetryBackoff = c.RetryBackoff / 2 },
		"consumer without topics": func(c *kafka.RunnerConfig) { c.Consumer.Topics = nil },
	} {
		bad := c
		mut(&bad)
		if err := bad.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

const txCrashChildEnv = "KAFKATEST_TX_CRASH_CHILD_DIR"

// TestEmbeddedCrashWithOpenTransaction: the process dies with a
// transaction open (records produced, no commit). After a restart on the
// same data directory the open transaction must not hold back
// read_committed readers: a new producer with the same transactional id
// commits, and its record is read. (kfake aborts such a transaction on
// reload but writes no abort marker, so clients would skip every later
// batch of the same producer id; StartEmbedded writes the markers.)
func TestEmbeddedCrashWithOpenTransaction(t *testing.T) {
	if dir := os.Getenv(txCrashChildEnv); dir != "" {
		ctx := testCtx(t)
		e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		client := kafka.ClientConfig{Brokers: e.Brokers()}
		ensure(ctx, t, client, kafka.TopicSpec{Name: "txcrash", Partitions: 1})
		p, err := kafka.NewTxProducer(kafka.ProducerConfig{Client: client, TransactionalID: "txcrash"})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error {
			return tx.Produce(ctx, &kafka.Record{Topic: "txcrash", Value: []byte("committed")})
		}); err != nil {
			t.Fatal(err)
		}
		_ = p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error {
			if err := tx.Produce(ctx, &kafka.Record{Topic: "txcrash", Value: []byte("open")}); err != nil {
				t.Fatal(err)
			}
			os.Exit(crashExitCode) // dies inside the transaction
			return nil
		})
		return
	}
	dir := filepath.Join(t.TempDir(), "kafka")
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedCrashWithOpenTransaction$")
	cmd.Env = append(os.Environ(), txCrashChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != crashExitCode {
		t.Fatalf("child: %v\n%s", err, out)
	}
	ctx := testCtx(t)
	e := startEmbedded(t, kafka.EmbeddedConfig{DataDir: dir})
	client := kafka.ClientConfig{Brokers: e.Brokers()}
	p, err := kafka.NewTxProducer(kafka.ProducerConfig{Client: client, TransactionalID: "txcrash"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	last := &kafka.Record{Topic: "txcrash", Value: []byte("after")}
	if err := p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error { return tx.Produce(ctx, last) }); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := kafka.ReadCommitted(ctx, client, "txcrash", 0, 0, last.Offset, func(r *kafka.Record) { got = append(got, string(r.Value)) }); err != nil {
		t.Fatalf("reading up to the new commit at offset %d: %v (read %v)", last.Offset, err, got)
	}
	if strings.Join(got, ",") != "committed,after" {
		t.Fatalf("read_committed after the crash: %v, want [committed after]", got)
	}
}
