// Package postgres keeps the reporting aggregates in PostgreSQL (the
// production store). Its schema is the embedded migrations/, applied by
// Migrate: ticket movements per event, zone and hour in reporting_hours,
// the orders' money per event and hour in reporting_revenue (migration 2),
// the levels, the events' facts and the cursors.
//
// Apply runs one transaction per batch: it locks the cursor rows of the
// batch's partitions (creating them first, so that two writers of a new
// partition queue on the same row), folds the records that are beyond the
// cursors (reporting.Fold), adds the deltas to the aggregate rows and
// stores the new cursors. Offsets and aggregates therefore commit together
// or not at all, and a second writer of the same partition waits for the
// first and then skips what it applied.
package postgres

import (
	"context"
	"embed"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/internal/postgres"
	"github.com/ticketing/ticketing/services/reporting"
)

//go:embed migrations/*.up.sql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component "reporting".
var Migrations = migrations.Source{Component: "reporting", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see postgres.Migrate).
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (migrations.Result, error) {
	return postgres.Migrate(ctx, pool, Migrations, postgres.MigrateOptions{Logger: log})
}

// Store is a reporting.Store on a pool whose schema has been migrated.
type Store struct {
	pool *pgxpool.Pool
	// beforeCommit, when set (tests), runs in Apply's transaction after
	// every write and before the commit; an error rolls it back.
	beforeCommit func() error
}

var _ reporting.Store = (*Store)(nil)

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Offsets implements reporting.Store.
func (s *Store) Offsets(ctx context.Context, parts []reporting.Partition) (map[reporting.Partition]int64, error) {
	const op = "reporting.offsets"
	topics, nums := split(parts)
	rows, err := s.pool.Query(ctx, `SELECT c.topic, c.partition, c.next_offset FROM reporting_cursors c
		JOIN unnest($1::text[], $2::int[]) AS p(topic, partition) ON c.topic = p.topic AND c.partition = p.partition
		WHERE c.next_offset >= 0`, topics, nums)
	if err != nil {
		return nil, storeError(op, err)
	}
	out := map[reporting.Partition]int64{}
	var p reporting.Partition
	var next int64
	_, err = pgx.ForEachRow(rows, []any{&p.Topic, &p.Partition, &next}, func() error {
		out[p] = next
		return nil
	})
	if err != nil {
		return nil, storeError(op, err)
	}
	return out, nil
}

func split(parts []reporting.Partition) ([]string, []int32) {
	topics, nums := make([]string, len(parts)), make([]int32, len(parts))
	for i, p := range parts {
		topics[i], nums[i] = p.Topic, p.Partition
	}
	return topics, nums
}

