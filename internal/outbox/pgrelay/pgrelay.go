// Package pgrelay is the transactional outbox of stores on PostgreSQL: a
// store adds the entries of its events (outbox.Entry, made with
// outbox.NewEntry) to an outbox table in the transaction that writes its
// state (Table.Insert, a part of the statement that writes the state, or
// Table.Queue, a statement of its batch), and a Relay moves them into
// JetStream, each with its event id as Nats-Msg-Id, exactly as the
// orders' key-value store's relay publishes them (outbox.Entry.Msg).
//
// An outbox table has this shape (the owning store creates it in its own
// migrations, under a name of its own):
//
//	CREATE TABLE name (
//		seq     bigint      GENERATED ALWAYS AS IDENTITY,  -- insertion order (NO CYCLE, CACHE 1)
//		id      text        PRIMARY KEY,                   -- the event id
//		subject text        NOT NULL,
//		headers jsonb       NOT NULL,                      -- [["ce-id", "…"], …]
//		body    bytea       NOT NULL,                      -- the structured CloudEvents JSON
//		created timestamptz NOT NULL DEFAULT now()
//	);
//	CREATE INDEX name_seq ON name (seq);
//
// The relay orders by seq, not by created and id: the entries of one
// transaction share created, and event ids are random. The sequence must
// not cache values per session (CACHE 1, the default), so that of two
// transactions on one aggregate, the later one's entries have the greater
// seq.
//
// Delivery is at least once: a relay locks a batch of the oldest entries
// (FOR UPDATE SKIP LOCKED), publishes them asynchronously, waits for every
// ack, deletes them and commits. A relay that dies after publishing and
// before committing leaves its batch in the table, published again by the
// next batch; the stream's duplicate window (Nats-Msg-Id) drops the
// repeats, as long as the relay comes back within the window.
//
// Several relays may run on one table (one per process, say): they take
// different batches, and a relay publishes an entry only when no older
// entry of the same subject is in another relay's batch (it leaves it
// for a later batch), so the events of one subject (one order) are
// published in the order they were written even then. Entries of
// different subjects may be published out of order.
//
// A relay waits on LISTEN for a notification on its channel (Notifier
// sends them after writes commit) and polls as well, so a lost
// notification delays entries by one poll interval at most. It
// reconnects after a failure of the server or the connection.
package pgrelay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/internal/pause"
)

var namePattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Table is the name of an outbox table (of the shape in the package doc):
// lower case letters, digits and underscores, unquoted, found on the
// connection's search_path.
type Table string

// Validate checks the name.
func (t Table) Validate() error {
	if !namePattern.MatchString(string(t)) {
		return errs.Errorf("pgrelay", errs.Invalid, "outbox table %q must be a lower-case SQL identifier", string(t))
	}
	return nil
}

// Rows are entries as the columns of an outbox table: the arguments of
// the statement Table.Insert makes.
type Rows struct {
	IDs      []string // the events' ids (Entry.ID)
	Subjects []string
	Headers  []json.RawMessage
	Bodies   [][]byte
}

// NewRows turns entries into rows.
func NewRows(entries []outbox.Entry) (Rows, error) {
	r := Rows{
		IDs:      make([]string, len(entries)),
		Subjects: make([]string, len(entries)),
		Headers:  make([]json.RawMessage, len(entries)),
		Bodies:   make([][]byte, len(entries)),
	}
	for i := range entries {
		e := &entries[i]
		if r.IDs[i] = e.ID(); r.IDs[i] == "" {
			return Rows{}, errs.E("pgrelay.rows", errs.Invalid, "an outbox entry without an event id")
		}
		h, err := json.Marshal(e.Headers)
		if err != nil {
			return Rows{}, errs.E("pgrelay.rows", errs.Invalid, err)
		}
		r.Subjects[i], r.Headers[i], r.Bodies[i] = e.Subject, h, e.Body
	}
	return r, nil
}

// Len is the number of rows.
func (r Rows) Len() int { return len(r.IDs) }

// Args are the four arguments of the statement Table.Insert makes.
func (r Rows) Args() []any { return []any{r.IDs, r.Subjects, r.Headers, r.Bodies} }

// Insert is the statement that adds rows to the table, in their order,
// with the rows' Args as its parameters $n to $n+3; where is appended to
// its SELECT (a condition on the rest of a statement it is part of, as
// "WHERE EXISTS (…)"), or empty. It may stand alone or be a data-modifying
// WITH query of a larger statement that writes the state the entries
// describe, so that both are committed together or not at all.
func (t Table) Insert(n int, where string) string {
	return fmt.Sprintf(`INSERT INTO %s (id, subject, headers, body)
		SELECT e.id, e.subject, e.headers, e.body
		FROM unnest($%d::text[], $%d::text[], $%d::jsonb[], $%d::bytea[]) WITH ORDINALITY AS e (id, subject, headers, body, n)
		%s ORDER BY e.n`, t, n, n+1, n+2, n+3, where)
}

