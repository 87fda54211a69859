package mirror_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/mirror"
	"github.com/ticketing/ticketing/core/node"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
)

// core starts a core node with a client listener and the core's streams.
func core(t testing.TB) (*node.Node, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	n, nc, js := nodetest.StartListening(t)
	if _, err := streams.Ensure(testCtx(t), js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	return n, nc, js
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// aggregates are the record keys the test events use: several per topic
// partition, so that order per key is checked where keys share partitions.
var aggregates = []string{"arena-concert", "club-night", "arena-finals", "jazz-brunch", "opera-gala", "derby-day", "comic-con"}

// publisher publishes numbered domain events, alternating inventory events
// with other domain events (other topic), spread over the aggregates. With
// batch > 1, messages carry 1, 2, … batch events in turn (CloudEvents
// batches, as inventory owners write them; one event alone is a plain
// event).
type publisher struct {
	js    jetstream.JetStream
	batch int
	mu    sync.Mutex
	next  int // events
	msgs  int // messages: the stream's last sequence when it started empty
}

func (p *publisher) publish(ctx context.Context, t testing.TB, n int, body int) {
	t.Helper()
	if err := p.try(ctx, n, body); err != nil {
		t.Fatal(err)
	}
}

// background publishes n events in chunks of 100 while the test goes on;
// wait waits for the last one to be stored.
func (p *publisher) background(ctx context.Context, t *testing.T, n, body int) (wait func()) {
	done := make(chan error, 1)
	go func() {
		for sent := 0; sent < n; sent += 100 {
			if err := p.try(ctx, min(100, n-sent), body); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func (p *publisher) try(ctx context.Context, n int, body int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pad := make([]byte, body)
	for i := range pad {
		pad[i] = 'x'
	}
	futures := make([]jetstream.PubAckFuture, 0, n)
	for n > 0 {
		size := 1
		if p.batch > 1 {
			size = min(1+p.msgs%p.batch, n)
		}
		body := []byte{'['}
		var m *nats.Msg
		for k := range size {
			i := p.next
			p.next++
			typ := "ticketing.inventory.hold.placed"
			if i%5 == 4 {
				typ = "ticketing.orders.order.placed"
			}
			ev := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: "e-" + strconv.Itoa(i), Source: "/test", Type: typ,
				Time: time.Unix(1767225600, int64(i)).UTC(), PartitionKey: aggregates[i%len(aggregates)]}
			b, err := cloudevents.Encode(&ev, map[string]any{"n": i, "pad": string(pad)})
			if err != nil {
				return err
			}
			if size == 1 {
				m = &nats.Msg{Subject: jsnames.EventsSubjPx + "test." + ev.PartitionKey, Header: nats.Header{}, Data: b}
				for _, kv := range ev.Headers() {
					m.Header.Set(kv[0], kv[1])
				}
				m.Header.Set(nats.MsgIdHdr, ev.ID)
				break
			}
			if k > 0 {
				body = append(body, ',')
			}
			body = append(body, b...)
		}
		if size > 1 {
			m = &nats.Msg{Subject: jsnames.EventsSubjPx + "test.batch", Header: nats.Header{}, Data: append(body, ']')}
			m.Header.Set(cloudevents.HeaderContentType, cloudevents.BatchContentType)
			m.Header.Set(nats.MsgIdHdr, "b-"+strconv.Itoa(p.next-size))
		}
		p.msgs++
		n -= size
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *publisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.next
}

// seq is the stream sequence of the last message (the stream started empty).
func (p *publisher) seq() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return uint64(p.msgs)
}

// mirrored is what Kafka holds of the test events.
type mirrored struct {
	count  map[string]int    // by ce_id
	bySeq  map[string]uint64 // stream seq of each id
	errors []string
}

// at is an event's place in the stream: its message, and its index within
// a batch (-1 alone).
type at struct {
	seq uint64
	idx int
}

func (a at) after(b at) bool { return a.seq > b.seq || a.seq == b.seq && a.idx > b.idx }

// readAll reads every committed record of the event topics until it has
// want distinct events (or ctx ends), and checks per topic and key that
// stream places only grow.
func readAll(ctx context.Context, t *testing.T, brokers []string, want int, tm ...kafka.TopicMap) mirrored {
	t.Helper()
	var tc kafka.TopicMap
	if len(tm) > 0 {
		tc = tm[0]
	}
	tc.Defaults()
	var topics []string
	for _, s := range tc.Specs() {
		topics = append(topics, s.Name)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := mirrored{count: map[string]int{}, bySeq: map[string]uint64{}}
	lastByKey := map[string]at{}
	for len(m.count) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			var missing []string
			for i := 0; i < want && len(missing) < 10; i++ {
				if m.count["e-"+strconv.Itoa(i)] == 0 {
					missing = append(missing, "e-"+strconv.Itoa(i))
				}
			}
			t.Fatalf("Kafka holds %d distinct events, want %d: %v; missing (stream seq = number + 1) %v", len(m.count), want, ctx.Err(), missing)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var id string
			pos := at{idx: -1}
			for _, h := range r.Headers {
				switch h.Key {
				case "ce_id":
					id = string(h.Value)
				case mirror.HeaderStreamSeq:
					pos.seq, _ = strconv.ParseUint(string(h.Value), 10, 64)
				case mirror.HeaderBatchIndex:
					pos.idx, _ = strconv.Atoi(string(h.Value))
				}
			}
			m.count[id]++
			m.bySeq[id] = pos.seq
			key := r.Topic + "/" + string(r.Key)
			if last, ok := lastByKey[key]; ok && !pos.after(last) {
				m.errors = append(m.errors, fmt.Sprintf("key %s: %+v after %+v", key, pos, last))
			}
			lastByKey[key] = pos
		})
	}
	return m
}

// exactlyOnce fails unless Kafka holds events e-0 … e-(n-1) once each, in
// order per key, and nothing else.
func exactlyOnce(t *testing.T, m mirrored, n int) {
	t.Helper()
	dups, missing := 0, 0
	for i := range n {
		switch c := m.count["e-"+strconv.Itoa(i)]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	if missing > 0 || dups > 0 || len(m.count) != n || len(m.errors) > 0 {
		t.Fatalf("Kafka: %d distinct ids (want %d), %d missing, %d duplicates, order errors %v", len(m.count), n, missing, dups, first(m.errors, 5))
	}
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func embedded(t testing.TB, c kafka.EmbeddedConfig) *kafka.Embedded {
	t.Helper()
	e, err := kafka.StartEmbedded(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
	})
	return e
}

func config(name string, brokers []string) mirror.Config {
	return mirror.Config{
		Name:     name,
		Kafka:    kafka.ProducerConfig{Client: kafka.ClientConfig{Brokers: brokers}, Topics: kafka.TopicMap{Partitions: 4}},
		MaxBatch: 500, LeaseTTL: 2 * time.Second, MaxBackoff: 500 * time.Millisecond,
	}
}

// run runs a bridge in the background until the test ends or stop is
// called.
func run(t testing.TB, cfg mirror.Config, nc *nats.Conn) (b *mirror.Mirror, stop func()) {
	t.Helper()
	b, err := mirror.New(cfg, nc, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := b.Run(ctx); err != nil {
			t.Errorf("bridge %s: %v", cfg.Name, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return b, stop
}

// wait bounds the tests' waits for the mirror: well within testCtx.
const wait = 2 * time.Minute

func TestMirrorsEveryEventOnceInOrder(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	p := &publisher{js: js}
	p.publish(ctx, t, 3000, 64)
	b, _ := run(t, config("only", e.Brokers()), nc)
	p.publish(ctx, t, 2000, 64)
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 5000), 5000)
	eventually.True(t, wait, "checkpoint", func() bool { return b.Stats().Checkpoint == 5000 })
	// The durable consumer's ack floor trails Kafka: it reaches the end.
	eventually.True(t, wait, "ack floor", func() bool {
		c, err := js.Consumer(ctx, jsnames.Events, "bridge")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream == 5000
	})
}

// TestRestartResumesExactly stops a bridge and starts another: the second
// recovers the checkpoint from Kafka and mirrors only what is new.
func TestRestartResumesExactly(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	p := &publisher{js: js}
	p.publish(ctx, t, 1000, 64)
	b1, stop := run(t, config("first", e.Brokers()), nc)
	eventually.True(t, wait, "first checkpoint", func() bool { return b1.Stats().Checkpoint == 1000 })
	stop()
	p.publish(ctx, t, 1000, 64)
	b2, _ := run(t, config("second", e.Brokers()), nc)
	eventually.True(t, wait, "second checkpoint", func() bool { return b2.Stats().Checkpoint == 2000 })
	if got := b2.Stats().Mirrored; got != 1000 {
		t.Fatalf("the second bridge mirrored %d events, want the 1000 new ones", got)
	}
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 2000), 2000)
}

// TestStandbyTakesOver runs two bridges: one mirrors, the other waits; when
// the first stops, the second takes over where it stopped.
func TestStandbyTakesOver(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	p := &publisher{js: js}
	a, stopA := run(t, config("a", e.Brokers()), nc)
	eventually.True(t, wait, "a active", func() bool { return a.Stats().Active })
	b, _ := run(t, config("b", e.Brokers()), nc)
	p.publish(ctx, t, 1500, 64)
	eventually.True(t, wait, "a mirrors", func() bool { return a.Stats().Checkpoint == 1500 })
	if b.Stats().Active || b.Stats().Mirrored != 0 {
		t.Fatalf("standby: %+v", b.Stats())
	}
	stopA()
	p.publish(ctx, t, 1500, 64)
	eventually.True(t, wait, "b takes over", func() bool { return b.Stats().Checkpoint == 3000 })
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 3000), 3000)
}

