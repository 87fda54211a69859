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
