package kafkatest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/eventually"
)

// The exactly-once suite of the consumers that feed a store: a
// kafka.Runner with a kafka.Feed. RunFeed runs the same scenarios against
// every consumer (reporting, analytics, audit), each on every store it has
// (embedded and PostgreSQL): batches that fail with nothing written, a
// process that dies between two writes of a batch, one that dies after its
// commit (the batch comes again), a restart on the store the dead process
// left, and partitions handed from one member of the group to another.
// FeedCase says what differs: the consumer's records and their effects,
// and what the store allows (FeedFeatures).

// FeedFeatures says what a store allows.
type FeedFeatures struct {
	// Shared: several processes may use the store at once (PostgreSQL), so
	// each member of a group opens its own. Without it (the embedded
	// stores belong to one process) the members of a scenario share one
	// open store, as members in one process would.
	Shared bool
}

// FeedCase is one consumer on one store and one broker. F is the
// consumer's feed (reporting.Feed, …).
type FeedCase[F kafka.Feed[P, R], P kafka.Partition, R any] struct {
	Features FeedFeatures
	// Brokers returns the seed brokers; it is called once per scenario.
	Brokers func(t *testing.T) []string
	// Stream returns the records to produce to topic, in order: a few
	// hundred of the consumer's events, keyed so that they spread over
	// partitions, with what the consumer must cope with (an event the
	// bridge wrote twice, an undecodable record).
	Stream func(topic string) []*kafka.Record
	// NewStore makes an empty store for a scenario and returns how to open
	// it, as a feed: once for every process of the scenario (a restarted
	// process opens what the one before it left).
	NewStore func(t *testing.T) (open func() F)
	// Check returns nil when the store behind f holds the effects of sent
	// (with the partitions and offsets Kafka gave them), each exactly once,
	// and else says what differs. The suite polls it while the consumers
	// run, and calls it once more after they stopped.
	Check func(ctx context.Context, f F, sent []*kafka.Record) error
}

// RunFeed runs the suite for c.
func RunFeed[F kafka.Feed[P, R], P kafka.Partition, R any](t *testing.T, c FeedCase[F, P, R]) {
	for _, sc := range []struct {
		name string
		fn   func(t *testing.T, s *suite, c FeedCase[F, P, R], open func() F)
	}{
		{"CrashesAndRestart", feedCrashesAndRestart[F, P, R]},
		{"HandOver", feedHandOver[F, P, R]},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, &suite{t: t, brokers: c.Brokers(t)}, c, c.NewStore(t)) })
	}
}

var (
	errRolledBack = errors.New("injected: the batch's transaction rolled back")
	errHalfDone   = errors.New("injected: died after writing the first half of the batch")
	errUnheard    = errors.New("injected: the batch was committed, but the process never heard")
	errDead       = errors.New("injected: the process is dead")
	errUnreadable = errors.New("injected: the store cannot be read")
)

// faultyFeed is a process's feed with the faults of a process's life, by
// Apply call: the 2nd rolls back (nothing written); the 4th writes the
// first half of its batch and fails, and the store cannot be read right
// after, so the consumer hands the whole batch out again and the store
// must skip the half it holds; the 6th writes its batch and fails; and the
// first call after the 6th that brings the records written to killAt
// writes its batch and dies: every later call fails.
type faultyFeed[P kafka.Partition, R any] struct {
	kafka.Feed[P, R]
	killAt int

	mu       sync.Mutex
	calls    int
	written  int // records handed to the store's Apply that succeeded
	dead     bool
	loadFail bool // the next Offsets call fails
}

func (f *faultyFeed[P, R]) Offsets(ctx context.Context, ps []P) (map[P]int64, error) {
	f.mu.Lock()
	fail := f.loadFail
	f.loadFail = false
	f.mu.Unlock()
	if fail {
		return nil, errUnreadable
	}
	return f.Feed.Offsets(ctx, ps)
}

func (f *faultyFeed[P, R]) Apply(ctx context.Context, recs []R) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.dead {
		return errDead
	}
	var injected error
	switch {
	case f.calls == 2:
		return errRolledBack
	case f.calls == 4 && len(recs) > 1:
		recs, injected, f.loadFail = recs[:len(recs)/2], errHalfDone, true
	case f.calls == 6:
		injected = errUnheard
	}
	if err := f.Feed.Apply(ctx, recs); err != nil {
		return err
	}
	f.written += len(recs)
	if f.calls > 6 && f.written >= f.killAt {
		f.dead, injected = true, errDead
	}
	return injected
}

func (f *faultyFeed[P, R]) isDead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dead
}

// countingFeed counts what a member of a group was given: assignments
// (Offsets calls) and applied batches.
type countingFeed[P kafka.Partition, R any] struct {
	kafka.Feed[P, R]
	mu                sync.Mutex
	assigned, batches int
}

func (f *countingFeed[P, R]) Offsets(ctx context.Context, ps []P) (map[P]int64, error) {
	f.mu.Lock()
	f.assigned++
	f.mu.Unlock()
	return f.Feed.Offsets(ctx, ps)
}

func (f *countingFeed[P, R]) Apply(ctx context.Context, recs []R) error {
	if err := f.Feed.Apply(ctx, recs); err != nil {
		return err
	}
	f.mu.Lock()
	f.batches++
	f.mu.Unlock()
	return nil
}

