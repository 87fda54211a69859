package owner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/jsonw"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// record is one log message: a group-committed batch of decisions. Gen
// counts an owner's records from 1 within its epoch; a gap means a write
// failed and everything after it in that epoch was never acknowledged.
type record struct {
	Owner string                `json:"owner"`
	Epoch uint64                `json:"epoch"`
	Gen   uint64                `json:"gen"`
	D     []*inventory.Decision `json:"d"`
}

// appendJSON appends r as encoding/json encodes it (TestRecordJSON).
func (r record) appendJSON(b []byte) []byte {
	b = append(b, `{"owner":`...)
	b = jsonw.String(b, r.Owner)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, r.Epoch, 10)
	b = append(b, `,"gen":`...)
	b = strconv.AppendUint(b, r.Gen, 10)
	b = append(b, `,"d":`...)
	if r.D == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i, d := range r.D {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.AppendJSON(b)
	}
	return append(b, "]}"...)
}

// register starts the partition's micro service: endpoints on
// "inv.<partition>.<op>", in a queue group so that during a hand-over only
// one instance gets each request.
func (o *Owner) register() (micro.Service, error) {
	svc, err := micro.AddService(o.deps.NC, micro.Config{
		Name:        natsapi.ServiceName,
		Version:     "1.0.0",
		Description: "inventory partition owner",
		QueueGroup:  "inv",
		Metadata:    map[string]string{"partition": o.key, "node": o.cfg.Node, "epoch": fmt.Sprint(o.lease.Epoch())},
	})
	if err != nil {
		return nil, err
	}
	g := svc.AddGroup(natsapi.Group(o.key))
	for i, name := range opNames {
		if err := g.AddEndpoint(name, o.handler(op(i))); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	return svc, nil
}

// handler decodes a request and queues it for the loop. It runs on the
// subscription's goroutine, so it does only what needs no state.
func (o *Owner) handler(which op) micro.HandlerFunc {
	name := "inventory." + opNames[which]
	return func(req micro.Request) {
		// Answered later by the writer, on another goroutine: detached.
		c := &call{op: which, req: microerr.Detach(o.deps.NC, req), tr: traceCall(req, which)}
		var err error
		switch which {
		case opHold:
			err = c.hold.DecodeJSON(req.Data())
		case opGet, opRelease:
			err = json.Unmarshal(req.Data(), &c.ref)
			if err == nil && c.ref.Holder == "" && !inventory.CheckHoldToken(o.deps.Secret, c.ref.HoldID, c.ref.Token) {
				o.respond(c, errs.E(name, errs.Forbidden, "the hold token does not match this hold"))
				return
			}
		case opConfirm, opCancel:
			err = json.Unmarshal(req.Data(), &c.confirm)
		case opAvailability:
			var ar inventory.AvailabilityRequest
			if len(req.Data()) > 0 {
				err = json.Unmarshal(req.Data(), &ar)
			}
			if err == nil {
				if c.within, err = ar.Within(); err != nil {
					o.respond(c, err)
					return
				}
			}
		}
		if err != nil {
			o.respond(c, errs.E(name, errs.Invalid, "malformed request: "+err.Error()))
			return
		}
		if !o.leaseValid() {
			o.respond(c, errs.E(name, errs.Unavailable, "the partition is changing owner; try again"))
			return
		}
		select {
		case o.cmds <- c:
			o.deps.Metrics.Queue.Inc()
		default:
			o.respond(c, errs.E(name, errs.Unavailable, "the partition is overloaded; try again"))
		}
	}
}

// respond sends a call's answer: c.data, or err (c.err when err is nil).
func (o *Owner) respond(c *call, err error) {
	if err == nil {
		err = c.err
	}
	if c.tr != nil {
		c.tr.answered(err)
	}
	outcome := "ok"
	if err != nil {
		outcome = errs.KindOf(err).Code()
		_ = microerr.Respond(c.req, err)
	} else {
		_ = c.req.Respond(c.data)
	}
	o.deps.Metrics.Requests.WithLabelValues(opNames[c.op], outcome).Inc()
}

// loop decides commands in arrival order, adding their decisions and answers
// to the open batch, and expires holds when their time comes. It never waits
// for the disk: the writer commits while the loop decides the next batch.
func (o *Owner) loop(stop <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var first *call
		select {
		case first = <-o.cmds:
			o.deps.Metrics.Queue.Dec()
		case <-timer.C:
		case <-stop:
			return
		}
		o.mu.Lock()
		for len(o.open.ds) >= o.cfg.MaxBatch && !o.stopping {
			o.full.Wait()
		}
		if o.stopping {
			o.mu.Unlock()
			if first != nil {
				o.respond(first, errs.E("inventory."+opNames[first.op], errs.Unavailable, "the partition is changing owner; try again"))
			}
			return
		}
		if first != nil {
			o.handle(first)
		} else {
			o.part.Expire(time.Now())
			o.collect()
		}
	drain:
		for len(o.open.ds) < o.cfg.MaxBatch {
			select {
			case c := <-o.cmds:
				o.deps.Metrics.Queue.Dec()
				o.handle(c)
			default:
				break drain
			}
		}
		next, ok := o.part.NextExpiry()
		o.mu.Unlock()
		o.signal()
		if ok {
			timer.Reset(max(time.Until(next), 0))
		} else {
			timer.Reset(time.Hour)
		}
	}
}