// Queue queues on b the statement that adds entries to the table (see
// Insert), for a batch or transaction that writes the state they
// describe.
func (t Table) Queue(b *pgx.Batch, entries []outbox.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	rows, err := NewRows(entries)
	if err != nil {
		return err
	}
	b.Queue(t.Insert(1, ""), rows.Args()...)
	return nil
}

// Config configures a Relay.
type Config struct {
	// Table is the outbox table. Required.
	Table Table
	// Channel is the LISTEN/NOTIFY channel that announces new entries.
	// Default: the table's name.
	Channel string
	// Batch is how many entries one transaction publishes at most, all
	// in flight at once: at most 4000 (and at most the JetStream
	// context's PublishAsyncMaxPending, 4000 by default). Default 256.
	Batch int
	// Poll is how long the relay waits for a notification before it looks
	// at the table anyway. Default 1s.
	Poll time.Duration
	// AckTimeout bounds the wait for a batch's acks from JetStream; a
	// batch not acked in time is rolled back and published again.
	// Default 10s; less than the server's
	// idle_in_transaction_session_timeout.
	AckTimeout time.Duration
	// Backoff is the pause after a failure (of the database, the
	// connection or JetStream) before the relay tries again. Default 1s.
	Backoff time.Duration
	// Log reports failures. Default slog.Default().
	Log *slog.Logger
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Channel == "" {
		c.Channel = string(c.Table)
	}
	if c.Batch == 0 {
		c.Batch = 256
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.Backoff == 0 {
		c.Backoff = time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Validate checks the config after Defaults.
func (c *Config) Validate() error {
	const op = "pgrelay.config"
	if err := c.Table.Validate(); err != nil {
		return err
	}
	switch {
	case !namePattern.MatchString(c.Channel):
		return errs.Errorf(op, errs.Invalid, "channel %q must be a lower-case SQL identifier", c.Channel)
	case c.Batch < 1 || c.Batch > 4000:
		return errs.Errorf(op, errs.Invalid, "batch %d is not within 1-4000", c.Batch)
	case c.Poll < time.Millisecond:
		return errs.Errorf(op, errs.Invalid, "poll interval %v is under 1ms", c.Poll)
	case c.AckTimeout < time.Millisecond:
		return errs.Errorf(op, errs.Invalid, "ack timeout %v is under 1ms", c.AckTimeout)
	case c.Backoff < time.Millisecond:
		return errs.Errorf(op, errs.Invalid, "backoff %v is under 1ms", c.Backoff)
	}
	return nil
}

// Relay moves an outbox table's entries into JetStream. Run it in one
// goroutine; several relays on one table (in one process or several) are
// safe.
type Relay struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config

	selectSQL, deleteSQL string
	wake                 chan struct{}
	relayed              atomic.Uint64

	// afterPublish, when set (by tests), runs after a batch's acks and
	// before its delete; an error abandons the batch there.
	afterPublish func() error
}

// New returns a relay of the table in c on pool, publishing with js.
func New(pool *pgxpool.Pool, js jetstream.JetStream, c Config) (*Relay, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	t := string(c.Table)
	return &Relay{
		pool: pool, js: js, cfg: c,
		// The oldest entries that no other relay has locked. An entry with
		// an older one of its subject that is not in the batch (another
		// relay has it; the entries before the batch's last that are not
		// in it are few: those of the other relays' batches) is not
		// ready: it waits for a later batch, so that one subject's events
		// keep their order.
		selectSQL: `WITH batch AS MATERIALIZED (
				SELECT seq, id, subject, headers, body FROM ` + t + ` ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
			), others AS MATERIALIZED (
				SELECT seq, subject FROM ` + t + `
				WHERE seq < (SELECT max(seq) FROM batch) AND seq NOT IN (SELECT seq FROM batch)
			)
			SELECT b.id, b.subject, b.headers, b.body,
				NOT EXISTS (SELECT FROM others o WHERE o.subject = b.subject AND o.seq < b.seq)
			FROM batch b
			ORDER BY b.seq`,
		deleteSQL: `DELETE FROM ` + t + ` WHERE id = ANY($1)`,
		wake:      make(chan struct{}, 1),
	}, nil
}

// Relayed is how many entries this relay published (repeats included).
func (r *Relay) Relayed() uint64 { return r.relayed.Load() }

// Wake makes the relay look at the table now (a writer in the same
// process may call it after a commit, in place of a notification).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends, then returns nil once the batch in flight
// has ended (committed or rolled back). Failures are logged and tried
// again after Backoff.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.listen(ctx) }()
	defer wg.Wait()
	poll := time.NewTimer(0)
	defer poll.Stop()
	for ctx.Err() == nil {
		n, full, waited, err := r.batch(ctx)
		r.relayed.Add(uint64(n))
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Log.Warn("outbox relay: batch failed", "table", string(r.cfg.Table), "err", err)
				pause.For(ctx, r.cfg.Backoff)
			}
			continue
		}
		switch {
		case full:
			continue
		case waited:
			// Another relay is publishing older entries of the same
			// subjects: look again once it is likely done.
			pause.For(ctx, min(r.cfg.Poll, 10*time.Millisecond))
			continue
		}
		poll.Reset(r.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-poll.C:
		}
		poll.Stop()
	}
	return nil
}

