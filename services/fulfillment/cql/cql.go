// Package cql stores issued tickets in a CQL database (ScyllaDB in
// production, Apache Cassandra in tests) through gocqlx. Issue is a
// lightweight transaction, INSERT … IF NOT EXISTS on the slot's row, whose
// [applied] result tells the winner from the losers; a loser gets the row
// that won. Its schema is the embedded migrations/, applied by Migrate.
//
// Issue writes four tables in this order: the ticket id (IF NOT EXISTS,
// so an id names one ticket), the slot (IF NOT EXISTS: the decision), the
// order's and the holder's lists (plain inserts). A lost slot gives the
// id back. Readers trust only the slot table: ByID, ByOrder and ByHolder
// check that the slot holds the ticket they were pointed to, so a pointer
// left by a process that died midway is never taken for a ticket, and a
// retried Issue (or a competing one) writes what a dead one left undone.
package cql

import (
	"context"
	"embed"
	"log/slog"
	"time"

	"github.com/gocql/gocql"
	"github.com/scylladb/gocqlx/v2"
	"github.com/scylladb/gocqlx/v2/qb"
	"github.com/scylladb/gocqlx/v2/table"

	"github.com/ticketing/ticketing/internal/cql"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/migrations"
	"github.com/ticketing/ticketing/services/fulfillment"
)

//go:embed migrations/*.up.cql
var migrationFiles embed.FS

// Migrations are the schema of this store, recorded as component
// "fulfillment".
var Migrations = migrations.Source{Component: "fulfillment", FS: migrationFiles, Dir: "migrations"}

// Migrate applies the store's migrations (see cql.Migrate); sess must be
// bound to the keyspace, which cql.EnsureKeyspace creates.
func Migrate(ctx context.Context, sess gocqlx.Session, log *slog.Logger) (migrations.Result, error) {
	return cql.Migrate(ctx, sess, Migrations, cql.MigrateOptions{Logger: log})
}

var (
	slots = table.New(table.Metadata{
		Name: "tickets_by_slot",
		Columns: []string{"event_id", "slot", "ticket_id", "hold_id", "order_id", "seat", "zone", "ga_index",
			"issued_at", "token_hash", "holder", "valid_from", "valid_until", "device", "key_id"},
		PartKey: []string{"event_id", "slot"},
	})
	ids = table.New(table.Metadata{
		Name:    "tickets",
		Columns: []string{"ticket_id", "event_id", "slot"},
		PartKey: []string{"ticket_id"},
	})
	holders = table.New(table.Metadata{
		Name:    "tickets_by_holder",
		Columns: []string{"holder", "ticket_id", "event_id", "slot"},
		PartKey: []string{"holder"},
		SortKey: []string{"ticket_id"},
	})
	orders = table.New(table.Metadata{
		Name:    "tickets_by_order",
		Columns: []string{"order_id", "ticket_id", "event_id", "slot"},
		PartKey: []string{"order_id"},
		SortKey: []string{"ticket_id"},
	})

	insertSlot   = compile(slots.InsertBuilder().Unique().ToCql())
	insertID     = compile(ids.InsertBuilder().Unique().ToCql())
	releaseID    = compile(qb.Delete(ids.Name()).Where(qb.Eq("ticket_id")).If(qb.Eq("event_id"), qb.Eq("slot")).ToCql())
	insertOrder  = compile(orders.Insert())
	insertHolder = compile(holders.Insert())
	// Columns by name, not *: a column a later migration adds must not
	// break a binary that does not know it (rolling deploys).
	selectSlot   = compile(slots.Get(slots.Metadata().Columns...))
	selectID     = compile(ids.Get(ids.Metadata().Columns...))
	selectOrder  = compile(orders.SelectBuilder(orders.Metadata().Columns...).Limit(fulfillment.MaxPerOrder).ToCql())
	selectHolder = compile(holders.SelectBuilder(holders.Metadata().Columns...).Limit(fulfillment.MaxPerHolder).ToCql())
)

// statement is a compiled query: CQL with named bind markers.
type statement struct {
	cql   string
	names []string
}

func compile(cql string, names []string) statement { return statement{cql, names} }

func (s *Store) query(ctx context.Context, st statement) *gocqlx.Queryx {
	return s.sess.ContextQuery(ctx, st.cql, st.names)
}

