// Package kafkatest is the contract suite of package bridge/kafka: one set of
// tests that every Kafka-protocol broker the system runs on must pass, run
// against a real Kafka broker (internal/testservers) and against the embedded
// kfake broker of `ticketing dev`, the way watermill runs one pub/sub suite
// against every backend. Features says what a broker lacks, so that the suite
// skips only those cases. RunFeed is the exactly-once suite of the
// consumers that feed a store (kafka.NewRunner over a kafka.Feed), run
// against every consumer and store (feed.go).
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
)

// Features says what a broker implements beyond the basics.
type Features struct {
	// Transactions: transactional producers, read_committed isolation and
	// fencing by transactional id (KIP-98).
	Transactions bool
}

// Run runs the suite. brokers returns the seed brokers of the cluster to
// test; it is called once per test case and may return the same cluster
// every time: every case uses its own topics and groups and deletes them.
func Run(t *testing.T, f Features, brokers func(t *testing.T) []string) {
	type testCase struct {
		name string
		fn   func(t *testing.T, s *suite)
	}
	cases := []testCase{
		{"TopicCreation", testTopicCreation},
		{"KeyOrderAndHeaders", testKeyOrderAndHeaders},
		{"IdempotentRetries", testIdempotentRetries},
		{"CommitAndResume", testCommitAndResume},
		{"HandlerErrorRedelivers", testHandlerErrorRedelivers},
		{"Rebalance", testRebalance},
	}
	for _, c := range ownedCases() {
		cases = append(cases, testCase{c.name, c.fn})
	}
	// Cases for features a broker lacks are not registered, rather than
	// run and skipped.
	if f.Transactions {
		cases = append(cases, testCase{"Transactions", testTransactions}, testCase{"TransactionalFencing", testTransactionalFencing})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &suite{t: t, f: f, brokers: brokers(t)}
			c.fn(t, s)
		})
	}
}

type suite struct {
	t       *testing.T
	f       Features
	brokers []string
}

// wait bounds a case's waits for a condition: within its context's
// deadline (ctx).
const wait = 60 * time.Second

// ctx is a context for one test case, with a deadline well below go test's.
func (s *suite) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	s.t.Cleanup(cancel)
	return ctx
}

func (s *suite) client() kafka.ClientConfig {
	return kafka.ClientConfig{Brokers: s.brokers, ClientID: "kafkatest"}
}

func (s *suite) admin() *kafka.Admin {
	s.t.Helper()
	a, err := kafka.NewAdmin(s.client())
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(a.Close)
	return a
}

// name is unique per test and run: "kt.<test>.<random>".
func (s *suite) name(kind string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	test := s.t.Name()
	if i := strings.LastIndexByte(test, '/'); i >= 0 {
		test = test[i+1:]
	}
	return fmt.Sprintf("kt.%s.%s.%s", strings.ToLower(test), kind, hex.EncodeToString(b[:]))
}

// topic creates a unique topic, deleted when the test ends.
func (s *suite) topic(partitions int32) string {
	s.t.Helper()
	name := s.name("t")
	a := s.admin()
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.DeleteTopics(ctx, name); err != nil {
			s.t.Errorf("delete topic %s: %v", name, err)
		}
	})
	if err := a.EnsureTopics(s.ctx(), kafka.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: -1}); err != nil {
		s.t.Fatal(err)
	}
	return name
}

// group returns a unique group name, deleted when the test ends.
func (s *suite) group() string {
	name := s.name("g")
	a := s.admin()
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A group that never committed may not exist: ignore the answer.
		_, _ = a.Kadm().DeleteGroups(ctx, name)
	})
	return name
}

