package pgrelay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/internal/outbox/pgrelay"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const table pgrelay.Table = "test_outbox"

// ddl is the table of the package doc.
const ddl = `CREATE TABLE test_outbox (
	seq     bigint      GENERATED ALWAYS AS IDENTITY,
	id      text        PRIMARY KEY,
	subject text        NOT NULL,
	headers jsonb       NOT NULL,
	body    bytea       NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX test_outbox_seq ON test_outbox (seq);`

// schema makes a schema with the outbox table and returns its pool
// config.
func schema(t testing.TB) postgres.Config {
	t.Helper()
	c := pgtest.Config(t)
	pool := pgtest.Open(t, c)
	if _, err := pool.Exec(context.Background(), ddl); err != nil {
		t.Fatal(err)
	}
	return c
}

// events starts an embedded JetStream server with an EVENTS stream, as a
// single core node has it (core/streams: flushed asynchronously).
func events(t testing.TB) (jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	_, _, js := nodetest.Start(t)
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: 2 * time.Minute, PersistMode: jetstream.AsyncPersistMode})
	if err != nil {
		t.Fatal(err)
	}
	return js, s
}

// start runs a relay until the test ends.
func start(t testing.TB, pool *pgxpool.Pool, js jetstream.JetStream, c pgrelay.Config) *pgrelay.Relay {
	t.Helper()
	c.Table, c.Log = table, quiet
	r, err := pgrelay.New(pool, js, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

var idSeq atomic.Int64

// entry is an event on subject, with a body of about 600 bytes (an
// order event's).
func entry(t testing.TB, subject string) outbox.Entry {
	t.Helper()
	ce := cloudevents.Event{SpecVersion: cloudevents.SpecVersion, ID: fmt.Sprintf("evt_%d_%d", time.Now().UnixNano(), idSeq.Add(1)),
		Source: "/test", Type: "ticketing.test.happened", Subject: subject, Time: time.Now().UTC(),
		DataContentType: "application/json", PartitionKey: subject}
	e, err := outbox.NewEntry("events.test."+subject, &ce, map[string]string{"padding": strings.Repeat("x", 300)})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// write commits entries in one transaction (one batch) and returns their
// ids.
func write(t testing.TB, pool *pgxpool.Pool, entries ...outbox.Entry) []string {
	t.Helper()
	b := &pgx.Batch{}
	if err := table.Queue(b, entries); err != nil {
		t.Fatal(err)
	}
	if err := pool.SendBatch(context.Background(), b).Close(); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(entries))
	for i := range entries {
		ids[i] = entries[i].ID()
	}
	return ids
}

type msg struct{ subject, id string }

// stream reads every message of the stream, in its order.
func stream(t testing.TB, s jetstream.Stream) []msg {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []msg
	for range info.State.Msgs {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msg{m.Subject(), m.Headers().Get(nats.MsgIdHdr)})
	}
	return out
}

func left(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+string(table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    pgrelay.Config
		want string
	}{
		{"no table", pgrelay.Config{}, "outbox table"},
		{"quoted table", pgrelay.Config{Table: `"x"; drop`}, "outbox table"},
		{"channel", pgrelay.Config{Table: table, Channel: "A-B"}, "channel"},
		{"batch", pgrelay.Config{Table: table, Batch: -1}, "batch"},
		{"poll", pgrelay.Config{Table: table, Poll: time.Microsecond}, "poll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Defaults()
			if err := tc.c.Validate(); !errs.Is(errs.Invalid, err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want invalid naming %q", err, tc.want)
			}
		})
	}
	c := pgrelay.Config{Table: table}
	c.Defaults()
	if err := c.Validate(); err != nil || c.Channel != string(table) || c.Batch != 256 || c.Poll != time.Second {
		t.Fatalf("defaults %+v: %v", c, err)
	}
}

