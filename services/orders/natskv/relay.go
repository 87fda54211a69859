package natskv

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/outbox"
	"github.com/ticketing/ticketing/internal/pause"
)

// Relay publishes the outbox the store's orders carry to EVENTS (package
// doc): one relay a bucket is enough (the core runs it on the saga's
// leader); two at once publish everything twice, which EVENTS drops.
type Relay struct {
	Store *Store
	// Batch is at most how many writes, of those that have come in, are
	// published before their events' acks are awaited. Default 256.
	Batch int
	// Checkpoint is how often the relay's progress is written to the
	// bucket (the key relayed) when it moved: about what a restarted
	// relay publishes again, and how long writers on other nodes carry
	// entries already relayed. Default 100ms.
	Checkpoint time.Duration
	Log        *slog.Logger

	relayed atomic.Uint64
}

// Relayed is how many events this relay published (repeats included).
func (r *Relay) Relayed() uint64 { return r.relayed.Load() }

// Run relays until ctx ends, starting again after a failure.
func (r *Relay) Run(ctx context.Context) error {
	if r.Batch == 0 {
		r.Batch = 256
	}
	if r.Checkpoint == 0 {
		r.Checkpoint = 100 * time.Millisecond
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	for ctx.Err() == nil {
		err := r.run(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("orders outbox relay restarts", "bucket", r.Store.cfg.Bucket, "err", err)
			pause.For(ctx, time.Second)
		}
	}
	return nil
}

func (r *Relay) run(ctx context.Context) error {
	s := r.Store
	st, err := s.js.Stream(ctx, "KV_"+s.cfg.Bucket)
	if err != nil {
		return err
	}
	v, _, err := s.get(ctx, relayedKey)
	if err != nil {
		return err
	}
	var done uint64 // every write up to it is relayed
	if v != nil {
		if done, err = strconv.ParseUint(string(v), 10, 64); err != nil {
			return fmt.Errorf("checkpoint %q: %w", v, err)
		}
		s.relayedUpTo(done)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.prefix + orderPrefix + ">", s.prefix + legacyOutPrefix + ">"}}
	if done > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, done+1
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(r.Batch))
	if err != nil {
		return err
	}
	defer it.Stop()
	// The writes, read on as they come; batches of them are published.
	msgs := make(chan jetstream.Msg, r.Batch)
	stopped := make(chan struct{})
	defer close(stopped)
	var readErr error
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				readErr = err
				return
			}
			select {
			case msgs <- m:
			case <-stopped:
				return
			}
		}
	}()
	saved := done
	checkpoint := func(ctx context.Context) error {
		if done == saved {
			return nil
		}
		if _, err := s.kv.Put(ctx, relayedKey, strconv.AppendUint(nil, done, 10)); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		saved = done
		return nil
	}
	defer func() {
		// The progress made, for the next relay (best effort: it
		// publishes again from the last checkpoint otherwise).
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = checkpoint(c)
	}()
	tick := time.NewTicker(r.Checkpoint)
	defer tick.Stop()
	batch := make([]jetstream.Msg, 0, r.Batch)
	for {
		batch = batch[:0]
		select {
		case m, ok := <-msgs:
			if !ok {
				return readErr
			}
			batch = append(batch, m)
		case <-tick.C:
			if err := checkpoint(ctx); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return nil
		}
	more:
		for len(batch) < r.Batch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		last, err := r.publish(ctx, batch)
		if err != nil {
			return err
		}
		done = last
		s.relayedUpTo(done)
	}
}

// publish publishes the entries of a batch of writes and purges the
// entries of an earlier version among them; it returns the stream
// sequence of the last write.
func (r *Relay) publish(ctx context.Context, batch []jetstream.Msg) (uint64, error) {
	s := r.Store
	var (
		last   uint64
		legacy bool
		acks   []jetstream.PubAckFuture
	)
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			return 0, err
		}
		last = md.Sequence.Stream
		if m.Headers().Get("KV-Operation") != "" {
			continue // a delete or purge marker
		}
		var out []outbox.Entry
		if strings.HasPrefix(m.Subject(), s.prefix+legacyOutPrefix) {
			legacy = true
			var e outbox.Entry
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				r.Log.Error("outbox entry dropped: not an entry", "bucket", s.cfg.Bucket, "seq", last, "err", err)
				continue
			}
			out = []outbox.Entry{e}
		} else {
			var c carried
			if err := json.Unmarshal(m.Data(), &c); err != nil {
				r.Log.Error("order's outbox dropped: not an order", "bucket", s.cfg.Bucket, "seq", last, "err", err)
				continue
			}
			out = c.Outbox
		}
		for i := range out {
			f, err := s.js.PublishMsgAsync(out[i].Msg())
			if err != nil {
				return 0, err
			}
			acks = append(acks, f)
		}
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	r.relayed.Add(uint64(len(acks)))
	if legacy {
		// Entries of an earlier version, published: gone.
		st, err := s.js.Stream(ctx, "KV_"+s.cfg.Bucket)
		if err != nil {
			return 0, err
		}
		if err := st.Purge(ctx, jetstream.WithPurgeSubject(s.prefix+legacyOutPrefix+">"), jetstream.WithPurgeSequence(last+1)); err != nil {
			return 0, err
		}
	}
	return last, nil
}
