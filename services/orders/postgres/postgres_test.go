package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/outbox/pgrelay"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/orders"
	"github.com/ticketing/ticketing/services/orders/natskv"
	"github.com/ticketing/ticketing/services/orders/orderstest"
	"github.com/ticketing/ticketing/services/orders/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// migrated is a pool on a new schema with the store's migrations applied.
func migrated(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	return pool
}

func newStore(t testing.TB, pool *pgxpool.Pool, c postgres.Config) *postgres.Store {
	t.Helper()
	c.Log = quiet
	s, err := postgres.New(pool, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// relayTo starts an embedded JetStream server with an EVENTS stream (as a
// single core node has it: flushed asynchronously) and a relay of the
// store's outbox on pool into it.
func relayTo(t testing.TB, pool *pgxpool.Pool) (jetstream.Stream, *pgrelay.Relay) {
	t.Helper()
	_, _, js := nodetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"},
		Duplicates: 2 * time.Minute, PersistMode: jetstream.AsyncPersistMode})
	if err != nil {
		t.Fatal(err)
	}
	c := postgres.RelayConfig()
	c.Log = quiet
	relay, err := pgrelay.New(pool, js, c)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return events, relay
}

// published reads the order events in the stream: their Nats-Msg-Ids, in
// the stream's order.
func published(t testing.TB, events jetstream.Stream) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	c, err := events.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"events.order.>"}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for range info.State.Msgs {
		m, err := c.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break
		}
		out = append(out, m)
	}
	return out
}

func open(t *testing.T) orderstest.Fixture {
	pool := migrated(t)
	events, _ := relayTo(t, pool)
	s := newStore(t, pool, postgres.Config{})
	return orderstest.Fixture{Store: s, Published: func(t *testing.T) []string {
		t.Helper()
		var ids []string
		for _, m := range published(t, events) {
			ids = append(ids, m.Headers().Get("Nats-Msg-Id"))
		}
		return ids
	}}
}

func TestContract(t *testing.T) { orderstest.Run(t, open) }

