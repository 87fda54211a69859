package bridge_test

// The exactly-once suite (bridge/kafka/kafkatest.RunFeed) against every
// consumer of the Kafka side, each on its embedded store with the embedded
// broker and on PostgreSQL with the real Kafka broker.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/bridge/kafka/kafkatest"
	"github.com/ticketing/ticketing/core/node/nodetest"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/internal/testservers"
	"github.com/ticketing/ticketing/services/analytics"
	"github.com/ticketing/ticketing/services/analytics/filestore"
	analyticspg "github.com/ticketing/ticketing/services/analytics/postgres"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/audittest"
	"github.com/ticketing/ticketing/services/audit/filelog"
	auditpg "github.com/ticketing/ticketing/services/audit/postgres"
	"github.com/ticketing/ticketing/services/reporting"
	"github.com/ticketing/ticketing/services/reporting/natskv"
	reportingpg "github.com/ticketing/ticketing/services/reporting/postgres"
	"github.com/ticketing/ticketing/services/reporting/reportingtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// embeddedBroker is a kfake broker of the test's own.
func embeddedBroker(t *testing.T) []string {
	e, err := kafka.StartEmbedded(kafka.EmbeddedConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e.Brokers()
}

func realBroker(t *testing.T) []string { return testservers.KafkaBrokers(t) }

// onStores runs the suite for c twice: on the consumer's embedded store
// (embedded makes an empty one) with the embedded broker, and on
// PostgreSQL (a schema of the test's own, migrated) with the real broker.
func onStores[F kafka.Feed[P, R], P kafka.Partition, R any](t *testing.T, c kafkatest.FeedCase[F, P, R], embedded func(t *testing.T) func() (F, error),
	migrate func(context.Context, *pgxpool.Pool, *slog.Logger) (migrations.Result, error), onPool func(*pgxpool.Pool) F) {
	t.Run("Embedded", func(t *testing.T) {
		c := c
		c.Brokers = embeddedBroker
		c.NewStore = func(t *testing.T) func() F {
			open := embedded(t)
			return func() F {
				f, err := open()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		}
		kafkatest.RunFeed(t, c)
	})
	t.Run("PostgresKafka", func(t *testing.T) {
		c := c
		c.Brokers, c.Features.Shared = realBroker, true
		c.NewStore = func(t *testing.T) func() F {
			pool := pgtest.Pool(t)
			if _, err := migrate(context.Background(), pool, quiet); err != nil {
				t.Fatal(err)
			}
			return func() F { return onPool(pool) }
		}
		kafkatest.RunFeed(t, c)
	})
}

// TestConsumersExactlyOnce runs the suite for every consumer, on its
// embedded store and on PostgreSQL.
func TestConsumersExactlyOnce(t *testing.T) {
	t.Run("Reporting", func(t *testing.T) {
		onStores(t, kafkatest.FeedCase[reporting.Feed, reporting.Partition, reporting.Record]{Stream: reportingStream, Check: checkReports},
			embeddedReporting, reportingpg.Migrate, func(pool *pgxpool.Pool) reporting.Feed {
				return reporting.Feed{Store: reportingpg.New(pool), Log: quiet}
			})
	})
	t.Run("Analytics", func(t *testing.T) {
		onStores(t, kafkatest.FeedCase[analytics.Feed, analytics.Position, analytics.Input]{Stream: analyticsStream, Check: checkFunnels},
			embeddedAnalytics, analyticspg.Migrate, func(pool *pgxpool.Pool) analytics.Feed {
				return analytics.Feed{Store: analyticspg.New(pool), Log: quiet}
			})
	})
	t.Run("Audit", func(t *testing.T) {
		onStores(t, kafkatest.FeedCase[audit.Feed, audit.Chain, audit.Record]{Stream: auditStream, Check: checkChains},
			embeddedAudit, auditpg.Migrate, func(pool *pgxpool.Pool) audit.Feed { return audit.Feed{Store: auditpg.New(pool), Log: quiet} })
	})
}

// embeddedReporting makes an empty store of `ticketing dev` (JetStream KV).
func embeddedReporting(t *testing.T) func() (reporting.Feed, error) {
	_, _, js := nodetest.Start(t)
	return func() (reporting.Feed, error) {
		s, err := natskv.Open(context.Background(), js, natskv.Config{Bucket: "reporting-test"})
		return reporting.Feed{Store: s, Log: quiet}, err
	}
}

// checkReports compares the stored reports with what folding sent once
// gives.
func checkReports(ctx context.Context, f reporting.Feed, sent []*kafka.Record) error {
	recs := make([]reporting.Record, len(sent))
	for i, r := range sent {
		recs[i] = f.Record(reporting.Partition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.Value)
	}
	want := reportingtest.Expected(recs)
	events := make([]string, 0, len(want.Events))
	for id := range want.Events {
		events = append(events, id)
	}
	slices.Sort(events)
	return reportingtest.Diff(ctx, f.Store, want, events...)
}

// reportingStream is 400 inventory and order events of five events at
// random, with an inventory event and an order event the bridge wrote
// twice, an undecodable record and order events reporting does not count
// (on one topic: the fold does not tell the topics apart).
func reportingStream(topic string) []*kafka.Record {
	rnd := rand.New(rand.NewPCG(1, 2))
	types := []string{"hold.placed", "hold.released", "hold.expired", "seats.sold", "sale.cancelled"}
	orderTypes := []string{"created", "paid", "confirmed", "refunded", "expired"}
	var recs []*kafka.Record
	for i := range 400 {
		ev := fmt.Sprintf("event-%d", rnd.IntN(5))
		at := reportingtest.T0.Add(time.Duration(i) * 37 * time.Second)
		var key string
		var body []byte
		if i%2 == 0 {
			n := 1 + rnd.IntN(4)
			key = ev
			body = reportingtest.Body(reportingtest.Ev{ID: fmt.Sprintf("id-%d", i), Type: types[rnd.IntN(len(types))], EventID: ev,
				Zones: map[string]int{fmt.Sprintf("z%d", rnd.IntN(3)): n}, Organizer: "org-" + ev, At: at})
		} else {
			key = fmt.Sprintf("o-%d", rnd.IntN(40)) // the bridge keys order events by order
			body = reportingtest.OrderBody(reportingtest.Ord{ID: fmt.Sprintf("id-%d", i), Type: orderTypes[rnd.IntN(len(orderTypes))],
				Order: key, EventID: ev, Organizer: "org-" + ev, Subtotal: int64(1+rnd.IntN(4)) * 2500, Fees: 300, Tax: 250, At: at})
		}
		recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(key), Value: body})
		if i == 100 || i == 101 {
			recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(key), Value: body}) // the bridge wrote it twice
		}
		if i == 100 {
			recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(key), Value: []byte("garbage")})
		}
	}
	return recs
}

