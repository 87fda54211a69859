package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/postgres/pgtest"
	"github.com/ticketing/ticketing/services/audit"
	"github.com/ticketing/ticketing/services/audit/audittest"
	"github.com/ticketing/ticketing/services/audit/postgres"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.Pool(t)
	if _, err := postgres.Migrate(context.Background(), pool, quiet); err != nil {
		t.Fatal(err)
	}
	return pool
}

// sqlTamper edits the table as its owner can: with the append-only
// triggers disabled for the statement's transaction.
type sqlTamper struct{ pool *pgxpool.Pool }

func (s sqlTamper) exec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx := audittest.Ctx(t)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE audit_entries DISABLE TRIGGER USER`); err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `ALTER TABLE audit_entries ENABLE TRIGGER USER`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s sqlTamper) where(c audit.Chain, seq int64) string {
	return "kafka_topic = '" + c.Topic + "' AND kafka_partition = " + itoa(int64(c.Partition)) + " AND seq = " + itoa(seq)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s sqlTamper) SetBody(t *testing.T, c audit.Chain, seq int64, body []byte) {
	ctx := audittest.Ctx(t)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE audit_entries DISABLE TRIGGER USER`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_entries SET body = $1 WHERE `+s.where(c, seq), body); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ALTER TABLE audit_entries ENABLE TRIGGER USER`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s sqlTamper) SetHash(t *testing.T, c audit.Chain, seq int64, h audit.Hash) {
	s.exec(t, `UPDATE audit_entries SET hash = '\x`+h.String()+`' WHERE `+s.where(c, seq))
}

func (s sqlTamper) Delete(t *testing.T, c audit.Chain, seq int64) {
	s.exec(t, `DELETE FROM audit_entries WHERE `+s.where(c, seq))
}

// Swap exchanges every column but pos between the two rows, so that the
// insertion order has them the other way round.
func (s sqlTamper) Swap(t *testing.T, c audit.Chain, a, b int64) {
	const away = 1 << 40
	cols := `kafka_topic, kafka_partition, seq, kafka_offset, event_id, event_type, event_time, body, prev_hash, hash, recorded_at`
	set := `(` + cols + `) = (SELECT ` + cols + ` FROM tmp_swap WHERE src = `
	s.exec(t,
		`CREATE TEMP TABLE tmp_swap ON COMMIT DROP AS SELECT seq AS src, `+cols+` FROM audit_entries WHERE `+
			`kafka_topic = '`+c.Topic+`' AND kafka_partition = `+itoa(int64(c.Partition))+` AND seq IN (`+itoa(a)+`, `+itoa(b)+`)`,
		// Move one row out of the way of the unique keys first.
		`UPDATE audit_entries SET seq = seq + `+itoa(away)+`, kafka_offset = kafka_offset + `+itoa(away)+`, event_id = event_id || '~' WHERE `+s.where(c, a),
		`UPDATE audit_entries SET `+set+itoa(a)+`) WHERE `+s.where(c, b),
		`UPDATE audit_entries SET `+set+itoa(b)+`) WHERE `+s.where(c, a+away),
	)
}

func TestContract(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Harness {
		pool := migrated(t)
		return audittest.Harness{
			Store:  postgres.New(pool),
			Tamper: sqlTamper{pool},
			Reopen: func(t *testing.T) audit.Store { return postgres.New(pool) },
		}
	})
}

// Ordinary SQL cannot change or remove entries.
func TestAppendOnly(t *testing.T) {
	pool := migrated(t)
	s := postgres.New(pool)
	ctx := audittest.Ctx(t)
	c := audit.Chain{Topic: "ticketing.inventory", Partition: 0}
	if _, err := s.Append(ctx, audittest.Records(c, 0, 2, "a")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_entries SET body = 'x'`,
		`DELETE FROM audit_entries WHERE seq = 1`,
		`TRUNCATE audit_entries`,
	} {
		if _, err := pool.Exec(ctx, q); err == nil {
			t.Fatalf("%s: allowed", q)
		}
	}
	if got := audittest.All(t, s, c); len(got) != 2 {
		t.Fatalf("%d entries left", len(got))
	}
	audittest.MustVerify(t, s)
}