func TestMigrations(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	res, err = postgres.Migrate(ctx, pool, quiet)
	if err != nil || len(res.Applied) != 0 || !slices.Equal(res.Skipped, []int64{1}) {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	// The checks hold for writers that skip the store too.
	for _, q := range []string{
		`INSERT INTO purchase_counts (account, event, tickets) VALUES ('a', 'e', -1)`,
		`INSERT INTO orders (id, account, event, state, created, record, version) VALUES ('o', 'a', 'e', 'x', now(), '{}', 0)`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: succeeded", q)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []postgres.Config{
		{IdempotencyTTL: time.Hour},
		{Retries: -1},
		{NotifyInterval: -2},
	} {
		c.Defaults()
		if err := c.Validate(); !errs.Is(errs.Invalid, err) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	var c postgres.Config
	c.Defaults()
	if err := c.Validate(); err != nil || c.IdempotencyTTL != 48*time.Hour || c.Retries != 50 || c.Source != "/orders" {
		t.Fatalf("defaults %+v: %v", c, err)
	}
}

// newOrder is a started order of account for event with one hold of
// tickets GA units.
func newOrder(account, event string, tickets int) orders.Order {
	now := time.Now().UTC().Truncate(time.Millisecond)
	o := orders.Order{
		ID: orders.NewID(), Account: account, Event: event, Channel: "web",
		Holds:   []orders.Hold{{Partition: event + ".0", ID: "h_" + orders.NewID(), Zone: "ga", Quantity: tickets, ExpiresAt: now.Add(10 * time.Minute)}},
		QuoteID: "q_test", Lines: []orders.Line{{Kind: "ticket", Ref: "ga", Description: "GA", Quantity: tickets, Unit: 5000, Amount: 5000 * int64(tickets)}},
		Amounts: orders.Amounts{Currency: "USD", Subtotal: 5000 * int64(tickets), Total: 5000 * int64(tickets)},
	}
	if err := o.Start(now); err != nil {
		panic(err)
	}
	return o
}

// rowCounts are what a schema holds: orders, hold claims, tickets counted
// and outbox entries.
type rowCounts struct{ orders, claims, tickets, outbox int }

func counts(t *testing.T, pool *pgxpool.Pool) rowCounts {
	t.Helper()
	var c rowCounts
	if err := pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM order_holds),
		(SELECT coalesce(sum(tickets), 0) FROM purchase_counts), (SELECT count(*) FROM order_outbox)`).
		Scan(&c.orders, &c.claims, &c.tickets, &c.outbox); err != nil {
		t.Fatal(err)
	}
	return c
}

// The order and its outbox entries are written together or not at all.
func TestAtomicWrites(t *testing.T) {
	pool := migrated(t)
	s := newStore(t, pool, postgres.Config{NotifyInterval: -1}) // no relay: the outbox stays
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE FUNCTION refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no entries'; END $$`)
	refuse := func() {
		exec(`CREATE TRIGGER refuse BEFORE INSERT ON order_outbox FOR EACH ROW EXECUTE FUNCTION refuse_entry()`)
	}
	allow := func() { exec(`DROP TRIGGER refuse ON order_outbox`) }
	want := func(want rowCounts) {
		t.Helper()
		if got := counts(t, pool); got != want {
			t.Fatalf("the schema holds %+v, want %+v", got, want)
		}
	}

	// An outbox that refuses the entry: no order, claim or count either.
	refuse()
	o := newOrder("acct-1", "ev-1", 2)
	if _, _, err := s.Create(ctx, o, 0); err == nil {
		t.Fatal("a create whose entry was refused succeeded")
	}
	want(rowCounts{})
	if _, err := s.Get(ctx, o.ID); !errs.Is(errs.NotFound, err) {
		t.Fatalf("the order after a failed create: %v", err)
	}
	allow()
	if _, _, err := s.Create(ctx, o, 0); err != nil {
		t.Fatal(err)
	}
	want(rowCounts{orders: 1, claims: 1, tickets: 2, outbox: 1})

	// An update whose entry is refused leaves the order, its claim and
	// count as they were.
	refuse()
	if _, err := s.Update(ctx, o.ID, func(o *orders.Order) error { return o.Move(orders.Cancelled, "test", time.Now()) }); err == nil {
		t.Fatal("an update whose entry was refused succeeded")
	}
	if got, err := s.Get(ctx, o.ID); err != nil || got.State != orders.AwaitingPayment || got.Version != 1 {
		t.Fatalf("after a failed update: %s v%d, %v", got.State, got.Version, err)
	}
	want(rowCounts{orders: 1, claims: 1, tickets: 2, outbox: 1})
	allow()

	// Writes that the order's tables refuse leave no entry.
	taken := newOrder("acct-2", "ev-1", 1)
	taken.Holds = o.Holds
	if _, _, err := s.Create(ctx, taken, 0); errs.ReasonOf(err) != orders.ReasonHoldTaken {
		t.Fatalf("a claimed hold: %v", err)
	}
	if _, _, err := s.Create(ctx, newOrder("acct-1", "ev-1", 3), 4); errs.ReasonOf(err) != orders.ReasonPurchaseLimit {
		t.Fatalf("over the limit: %v", err)
	}
	want(rowCounts{orders: 1, claims: 1, tickets: 2, outbox: 1})

	if _, err := s.Update(ctx, o.ID, func(o *orders.Order) error { return o.Move(orders.Cancelled, "test", time.Now()) }); err != nil {
		t.Fatal(err)
	}
	want(rowCounts{orders: 1, claims: 0, tickets: 0, outbox: 2})
}