// batch publishes one batch: how many entries it published, whether it
// was full (more may be waiting) and whether some of its entries waited
// for another relay's.
func (r *Relay) batch(ctx context.Context) (n int, full, waited bool, err error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, false, false, err
	}
	defer func() {
		if err != nil {
			// On a context that ended too: pgx then closes the connection.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	rows, err := tx.Query(ctx, r.selectSQL, r.cfg.Batch)
	if err != nil {
		return 0, false, false, err
	}
	var (
		ids     []string
		entries []outbox.Entry
		locked  int
	)
	for rows.Next() {
		var (
			id      string
			e       outbox.Entry
			headers []byte
			ready   bool
		)
		if err := rows.Scan(&id, &e.Subject, &headers, &e.Body, &ready); err != nil {
			rows.Close()
			return 0, false, false, err
		}
		locked++
		if !ready {
			continue
		}
		ids = append(ids, id)
		if err := json.Unmarshal(headers, &e.Headers); err != nil {
			// Not written by Queue: it would stop the outbox for good.
			r.cfg.Log.Error("outbox entry dropped: its headers are not a list of pairs", "table", string(r.cfg.Table), "id", id, "err", err)
			continue
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return 0, false, false, err
	}
	waited = locked > len(ids)
	if len(ids) == 0 {
		return 0, false, waited, tx.Commit(ctx)
	}
	if err := r.publish(ctx, entries); err != nil {
		return 0, false, false, err
	}
	if r.afterPublish != nil {
		if err := r.afterPublish(); err != nil {
			return len(entries), false, false, err
		}
	}
	if _, err := tx.Exec(ctx, r.deleteSQL, ids); err != nil {
		return len(entries), false, false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return len(entries), false, false, err
	}
	return len(entries), locked == r.cfg.Batch, waited, nil
}

// publish publishes entries asynchronously and waits for all their acks.
func (r *Relay) publish(ctx context.Context, entries []outbox.Entry) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	acks := make([]jetstream.PubAckFuture, 0, len(entries))
	for i := range entries {
		f, err := r.js.PublishMsgAsync(entries[i].Msg())
		if err != nil {
			return fmt.Errorf("publish %s: %w", entries[i].Subject, err)
		}
		acks = append(acks, f)
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("publish: acks not received: %w", ctx.Err())
		}
	}
	return nil
}

// listen wakes the relay on every notification on the channel, on a
// connection of its own (a LISTEN belongs to its session), connecting
// again after a failure. Every connection wakes the relay once, for what
// was written while it was not listening.
func (r *Relay) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		r.cfg.Log.Warn("outbox relay: listening failed", "channel", r.cfg.Channel, "err", err)
		pause.For(ctx, r.cfg.Backoff)
	}
}

func (r *Relay) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+r.cfg.Channel); err != nil {
		return err
	}
	r.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		r.Wake()
	}
}

// Notifier tells the relays listening on a channel that entries were
// committed: Notify after a commit; one NOTIFY (pg_notify, in a
// transaction of its own) is sent for all the calls made while the last
// one was sent, and at most one per Interval.
//
// A NOTIFY in the writing transaction would be atomic with the write, but
// PostgreSQL serializes the commits of all transactions that notify (in
// PreCommit_Notify, a lock on "database 0", the whole cluster, held until
// the commit is flushed): the writes would commit one at a time, each
// after the other's WAL flush. The notifier's own transactions still
// take that lock, at most one per Interval per process. A notification
// lost in a crash after the commit costs the relays one poll interval.
type Notifier struct {
	pool     *pgxpool.Pool
	channel  string
	interval time.Duration
	log      *slog.Logger
	pending  chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewNotifier starts a notifier on channel (a lower-case SQL identifier);
// interval 0 means 5ms. Close stops it.
func NewNotifier(pool *pgxpool.Pool, channel string, interval time.Duration, log *slog.Logger) (*Notifier, error) {
	if !namePattern.MatchString(channel) {
		return nil, errs.Errorf("pgrelay.notifier", errs.Invalid, "channel %q must be a lower-case SQL identifier", channel)
	}
	if interval == 0 {
		interval = 5 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{pool: pool, channel: channel, interval: interval, log: log,
		pending: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n, nil
}

// Notify asks for a notification; it does not block.
func (n *Notifier) Notify() {
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

// Close stops the notifier; a notification asked for and not yet sent is
// dropped (the relays' poll finds its entries).
func (n *Notifier) Close() {
	n.cancel()
	<-n.done
}

func (n *Notifier) run(ctx context.Context) {
	defer close(n.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pending:
		}
		sent := time.Now()
		if _, err := n.pool.Exec(ctx, `SELECT pg_notify($1, '')`, n.channel); err != nil && ctx.Err() == nil &&
			!errors.Is(err, context.Canceled) {
			n.log.Warn("outbox notifier: notify failed", "channel", n.channel, "err", err)
		}
		if !pause.For(ctx, n.interval-time.Since(sent)) {
			return
		}
	}
}