func (s *suite) producer(mod func(*kafka.ProducerConfig)) kafka.Producer {
	s.t.Helper()
	c := kafka.ProducerConfig{Client: s.client()}
	if mod != nil {
		mod(&c)
	}
	p, err := kafka.NewProducer(c)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func (s *suite) consumerConfig(group string, topics ...string) kafka.ConsumerConfig {
	return kafka.ConsumerConfig{
		Client: s.client(), Group: group, Topics: topics,
		SessionTimeout: 10 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		RebalanceTimeout: 10 * time.Second, MaxPollRecords: 10,
	}
}

func (s *suite) consumer(c kafka.ConsumerConfig) kafka.Consumer {
	s.t.Helper()
	cons, err := kafka.NewConsumer(c)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cons.Close(context.Background()) })
	return cons
}

// collect consumes with c until done returns true for what was received, or
// ctx ends (a test failure).
func (s *suite) collect(ctx context.Context, c kafka.Consumer, done func([]*kafka.Record) bool) []*kafka.Record {
	s.t.Helper()
	var got []*kafka.Record
	errDone := errors.New("done")
	err := c.Consume(ctx, func(_ context.Context, recs []*kafka.Record) error {
		got = append(got, recs...)
		if done(got) {
			return errDone // the last batch is not committed: fine for reading
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		s.t.Fatalf("consume: %v (after %d records)", err, len(got))
	}
	return got
}

func atLeast(n int) func([]*kafka.Record) bool {
	return func(r []*kafka.Record) bool { return len(r) >= n }
}

// id identifies a produced record in the tests: the ce-id header.
func id(r *kafka.Record) string {
	v, _ := r.Header("ce-id")
	return string(v)
}

func rec(topic, key, eventID string, value int) *kafka.Record {
	return &kafka.Record{
		Topic: topic, Key: []byte(key), Value: []byte(strconv.Itoa(value)),
		Headers: []kafka.Header{
			{Key: "ce-id", Value: []byte(eventID)},
			{Key: "ce-type", Value: []byte("ticketing.test.happened")},
			{Key: "ce-source", Value: []byte("/kafkatest")},
		},
	}
}

func testTopicCreation(t *testing.T, s *suite) {
	ctx := s.ctx()
	a := s.admin()
	name := s.name("t")
	t.Cleanup(func() { _ = a.DeleteTopics(context.Background(), name) })
	spec := kafka.TopicSpec{Name: name, Partitions: 3, ReplicationFactor: -1}
	if err := a.EnsureTopics(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	if n, err := a.Partitions(ctx, name); err != nil || n != 3 {
		t.Fatalf("partitions = %d, %v; want 3", n, err)
	}
	if err := a.EnsureTopics(ctx, spec); err != nil {
		t.Fatalf("ensuring an existing topic again: %v", err)
	}
	spec.Partitions = 5
	if err := a.EnsureTopics(ctx, spec); errs.KindOf(err) != errs.Conflict {
		t.Fatalf("ensuring with another partition count: %v, want a Conflict", err)
	}
	if err := a.EnsureTopics(ctx, kafka.TopicSpec{Name: "bad/name", Partitions: 1}); errs.KindOf(err) != errs.Invalid {
		t.Fatalf("invalid topic name: %v, want Invalid", err)
	}
	if err := a.DeleteTopics(ctx, name); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// Deletion completes asynchronously on a real broker.
	eventually.True(t, wait, "the topic to disappear", func() bool {
		_, err := a.Partitions(ctx, name)
		return errs.KindOf(err) == errs.NotFound
	})
	if err := a.DeleteTopics(ctx, name); err != nil {
		t.Fatalf("deleting a missing topic: %v", err)
	}
}

func testKeyOrderAndHeaders(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(4)
	p := s.producer(nil)
	const keys, perKey, batch = 8, 25, 5
	var wg sync.WaitGroup
	produced := make([][]*kafka.Record, keys)
	errc := make(chan error, keys)
	for k := range keys {
		wg.Add(1)
		go func() { // one goroutine per key: calls of one key never overlap
			defer wg.Done()
			key := fmt.Sprintf("aggregate-%d", k)
			for i := 0; i < perKey; i += batch {
				var recs []*kafka.Record
				for j := i; j < i+batch; j++ {
					recs = append(recs, rec(topic, key, fmt.Sprintf("%s/%d", key, j), j))
				}
				if err := p.Produce(ctx, recs...); err != nil {
					errc <- err
					return
				}
				produced[k] = append(produced[k], recs...)
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("produce: %v", err)
	}
	partitionOf := map[string]int32{}
	for _, recs := range produced {
		for i, r := range recs {
			key := string(r.Key)
			if p, ok := partitionOf[key]; ok && p != r.Partition {
				t.Fatalf("key %s went to partitions %d and %d", key, p, r.Partition)
			}
			partitionOf[key] = r.Partition
			if i > 0 && r.Offset <= recs[i-1].Offset {
				t.Fatalf("key %s: offset %d after %d", key, r.Offset, recs[i-1].Offset)
			}
			if r.Timestamp.IsZero() {
				t.Fatalf("produced record has no timestamp")
			}
		}
	}

	c := s.consumer(s.consumerConfig(s.group(), topic))
	got := s.collect(ctx, c, atLeast(keys*perKey))
	if len(got) != keys*perKey {
		t.Fatalf("consumed %d records, want %d", len(got), keys*perKey)
	}
	next := map[string]int{}
	for _, r := range got {
		key := string(r.Key)
		if r.Partition != partitionOf[key] {
			t.Errorf("key %s read from partition %d, produced to %d", key, r.Partition, partitionOf[key])
		}
		want := next[key]
		if string(r.Value) != strconv.Itoa(want) {
			t.Fatalf("key %s: got value %s, want %d (order per key broken)", key, r.Value, want)
		}
		if id(r) != fmt.Sprintf("%s/%d", key, want) {
			t.Fatalf("key %s: ce-id header %q", key, id(r))
		}
		if typ, _ := r.Header("ce-type"); string(typ) != "ticketing.test.happened" || len(r.Headers) != 3 {
			t.Fatalf("headers not kept: %+v", r.Headers)
		}
		next[key]++
	}
}

func testIdempotentRetries(t *testing.T, s *suite) {
	ctx := s.ctx()
	const n = 20
	faults := &ConnFaults{}
	withFaults := func(c *kafka.ProducerConfig) { c.Client.Dial = faults.Dial }

	// Control: without idempotence the same fault must duplicate records,
	// else the fault does not make the client resend and the real check
	// below would prove nothing.
	control := s.topic(1)
	raw, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...), kgo.Dialer(faults.Dial),
		kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(raw.Close)
	if err := raw.ProduceSync(ctx, &kgo.Record{Topic: control, Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	faults.CutAfterNextProduce()
	var krs []*kgo.Record
	for i := range n {
		krs = append(krs, &kgo.Record{Topic: control, Key: []byte("k"), Value: []byte(strconv.Itoa(i))})
	}
	if err := raw.ProduceSync(ctx, krs...).FirstErr(); err != nil {
		t.Fatalf("control produce: %v", err)
	}
	if faults.Cuts() != 1 {
		t.Fatalf("control: %d connections cut, want 1", faults.Cuts())
	}
	if end := s.endOffset(ctx, control); end <= n+1 {
		t.Fatalf("control: a non-idempotent producer wrote %d records, want duplicates: the fault does not cause a resend", end)
	} else {
		t.Logf("control: without idempotence the resend wrote %d records for %d", end, n+1)
	}

	topic := s.topic(1)
	p := s.producer(withFaults)
	if err := p.Produce(ctx, rec(topic, "k", "warm-up", -1)); err != nil {
		t.Fatal(err)
	}
	faults.CutAfterNextProduce()
	var recs []*kafka.Record
	for i := range n {
		recs = append(recs, rec(topic, "k", strconv.Itoa(i), i))
	}
	if err := p.Produce(ctx, recs...); err != nil {
		t.Fatalf("produce through a cut connection: %v", err)
	}
	if faults.Cuts() != 2 {
		t.Fatalf("%d connections cut, want 2", faults.Cuts())
	}
	if end := s.endOffset(ctx, topic); end != n+1 {
		t.Fatalf("the idempotent producer wrote %d records for %d", end, n+1)
	}
	got := s.collect(ctx, s.consumer(s.consumerConfig(s.group(), topic)), atLeast(n+1))
	seen := map[string]bool{}
	for _, r := range got {
		if seen[id(r)] {
			t.Fatalf("record %s read twice", id(r))
		}
		seen[id(r)] = true
	}
	for i, r := range recs {
		if r.Offset != int64(i+1) {
			t.Fatalf("record %d has offset %d, want %d: a resend must keep the original offsets", i, r.Offset, i+1)
		}
	}
}

// endOffset is the high watermark of partition 0.
func (s *suite) endOffset(ctx context.Context, topic string) int64 {
	s.t.Helper()
	ends, err := s.admin().Kadm().ListEndOffsets(ctx, topic)
	if err != nil {
		s.t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		s.t.Fatalf("end offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

func testCommitAndResume(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(3)
	group := s.group()
	const n = 90
	var recs []*kafka.Record
	for i := range n {
		recs = append(recs, rec(topic, fmt.Sprintf("k%d", i%9), strconv.Itoa(i), i))
	}
	if err := s.producer(nil).Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	// The first member commits a few batches and then fails one.
	a := s.consumer(s.consumerConfig(group, topic))
	committed := map[string]bool{}
	var failed []*kafka.Record
	errStop := errors.New("stop")
	err := a.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
		if len(committed) >= 30 {
			failed = batch
			return errStop
		}
		for _, r := range batch {
			committed[id(r)] = true
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("consume: %v, want the handler's error", err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}

	// A second member continues after the last commit: everything not
	// committed, the failed batch included, and nothing that was.
	b := s.consumer(s.consumerConfig(group, topic))
	rest := s.collect(ctx, b, atLeast(n-len(committed)))
	for _, r := range rest {
		if committed[id(r)] {
			t.Fatalf("record %s was committed by the first member and delivered again", id(r))
		}
		committed[id(r)] = true
	}
	if len(committed) != n {
		t.Fatalf("%d distinct records consumed, want %d", len(committed), n)
	}
	restIDs := map[string]bool{}
	for _, r := range rest {
		restIDs[id(r)] = true
	}
	for _, r := range failed {
		if !restIDs[id(r)] {
			t.Fatalf("record %s of the failed batch was not delivered again", id(r))
		}
	}
}

func testHandlerErrorRedelivers(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(1)
	const n = 30
	var recs []*kafka.Record
	for i := range n {
		recs = append(recs, rec(topic, "k", strconv.Itoa(i), i))
	}
	if err := s.producer(nil).Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	c := s.consumer(s.consumerConfig(s.group(), topic))
	var first []*kafka.Record
	errFail := errors.New("transient")
	if err := c.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
		first = batch
		return errFail
	}); !errors.Is(err, errFail) {
		t.Fatalf("consume: %v", err)
	}
	got := s.collect(ctx, c, atLeast(n))
	if got[0].Offset != first[0].Offset {
		t.Fatalf("after a handler error the next Consume starts at offset %d, want %d", got[0].Offset, first[0].Offset)
	}
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d: records skipped or repeated", i, r.Offset)
		}
	}
}

// member runs one consumer of a group in the background.
type member struct {
	c      kafka.Consumer
	cancel context.CancelFunc
	done   chan error

	mu  sync.Mutex
	got []*kafka.Record
}

func (s *suite) startMember(ctx context.Context, cfg kafka.ConsumerConfig) *member {
	m := &member{c: s.consumer(cfg), done: make(chan error, 1)}
	ctx, m.cancel = context.WithCancel(ctx)
	go func() {
		m.done <- m.c.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
			m.mu.Lock()
			m.got = append(m.got, batch...)
			m.mu.Unlock()
			return nil
		})
	}()
	s.t.Cleanup(func() { m.stop(s.t) })
	return m
}

func (m *member) records() []*kafka.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got)
}

// stop ends Consume and leaves the group.
func (m *member) stop(t *testing.T) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	if err := <-m.done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("consume: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.c.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func testRebalance(t *testing.T, s *suite) {
	ctx := s.ctx()
	const partitions = 4
	topic := s.topic(partitions)
	group := s.group()
	p := s.producer(nil)
	var sent []*kafka.Record
	round := 0
	produce := func() { // one record per key of 16, covering every partition
		t.Helper()
		var recs []*kafka.Record
		for k := range 16 {
			recs = append(recs, rec(topic, fmt.Sprintf("k%d", k), fmt.Sprintf("%d/%d", round, k), round))
		}
		round++
		if err := p.Produce(ctx, recs...); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, recs...)
	}
	produce()
	parts := map[int32]bool{}
	for _, r := range sent {
		parts[r.Partition] = true
	}
	if len(parts) != partitions {
		t.Fatalf("16 keys cover %d partitions, want %d", len(parts), partitions)
	}

	a := s.startMember(ctx, s.consumerConfig(group, topic))
	eventually.True(t, wait, "the first member to read the first round", func() bool { return len(a.records()) >= len(sent) })

	// A second member joins: partitions are shared between the two, and
	// records keep flowing during and after the rebalance.
	b := s.startMember(ctx, s.consumerConfig(group, topic))
	eventually.True(t, wait, "the second member to be assigned partitions and read", func() bool {
		produce()
		return len(b.records()) > 0
	})
	// Both members now own partitions: the next round is read by both.
	from := len(sent)
	produce()
	roundIDs := ids(sent[from:])
	eventually.True(t, wait, "the round after the rebalance to be read", func() bool {
		read := distinct(a.records(), b.records())
		for _, i := range roundIDs {
			if read[i] == 0 {
				return false
			}
		}
		return true
	})
	byA, byB := distinct(a.records()), distinct(b.records())
	nA, nB := 0, 0
	for _, i := range roundIDs {
		nA += min(byA[i], 1)
		nB += min(byB[i], 1)
	}
	if nA == 0 || nB == 0 {
		t.Fatalf("after the rebalance the first member read %d and the second %d of one round's %d records: partitions are not shared",
			nA, nB, len(roundIDs))
	}

	// The first member leaves: the second takes over all partitions and
	// continues after what the first committed.
	a.stop(t)
	afterLeave := len(sent)
	produce()
	produce()
	eventually.True(t, wait, "every record to be read", func() bool {
		return len(distinct(a.records(), b.records())) >= len(sent)
	})

	got := distinct(a.records(), b.records())
	for _, r := range sent {
		if got[id(r)] == 0 {
			t.Fatalf("record %s (partition %d) was never read", id(r), r.Partition)
		}
	}
	dups := 0
	for _, n := range got {
		dups += n - 1
	}
	if dups > 0 {
		t.Fatalf("%d records were read twice: offsets must be committed before partitions move", dups)
	}
	byB = distinct(b.records())
	for _, r := range sent[afterLeave:] {
		if byB[id(r)] == 0 {
			t.Fatalf("record %s (partition %d), produced after the first member left, was not read by the second", id(r), r.Partition)
		}
	}
	t.Logf("%d records, %d rounds; first member read %d, second %d", len(sent), round, len(a.records()), len(b.records()))
}

// distinct counts how often each record id was read.
func distinct(sets ...[]*kafka.Record) map[string]int {
	n := map[string]int{}
	for _, s := range sets {
		for _, r := range s {
			n[id(r)]++
		}
	}
	return n
}

func (s *suite) txProducer(txid string) kafka.TxProducer {
	s.t.Helper()
	p, err := kafka.NewTxProducer(kafka.ProducerConfig{Client: s.client(), TransactionalID: txid})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func produceTx(ctx context.Context, p kafka.TxProducer, recs []*kafka.Record, fail error) error {
	return p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error {
		if err := tx.Produce(ctx, recs...); err != nil {
			return err
		}
		return fail
	})
}

func batch(topic, prefix string, n int) []*kafka.Record {
	var recs []*kafka.Record
	for i := range n {
		recs = append(recs, rec(topic, "k", fmt.Sprintf("%s/%d", prefix, i), i))
	}
	return recs
}

func ids(recs []*kafka.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = id(r)
	}
	return out
}