// An idempotency key names its order for IdempotencyTTL; after that a
// request with it makes a new order.
func TestIdempotencyExpires(t *testing.T) {
	pool := migrated(t)
	s := newStore(t, pool, postgres.Config{NotifyInterval: -1, IdempotencyTTL: 24 * time.Hour})
	ctx := context.Background()
	old := newOrder("acct-1", "ev-1", 1)
	if err := old.Start(time.Now().Add(-25 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	old.IdemKey, old.Fingerprint = "acct-1:k", "fp"
	if _, _, err := s.Create(ctx, old, 0); err != nil {
		t.Fatal(err)
	}
	again := newOrder("acct-1", "ev-1", 1)
	again.IdemKey, again.Fingerprint = old.IdemKey, "another"
	got, created, err := s.Create(ctx, again, 0)
	if err != nil || !created || got.ID != again.ID {
		t.Fatalf("a request with an expired key: %s created %v, %v", got.ID, created, err)
	}
	// The new order has the key now.
	retry := newOrder("acct-1", "ev-1", 1)
	retry.IdemKey, retry.Fingerprint = again.IdemKey, again.Fingerprint
	if got, created, err := s.Create(ctx, retry, 0); err != nil || created || got.ID != again.ID {
		t.Fatalf("a retry: %s created %v, %v", got.ID, created, err)
	}
	// The old order keeps its key in its record.
	if o, err := s.Get(ctx, old.ID); err != nil || o.IdemKey != old.IdemKey {
		t.Fatalf("the old order: %+v, %v", o, err)
	}
}

// An update may not move an order to another account or event.
func TestUpdateKeepsIdentity(t *testing.T) {
	pool := migrated(t)
	s := newStore(t, pool, postgres.Config{NotifyInterval: -1})
	ctx := context.Background()
	o := newOrder("acct-1", "ev-1", 1)
	if _, _, err := s.Create(ctx, o, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, o.ID, func(o *orders.Order) error { o.Account = "acct-2"; return nil }); !errs.Is(errs.Invalid, err) {
		t.Fatalf("a changed account: %v", err)
	}
}

// The same order written to this store and to the JetStream store makes
// the same messages in EVENTS: subject, headers and body, byte for byte
// (once the event ids the two stores drew are set aside).
func TestSameMessagesAsNATSKV(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := migrated(t)
	pgEvents, _ := relayTo(t, pool)
	pg := newStore(t, pool, postgres.Config{})

	_, nc, js := nodetest.Start(t)
	kvEvents, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Duplicates: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := natskv.Open(ctx, js, nc, natskv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	relay := &natskv.Relay{Store: kv, Log: quiet}
	done := make(chan struct{})
	go func() { defer close(done); _ = relay.Run(ctx) }()
	defer func() { cancel(); <-done }()

	o := newOrder("acct-1", "ev-1", 2)
	o.IdemKey, o.Fingerprint = "acct-1:k", "fp"
	at := time.Now().UTC()
	for _, s := range []orders.Store{pg, kv} {
		if _, _, err := s.Create(ctx, o, 4); err != nil { // the same order, its created event with the same id
			t.Fatal(err)
		}
		for _, to := range []orders.State{orders.RequiresAction, orders.Paid} {
			if _, err := s.Update(ctx, o.ID, func(o *orders.Order) error {
				o.Payment.Attempts++
				return o.Move(to, "test", at)
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var pgMsgs, kvMsgs []jetstream.Msg
	eventually.True(t, 15*time.Second, "three events in each stream", func() bool {
		pgMsgs, kvMsgs = published(t, pgEvents), published(t, kvEvents)
		return len(pgMsgs) == 3 && len(kvMsgs) == 3
	})
	for i := range pgMsgs {
		p, k := pgMsgs[i], kvMsgs[i]
		pid, kid := p.Headers().Get(cloudevents.HeaderID), k.Headers().Get(cloudevents.HeaderID)
		if p.Headers().Get(nats.MsgIdHdr) != pid || pid == "" {
			t.Fatalf("message %d: Nats-Msg-Id %q, event id %q", i, p.Headers().Get(nats.MsgIdHdr), pid)
		}
		if i == 0 && pid != kid {
			t.Fatalf("the created events have ids %s and %s", pid, kid)
		}
		ph, kh := map[string][]string(p.Headers()), map[string][]string(k.Headers())
		for _, h := range []map[string][]string{ph, kh} {
			delete(h, cloudevents.HeaderID)
			delete(h, nats.MsgIdHdr)
		}
		if p.Subject() != k.Subject() || !reflect.DeepEqual(ph, kh) ||
			!bytes.Equal(bytes.ReplaceAll(p.Data(), []byte(pid), []byte(kid)), k.Data()) {
			t.Fatalf("message %d differs:\npostgres %s %v %s\nnatskv   %s %v %s", i,
				p.Subject(), ph, p.Data(), k.Subject(), kh, k.Data())
		}
	}
}

// BenchmarkPurchase measures the store's writes of a purchase from
// parallel callers: the create and the three updates of a paid order
// (paid, confirmed, fulfilled), with a relay publishing the events into
// an embedded JetStream stream as a node would, without one ("alone"),
// and without one nor the remembered orders (every update reads first).
func BenchmarkPurchase(b *testing.B) {
	for _, bc := range []struct {
		name   string
		relay  bool
		recent int
	}{
		{"with-relay", true, 0},
		{"alone", false, 0},
		{"alone-no-recent", false, -1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pool := migrated(b)
			c := postgres.Config{Recent: bc.recent}
			if bc.relay {
				relayTo(b, pool)
			} else {
				c.NotifyInterval = -1
			}
			s := newStore(b, pool, c)
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(4)
			cpu := startCPU(b, pool)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					o := newOrder(fmt.Sprintf("acct-%d", i%5000), fmt.Sprintf("ev-%d", i%7), 2)
					if _, _, err := s.Create(ctx, o, 8); err != nil && errs.ReasonOf(err) != orders.ReasonPurchaseLimit {
						b.Error(err)
						return
					}
					for _, step := range []func(o *orders.Order) error{
						func(o *orders.Order) error { return o.Move(orders.Paid, "payment_succeeded", time.Now()) },
						func(o *orders.Order) error {
							o.Done(orders.StepConfirm, time.Now())
							return o.Move(orders.Confirmed, "seats_sold", time.Now())
						},
						func(o *orders.Order) error { return o.Move(orders.Fulfilled, "tickets_issued", time.Now()) },
					} {
						if _, err := s.Update(ctx, o.ID, step); err != nil && !errs.Is(errs.NotFound, err) {
							b.Error(err)
							return
						}
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "purchases/s")
			b.ReportMetric(4*float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			cpu.report(b, b.N, "purchase")
		})
	}
}

// cpuMeter measures the CPU time this process and the server processes
// of a pool's connections spend (Linux: getrusage and /proc), so that a
// benchmark reports its cost on a machine shared with other work.
type cpuMeter struct {
	pool     *pgxpool.Pool
	self, pg time.Duration
	ok       bool
}

func startCPU(b *testing.B, pool *pgxpool.Pool) *cpuMeter {
	m := &cpuMeter{pool: pool}
	m.self, m.pg, m.ok = m.read(b)
	return m
}

func (m *cpuMeter) read(b *testing.B) (self, pg time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, false
	}
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	// Fill the pool, then read each backend's user and system time.
	conns := make([]*pgxpool.Conn, 0, m.pool.Config().MaxConns)
	for range m.pool.Config().MaxConns {
		c, err := m.pool.Acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for _, c := range conns {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Conn().PgConn().PID()))
		if err != nil {
			return 0, 0, false // the server is not on this machine
		}
		// The fields after the command name, which is in parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		pg += time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ
	}
	return self, pg, true
}

// report adds the CPU time per op since start: this process's (the
// store's client side, and the embedded JetStream server when there is
// one) and the server's.
func (m *cpuMeter) report(b *testing.B, n int, op string) {
	self, pg, ok := m.read(b)
	if !ok || !m.ok || n == 0 {
		return
	}
	b.ReportMetric(float64((self-m.self).Microseconds())/float64(n), "client-cpu-µs/"+op)
	b.ReportMetric(float64((pg-m.pg).Microseconds())/float64(n), "pg-cpu-µs/"+op)
}

// Two stores on one database (two processes): each remembers the orders
// it wrote, and an update from a form the other has replaced reads the
// order again rather than losing the other's write.
func TestTwoStores(t *testing.T) {
	pool := migrated(t)
	a := newStore(t, pool, postgres.Config{NotifyInterval: -1})
	b := newStore(t, pool, postgres.Config{NotifyInterval: -1})
	ctx := context.Background()
	o := newOrder("acct-1", "ev-1", 1)
	if _, _, err := a.Create(ctx, o, 0); err != nil {
		t.Fatal(err)
	}
	attempt := func(o *orders.Order) error { o.Payment.Attempts++; return nil }
	for i, s := range []*postgres.Store{b, a, b, a, a} {
		got, err := s.Update(ctx, o.ID, attempt)
		if err != nil || got.Payment.Attempts != i+1 || got.Version != uint64(i+2) {
			t.Fatalf("update %d: attempts %d, version %d, %v", i, got.Payment.Attempts, got.Version, err)
		}
	}
	if got, err := b.Get(ctx, o.ID); err != nil || got.Payment.Attempts != 5 || got.Version != 6 {
		t.Fatalf("read back: attempts %d, version %d, %v", got.Payment.Attempts, got.Version, err)
	}
}

// Concurrent requests with one idempotency key and the order id derived
// from it (orders.IDFor, as the checkout makes them) make one order and
// are all answered with it.
func TestIdempotentDerivedID(t *testing.T) {
	pool := migrated(t)
	s := newStore(t, pool, postgres.Config{NotifyInterval: -1})
	ctx := context.Background()
	o := newOrder("acct-1", "ev-1", 1)
	o.IdemKey, o.Fingerprint = "acct-1:k", "fp"
	o.ID = orders.IDFor(o.IdemKey)
	var created atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, c, err := s.Create(ctx, o, 0)
			if err != nil || got.ID != o.ID {
				t.Errorf("create: %s, %v", got.ID, err)
			}
			if c {
				created.Add(1)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d creates reported a new order", created.Load())
	}
}