// TestEmbeddedBrokerRestart stops the embedded broker mid-stream and starts
// it again on the same port and data directory.
func TestEmbeddedBrokerRestart(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	dir := t.TempDir()
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	brokers := e.Brokers()
	_, port, _ := splitHostPort(brokers[0])
	p := &publisher{js: js}
	b, _ := run(t, config("restart", brokers), nc)
	// Events keep coming while the broker stops and starts again: the
	// bridge waits, JetStream keeps them.
	published := p.background(ctx, t, 5000, 64)
	eventually.True(t, wait, "some mirrored", func() bool { return b.Stats().Checkpoint > 0 })
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("broker stopped at checkpoint %d, %d events published", b.Stats().Checkpoint, p.count())
	e = embedded(t, kafka.EmbeddedConfig{DataDir: dir, Port: port})
	published()
	eventually.True(t, wait, "all mirrored", func() bool { return b.Stats().Checkpoint == 5000 })
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 5000), 5000)
}

func splitHostPort(hp string) (string, int, error) {
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			p, err := strconv.Atoi(hp[i+1:])
			return hp[:i], p, err
		}
	}
	return hp, 0, fmt.Errorf("no port in %q", hp)
}

// TestRecreatedStreamStartsOver: a stream deleted and created again starts
// its sequences at 1; the bridge mirrors it from its start instead of
// skipping as many events as the old stream had.
func TestRecreatedStreamStartsOver(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	p := &publisher{js: js}
	p.publish(ctx, t, 300, 64)
	b1, stop := run(t, config("old", e.Brokers()), nc)
	eventually.True(t, wait, "the old stream mirrored", func() bool { return b1.Stats().Checkpoint == 300 })
	stop()
	if err := js.DeleteStream(ctx, jsnames.Events); err != nil {
		t.Fatal(err)
	}
	if _, err := streams.Ensure(ctx, js, streams.Config{}); err != nil {
		t.Fatal(err)
	}
	p.publish(ctx, t, 100, 64) // e-300 … e-399, stream sequences 1 … 100
	b2, _ := run(t, config("new", e.Brokers()), nc)
	eventually.True(t, wait, "the new stream mirrored", func() bool { return b2.Stats().Checkpoint == 100 })
	m := readAll(ctx, t, e.Brokers(), 400)
	m.errors = nil // stream sequences start again with the new stream: no order across the two
	exactlyOnce(t, m, 400)
}

