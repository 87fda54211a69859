package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	ipostgres "github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/payment"
	"github.com/ticketing/ticketing/services/payment/paymenttest"
	"github.com/ticketing/ticketing/services/payment/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore(t *testing.T) (*postgres.Store, context.Context) {
	t.Helper()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, quiet); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(pool, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

func TestContract(t *testing.T) {
	paymenttest.Run(t, func(t *testing.T) payment.Ledger {
		s, _ := newStore(t)
		return s
	})
}

func TestConfig(t *testing.T) {
	c := postgres.Config{}
	c.Defaults()
	if c.EventRetention != 8*24*time.Hour || c.Now == nil || c.Validate() != nil {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := postgres.New(nil, postgres.Config{EventRetention: time.Hour}); !errs.Is(errs.Invalid, err) {
		t.Fatalf("retention 1h: %v", err)
	}
}

// The schema keeps the ledger's invariants for writers that skip the
// domain.
func TestSchemaInvariants(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	res, err := postgres.Migrate(ctx, pool, quiet)
	if err != nil || !slices.Equal(res.Applied, []int64{1}) {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	if res, err := postgres.Migrate(ctx, pool, quiet); err != nil || len(res.Applied) != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
	exec := func(q string) error {
		_, err := pool.Exec(ctx, q)
		return err
	}
	if err := exec(`INSERT INTO payments (order_id, record, created_at, updated_at) VALUES ('o1', '{}', now(), now())`); err != nil {
		t.Fatal(err)
	}
	entry := `INSERT INTO ledger_entries (order_id, entry_id, seq, kind, amount, currency, at, source) VALUES `
	if err := exec(entry + `('o1', 'ch_1', 0, 'capture', 1000, 'EUR', now(), 'webhook')`); err != nil {
		t.Fatal(err)
	}
	if err := exec(entry + `('o1', 're_1', 1, 'refund', 600, 'EUR', now(), 'saga')`); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		q          string
		kind       errs.Kind
		constraint string
	}{
		"second capture": {entry + `('o1', 'ch_2', 2, 'capture', 1000, 'EUR', now(), 'webhook')`, errs.Conflict, "ledger_entries_one_capture"},
		"entry id again": {entry + `('o1', 'ch_1', 2, 'refund', 1, 'EUR', now(), 'webhook')`, errs.Conflict, "ledger_entries_pkey"},
		"seq again":      {entry + `('o1', 're_2', 1, 'refund', 1, 'EUR', now(), 'webhook')`, errs.Conflict, "ledger_entries_seq_key"},
		"refund over":    {entry + `('o1', 're_2', 2, 'refund', 401, 'EUR', now(), 'saga')`, errs.Invalid, "ledger_entries_refunds_bounded"},
		"zero amount":    {entry + `('o1', 're_2', 2, 'refund', 0, 'EUR', now(), 'saga')`, errs.Invalid, "ledger_entries_amount_positive"},
		"kind":           {entry + `('o1', 'cb_1', 2, 'chargeback', 1, 'EUR', now(), 'saga')`, errs.Invalid, "ledger_entries_kind"},
		"source":         {entry + `('o1', 're_2', 2, 'refund', 1, 'EUR', now(), 'mail')`, errs.Invalid, "ledger_entries_source"},
		"currency":       {entry + `('o1', 're_2', 2, 'refund', 1, 'eur', now(), 'saga')`, errs.Invalid, "ledger_entries_currency_format"},
		"no payment":     {entry + `('o2', 'ch_1', 0, 'capture', 1, 'EUR', now(), 'saga')`, errs.Invalid, "ledger_entries_order_id_fkey"},
		"update":         {`UPDATE ledger_entries SET amount = 1 WHERE entry_id = 're_1'`, errs.Invalid, "ledger_entries_append_only"},
		"delete":         {`DELETE FROM ledger_entries WHERE entry_id = 're_1'`, errs.Invalid, "ledger_entries_append_only"},
		"truncate":       {`TRUNCATE ledger_entries`, errs.Invalid, "ledger_entries_append_only"},
		"order id":       {`INSERT INTO payments (order_id, record, created_at, updated_at) VALUES ('o.1', '{}', now(), now())`, errs.Invalid, "payments_order_id_format"},
	} {
		err := exec(tc.q)
		if ipostgres.Kind(err) != tc.kind || ipostgres.ConstraintOf(err) != tc.constraint {
			t.Errorf("%s: %v (kind %v, constraint %q), want %v %s", name, err, ipostgres.Kind(err), ipostgres.ConstraintOf(err), tc.kind, tc.constraint)
		}
	}
	// The rest of the capture can be refunded.
	if err := exec(entry + `('o1', 're_2', 2, 'refund', 400, 'EUR', now(), 'saga')`); err != nil {
		t.Fatal(err)
	}
}

// An update is one statement: when its entries cannot be written (here
// an entry row written around the domain holds the position), the
// payment row is not changed either.
func TestUpdateAtomic(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, quiet); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(pool, postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Update(ctx, "o1", func(p *payment.Payment, exists bool) error {
		p.Account, p.IntentID, p.Amount, p.Currency, p.Status = "u_1", "pi_1", 1000, "EUR", payment.StatusPending
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO ledger_entries (order_id, entry_id, seq, kind, amount, currency, at, source)
		VALUES ('o1', 'ch_around', 0, 'capture', 1000, 'EUR', now(), 'saga')`); err != nil {
		t.Fatal(err)
	}
	_, err = s.Update(ctx, "o1", func(p *payment.Payment, _ bool) error {
		p.Attempts = 3
		_, err := p.Apply(payment.Entry{ID: "ch_1", Kind: payment.EntryCapture, Amount: 1000, At: time.Now(), Source: payment.SourceReturn})
		return err
	})
	if err == nil {
		t.Fatal("an update whose entry cannot be written succeeded")
	}
	var (
		version int64
		record  string
		entries int
	)
	if err := pool.QueryRow(ctx, `SELECT version, record::text, (SELECT count(*) FROM ledger_entries WHERE order_id = 'o1') FROM payments WHERE order_id = 'o1'`).
		Scan(&version, &record, &entries); err != nil {
		t.Fatal(err)
	}
	if version != p.Version || strings.Contains(record, `"attempts": 3`) || entries != 1 {
		t.Fatalf("after the failed update: version %d (was %d), record %s, %d entries", version, p.Version, record, entries)
	}
}

// BenchmarkUpdate is a payment's life in the ledger as a frictionless
// purchase writes it: created with its intent, then captured; by Update
// (each write after a read: µs-update a payment) and, interleaved with
// it, by UpdateFrom (each write from the copy the last one returned:
// µs-updatefrom).
func BenchmarkUpdate(b *testing.B) {
	pool := pgtest.Pool(b)
	ctx := context.Background()
	if _, err := postgres.Migrate(ctx, pool, quiet); err != nil {
		b.Fatal(err)
	}
	s, err := postgres.New(pool, postgres.Config{})
	if err != nil {
		b.Fatal(err)
	}
	create := func(id string) func(p *payment.Payment, exists bool) error {
		return func(p *payment.Payment, exists bool) error {
			if !exists {
				p.Account, p.IntentID, p.Amount, p.Currency, p.Status = "u_1", "pi_"+id, 1000, "EUR", payment.StatusPending
			}
			return nil
		}
	}
	capture := func(id string) func(p *payment.Payment, _ bool) error {
		return func(p *payment.Payment, _ bool) error {
			_, err := p.Apply(payment.Entry{ID: "ch_" + id, Kind: payment.EntryCapture, Amount: 1000, At: time.Now(), Source: payment.SourceReturn})
			return err
		}
	}
	check := func(_ payment.Payment, err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	var update, from time.Duration
	for i := range b.N {
		t0 := time.Now()
		id := fmt.Sprintf("u%d-%d", b.N, i)
		check(s.Update(ctx, id, create(id)))
		check(s.Update(ctx, id, capture(id)))
		t1 := time.Now()
		id = fmt.Sprintf("f%d-%d", b.N, i)
		p, err := s.UpdateFrom(ctx, payment.Payment{OrderID: id}, create(id))
		check(p, err)
		check(s.UpdateFrom(ctx, p, capture(id)))
		update, from = update+t1.Sub(t0), from+time.Since(t1)
	}
	b.ReportMetric(float64(update.Microseconds())/float64(b.N), "µs-update")
	b.ReportMetric(float64(from.Microseconds())/float64(b.N), "µs-updatefrom")
}