// slotRow is a row of tickets_by_slot.
type slotRow struct {
	EventID    string    `db:"event_id"`
	Slot       string    `db:"slot"`
	TicketID   string    `db:"ticket_id"`
	HoldID     string    `db:"hold_id"`
	OrderID    string    `db:"order_id"`
	Seat       string    `db:"seat"`
	Zone       string    `db:"zone"`
	GAIndex    int       `db:"ga_index"`
	IssuedAt   time.Time `db:"issued_at"`
	TokenHash  string    `db:"token_hash"`
	Holder     string    `db:"holder"`
	ValidFrom  time.Time `db:"valid_from"`
	ValidUntil time.Time `db:"valid_until"`
	Device     string    `db:"device"`
	KeyID      string    `db:"key_id"`
}

func rowOf(t fulfillment.Ticket) slotRow {
	return slotRow{EventID: t.EventID, Slot: t.Slot(), TicketID: t.ID, HoldID: t.HoldID, OrderID: t.OrderID,
		Seat: t.Seat, Zone: t.Zone, GAIndex: t.Index, IssuedAt: t.IssuedAt, TokenHash: t.TokenHash,
		Holder: t.Holder, ValidFrom: t.ValidFrom, ValidUntil: t.ValidUntil, Device: t.Device, KeyID: t.KeyID}
}

func (r slotRow) ticket() fulfillment.Ticket {
	return fulfillment.Ticket{ID: r.TicketID, EventID: r.EventID, HoldID: r.HoldID, OrderID: r.OrderID,
		Seat: r.Seat, Zone: r.Zone, Index: r.GAIndex, IssuedAt: r.IssuedAt.UTC(), TokenHash: r.TokenHash,
		Holder: r.Holder, ValidFrom: r.ValidFrom.UTC(), ValidUntil: r.ValidUntil.UTC(), Device: r.Device, KeyID: r.KeyID}
}

// pointerRow is a row of tickets, tickets_by_order or tickets_by_holder.
type pointerRow struct {
	OrderID  string `db:"order_id"`
	Holder   string `db:"holder"`
	TicketID string `db:"ticket_id"`
	EventID  string `db:"event_id"`
	Slot     string `db:"slot"`
}

// Options tunes the store.
type Options struct {
	// Now is the clock for IssuedAt. Default time.Now.
	Now func() time.Time
}

// Store is a fulfillment.Store on a migrated keyspace. Safe for concurrent
// use, also by several processes.
type Store struct {
	sess gocqlx.Session
	now  func() time.Time
}

var _ fulfillment.Store = (*Store)(nil)

// New returns a store on sess, bound to a migrated keyspace.
func New(sess gocqlx.Session, o Options) *Store {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Store{sess: sess, now: o.Now}
}

func storeError(op string, err error) error {
	if k := cql.Kind(err); k == errs.Unavailable {
		return errs.E(op, k, "ticket store unavailable", err)
	}
	return errs.E(op, errs.Other, err)
}

// Issue implements fulfillment.Store.
func (s *Store) Issue(ctx context.Context, t fulfillment.Ticket) (fulfillment.Ticket, error) {
	const op = "fulfillment.issue"
	t, err := fulfillment.Normalize(t, s.now())
	if err != nil {
		return fulfillment.Ticket{}, errs.E(op, err)
	}
	row := rowOf(t)
	ptr := pointerRow{OrderID: t.OrderID, TicketID: t.ID, EventID: t.EventID, Slot: row.Slot}

	// 1. The ticket id.
	var holder pointerRow
	claimedID, err := s.query(ctx, insertID).BindStruct(ptr).GetCASRelease(&holder)
	if err != nil {
		return fulfillment.Ticket{}, storeError(op, err)
	}
	if !claimedID && (holder.EventID != ptr.EventID || holder.Slot != ptr.Slot) {
		return fulfillment.Ticket{}, fulfillment.IDTaken(op)
	}
	// Not claimed but the same slot: ours from an earlier attempt.

	// 2. The slot: the decision.
	var existing slotRow
	won, err := s.query(ctx, insertSlot).BindStruct(row).GetCASRelease(&existing)
	if err != nil {
		// gocql.RequestErrCASWriteUnknown and timeouts: the outcome is
		// unknown; keep the id, a retry finds out.
		return fulfillment.Ticket{}, storeError(op, err)
	}
	if !won {
		winner := existing.ticket()
		if !winner.Same(t) {
			if claimedID {
				s.release(ctx, ptr)
			}
			// Write the winner's pointers in case its issue died before
			// it did; both writes are idempotent.
			_ = s.pointers(ctx, winner, true)
			return winner, fulfillment.SlotTaken(op, winner)
		}
		t = winner // a retry of the issue that won (its time is the first one's)
	}

	// 3. The order's list (and the id, if a retry found it missing).
	if err := s.pointers(ctx, t, false); err != nil {
		return fulfillment.Ticket{}, storeError(op, err)
	}
	return t, nil
}