// TestBatchesSplitIntoEvents: a message carrying a CloudEvents batch
// becomes one Kafka record per event, each routed by its own type, in
// order; a restart resumes after the last whole message (a checkpoint never
// falls inside a batch); a batch that does not parse goes whole to the
// unroutable topic and the bridge goes on.
func TestBatchesSplitIntoEvents(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	p := &publisher{js: js, batch: 7}
	p.publish(ctx, t, 1500, 64)
	cfg := config("first", e.Brokers())
	b1, stop := run(t, cfg, nc)
	eventually.True(t, wait, "first checkpoint", func() bool { return b1.Stats().Checkpoint == p.seq() })
	if got := b1.Stats().Mirrored; got != 1500 {
		t.Fatalf("mirrored %d events, want 1500", got)
	}
	stop()

	bad := &nats.Msg{Subject: jsnames.EventsSubjPx + "test.batch", Header: nats.Header{}, Data: []byte(`[{"id":"x"},`)}
	bad.Header.Set(cloudevents.HeaderContentType, cloudevents.BatchContentType)
	if _, err := js.PublishMsg(ctx, bad); err != nil {
		t.Fatal(err)
	}
	badSeq := uint64(p.msgs + 1)
	p.msgs++ // the stream's sequence moved on
	p.publish(ctx, t, 1500, 64)
	b2, _ := run(t, config("second", e.Brokers()), nc)
	eventually.True(t, wait, "second checkpoint", func() bool { return b2.Stats().Checkpoint == p.seq() })
	if got := b2.Stats().Mirrored; got != 1501 {
		t.Fatalf("the second bridge mirrored %d records, want the 1500 new events and the bad batch", got)
	}
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 3000), 3000)

	cfg.Defaults()
	var unroutable [][]byte
	err := kafka.ReadCommitted(ctx, kafka.ClientConfig{Brokers: e.Brokers()}, cfg.UnroutableTopic, 0, 0, 0, func(r *kafka.Record) {
		unroutable = append(unroutable, r.Value)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(unroutable) != 1 || string(unroutable[0]) != string(bad.Data) {
		t.Fatalf("unroutable topic: %q, want the bad batch (stream seq %d) whole", unroutable, badSeq)
	}
}

// TestLargeBatchesDoNotStall: a backlog of large batches (84 MB, more than
// a client subscription holds by default) is mirrored exactly once, with no
// redelivery and no slow-consumer error: the bridge's prefetch is bounded in
// bytes, not messages.
func TestLargeBatchesDoNotStall(t *testing.T) {
	ctx := testCtx(t)
	_, nc, js := core(t)
	e := embedded(t, kafka.EmbeddedConfig{})
	var slow atomic.Int64
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			slow.Add(1)
		}
	})
	p := &publisher{js: js, batch: 40}
	p.publish(ctx, t, 40000, 2000) // about 1,950 messages of 1-40 events of 2.1 KB: 84 MB
	cfg := config("big", e.Brokers())
	cfg.MaxBatch = 0 // the default
	b, _ := run(t, cfg, nc)
	eventually.True(t, 90*time.Second, "every batch mirrored", func() bool { return b.Stats().Checkpoint == p.seq() })
	exactlyOnce(t, readAll(ctx, t, e.Brokers(), 40000), 40000)
	c, err := js.Consumer(ctx, jsnames.Events, "bridge")
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered > 0 || slow.Load() > 0 {
		t.Fatalf("%d messages delivered again, %d slow-consumer errors: the prefetch overran the client's buffer", info.NumRedelivered, slow.Load())
	}
}