func (f *countingFeed[P, R]) counts() (assigned, batches int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.assigned, f.batches
}

// process is a runner of a scenario, running in the background.
type process struct {
	r      *kafka.Runner
	cancel context.CancelFunc
	done   chan error
}

// stop stops the runner and leaves the group; a second call does nothing.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil {
		t.Errorf("run: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.r.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

// runFeed starts a process: a runner feeding f.
func runFeed[P kafka.Partition, R any](ctx context.Context, s *suite, cfg kafka.RunnerConfig, f kafka.Feed[P, R]) *process {
	s.t.Helper()
	r, err := kafka.NewRunner(cfg, f)
	if err != nil {
		s.t.Fatal(err)
	}
	p := &process{r: r, done: make(chan error, 1)}
	ctx, p.cancel = context.WithCancel(ctx)
	go func() { p.done <- r.Run(ctx) }()
	s.t.Cleanup(func() { p.stop(s.t) })
	return p
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// runnerConfig is the config of every process of a scenario: one group,
// small batches, short pauses after a failed batch.
func (s *suite) runnerConfig(topic string) kafka.RunnerConfig {
	c := s.consumerConfig(s.group(), topic)
	c.MaxPollRecords = 25
	return kafka.RunnerConfig{Consumer: c, RetryBackoff: 10 * time.Millisecond, Logger: quietLog}
}

// produceAll produces recs in order and returns them with their
// partitions and offsets.
func (s *suite) produceAll(ctx context.Context, p kafka.Producer, recs []*kafka.Record) []*kafka.Record {
	s.t.Helper()
	if err := p.Produce(ctx, recs...); err != nil {
		s.t.Fatal(err)
	}
	return recs
}

// checked polls c.Check until the store holds exactly the effects of sent.
func checked[F kafka.Feed[P, R], P kafka.Partition, R any](ctx context.Context, t *testing.T, c FeedCase[F, P, R], f F, sent []*kafka.Record) {
	t.Helper()
	eventually.Nil(t, wait, func() error { return c.Check(ctx, f, sent) })
}

// A process fails batches now and then, dies between two writes of a
// batch, and at last dies after a commit it never heard of; a second
// process on the store it left carries on: every record's effects are
// there once.
func feedCrashesAndRestart[F kafka.Feed[P, R], P kafka.Partition, R any](t *testing.T, s *suite, c FeedCase[F, P, R], open func() F) {
	ctx := s.ctx()
	topic := s.topic(3)
	sent := s.produceAll(ctx, s.producer(nil), c.Stream(topic))
	cfg := s.runnerConfig(topic)

	first := &faultyFeed[P, R]{Feed: open(), killAt: len(sent) / 2}
	p1 := runFeed(ctx, s, cfg, kafka.Feed[P, R](first))
	eventually.True(t, wait, "the first process to die halfway", first.isDead)
	p1.stop(t)
	if first.calls < 7 {
		t.Fatalf("the first process died after %d batches, before every fault was injected", first.calls)
	}
	store := open()
	if err := c.Check(ctx, store, sent); err == nil {
		t.Fatal("the first process applied everything before it died: the test shows nothing")
	}

	p2 := runFeed(ctx, s, cfg, kafka.Feed[P, R](store))
	checked(ctx, t, c, store, sent)
	p2.stop(t)
	if err := c.Check(ctx, store, sent); err != nil {
		t.Fatalf("after the second process stopped: %v", err)
	}
}

// Two members share the partitions and hand them over twice (the second
// joins, the first leaves) while records keep coming: every record's
// effects are there once.
func feedHandOver[F kafka.Feed[P, R], P kafka.Partition, R any](t *testing.T, s *suite, c FeedCase[F, P, R], open func() F) {
	ctx := s.ctx()
	topic := s.topic(4)
	prod := s.producer(nil)
	stream := c.Stream(topic)
	chunk := func(i int) []*kafka.Record { return stream[i*len(stream)/3 : (i+1)*len(stream)/3] }
	cfg := s.runnerConfig(topic)

	storeA := open()
	storeB := storeA
	if c.Features.Shared {
		storeB = open()
	}
	a := &countingFeed[P, R]{Feed: storeA}
	b := &countingFeed[P, R]{Feed: storeB}

	sent := s.produceAll(ctx, prod, chunk(0))
	pa := runFeed(ctx, s, cfg, kafka.Feed[P, R](a))
	checked(ctx, t, c, storeA, sent)

	runFeed(ctx, s, cfg, kafka.Feed[P, R](b))
	eventually.True(t, wait, "the second member to be assigned partitions", func() bool {
		assigned, _ := b.counts()
		return assigned > 0
	})
	sent = append(sent, s.produceAll(ctx, prod, chunk(1))...)
	checked(ctx, t, c, storeB, sent)

	pa.stop(t)
	sent = append(sent, s.produceAll(ctx, prod, chunk(2))...)
	checked(ctx, t, c, storeB, sent)
	_, byA := a.counts()
	assignedB, byB := b.counts()
	if byB == 0 || assignedB < 2 {
		t.Fatalf("the second member applied %d batches after %d assignments: no hand-over happened", byB, assignedB)
	}
	t.Logf("%d records; batches: first member %d, second %d", len(sent), byA, byB)
}