func testTransactions(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(1)
	p := s.txProducer(s.name("tx"))
	errAbort := errors.New("abort")
	committed1, aborted, committed2, last := batch(topic, "c1", 5), batch(topic, "ab", 5), batch(topic, "c2", 3), batch(topic, "end", 1)
	if err := produceTx(ctx, p, committed1, nil); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := produceTx(ctx, p, aborted, errAbort); !errors.Is(err, errAbort) {
		t.Fatalf("abort: %v, want fn's error", err)
	}
	if err := produceTx(ctx, p, committed2, nil); err != nil {
		t.Fatalf("commit after an abort: %v", err)
	}
	if err := produceTx(ctx, p, last, nil); err != nil {
		t.Fatalf("commit: %v", err)
	}
	isLast := func(r []*kafka.Record) bool { return len(r) > 0 && id(r[len(r)-1]) == id(last[0]) }

	// read_committed (the default) sees the committed transactions only.
	got := s.collect(ctx, s.consumer(s.consumerConfig(s.group(), topic)), isLast)
	want := ids(slices.Concat(committed1, committed2, last))
	if !slices.Equal(ids(got), want) {
		t.Fatalf("read_committed read %v, want %v", ids(got), want)
	}
	// read_uncommitted sees the aborted records too.
	cfg := s.consumerConfig(s.group(), topic)
	cfg.ReadUncommitted = true
	got = s.collect(ctx, s.consumer(cfg), isLast)
	want = ids(slices.Concat(committed1, aborted, committed2, last))
	if !slices.Equal(ids(got), want) {
		t.Fatalf("read_uncommitted read %v, want %v", ids(got), want)
	}
}