// release gives a claimed id back unless it changed meanwhile.
func (s *Store) release(ctx context.Context, p pointerRow) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, _ = s.query(ctx, releaseID).BindStruct(p).ExecCASRelease()
}

// pointers writes t's order and holder rows, and its id row when withID
// (IF NOT EXISTS: the id table takes only lightweight transactions).
func (s *Store) pointers(ctx context.Context, t fulfillment.Ticket, withID bool) error {
	p := pointerRow{OrderID: t.OrderID, Holder: t.Holder, TicketID: t.ID, EventID: t.EventID, Slot: t.Slot()}
	if withID {
		if _, err := s.query(ctx, insertID).BindStruct(p).ExecCASRelease(); err != nil {
			return err
		}
	}
	if err := s.query(ctx, insertOrder).BindStruct(p).ExecRelease(); err != nil {
		return err
	}
	return s.query(ctx, insertHolder).BindStruct(p).ExecRelease()
}

// follow reads the slot a pointer names and checks that it holds ticket
// id; anything else is errs.NotFound.
func (s *Store) follow(ctx context.Context, p pointerRow) (fulfillment.Ticket, error) {
	var r slotRow
	err := s.query(ctx, selectSlot).BindMap(qb.M{"event_id": p.EventID, "slot": p.Slot}).GetRelease(&r)
	if err == gocql.ErrNotFound || (err == nil && r.TicketID != p.TicketID) {
		return fulfillment.Ticket{}, errs.E(errs.NotFound, "no such ticket")
	}
	if err != nil {
		return fulfillment.Ticket{}, err
	}
	return r.ticket(), nil
}

// ByID implements fulfillment.Store.
func (s *Store) ByID(ctx context.Context, id string) (fulfillment.Ticket, error) {
	const op = "fulfillment.by_id"
	if !fulfillment.ValidRef(id) {
		return fulfillment.Ticket{}, errs.E(op, errs.NotFound, "no such ticket")
	}
	var p pointerRow
	err := s.query(ctx, selectID).BindMap(qb.M{"ticket_id": id}).GetRelease(&p)
	if err == gocql.ErrNotFound {
		return fulfillment.Ticket{}, errs.E(op, errs.NotFound, "no such ticket")
	}
	if err != nil {
		return fulfillment.Ticket{}, storeError(op, err)
	}
	t, err := s.follow(ctx, p)
	switch {
	case errs.Is(errs.NotFound, err):
		return fulfillment.Ticket{}, errs.E(op, err)
	case err != nil:
		return fulfillment.Ticket{}, storeError(op, err)
	}
	return t, nil
}

// ByOrder implements fulfillment.Store.
func (s *Store) ByOrder(ctx context.Context, orderID string) ([]fulfillment.Ticket, error) {
	if !fulfillment.ValidRef(orderID) {
		return []fulfillment.Ticket{}, nil
	}
	return s.list(ctx, "fulfillment.by_order", selectOrder, qb.M{"order_id": orderID},
		func(t fulfillment.Ticket) bool { return t.OrderID == orderID })
}

// ByHolder implements fulfillment.Store.
func (s *Store) ByHolder(ctx context.Context, holder string) ([]fulfillment.Ticket, error) {
	if !fulfillment.ValidRef(holder) {
		return []fulfillment.Ticket{}, nil
	}
	return s.list(ctx, "fulfillment.by_holder", selectHolder, qb.M{"holder": holder},
		func(t fulfillment.Ticket) bool { return t.Holder == holder })
}