// Two relays on one table, with writers writing all along: every entry
// reaches the stream once (no relay published one twice), each subject's
// entries in the order they were written.
func TestTwoRelays(t *testing.T) {
	pool := pgtest.Open(t, schema(t))
	js, s := events(t)
	notifier, err := pgrelay.NewNotifier(pool, string(table), 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer notifier.Close()
	// Small batches, so that the relays take turns often.
	relays := []*pgrelay.Relay{
		start(t, pool, js, pgrelay.Config{Batch: 16}),
		start(t, pool, js, pgrelay.Config{Batch: 16}),
	}
	const writers, subjectsEach, writes = 6, 4, 150
	written := make([][]string, writers*subjectsEach) // per subject, in order
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each subject has one writer, as an order has one at a time.
			for i := range writes {
				k := w*subjectsEach + i%subjectsEach
				subject := fmt.Sprintf("s%d", k)
				ids := write(t, pool, entry(t, subject), entry(t, subject))
				written[k] = append(written[k], ids...)
				notifier.Notify()
			}
		}()
	}
	wg.Wait()
	total := writers * writes * 2
	eventually.True(t, 30*time.Second, "every entry relayed", func() bool { return left(t, pool) == 0 })

	got := stream(t, s)
	if len(got) != total {
		t.Fatalf("%d messages in the stream, %d written", len(got), total)
	}
	per := map[string][]string{}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.id] {
			t.Fatalf("%s is twice in the stream", m.id)
		}
		seen[m.id] = true
		per[m.subject] = append(per[m.subject], m.id)
	}
	for k, ids := range written {
		if got := per[fmt.Sprintf("events.test.s%d", k)]; !equal(got, ids) {
			t.Fatalf("subject s%d: stream order %v, written %v", k, got, ids)
		}
	}
	var relayed uint64
	for i, r := range relays {
		t.Logf("relay %d published %d", i, r.Relayed())
		relayed += r.Relayed()
	}
	if relayed != uint64(total) {
		t.Fatalf("the relays published %d messages for %d entries", relayed, total)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A relay that fails between publishing a batch and deleting it publishes
// the batch again; the stream's duplicate window drops the repeats.
func TestRepublishAfterFailure(t *testing.T) {
	pool := pgtest.Open(t, schema(t))
	js, s := events(t)
	var ids []string
	for i := range 40 {
		ids = append(ids, write(t, pool, entry(t, fmt.Sprintf("s%d", i%3)))...)
	}
	var failures atomic.Int64
	r, err := pgrelay.New(pool, js, pgrelay.Config{Table: table, Batch: 16, Backoff: 10 * time.Millisecond, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.SetAfterPublish(func() error {
		if failures.Add(1) <= 2 {
			return errors.New("the relay died")
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	eventually.True(t, 30*time.Second, "every entry relayed", func() bool { return left(t, pool) == 0 })
	got := stream(t, s)
	if len(got) != len(ids) {
		t.Fatalf("%d messages in the stream for %d entries", len(got), len(ids))
	}
	for i, m := range got {
		if m.id != ids[i] {
			t.Fatalf("message %d is %s, want %s", i, m.id, ids[i])
		}
	}
	if r.Relayed() != uint64(len(ids)+2*16) {
		t.Fatalf("published %d, want %d: the two failed batches again", r.Relayed(), len(ids)+2*16)
	}
}

// A relay whose connections the server ends (a restart) connects again
// and listens again.
func TestReconnects(t *testing.T) {
	c := schema(t)
	writers := pgtest.Open(t, c)
	var b [4]byte
	_, _ = rand.Read(b[:])
	c.ApplicationName = "relay-" + hex.EncodeToString(b[:])
	pool := pgtest.Open(t, c)
	js, s := events(t)
	notifier, err := pgrelay.NewNotifier(writers, string(table), 0, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer notifier.Close()
	// A poll of a minute: only a notification wakes the relay in time.
	start(t, pool, js, pgrelay.Config{Poll: time.Minute, Backoff: 20 * time.Millisecond})
	ctx := context.Background()
	// listener is the backend of the relay's LISTEN, 0 when there is none.
	listener := func() int {
		var pid int
		_ = writers.QueryRow(ctx, `SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
			c.ApplicationName).Scan(&pid)
		return pid
	}
	var ids []string
	var last int
	for round := range 4 {
		eventually.True(t, 10*time.Second, "the relay listening on a new connection", func() bool {
			pid := listener()
			if pid != 0 && pid != last {
				last = pid
				return true
			}
			return false
		})
		ids = append(ids, write(t, writers, entry(t, "s"), entry(t, "s"))...)
		notifier.Notify()
		eventually.True(t, 10*time.Second, fmt.Sprintf("round %d relayed", round), func() bool { return left(t, writers) == 0 })
		if round == 3 {
			break
		}
		// The server ends every connection of the relay.
		var n int
		if err := writers.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
			c.ApplicationName).Scan(&n); err != nil || n == 0 {
			t.Fatalf("terminated %d backends: %v", n, err)
		}
	}
	got := stream(t, s)
	if len(got) != len(ids) {
		t.Fatalf("%d messages for %d entries", len(got), len(ids))
	}
}

// BenchmarkRelay measures how fast one relay empties a table of b.N
// entries of about 1 kB each into an embedded JetStream stream.
func BenchmarkRelay(b *testing.B) {
	pool := pgtest.Open(b, schema(b))
	js, s := events(b)
	var batch []outbox.Entry
	for i := range b.N {
		batch = append(batch, entry(b, fmt.Sprintf("s%d", i%1000)))
		if len(batch) == 1000 || i == b.N-1 {
			write(b, pool, batch...)
			batch = batch[:0]
		}
	}
	b.ResetTimer()
	start(b, pool, js, pgrelay.Config{})
	eventually.True(b, 5*time.Minute, "every entry relayed", func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == uint64(b.N)
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