// handle decides one command. mu is held.
func (o *Owner) handle(c *call) {
	now := time.Now()
	first := len(o.open.ds)
	var v any
	var err error
	switch c.op {
	case opHold:
		var h inventory.Hold
		h, err = o.part.Hold(now, c.hold, o.newID)
		if err == nil {
			h.HoldToken = o.tokens.Sign(h.HoldID)
		}
		v = h
	case opGet, opRelease:
		var h inventory.Hold
		h, err = o.part.Get(c.ref.HoldID)
		if err == nil && c.ref.Holder != "" && h.Holder != c.ref.Holder {
			// Another holder's hold does not exist for this caller.
			err = errs.E("inventory."+opNames[c.op], errs.NotFound, "no such hold")
		}
		if err == nil && c.op == opRelease {
			h, err = o.part.Release(now, c.ref.HoldID)
		}
		v = h
	case opConfirm:
		v, err = o.part.Confirm(now, c.confirm)
	case opCancel:
		v, err = o.part.CancelSale(now, c.confirm)
	case opAvailability:
		v = o.part.AvailabilityWithin(now, c.within)
	}
	if err != nil {
		c.err = err
	} else if c.data, err = encodeAnswer(v); err != nil {
		c.err = errs.E("inventory."+opNames[c.op], errs.Other, err)
	}
	o.collect()
	o.open.calls = append(o.open.calls, c)
	if c.tr != nil {
		c.tr.decided(now, first, len(o.open.ds))
	}
}

// encodeAnswer encodes an answer; holds, most answers, without reflection.
func encodeAnswer(v any) ([]byte, error) {
	if h, ok := v.(inventory.Hold); ok {
		return h.AppendJSON(make([]byte, 0, 320))
	}
	return json.Marshal(v)
}

// collect moves the partition's new decisions into the open batch. mu is held.
func (o *Owner) collect() {
	ds := o.part.TakeDecisions()
	o.open.ds = append(o.open.ds, ds...)
	for _, d := range ds {
		o.deps.Metrics.decision(d.Type).Inc()
	}
}

// writer commits batches in order, with up to MaxInflight log writes in
// flight: it takes the open batch, sends its decisions as one log message
// fenced on the partition's fence subject, and answers a batch's calls only
// when its write and every earlier one are acknowledged. A failed write fails
// the owner: the decisions in memory may not be in the log, so the state is
// dropped and the next owner recovers from the log (skipping any record that
// follows a gap, which no one was told about).
func (o *Owner) writer() {
	var q []inflightWrite
	finishing := false
	finish := o.finish
	for {
		// Fill the pipeline.
		for !o.isFailed() && len(q) < o.cfg.MaxInflight {
			b := o.swap()
			if b == nil {
				break
			}
			w := inflightWrite{b: b, sent: time.Now()}
			if len(b.ds) > 0 {
				f, err := o.send(b)
				if err != nil {
					o.fail(err)
					o.failCalls(b.calls, err)
					break
				}
				w.f = f
			}
			q = append(q, w)
		}
		q = o.completeReads(q)
		if o.isFailed() {
			for _, w := range q {
				o.failCalls(w.b.calls, o.failErr)
			}
			q = nil
		}
		if finishing && len(q) == 0 && o.openEmpty() {
			return
		}
		var okCh <-chan *jetstream.PubAck
		var errCh <-chan error
		if len(q) > 0 {
			okCh, errCh = q[0].f.Ok(), q[0].f.Err()
		}
		failed := o.failed
		if o.isFailed() {
			failed = nil // already handled; wait for the loop to stop
		}
		select {
		case <-o.kick:
		case <-failed:
		case <-finish:
			finishing = true
			finish = nil // a closed channel would spin
		case ack := <-okCh:
			o.commit(q[0], ack.Sequence)
			q = q[1:]
		case err := <-errCh:
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				err = fmt.Errorf("%w: %v", ErrFenced, err)
			} else {
				err = fmt.Errorf("owner: log write: %w", err)
			}
			o.fail(err)
		}
	}
}

