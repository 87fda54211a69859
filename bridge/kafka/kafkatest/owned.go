package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
)

// The owned-offset consumer cases. The application's store is offsetStore:
// per partition the next offset and the records' effects (here: how often
// each record id was applied), changed together under one lock, as a
// database transaction would.

func ownedCases() []struct {
	name string
	fn   func(t *testing.T, s *suite)
} {
	return []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"OwnedKilledMidBatch", testOwnedKilledMidBatch},
		{"OwnedRebalance", testOwnedRebalance},
		{"OwnedResume", testOwnedResume},
	}
}

type offsetStore struct {
	mu      sync.Mutex
	next    map[kafka.TopicPartition]int64
	applied map[string]int // record id: times applied
	skipped int            // records handed out below the stored offset
}

func newOffsetStore() *offsetStore {
	return &offsetStore{next: map[kafka.TopicPartition]int64{}, applied: map[string]int{}}
}

func (o *offsetStore) load(_ context.Context, tps []kafka.TopicPartition) (map[kafka.TopicPartition]int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[kafka.TopicPartition]int64{}
	for _, tp := range tps {
		if n, ok := o.next[tp]; ok {
			out[tp] = n
		}
	}
	return out, nil
}

// apply is the handler's transaction: skip what is below the stored
// offset, apply the rest, store the next offsets.
func (o *offsetStore) apply(recs []*kafka.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range recs {
		tp := kafka.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if n, ok := o.next[tp]; ok && r.Offset < n {
			o.skipped++
			continue
		}
		o.applied[id(r)]++
		o.next[tp] = r.Offset + 1
	}
}

func (o *offsetStore) snapshot() (next map[kafka.TopicPartition]int64, applied map[string]int, skipped int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.next), maps.Clone(o.applied), o.skipped
}

func (o *offsetStore) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.applied)
}

func (s *suite) owned(c kafka.ConsumerConfig, st *offsetStore) kafka.Consumer {
	s.t.Helper()
	cons, err := kafka.NewOwnedConsumer(c, st.load)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cons.Close(context.Background()) })
	return cons
}

// exactlyOnce fails unless every sent record was applied exactly once.
func exactlyOnce(t *testing.T, st *offsetStore, sent []*kafka.Record) {
	t.Helper()
	_, applied, _ := st.snapshot()
	for _, r := range sent {
		if n := applied[id(r)]; n != 1 {
			t.Fatalf("record %s (partition %d offset %d) applied %d times", id(r), r.Partition, r.Offset, n)
		}
	}
	if len(applied) != len(sent) {
		t.Fatalf("%d records applied, %d sent", len(applied), len(sent))
	}
}

func produceKeys(ctx context.Context, t *testing.T, p kafka.Producer, topic, prefix string, n, keys int) []*kafka.Record {
	t.Helper()
	var recs []*kafka.Record
	for i := range n {
		recs = append(recs, rec(topic, fmt.Sprintf("k%d", i%keys), fmt.Sprintf("%s/%d", prefix, i), i))
	}
	if err := p.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	return recs
}

// A handler that fails mid-batch (having written nothing, as a rolled-back
// transaction) and a member that dies without storing its batch leave the
// store exact: the next call, and the next member, resume at the stored
// offsets, and every record is applied once.
func testOwnedKilledMidBatch(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(3)
	group := s.group()
	sent := produceKeys(ctx, t, s.producer(nil), topic, "r", 90, 9)
	st := newOffsetStore()

	a := s.owned(s.consumerConfig(group, topic), st)
	errFail := errors.New("handler failed mid-batch")
	batches := 0
	var failed []*kafka.Record
	err := a.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
		batches++
		if batches == 3 {
			failed = batch
			return errFail // the transaction rolled back: nothing stored
		}
		st.apply(batch)
		return nil
	})
	if !errors.Is(err, errFail) {
		t.Fatalf("consume: %v, want the handler's error", err)
	}
	// The next call resumes at the stored offsets: each partition's first
	// record handed out is its stored offset, or the failed batch's first
	// record of a partition with nothing stored.
	next, _, _ := st.snapshot()
	firstFailed := map[kafka.TopicPartition]int64{}
	for _, r := range failed {
		tp := kafka.TopicPartition{Topic: r.Topic, Partition: r.Partition}
		if _, ok := firstFailed[tp]; !ok {
			firstFailed[tp] = r.Offset
		}
	}
	seen := map[kafka.TopicPartition]bool{}
	errCrash := errors.New("crash")
	crashAt := st.count() + 20
	err = a.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
		for _, r := range batch {
			tp := kafka.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			if seen[tp] {
				continue
			}
			seen[tp] = true
			want, ok := next[tp]
			if !ok {
				want, ok = firstFailed[tp]
			}
			if ok && r.Offset != want {
				t.Errorf("after a handler error partition %d resumed at offset %d, want %d (the stored offset)", r.Partition, r.Offset, want)
			}
		}
		if st.count() >= crashAt {
			return errCrash // dies without storing this batch
		}
		st.apply(batch)
		return nil
	})
	if !errors.Is(err, errCrash) {
		t.Fatalf("consume: %v", err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, _, skipped := st.snapshot(); skipped != 0 {
		t.Fatalf("%d records were handed out again below the stored offset", skipped)
	}

	// A new member (a restarted process) resumes from the store.
	b := s.owned(s.consumerConfig(group, topic), st)
	stopped := errors.New("all applied")
	err = b.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
		st.apply(batch)
		if st.count() >= len(sent) {
			return stopped
		}
		return nil
	})
	if !errors.Is(err, stopped) {
		t.Fatalf("consume after restart: %v", err)
	}
	exactlyOnce(t, st, sent)
	if _, _, skipped := st.snapshot(); skipped != 0 {
		t.Fatalf("the restarted member was handed %d records below the stored offsets", skipped)
	}
}