func testTransactionalFencing(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(1)
	txid := s.name("tx")
	old := s.txProducer(txid)
	if err := produceTx(ctx, old, batch(topic, "old", 2), nil); err != nil {
		t.Fatal(err)
	}
	// A new instance with the same transactional id (a restarted bridge)
	// fences the old one.
	newer := s.txProducer(txid)
	if err := produceTx(ctx, newer, batch(topic, "new", 2), nil); err != nil {
		t.Fatal(err)
	}
	zombie := batch(topic, "zombie", 2)
	err := produceTx(ctx, old, zombie, nil)
	if !errors.Is(err, kafka.ErrFenced) {
		t.Fatalf("the fenced producer's transaction: %v, want ErrFenced", err)
	}
	if err := produceTx(ctx, old, zombie, nil); !errors.Is(err, kafka.ErrFenced) {
		t.Fatalf("a fenced producer stays fenced: %v", err)
	}
	last := batch(topic, "end", 1)
	if err := produceTx(ctx, newer, last, nil); err != nil {
		t.Fatal(err)
	}
	got := s.collect(ctx, s.consumer(s.consumerConfig(s.group(), topic)),
		func(r []*kafka.Record) bool { return len(r) > 0 && id(r[len(r)-1]) == id(last[0]) })
	want := []string{"old/0", "old/1", "new/0", "new/1", "end/0"}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("read_committed read %v, want %v", ids(got), want)
	}
}