// list follows the rows an index query selects (sorted by ticket id, the
// clustering key) to the tickets that pass keep.
func (s *Store) list(ctx context.Context, op string, st statement, key qb.M, keep func(fulfillment.Ticket) bool) ([]fulfillment.Ticket, error) {
	out := []fulfillment.Ticket{}
	var ptrs []pointerRow
	if err := s.query(ctx, st).BindMap(key).SelectRelease(&ptrs); err != nil {
		return nil, storeError(op, err)
	}
	for _, p := range ptrs {
		t, err := s.follow(ctx, p)
		if errs.Is(errs.NotFound, err) {
			continue
		}
		if err != nil {
			return nil, storeError(op, err)
		}
		if keep(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

var (
	checkins = table.New(table.Metadata{
		Name:    "checkins",
		Columns: []string{"event_id", "ticket_id", "gate", "nonce", "at"},
		PartKey: []string{"event_id", "ticket_id"},
	})
	insertCheckIn = compile(checkins.InsertBuilder().Unique().ToCql())
)

// checkInRow is a row of checkins.
type checkInRow struct {
	EventID  string    `db:"event_id"`
	TicketID string    `db:"ticket_id"`
	Gate     string    `db:"gate"`
	Nonce    string    `db:"nonce"`
	At       time.Time `db:"at"`
}

// CheckIn implements fulfillment.Store: INSERT … IF NOT EXISTS on the
// ticket's row decides.
func (s *Store) CheckIn(ctx context.Context, c fulfillment.CheckIn) (fulfillment.CheckIn, error) {
	const op = "fulfillment.check_in"
	c, err := fulfillment.NormalizeCheckIn(c)
	if err != nil {
		return fulfillment.CheckIn{}, errs.E(op, err)
	}
	row := checkInRow{EventID: c.EventID, TicketID: c.TicketID, Gate: c.Gate, Nonce: c.Nonce, At: c.At}
	var existing checkInRow
	won, err := s.query(ctx, insertCheckIn).BindStruct(row).GetCASRelease(&existing)
	if err != nil {
		return fulfillment.CheckIn{}, storeError(op, err)
	}
	if won {
		return c, nil
	}
	first := fulfillment.CheckIn{TicketID: existing.TicketID, EventID: existing.EventID, Gate: existing.Gate,
		Nonce: existing.Nonce, At: existing.At.UTC()}
	if first.Nonce == c.Nonce {
		return first, nil
	}
	return first, fulfillment.CheckedIn(op, first)
}

var (
	revocations = table.New(table.Metadata{
		Name:    "revocations",
		Columns: []string{"event_id", "ticket_id", "reason", "at"},
		PartKey: []string{"event_id"},
		SortKey: []string{"ticket_id"},
	})
	insertRevocation  = compile(revocations.InsertBuilder().Unique().ToCql())
	selectRevocation  = compile(revocations.Get(revocations.Metadata().Columns...))
	selectRevocations = compile(revocations.SelectBuilder(revocations.Metadata().Columns...).Limit(fulfillment.MaxRevocations).ToCql())
)

// revocationRow is a row of revocations.
type revocationRow struct {
	EventID  string    `db:"event_id"`
	TicketID string    `db:"ticket_id"`
	Reason   string    `db:"reason"`
	At       time.Time `db:"at"`
}

func (r revocationRow) revocation() fulfillment.Revocation {
	return fulfillment.Revocation{TicketID: r.TicketID, EventID: r.EventID, Reason: r.Reason, At: r.At.UTC()}
}

// Revoke implements fulfillment.Store: INSERT … IF NOT EXISTS; the first
// revocation stays.
func (s *Store) Revoke(ctx context.Context, r fulfillment.Revocation) (fulfillment.Revocation, error) {
	const op = "fulfillment.revoke"
	r, err := fulfillment.NormalizeRevocation(r)
	if err != nil {
		return fulfillment.Revocation{}, errs.E(op, err)
	}
	var existing revocationRow
	won, err := s.query(ctx, insertRevocation).BindStruct(revocationRow{EventID: r.EventID, TicketID: r.TicketID,
		Reason: r.Reason, At: r.At}).GetCASRelease(&existing)
	if err != nil {
		return fulfillment.Revocation{}, storeError(op, err)
	}
	if won {
		return r, nil
	}
	return existing.revocation(), nil
}

// Revoked implements fulfillment.Store.
func (s *Store) Revoked(ctx context.Context, event, ticket string) (fulfillment.Revocation, error) {
	const op = "fulfillment.revoked"
	if !fulfillment.ValidEvent(event) || !fulfillment.ValidRef(ticket) {
		return fulfillment.Revocation{}, errs.E(op, errs.NotFound, "not revoked")
	}
	var r revocationRow
	err := s.query(ctx, selectRevocation).BindMap(qb.M{"event_id": event, "ticket_id": ticket}).GetRelease(&r)
	if err == gocql.ErrNotFound {
		return fulfillment.Revocation{}, errs.E(op, errs.NotFound, "not revoked")
	}
	if err != nil {
		return fulfillment.Revocation{}, storeError(op, err)
	}
	return r.revocation(), nil
}

// Revocations implements fulfillment.Store.
func (s *Store) Revocations(ctx context.Context, event string) ([]fulfillment.Revocation, error) {
	const op = "fulfillment.revocations"
	out := []fulfillment.Revocation{}
	if !fulfillment.ValidEvent(event) {
		return out, nil
	}
	var rows []revocationRow
	if err := s.query(ctx, selectRevocations).BindMap(qb.M{"event_id": event}).SelectRelease(&rows); err != nil {
		return nil, storeError(op, err)
	}
	for _, r := range rows {
		out = append(out, r.revocation())
	}
	return out, nil
}
