// Package kvtx writes several keys of one JetStream key-value bucket
// atomically: a transaction is a JetStream atomic batch (server 2.12 and
// later) on the bucket's stream, each write carrying the revision its key
// must still be at (Nats-Expected-Last-Subject-Sequence), so that either
// every write is stored or none is, and a transaction whose reads went
// stale fails whole with a conflict. The server also refuses a batch whose
// key another batch is writing at that moment, so two transactions never
// interleave on a key.
//
// This is what the embedded stores use where PostgreSQL uses a
// transaction: an order (with the events to relay in its value), its
// idempotency key, the claims on its holds and the account's purchase
// count are written together.
//
// A batch costs the server more than a message of its own (a file
// stream stages each batch in a store of its own, made and removed on
// disk): a write of one key is better a compare-and-set publish.
//
// Keys are never deleted by a transaction; a key's revision 0 means it
// must not exist. Writes may carry a time to live (Nats-TTL), for records
// that expire (idempotency keys), which needs the bucket's LimitMarkerTTL
// set, and headers of the caller's (PutHeader).
package kvtx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ticketing/ticketing/internal/errs"
)

// MaxWrites is how many writes one transaction may hold (the server's
// limit on an atomic batch is 1,000).
const MaxWrites = 1000

// MaxInFlight is how many transactions of one process are open on one
// bucket at once; more wait their turn. The server keeps at most 50 open
// batches a stream (and refuses a batch's first message beyond that
// without a word, so its commit finds the batch incomplete): a few
// processes at this bound stay under it.
const MaxInFlight = 16

// inFlight bounds each bucket's open transactions (bucket name → slots).
var inFlight sync.Map

func slots(bucket string) chan struct{} {
	if s, ok := inFlight.Load(bucket); ok {
		return s.(chan struct{})
	}
	s, _ := inFlight.LoadOrStore(bucket, make(chan struct{}, MaxInFlight))
	return s.(chan struct{})
}

