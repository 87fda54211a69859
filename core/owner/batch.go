package owner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/ticketing/ticketing/core/streams"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/microerr"
	"github.com/ticketing/ticketing/services/inventory"
	"github.com/ticketing/ticketing/services/inventory/natsapi"
)

// record is one log message: a group-committed batch of decisions.
type record struct {
	Owner string                `json:"owner"`
	Epoch uint64                `json:"epoch"`
	D     []*inventory.Decision `json:"d"`
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
		c := &call{op: which, req: req}
		var err error
		switch which {
		case opHold:
			err = json.Unmarshal(req.Data(), &c.hold)
		case opGet, opRelease:
			err = json.Unmarshal(req.Data(), &c.ref)
			if err == nil && !inventory.CheckHoldToken(o.deps.Secret, c.ref.HoldID, c.ref.Token) {
				o.respond(c, errs.E(name, errs.Forbidden, "the hold token does not match this hold"))
				return
			}
		case opConfirm, opCancel:
			err = json.Unmarshal(req.Data(), &c.confirm)
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
	var v any
	var err error
	switch c.op {
	case opHold:
		var h inventory.Hold
		h, err = o.part.Hold(now, c.hold, o.newID)
		if err == nil {
			h.HoldToken = inventory.HoldToken(o.deps.Secret, h.HoldID)
		}
		v = h
	case opGet:
		v, err = o.part.Get(c.ref.HoldID)
	case opRelease:
		v, err = o.part.Release(now, c.ref.HoldID)
	case opConfirm:
		v, err = o.part.Confirm(now, c.confirm)
	case opCancel:
		v, err = o.part.CancelSale(now, c.confirm)
	case opAvailability:
		v = o.part.Availability()
	}
	if err != nil {
		c.err = err
	} else if c.data, err = json.Marshal(v); err != nil {
		c.err = errs.E("inventory."+opNames[c.op], errs.Other, err)
	}
	o.collect()
	o.open.calls = append(o.open.calls, c)
}

// collect moves the partition's new decisions into the open batch. mu is held.
func (o *Owner) collect() {
	ds := o.part.TakeDecisions()
	o.open.ds = append(o.open.ds, ds...)
	for _, d := range ds {
		o.deps.Metrics.Decisions.WithLabelValues(string(d.Type)).Inc()
	}
}

// writer commits batches one at a time: it takes the open batch, writes its
// decisions as one log message fenced on the subject's last sequence, and
// only then answers the batch's calls. A failed write fails the owner: the
// decisions in memory may not be in the log, so the state is dropped and the
// next owner recovers from the log.
func (o *Owner) writer() {
	for {
		final := false
		select {
		case <-o.kick:
		case <-o.failed:
		case <-o.finish:
			final = true
		}
		o.mu.Lock()
		b := o.open
		o.gen++
		o.open = &batch{gen: o.gen}
		o.part.SetBatch(o.gen, o.durable.Load)
		o.full.Broadcast()
		o.mu.Unlock()

		if o.isFailed() {
			for _, c := range b.calls {
				o.respond(c, errs.E("inventory."+opNames[c.op], errs.Unavailable, "the partition is changing owner; try again"))
			}
			select {
			case <-o.finish:
				return
			default:
			}
			// Wait for the loop to stop; answer whatever it still hands over.
			select {
			case <-o.kick:
			case <-o.finish:
			}
			continue
		}
		if len(b.ds) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), o.cfg.WriteTimeout)
			seq, err := o.write(ctx, b.ds)
			cancel()
			if err != nil {
				o.fail(err)
				for _, c := range b.calls {
					o.respond(c, errs.E("inventory."+opNames[c.op], errs.Unavailable, "the partition is changing owner; try again", err))
				}
				continue
			}
			o.relayCh <- committed{seq, b.ds}
			o.shadowCh <- committed{seq, b.ds}
		}
		o.durable.Store(b.gen)
		for _, c := range b.calls {
			o.respond(c, nil)
		}
		if final {
			return
		}
	}
}

// write appends decisions to the log as one message, fenced on the last
// sequence this owner knows.
func (o *Owner) write(ctx context.Context, ds []*inventory.Decision) (uint64, error) {
	start := time.Now()
	payload, err := json.Marshal(record{Owner: o.cfg.Node, Epoch: o.lease.Epoch(), D: ds})
	if err != nil {
		return 0, err
	}
	m := nats.NewMsg(o.logSubj)
	m.Data = payload
	ack, err := o.deps.JS.PublishMsg(ctx, m,
		jetstream.WithExpectStream(streams.Inventory),
		jetstream.WithExpectLastSequencePerSubject(o.lastSeq))
	if err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			return 0, fmt.Errorf("%w: %v", ErrFenced, err)
		}
		return 0, fmt.Errorf("owner: log write: %w", err)
	}
	o.lastSeq = ack.Sequence
	o.deps.Metrics.BatchSize.Observe(float64(len(ds)))
	o.deps.Metrics.WriteSeconds.Observe(time.Since(start).Seconds())
	return ack.Sequence, nil
}