type inflightWrite struct {
	b    *batch
	f    jetstream.PubAckFuture // nil for a batch without decisions (reads)
	sent time.Time
}

// swap takes the open batch, or returns nil when it is empty.
func (o *Owner) swap() *batch {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.open.calls) == 0 && len(o.open.ds) == 0 {
		return nil
	}
	b := o.open
	if len(b.ds) > 0 && o.wantCheck.Load() {
		// Every decision made so far is in b or an earlier batch: the
		// counts are the state once b is applied.
		o.wantCheck.Store(false)
		b.counts = o.part.ZoneCounts(nil)
	}
	o.gen++
	o.open = &batch{gen: o.gen}
	o.part.SetBatch(o.gen, o.durable.Load)
	o.full.Broadcast()
	return b
}

func (o *Owner) openEmpty() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.open.calls) == 0 && len(o.open.ds) == 0
}

// completeReads answers batches without decisions once every write before
// them is acknowledged.
func (o *Owner) completeReads(q []inflightWrite) []inflightWrite {
	for len(q) > 0 && q[0].f == nil {
		if !o.isFailed() {
			o.durable.Store(q[0].b.gen)
			o.answerCalls(q[0].b.calls)
		}
		q = q[1:]
	}
	return q
}

// committedBacklog is how many committed batches the relay and the
// snapshotter may each be behind before commits wait for them. The
// snapshotter applies none while it writes a snapshot, which for a partition
// of a million holds, paced, takes seconds. An owner commits at most a few
// thousand batches a second (each is a synced log write), so this is tens
// of seconds of headroom, for about 3 MB of queue at most.
const committedBacklog = 1 << 16

// commit completes the oldest write: its decisions are durable at seq.
func (o *Owner) commit(w inflightWrite, seq uint64) {
	o.lastSeq = seq
	o.traceCommit(w, seq)
	o.deps.Metrics.BatchSize.Observe(float64(len(w.b.ds)))
	o.deps.Metrics.WriteSeconds.Observe(time.Since(w.sent).Seconds())
	o.durable.Store(w.b.gen)
	o.relayCh <- committed{seq: seq, gen: w.b.logGen, ds: w.b.ds}
	o.shadowCh <- committed{seq: seq, gen: w.b.logGen, ds: w.b.ds, counts: w.b.counts}
	o.answerCalls(w.b.calls)
}

func (o *Owner) answerCalls(calls []*call) {
	for _, c := range calls {
		o.respond(c, nil)
	}
}

func (o *Owner) failCalls(calls []*call, cause error) {
	for _, c := range calls {
		o.respond(c, errs.E("inventory."+opNames[c.op], errs.Unavailable, "the partition is changing owner; try again", cause))
	}
}

// send starts the log write of a batch. Records are numbered apart from
// batches: a batch of reads writes nothing.
func (o *Owner) send(b *batch) (jetstream.PubAckFuture, error) {
	o.logGen++
	b.logGen = o.logGen
	m, err := o.logMsg(b.logGen, b.ds)
	if err != nil {
		return nil, err
	}
	f, err := o.logJS.PublishMsgAsync(m)
	if err != nil {
		return nil, fmt.Errorf("owner: log write: %w", err)
	}
	return f, nil
}

// logMsg encodes a log record, with the headers that fence it: the stream,
// and the fence subject's last sequence being this owner's.
func (o *Owner) logMsg(gen uint64, ds []*inventory.Decision) (*nats.Msg, error) {
	payload := record{Owner: o.cfg.Node, Epoch: o.lease.Epoch(), Gen: gen, D: ds}.appendJSON(make([]byte, 0, 64+300*len(ds)))
	m := nats.NewMsg(o.logSubj)
	m.Data = payload
	m.Header.Set(jetstream.ExpectedStreamHeader, streams.Inventory)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(o.fenceSeq, 10))
	m.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, o.fenceSubj)
	return m, nil
}

// write appends one record synchronously (recovery's first record).
func (o *Owner) write(ctx context.Context, gen uint64, ds []*inventory.Decision) (uint64, error) {
	m, err := o.logMsg(gen, ds)
	if err != nil {
		return 0, err
	}
	ack, err := o.deps.JS.PublishMsg(ctx, m)
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, fmt.Errorf("%w: %v", ErrFenced, err)
		}
		return 0, fmt.Errorf("owner: log write: %w", err)
	}
	o.lastSeq = ack.Sequence
	return ack.Sequence, nil
}
