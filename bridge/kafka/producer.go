package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/internal/errs"
)

// Producer writes records to Kafka.
//
// Produce may be called from many goroutines at once. Records keep, within
// their partition, the order in which Produce was given them: the records
// of one call in slice order; calls that overlap in time interleave.
type Producer interface {
	// Produce writes recs and returns when every one of them is
	// acknowledged by all in-sync replicas, or with the first error. On
	// success each record's Partition, Offset and Timestamp are set.
	//
	// An error means that some records may not have been written, never
	// that none was: retrying them may duplicate the ones that were. When a
	// record of a partition fails, the records after it in that partition
	// fail too, so a partition never has a gap followed by later records.
	//
	// Cancelling ctx fails the records not yet sent with ctx's error. A
	// record already sent cannot be recalled without breaking idempotence,
	// so Produce waits for the broker's answer to it and may return shortly
	// after ctx is done.
	Produce(ctx context.Context, recs ...*Record) error
	// Close sends what is buffered, waiting at most until ctx is done, and
	// closes the client. Produce calls after or during Close fail with
	// ErrClosed. Calling Close more than once is harmless.
	Close(ctx context.Context) error
}

// TxProducer writes records in Kafka transactions.
type TxProducer interface {
	// Transact runs fn in a new transaction. If fn returns nil the
	// transaction is committed: read_committed consumers then see every
	// record produced through tx, atomically. If fn returns an error, or a
	// record fails, the transaction is aborted and none of its records is
	// ever seen by read_committed consumers; Transact returns fn's error.
	//
	// Transact calls are serialised (a transactional id has one open
	// transaction at a time); concurrent calls wait for their turn. ctx
	// bounds fn and the produce requests; the commit or abort itself runs
	// to its end even when ctx is cancelled, because an interrupted commit
	// leaves the outcome unknown.
	//
	// Once another producer with the same transactional id has started,
	// Transact fails with ErrFenced, for good.
	Transact(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Close waits, at most until ctx is done, for a running Transact to
	// end, and closes the client; a transaction still open then is never
	// committed (the broker aborts it after TransactionTimeout, or when a
	// producer with the same transactional id starts). Calling Close more
	// than once is harmless.
	Close(ctx context.Context) error
}

// Tx produces records inside one transaction. It is valid only during the
// call of the function given to Transact, and may be used from several
// goroutines during it.
type Tx interface {
	// Produce writes recs as part of the transaction and returns when the
	// broker has them (not yet visible to read_committed consumers).
	Produce(ctx context.Context, recs ...*Record) error
}

type producer struct {
	cl     *kgo.Client
	closed atomic.Bool
	once   sync.Once
}

// NewProducer starts an idempotent producer. It does not connect until the
// first Produce.
func NewProducer(c ProducerConfig) (Producer, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TransactionalID != "" {
		return nil, errs.E(opConfig, errs.Invalid, "a transactional id is for NewTxProducer")
	}
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		return nil, wrap("new producer", err)
	}
	return &producer{cl: cl}, nil
}

func (p *producer) Produce(ctx context.Context, recs ...*Record) error {
	if p.closed.Load() {
		return wrap("produce", ErrClosed)
	}
	return produceSync(ctx, p.cl, "produce", recs)
}

func produceSync(ctx context.Context, cl *kgo.Client, op string, recs []*Record) error {
	if len(recs) == 0 {
		return nil
	}
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if r.Topic == "" {
			return errs.Errorf("kafka."+op, errs.Invalid, "record %d has no topic", i)
		}
		krs[i] = r.toKgo()
	}
	traced := traceProduce(ctx, krs)
	var first error
	for _, res := range cl.ProduceSync(ctx, krs...) {
		if res.Err != nil && first == nil {
			first = wrap(op+" to "+res.Record.Topic, res.Err)
		}
	}
	endProduce(traced, first)
	for i, kr := range krs {
		recs[i].Partition, recs[i].Offset, recs[i].Timestamp = kr.Partition, kr.Offset, kr.Timestamp
	}
	return first
}

func (p *producer) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.closed.Store(true)
		err = p.cl.Flush(ctx)
		p.cl.Close()
	})
	return wrap("close", err)
}

type txProducer struct {
	cl     *kgo.Client
	turn   chan struct{} // holds a token while a transaction runs
	cfg    ProducerConfig
	closed atomic.Bool
	fenced atomic.Bool
	once   sync.Once
}

// NewTxProducer starts a transactional producer with c.TransactionalID.
func NewTxProducer(c ProducerConfig) (TxProducer, error) {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TransactionalID == "" {
		return nil, errs.E(opConfig, errs.Invalid, "a transactional producer needs a transactional id")
	}
	cl, err := kgo.NewClient(c.opts()...)
	if err != nil {
		return nil, wrap("new transactional producer", err)
	}
	return &txProducer{cl: cl, cfg: c, turn: make(chan struct{}, 1)}, nil
}

type tx struct {
	p    *txProducer
	done atomic.Bool
}

func (t *tx) Produce(ctx context.Context, recs ...*Record) error {
	if t.done.Load() {
		return errs.E("kafka.tx.produce", errs.Invalid, "the transaction has ended")
	}
	return t.p.fence(produceSync(ctx, t.p.cl, "tx produce", recs))
}

// fence marks the producer fenced when err says so and returns err with
// ErrFenced in its chain.
func (p *txProducer) fence(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrFenced) || errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		p.fenced.Store(true)
		if !errors.Is(err, ErrFenced) {
			return errors.Join(ErrFenced, err)
		}
	}
	return err
}

func (p *txProducer) Transact(ctx context.Context, fn func(ctx context.Context, tx Tx) error) (err error) {
	select {
	case p.turn <- struct{}{}:
		defer func() { <-p.turn }()
	case <-ctx.Done():
		return wrap("transact", ctx.Err())
	}
	switch {
	case p.closed.Load():
		return wrap("transact", ErrClosed)
	case p.fenced.Load():
		return wrap("transact", ErrFenced)
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return wrap("begin transaction", p.fence(err))
	}
	t := &tx{p: p}
	ferr := fn(ctx, t)
	t.done.Store(true)
	// The end of a transaction must not be cut short: an interrupted
	// EndTxn leaves the outcome unknown.
	end, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout)
	defer cancel()
	if ferr == nil {
		ferr = p.fence(p.cl.Flush(ctx))
	}
	if ferr == nil {
		cerr := p.cl.EndTransaction(end, kgo.TryCommit)
		if cerr == nil {
			return nil
		}
		// kgo: after a failed or unconfirmed commit, end with TryAbort.
		aerr := p.cl.EndTransaction(end, kgo.TryAbort)
		return wrap("commit transaction", p.fence(errors.Join(cerr, aerr)))
	}
	aerr := p.cl.AbortBufferedRecords(end)
	if aerr == nil {
		aerr = p.cl.EndTransaction(end, kgo.TryAbort)
	}
	if aerr != nil {
		return errors.Join(ferr, wrap("abort transaction", p.fence(aerr)))
	}
	return ferr
}

func (p *txProducer) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.closed.Store(true)
		select {
		case p.turn <- struct{}{}:
		case <-ctx.Done():
			err = wrap("close", ctx.Err())
		}
		p.cl.Close()
	})
	return err
}