// ownedMember runs an owned consumer in the background.
type ownedMember struct {
	c      kafka.Consumer
	cancel context.CancelFunc
	done   chan error
	n      sync.Mutex
	got    int
}

func (s *suite) startOwned(ctx context.Context, cfg kafka.ConsumerConfig, st *offsetStore) *ownedMember {
	m := &ownedMember{c: s.owned(cfg, st), done: make(chan error, 1)}
	ctx, m.cancel = context.WithCancel(ctx)
	go func() {
		m.done <- m.c.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
			st.apply(batch)
			m.n.Lock()
			m.got += len(batch)
			m.n.Unlock()
			return nil
		})
	}()
	s.t.Cleanup(func() { m.stop(s.t) })
	return m
}

func (m *ownedMember) records() int {
	m.n.Lock()
	defer m.n.Unlock()
	return m.got
}

func (m *ownedMember) stop(t *testing.T) {
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

// Two members share the partitions and hand them over twice (the second
// joins, the first leaves): no record is applied twice, none is lost, and
// no member is even handed a record the other had stored.
func testOwnedRebalance(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(4)
	group := s.group()
	p := s.producer(nil)
	st := newOffsetStore()
	var sent []*kafka.Record
	round := 0
	produce := func() {
		t.Helper()
		sent = append(sent, produceKeys(ctx, t, p, topic, "round"+strconv.Itoa(round), 16, 16)...)
		round++
	}
	produce()
	a := s.startOwned(ctx, s.consumerConfig(group, topic), st)
	eventually.True(t, wait, "the first member to apply the first round", func() bool { return st.count() >= len(sent) })
	b := s.startOwned(ctx, s.consumerConfig(group, topic), st)
	eventually.True(t, wait, "the second member to be assigned partitions and apply", func() bool {
		produce()
		return b.records() > 0
	})
	a.stop(t)
	produce()
	produce()
	eventually.True(t, wait, "every record to be applied", func() bool { return st.count() >= len(sent) })
	exactlyOnce(t, st, sent)
	if _, _, skipped := st.snapshot(); skipped != 0 {
		t.Fatalf("%d records were handed to a member below the stored offset (a hand-over did not start at the store)", skipped)
	}
	t.Logf("%d records in %d rounds; first member %d, second %d", len(sent), round, a.records(), b.records())
}

// Reading starts at the application's stored offsets, not at Kafka's
// committed ones nor at StartAt; after a restart it continues exactly; the
// group's Kafka offsets follow the store for lag monitoring.
func testOwnedResume(t *testing.T, s *suite) {
	ctx := s.ctx()
	topic := s.topic(1)
	group := s.group()
	p := s.producer(nil)
	sent := produceKeys(ctx, t, p, topic, "a", 20, 1)
	st := newOffsetStore()
	tp := kafka.TopicPartition{Topic: topic, Partition: 0}
	st.next[tp] = 7 // records 0-6 were applied before (say, restored from a backup)

	run := func(want int, firstOffset int64) {
		t.Helper()
		c := s.owned(s.consumerConfig(group, topic), st)
		first := int64(-1)
		done := errors.New("done")
		err := c.Consume(ctx, func(_ context.Context, batch []*kafka.Record) error {
			if first < 0 {
				first = batch[0].Offset
			}
			st.apply(batch)
			if st.count() >= want {
				return done // stored: apply ran; returning an error after it is a crash after commit
			}
			return nil
		})
		if !errors.Is(err, done) {
			t.Fatalf("consume: %v", err)
		}
		if first != firstOffset {
			t.Fatalf("reading started at offset %d, want %d (the stored offset)", first, firstOffset)
		}
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run(13, 7)
	more := produceKeys(ctx, t, p, topic, "b", 10, 1)
	run(23, 20)
	exactlyOnce(t, st, append(sent[7:], more...))

	// Committed for monitoring: once some batch succeeded its offsets are
	// in Kafka. The last batch of each run returned an error, so the
	// committed offset is at most the stored one.
	offs, err := s.admin().Kadm().FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, 0)
	next, _, _ := st.snapshot()
	if !ok || o.At <= 7 || o.At > next[tp] {
		t.Fatalf("kafka has committed offset %v (found %v), want within (7, %d]", o.At, ok, next[tp])
	}
}