// Apply implements reporting.Store: the whole batch in one transaction.
func (s *Store) Apply(ctx context.Context, recs []reporting.Record) (reporting.Applied, error) {
	const op = "reporting.apply"
	if len(recs) == 0 {
		return reporting.Applied{}, nil
	}
	seen := map[reporting.Partition]bool{}
	var parts []reporting.Partition
	for _, r := range recs {
		p := reporting.Partition{Topic: r.Topic, Partition: r.Partition}
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	var folded reporting.Folded
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		topics, nums := split(parts)
		// Create missing cursors so that there is a row to lock: a second
		// writer's insert waits for the first's transaction, then finds the
		// row and its lock.
		if _, err := tx.Exec(ctx, `INSERT INTO reporting_cursors (topic, partition, next_offset)
			SELECT * FROM unnest($1::text[], $2::int[], array_fill(-1::bigint, ARRAY[cardinality($1::text[])]))
			ON CONFLICT DO NOTHING`, topics, nums); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.topic, c.partition, c.next_offset, c.recent_ids FROM reporting_cursors c
			JOIN unnest($1::text[], $2::int[]) AS p(topic, partition) ON c.topic = p.topic AND c.partition = p.partition
			ORDER BY c.topic, c.partition FOR UPDATE OF c`, topics, nums)
		if err != nil {
			return err
		}
		cursors := map[reporting.Partition]reporting.Cursor{}
		var p reporting.Partition
		var c reporting.Cursor
		if _, err := pgx.ForEachRow(rows, []any{&p.Topic, &p.Partition, &c.Next, &c.Recent}, func() error {
			if c.Next >= 0 {
				cursors[p] = reporting.Cursor{Next: c.Next, Recent: c.Recent}
			}
			return nil
		}); err != nil {
			return err
		}
		folded = reporting.Fold(cursors, recs)
		if err := writeDelta(ctx, tx, folded.Delta); err != nil {
			return err
		}
		b := &pgx.Batch{}
		for _, p := range parts {
			c := folded.Cursors[p]
			if c.Recent == nil {
				c.Recent = []string{}
			}
			b.Queue(`UPDATE reporting_cursors SET next_offset = $3, recent_ids = $4 WHERE topic = $1 AND partition = $2`,
				p.Topic, p.Partition, c.Next, c.Recent)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			return s.beforeCommit()
		}
		return nil
	})
	if err != nil {
		return reporting.Applied{}, storeError(op, err)
	}
	return folded.Applied, nil
}

func writeDelta(ctx context.Context, tx pgx.Tx, d *reporting.Aggregates) error {
	b := &pgx.Batch{}
	for _, k := range d.SortedHours() {
		c := d.Hours[k]
		b.Queue(`INSERT INTO reporting_hours AS h (event_id, zone, hour, held, released, expired, sold, cancelled)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (event_id, zone, hour) DO UPDATE SET
				held = h.held + excluded.held, released = h.released + excluded.released,
				expired = h.expired + excluded.expired, sold = h.sold + excluded.sold,
				cancelled = h.cancelled + excluded.cancelled`,
			k.EventID, k.Zone, k.Hour, c.Held, c.Released, c.Expired, c.Sold, c.Cancelled)
	}
	for _, k := range d.SortedRevenue() {
		r := d.Revenue[k]
		b.Queue(`INSERT INTO reporting_revenue AS r (event_id, hour, orders_paid, orders_refunded, captured_cents,
				gross_cents, fees_cents, tax_cents, discount_cents, refunded_cents)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (event_id, hour) DO UPDATE SET
				orders_paid = r.orders_paid + excluded.orders_paid, orders_refunded = r.orders_refunded + excluded.orders_refunded,
				captured_cents = r.captured_cents + excluded.captured_cents, gross_cents = r.gross_cents + excluded.gross_cents,
				fees_cents = r.fees_cents + excluded.fees_cents, tax_cents = r.tax_cents + excluded.tax_cents,
				discount_cents = r.discount_cents + excluded.discount_cents, refunded_cents = r.refunded_cents + excluded.refunded_cents`,
			k.EventID, k.Hour, r.OrdersPaid, r.OrdersRefunded, r.CapturedCents, r.GrossCents, r.FeesCents, r.TaxCents, r.DiscountCents, r.RefundedCents)
	}
	for _, k := range d.SortedLevels() {
		l := d.Levels[k]
		b.Queue(`INSERT INTO reporting_levels AS l (event_id, zone, held, sold) VALUES ($1, $2, $3, $4)
			ON CONFLICT (event_id, zone) DO UPDATE SET held = l.held + excluded.held, sold = l.sold + excluded.sold`,
			k.EventID, k.Zone, l.Held, l.Sold)
	}
	for _, id := range d.SortedEvents() {
		in := d.Events[id]
		var onSale *time.Time
		if !in.OnSaleAt.IsZero() {
			onSale = &in.OnSaleAt
		}
		// The later facts win field by field, as reporting.MergeInfo.
		b.Queue(`INSERT INTO reporting_events AS e (event_id, organizer_id, currency, capacity, on_sale_at, last_at)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (event_id) DO UPDATE SET
				organizer_id = CASE WHEN excluded.last_at >= e.last_at AND excluded.organizer_id <> '' OR e.organizer_id = '' THEN excluded.organizer_id ELSE e.organizer_id END,
				currency = CASE WHEN excluded.last_at >= e.last_at AND excluded.currency <> '' OR e.currency = '' THEN excluded.currency ELSE e.currency END,
				capacity = CASE WHEN excluded.last_at >= e.last_at AND excluded.capacity <> 0 OR e.capacity = 0 THEN excluded.capacity ELSE e.capacity END,
				on_sale_at = CASE WHEN excluded.last_at >= e.last_at AND excluded.on_sale_at IS NOT NULL OR e.on_sale_at IS NULL THEN excluded.on_sale_at ELSE e.on_sale_at END,
				last_at = greatest(e.last_at, excluded.last_at)`,
			in.EventID, in.OrganizerID, in.Currency, in.Capacity, onSale, in.LastAt)
	}
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// Event implements reporting.Store.
func (s *Store) Event(ctx context.Context, eventID string) (reporting.EventView, error) {
	const op = "reporting.event"
	var v reporting.EventView
	var onSale *time.Time
	err := s.pool.QueryRow(ctx, `SELECT event_id, organizer_id, currency, capacity, on_sale_at, last_at FROM reporting_events WHERE event_id = $1`,
		eventID).Scan(&v.Info.EventID, &v.Info.OrganizerID, &v.Info.Currency, &v.Info.Capacity, &onSale, &v.Info.LastAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, errs.E(op, errs.NotFound, "no report for this event")
	}
	if err != nil {
		return v, storeError(op, err)
	}
	v.Info.LastAt = v.Info.LastAt.UTC()
	if onSale != nil {
		v.Info.OnSaleAt = onSale.UTC()
	}
	rows, err := s.pool.Query(ctx, hourColumns+` WHERE event_id = $1 ORDER BY zone, hour`, eventID)
	if err != nil {
		return v, storeError(op, err)
	}
	if v.Hours, err = pgx.CollectRows(rows, scanHour); err != nil {
		return v, storeError(op, err)
	}
	rows, err = s.pool.Query(ctx, revenueColumns+` WHERE event_id = $1 ORDER BY hour`, eventID)
	if err != nil {
		return v, storeError(op, err)
	}
	if v.Revenue, err = pgx.CollectRows(rows, scanRevenue); err != nil {
		return v, storeError(op, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT event_id, zone, held, sold FROM reporting_levels WHERE event_id = $1 ORDER BY zone`, eventID)
	if err != nil {
		return v, storeError(op, err)
	}
	v.Levels, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (reporting.LevelRow, error) {
		var l reporting.LevelRow
		err := r.Scan(&l.EventID, &l.Zone, &l.Held, &l.Sold)
		return l, err
	})
	if err != nil {
		return v, storeError(op, err)
	}
	return v, nil
}