// Enable turns atomic batches on for kv's stream (they are off by default
// and KeyValueConfig cannot say so). It is idempotent.
func Enable(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) error {
	s, err := js.Stream(ctx, "KV_"+kv.Bucket())
	if err != nil {
		return fmt.Errorf("kvtx: %w", err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("kvtx: allow atomic batches on %s: %w", cfg.Name, err)
	}
	return nil
}

// Tx is a transaction on one bucket: writes are added in order and
// committed together. A Tx is not safe for concurrent use.
type Tx struct {
	bucket string
	writes []write
	last   uint64 // the stream sequence of the last write, once committed
}

type write struct {
	key    string
	value  []byte
	header nats.Header
	rev    uint64
	check  bool
	ttl    time.Duration
}

// New starts a transaction on kv.
func New(kv jetstream.KeyValue) *Tx { return &Tx{bucket: kv.Bucket()} }

// Put writes value under key, which must still be at revision rev (0: the
// key must not exist).
func (t *Tx) Put(key string, value []byte, rev uint64) {
	t.writes = append(t.writes, write{key: key, value: value, rev: rev, check: true})
}

// PutHeader is Put of a value with headers of the caller's, stored with
// it (not the batch's own: Nats-Batch-*, Nats-Expected-*, Nats-TTL).
func (t *Tx) PutHeader(key string, value []byte, rev uint64, h nats.Header) {
	t.writes = append(t.writes, write{key: key, value: value, header: h, rev: rev, check: true})
}

// PutTTL is Put of a value that the server removes after ttl (at least a
// second).
func (t *Tx) PutTTL(key string, value []byte, rev uint64, ttl time.Duration) {
	t.writes = append(t.writes, write{key: key, value: value, rev: rev, check: true, ttl: ttl})
}

// Blind writes value under key whatever its revision (keys no other
// transaction writes, or whose last write wins).
func (t *Tx) Blind(key string, value []byte, ttl time.Duration) {
	t.writes = append(t.writes, write{key: key, value: value, ttl: ttl})
}

// Len is the number of writes added.
func (t *Tx) Len() int { return len(t.writes) }

// ack is the server's answer to a batch's commit.
type ack struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	BatchSize int    `json:"count"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// The server's error codes that mean a write's expected revision was not
// the key's (JSStreamWrongLastSequenceErrF and its constant variant), and
// that a batch was not taken at all (JSAtomicPublishIncompleteBatchErr,
// JSAtomicPublishTooManyInflightErr: nothing of it was stored).
const (
	errWrongLastSequence      = 10071
	errWrongLastSequenceConst = 10164
	errIncompleteBatch        = 10176
	errTooManyInflight        = 10210
)

// Commit writes the transaction's writes as one atomic batch over nc: all
// or nothing. It returns the stream sequence of the batch's last write. A
// write whose key moved on since its revision was read fails the whole
// transaction with errs.Conflict (reason "revision"): read again and
// retry. A commit whose answer is lost (timeout, errs.Unavailable) may or
// may not have been stored; its writes' expected revisions make a retry
// of the same transaction fail rather than apply twice.
func (t *Tx) Commit(ctx context.Context, nc *nats.Conn) (uint64, error) {
	const op = "kvtx.commit"
	n := len(t.writes)
	switch {
	case n == 0:
		return 0, nil
	case n > MaxWrites:
		return 0, errs.Errorf(op, errs.Invalid, "%d writes: at most %d in one transaction", n, MaxWrites)
	}
	sl := slots(t.bucket)
	select {
	case sl <- struct{}{}:
	case <-ctx.Done():
		return 0, errs.E(op, errs.Unavailable, ctx.Err())
	}
	defer func() { <-sl }()
	var a ack
	for attempt := 0; ; attempt++ {
		var err error
		if a, err = t.send(ctx, nc); err != nil {
			return 0, errs.E(op, errs.Unavailable, err)
		}
		if a.Error == nil {
			break
		}
		switch a.Error.ErrCode {
		case errWrongLastSequence, errWrongLastSequenceConst:
			return 0, errs.E(op, errs.Conflict, errors.New(a.Error.Description)).WithReason("revision")
		case errIncompleteBatch, errTooManyInflight:
			// Not taken at all (the server had no room for the batch):
			// sending it again applies it once.
			if attempt < 5 {
				continue
			}
		}
		return 0, errs.E(op, errs.Unavailable, fmt.Errorf("kvtx: %s (code %d)", a.Error.Description, a.Error.ErrCode))
	}
	if a.BatchSize != n {
		return 0, errs.E(op, errs.Other, fmt.Errorf("kvtx: the server stored %d of %d writes", a.BatchSize, n))
	}
	t.last = a.Seq
	return a.Seq, nil
}

// send publishes the writes as one batch under a fresh id and returns the
// commit's answer.
func (t *Tx) send(ctx context.Context, nc *nats.Conn) (ack, error) {
	n := len(t.writes)
	id := nuid.Next()
	for i, w := range t.writes[:n-1] {
		if err := nc.PublishMsg(t.msg(id, i, w, false)); err != nil {
			return ack{}, err
		}
	}
	reply, err := nc.RequestMsgWithContext(ctx, t.msg(id, n-1, t.writes[n-1], true))
	if err != nil {
		return ack{}, err
	}
	var a ack
	if err := json.Unmarshal(reply.Data, &a); err != nil {
		return ack{}, fmt.Errorf("kvtx: commit answer: %w", err)
	}
	return a, nil
}

// Revision is the revision key got from the committed transaction (its
// last write of key), 0 before a commit or for a key it did not write.
// The server stores a batch's writes at consecutive sequences, in order.
func (t *Tx) Revision(key string) uint64 {
	if t.last == 0 {
		return 0
	}
	for i := len(t.writes) - 1; i >= 0; i-- {
		if t.writes[i].key == key {
			return t.last - uint64(len(t.writes)-1-i)
		}
	}
	return 0
}

func (t *Tx) msg(id string, i int, w write, commit bool) *nats.Msg {
	m := nats.NewMsg("$KV." + t.bucket + "." + w.key)
	for k, v := range w.header {
		m.Header[k] = v
	}
	m.Data = w.value
	m.Header.Set("Nats-Batch-Id", id)
	m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
	if w.check {
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.rev, 10))
	}
	if w.ttl > 0 {
		m.Header.Set("Nats-TTL", strconv.FormatInt(int64((w.ttl+time.Second-1)/time.Second), 10)+"s")
	}
	if commit {
		m.Header.Set("Nats-Batch-Commit", "1")
	}
	return m
}

// Group commits the transactions of concurrent callers on one bucket
// together: while one batch is on its way, the transactions that come in
// wait, and the next batch carries all of them (group commit). The server
// spends about as much on a batch of one write as on one of hundreds (a
// single-replica file stream stages each batch in a store of its own), so
// a group makes many transactions for the price of one.
//
// Transactions of one batch commit together, so one whose reads went
// stale would fail the others: a transaction that writes a key another
// of the batch writes waits for the next batch; one that expects a key
// at a revision older than one the group has written (or was told of,
// Saw) fails at once with errs.Conflict without being sent; and when a
// batch fails with a conflict all the same (a write of another process),
// its transactions are committed one by one. A Group is safe for
// concurrent use; each bucket wants one a process.
type Group struct {
	nc     *nats.Conn
	bucket string

	mu      sync.Mutex
	queue   []*queued
	running bool              // a goroutine is committing the queue
	known   map[string]uint64 // key → a revision it reached (a lower bound)
}

type queued struct {
	tx   *Tx
	done chan error // buffered: the committer never waits for the caller
}

// maxKnown bounds the revisions a group remembers (it forgets them all
// past it: they only save batches that would fail).
const maxKnown = 1 << 16

// NewGroup returns a group committing on kv over nc.
func NewGroup(kv jetstream.KeyValue, nc *nats.Conn) *Group {
	return &Group{nc: nc, bucket: kv.Bucket(), known: map[string]uint64{}}
}

// Saw tells the group that key reached revision rev by a write of its
// own (a single compare-and-set publish, say).
func (g *Group) Saw(key string, rev uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.see(key, rev)
}

func (g *Group) see(key string, rev uint64) {
	if len(g.known) >= maxKnown {
		clear(g.known)
	}
	if rev > g.known[key] {
		g.known[key] = rev
	}
}

// Commit commits tx as Tx.Commit does, in a batch with the transactions
// of other callers. When ctx ends first, Commit returns errs.Unavailable
// and tx may still be committed.
func (g *Group) Commit(ctx context.Context, tx *Tx) error {
	const op = "kvtx.commit"
	switch n := len(tx.writes); {
	case n == 0:
		return nil
	case n > MaxWrites:
		return errs.Errorf(op, errs.Invalid, "%d writes: at most %d in one transaction", n, MaxWrites)
	}
	q := &queued{tx: tx, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	start := !g.running
	g.running = true
	g.mu.Unlock()
	if start {
		go g.run()
	}
	select {
	case err := <-q.done:
		return err
	case <-ctx.Done():
		return errs.E(op, errs.Unavailable, ctx.Err())
	}
}

// run commits batches until the queue is empty.
func (g *Group) run() {
	for {
		g.mu.Lock()
		batch := g.take()
		if len(batch) == 0 && len(g.queue) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		if len(batch) > 0 {
			g.commit(batch)
		}
	}
}

// take removes from the queue the transactions of the next batch, and
// fails those known to be stale. Lock held.
func (g *Group) take() []*queued {
	var (
		batch  []*queued
		writes int
		keys   = map[string]bool{}
		rest   = g.queue[:0]
	)
	for _, q := range g.queue {
		if g.stale(q.tx) {
			q.done <- errs.E("kvtx.commit", errs.Conflict, "a key moved on since it was read").WithReason("revision")
			continue
		}
		overlaps := slices.ContainsFunc(q.tx.writes, func(w write) bool { return keys[w.key] })
		if overlaps || writes+len(q.tx.writes) > MaxWrites {
			rest = append(rest, q)
			continue
		}
		for _, w := range q.tx.writes {
			keys[w.key] = true
		}
		writes += len(q.tx.writes)
		batch = append(batch, q)
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return batch
}

// stale reports whether a write of tx expects its key at a revision the
// key is known to have left. Lock held.
func (g *Group) stale(tx *Tx) bool {
	for _, w := range tx.writes {
		if w.check && g.known[w.key] > w.rev {
			return true
		}
	}
	return false
}

// commit commits a batch of transactions, one by one when together they
// conflict.
func (g *Group) commit(batch []*queued) {
	// Not a caller's context: the batch is every caller's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := &Tx{bucket: g.bucket}
	for _, q := range batch {
		all.writes = append(all.writes, q.tx.writes...)
	}
	_, err := all.Commit(ctx, g.nc)
	if errs.Is(errs.Conflict, err) && len(batch) > 1 {
		for _, q := range batch {
			g.mu.Lock()
			stale := g.stale(q.tx)
			g.mu.Unlock()
			if stale {
				q.done <- errs.E("kvtx.commit", errs.Conflict, "a key moved on since it was read").WithReason("revision")
				continue
			}
			g.commit([]*queued{q})
		}
		return
	}
	if err != nil {
		for _, q := range batch {
			q.done <- err
		}
		return
	}
	// The batch's writes are at consecutive sequences ending at all.last.
	end := all.last
	g.mu.Lock()
	for i := len(batch) - 1; i >= 0; i-- {
		tx := batch[i].tx
		tx.last = end
		for j, w := range tx.writes {
			g.see(w.key, end-uint64(len(tx.writes)-1-j))
		}
		end -= uint64(len(tx.writes))
	}
	g.mu.Unlock()
	for _, q := range batch {
		q.done <- nil
	}
}