// embeddedAnalytics makes an empty store of `ticketing dev` (a file).
func embeddedAnalytics(t *testing.T) func() (analytics.Feed, error) {
	path := filepath.Join(t.TempDir(), "analytics.json")
	return func() (analytics.Feed, error) {
		s, err := filestore.Open(filestore.Config{Path: path})
		return analytics.Feed{Store: s, Log: quiet}, err
	}
}

// analyticsStream is, for each of three events, 100 queue joins, 100
// holds of two tickets and 100 records the funnel does not count, and an
// undecodable record.
func analyticsStream(topic string) []*kafka.Record {
	body := func(i int, typ string, data map[string]any) []byte {
		b, err := cloudevents.Encode(&cloudevents.Event{SpecVersion: "1.0", ID: fmt.Sprintf("e-%d-%s", i, typ), Source: "/t", Type: typ,
			Time: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)}, data)
		if err != nil {
			panic(err)
		}
		return b
	}
	var recs []*kafka.Record
	for i := range 300 {
		id := fmt.Sprintf("event-%d", i%3)
		recs = append(recs,
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, analytics.TypeQueueJoined, map[string]any{"event_id": id, "session": "s"})},
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, analytics.TypeHoldPlaced, map[string]any{"event_id": id, "quantity": 2})},
			&kafka.Record{Topic: topic, Key: []byte(id), Value: body(i, "ticketing.orders.placed", map[string]any{"event_id": id})},
		)
		if i == 150 {
			recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(id), Value: []byte("garbage")})
		}
	}
	return recs
}