const hourColumns = `SELECT event_id, zone, hour, held, released, expired, sold, cancelled FROM reporting_hours`

func scanHour(r pgx.CollectableRow) (reporting.HourRow, error) {
	var h reporting.HourRow
	err := r.Scan(&h.EventID, &h.Zone, &h.Hour, &h.Held, &h.Released, &h.Expired, &h.Sold, &h.Cancelled)
	h.Hour = h.Hour.UTC()
	return h, err
}

const revenueColumns = `SELECT event_id, hour, orders_paid, orders_refunded, captured_cents, gross_cents, fees_cents,
	tax_cents, discount_cents, refunded_cents FROM reporting_revenue`

func scanRevenue(r pgx.CollectableRow) (reporting.RevenueRow, error) {
	var m reporting.RevenueRow
	err := r.Scan(&m.EventID, &m.Hour, &m.OrdersPaid, &m.OrdersRefunded, &m.CapturedCents, &m.GrossCents, &m.FeesCents,
		&m.TaxCents, &m.DiscountCents, &m.RefundedCents)
	m.Hour = m.Hour.UTC()
	return m, err
}

// Hours implements reporting.Store.
func (s *Store) Hours(ctx context.Context, from, to time.Time) (reporting.HoursView, error) {
	const op = "reporting.hours"
	v := reporting.HoursView{Events: map[string]reporting.EventInfo{}}
	rows, err := s.pool.Query(ctx, hourColumns+` WHERE hour >= $1 AND hour < $2 ORDER BY event_id, zone, hour`, from, to)
	if err != nil {
		return v, storeError(op, err)
	}
	if v.Hours, err = pgx.CollectRows(rows, scanHour); err != nil {
		return v, storeError(op, err)
	}
	rows, err = s.pool.Query(ctx, revenueColumns+` WHERE hour >= $1 AND hour < $2 ORDER BY event_id, hour`, from, to)
	if err != nil {
		return v, storeError(op, err)
	}
	if v.Revenue, err = pgx.CollectRows(rows, scanRevenue); err != nil {
		return v, storeError(op, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT event_id, organizer_id, currency, capacity, on_sale_at, last_at FROM reporting_events
		WHERE event_id IN (SELECT event_id FROM reporting_hours WHERE hour >= $1 AND hour < $2
			UNION SELECT event_id FROM reporting_revenue WHERE hour >= $1 AND hour < $2)`, from, to)
	if err != nil {
		return v, storeError(op, err)
	}
	var in reporting.EventInfo
	var onSale *time.Time
	_, err = pgx.ForEachRow(rows, []any{&in.EventID, &in.OrganizerID, &in.Currency, &in.Capacity, &onSale, &in.LastAt}, func() error {
		e := in
		e.LastAt = e.LastAt.UTC()
		if onSale != nil {
			e.OnSaleAt = onSale.UTC()
		}
		v.Events[e.EventID] = e
		return nil
	})
	if err != nil {
		return v, storeError(op, err)
	}
	return v, nil
}

// storeError wraps a database error with its kind; the message for callers
// does not describe the database.
func storeError(op string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		return errs.E(op, err)
	}
	k := postgres.Kind(err)
	if k == errs.Unavailable {
		return errs.E(op, k, "reporting store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}