// checkFunnels compares the stored funnels with the funnels of sent,
// folded once each, and checks that no other event has one.
func checkFunnels(ctx context.Context, f analytics.Feed, sent []*kafka.Record) error {
	in := make([]analytics.Input, len(sent))
	for i, r := range sent {
		in[i] = analytics.Feed{Log: quiet}.Record(analytics.Position{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.Value)
	}
	states := map[string]*analytics.State{}
	analytics.Fold(nil, states, in)
	for id, s := range states {
		got, err := f.Store.Funnel(ctx, id)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		want := s.Funnel()
		if got.Joined != want.Joined || got.Admitted != want.Admitted || got.HoldsPlaced != want.HoldsPlaced ||
			got.HeldTickets != want.HeldTickets || got.SoldTickets != want.SoldTickets || got.Orders != want.Orders {
			return fmt.Errorf("%s: funnel %+v, want %+v", id, got, want)
		}
	}
	if _, err := f.Store.Funnel(ctx, "event-3"); !errs.Is(errs.NotFound, err) {
		return fmt.Errorf("event-3, of which no record was sent: %v, want not found", err)
	}
	return nil
}

// embeddedAudit makes an empty log of `ticketing dev` (files); each store
// opened on it is closed when the test ends.
func embeddedAudit(t *testing.T) func() (audit.Feed, error) {
	dir := t.TempDir()
	return func() (audit.Feed, error) {
		s, err := filelog.Open(filelog.Config{Dir: dir, Logger: quiet})
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		return audit.Feed{Store: s, Log: quiet}, err
	}
}

// auditStream is 300 events over seven keys, and then one of them again
// (as the bridge may write after a crash).
func auditStream(topic string) []*kafka.Record {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	recs := make([]*kafka.Record, 0, 301)
	for i := range 300 {
		recs = append(recs, &kafka.Record{Topic: topic, Key: []byte(fmt.Sprintf("event-%d", i%7)),
			Value: audittest.Body(fmt.Sprintf("ev-%d", i), "ticketing.inventory.hold.placed", at.Add(time.Duration(i)*time.Millisecond))})
	}
	return append(recs, &kafka.Record{Topic: topic, Key: []byte("event-3"), Value: recs[3].Value})
}

// checkChains compares each chain with the records sent to its partition,
// in offset order, each event id once (the first time it came), and
// verifies the log.
func checkChains(ctx context.Context, f audit.Feed, sent []*kafka.Record) error {
	byChain := map[audit.Chain][]*kafka.Record{}
	for _, r := range sent {
		c := audit.Chain{Topic: r.Topic, Partition: r.Partition}
		byChain[c] = append(byChain[c], r)
	}
	seen := map[string]bool{}
	for c, recs := range byChain {
		slices.SortFunc(recs, func(a, b *kafka.Record) int { return int(a.Offset - b.Offset) })
		var want []string
		for _, r := range recs {
			a, err := audit.ParseBody(r.Value)
			if err != nil {
				return err
			}
			if !seen[a.ID] {
				seen[a.ID] = true
				want = append(want, fmt.Sprintf("%s@%d", a.ID, r.Offset))
			}
		}
		var got []string
		err := f.Store.Entries(ctx, c, func(e audit.Entry) error {
			got = append(got, fmt.Sprintf("%s@%d", e.EventID, e.Offset))
			return nil
		})
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("chain %s: %d entries, want %d: %v…, want %v…", c, len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
		}
	}
	rep, err := audit.Verify(ctx, f.Store)
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("verify:\n%s", rep.String())
	}
	return nil
}
