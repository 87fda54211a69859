package mirror

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/bridge/kafka"
	"github.com/ticketing/ticketing/internal/cloudevents"
)

// Record keys on the checkpoint topic.
const (
	keyCheckpoint = "checkpoint"
	keyProbe      = "probe"
)

// PrefetchBytes bounds what the bridge's JetStream consumer asks for ahead.
// A bound in messages is no bound once messages are batches of events (up
// to a few hundred KiB): with 8,192 messages ahead, a backlog of 25-event
// batches crawled (`ticketing bench bridge --batch 25`: 25,000 events/s, raw
// consumption 333/s), where a 32 MiB bound mirrors it at 366,000 events/s
// and leaves plain events as fast as before.
const PrefetchBytes = 32 << 20

// HeaderStreamSeq is the Kafka header with the sequence in the JetStream
// stream of the message that carried the event: consumers may use it to
// check order and gaps. An event of a batch also has HeaderBatchIndex, its
// place in the batch (from 0).
const (
	HeaderStreamSeq  = "ticketing_stream_seq"
	HeaderBatchIndex = "ticketing_batch_index"
)

// Checkpoint is the value of a checkpoint record.
type Checkpoint struct {
	Stream string `json:"stream"`
	// Created identifies the stream: a stream deleted and created again
	// under the same name starts its sequences again, and a checkpoint of
	// the old one says nothing about it.
	Created time.Time `json:"stream_created"`
	Seq     uint64    `json:"seq"`
	Bridge  string    `json:"bridge"`
	At      time.Time `json:"at"`
}

// item is one stream message on its way from JetStream to Kafka: one event,
// or a batch of them. A transaction takes whole items, so that the
// checkpoint (a stream sequence) never falls inside a batch.
type item struct {
	recs []*kafka.Record
	seq  uint64
	msg  jetstream.Msg
	size int
}

// mirror is one active session: recover the checkpoint, then mirror until
// ctx is done or something fails. holding says whether the lease is still
// certainly held; it is checked before the consumer is replaced. (Kafka
// fences a deposed bridge's writes; this check keeps it from disturbing the
// JetStream consumer of its successor, and the reader's gap check catches
// what a check made just before a pause cannot.)
func (mr *Mirror) mirror(ctx context.Context, holding func() error) error {
	mr.recoveries.Add(1)
	mr.metrics.Recoveries.Inc()
	p, err := kafka.NewTxProducer(mr.cfg.Kafka)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mr.cfg.StopTimeout)
		defer cancel()
		_ = p.Close(cctx)
	}()
	if err := mr.ensureTopics(ctx); err != nil {
		return err
	}
	stream, err := mr.js.Stream(ctx, mr.cfg.Stream)
	if err != nil {
		return fmt.Errorf("bridge: stream %s: %w", mr.cfg.Stream, err)
	}
	mr.created = stream.CachedInfo().Created
	seq, err := mr.recoverCheckpoint(ctx, p)
	if err != nil {
		return fmt.Errorf("recover checkpoint: %w", err)
	}
	mr.checkpoint.Store(seq)
	mr.metrics.Checkpoint.Set(float64(seq))
	if err := holding(); err != nil {
		return err
	}
	cons, err := mr.consumer(ctx, seq+1)
	if err != nil {
		return err
	}
	prefetch := min(mr.cfg.MaxBatch, 8192)
	it, err := cons.Messages(jetstream.PullMaxBytes(PrefetchBytes))
	if err != nil {
		return fmt.Errorf("bridge: consume %s: %w", mr.cfg.Stream, err)
	}
	defer it.Stop()
	mr.active.Store(true)
	mr.metrics.Active.Set(1)
	mr.log.Info("mirroring", "from_seq", seq+1)

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan item, 2*prefetch)
	readErr := make(chan error, 1)
	go mr.read(rctx, it, seq, items, readErr)

	batch := make([]item, 0, mr.cfg.MaxBatch)
	recs := make([]*kafka.Record, 0, mr.cfg.MaxBatch+1)
	var size, events int // of the batch: bytes, records
	add := func(it item) {
		batch = append(batch, it)
		size += it.size
		events += len(it.recs)
	}
	linger := time.NewTimer(time.Hour)
	defer linger.Stop()
	for {
		batch = batch[:0]
		size, events = 0, 0
		// The first event of a batch: wait as long as it takes.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return err
		case it := <-items:
			add(it)
		}
		// Then take what is there: when the bridge is behind, everything
		// that arrived during the last transaction, at once. Only a small
		// batch (a quiet stream) waits, up to Linger, for company.
	drain:
		for events < mr.cfg.MaxBatch && size < mr.cfg.MaxBatchBytes {
			select {
			case it := <-items:
				add(it)
			default:
				break drain
			}
		}
		if events < mr.cfg.MaxBatch/8 {
			linger.Reset(mr.cfg.Linger)
		fill:
			for events < mr.cfg.MaxBatch && size < mr.cfg.MaxBatchBytes {
				select {
				case it := <-items:
					add(it)
				case <-linger.C:
					break fill
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if !linger.Stop() {
				select {
				case <-linger.C:
				default:
				}
			}
		}
		if err := mr.commit(ctx, p, batch, recs[:0]); err != nil {
			return err
		}
	}
}

// commit writes one batch and its checkpoint in a transaction, then
// acknowledges the batch on JetStream.
func (mr *Mirror) commit(ctx context.Context, p kafka.TxProducer, batch []item, recs []*kafka.Record) error {
	last := batch[len(batch)-1]
	for _, it := range batch {
		recs = append(recs, it.recs...)
	}
	events := len(recs)
	cp, _ := json.Marshal(Checkpoint{Stream: mr.cfg.Stream, Created: mr.created, Seq: last.seq, Bridge: mr.cfg.Name, At: time.Now().UTC()})
	recs = append(recs, &kafka.Record{Topic: mr.cfg.CheckpointTopic, Key: []byte(keyCheckpoint), Value: cp})
	start := time.Now()
	err := p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error {
		return tx.Produce(ctx, recs...)
	})
	mr.metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		mr.metrics.Transactions.WithLabelValues("failed").Inc()
		return fmt.Errorf("bridge: transaction of %d events up to seq %d: %w", events, last.seq, err)
	}
	mr.metrics.Transactions.WithLabelValues("committed").Inc()
	mr.metrics.BatchEvents.Observe(float64(events))
	mr.metrics.Events.Add(float64(events))
	mr.mirrored.Add(uint64(events))
	mr.checkpoint.Store(last.seq)
	mr.metrics.Checkpoint.Set(float64(last.seq))
	// AckAll: acknowledging the last message acknowledges the batch. A lost
	// acknowledgement costs nothing: the checkpoint in Kafka is the truth.
	if err := last.msg.Ack(); err != nil {
		mr.log.Debug("ack", "seq", last.seq, "err", err)
	}
	return nil
}

// read turns JetStream messages into Kafka records, in stream order, until
// ctx is done or the subscription fails.
func (mr *Mirror) read(ctx context.Context, it jetstream.MessagesContext, after uint64, out chan<- item, errc chan<- error) {
	next := after + 1
	topics := map[string]string{}
	wait := jetstream.NextContext(ctx)
	for {
		m, err := it.Next(wait)
		if err != nil {
			if ctx.Err() == nil {
				errc <- fmt.Errorf("bridge: read %s: %w", mr.cfg.Stream, err)
			}
			return
		}
		md, err := m.Metadata()
		if err != nil {
			errc <- fmt.Errorf("bridge: message metadata: %w", err)
			return
		}
		seq := md.Sequence.Stream
		if seq < next {
			continue // a redelivery of what is already on its way
		}
		if seq > next {
			// Sequences are dense unless messages were removed from the
			// stream before the bridge read them (retention, a purge). Any
			// other jump means another reader took messages of this
			// consumer (a deposed bridge that has not noticed yet): never
			// skip those, start again from the checkpoint.
			if err := mr.checkGap(ctx, next, seq-1); err != nil {
				errc <- err
				return
			}
			mr.metrics.StreamGaps.Add(float64(seq - next))
			mr.log.Warn("stream sequence gap: events removed from the stream before they were mirrored", "from", next, "to", seq-1)
		}
		next = seq + 1
		recs := mr.records(m, seq, topics)
		select {
		case out <- item{recs: recs, seq: seq, msg: m, size: len(m.Data())}:
		case <-ctx.Done():
			return
		}
	}
}

// checkGap returns nil if the stream no longer holds any message with a
// sequence from first to last.
func (mr *Mirror) checkGap(ctx context.Context, first, last uint64) error {
	s, err := mr.js.Stream(ctx, mr.cfg.Stream)
	if err != nil {
		return fmt.Errorf("bridge: check a sequence gap: %w", err)
	}
	first = max(first, s.CachedInfo().State.FirstSeq)
	for seq := first; seq <= last; seq++ {
		_, err := s.GetMsg(ctx, seq)
		if err == nil {
			return fmt.Errorf("bridge: stream message %d was not delivered to this bridge (another reader on its consumer?)", seq)
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("bridge: check a sequence gap at %d: %w", seq, err)
		}
	}
	return nil
}

// ceHeaders are the NATS headers copied to Kafka, in this order, with the
// Kafka protocol binding's names (ce_ prefix). iType is the type's index.
const iType = 3

var ceHeaders = [...][2]string{
	{cloudevents.HeaderSpecVersion, "ce_specversion"},
	{cloudevents.HeaderID, "ce_id"},
	{cloudevents.HeaderSource, "ce_source"},
	{cloudevents.HeaderType, "ce_type"},
	{cloudevents.HeaderSubject, "ce_subject"},
	{cloudevents.HeaderTime, "ce_time"},
	{cloudevents.HeaderPartitionKey, "ce_partitionkey"},
	{cloudevents.HeaderContentType, "content-type"},
}

// records maps a stream message to Kafka records: a batch to one record per
// event, anything else to one record. A batch that does not parse goes
// whole, as it is, to the unroutable topic.
func (mr *Mirror) records(m jetstream.Msg, seq uint64, topics map[string]string) []*kafka.Record {
	h := m.Headers()
	if h.Get(cloudevents.HeaderContentType) != cloudevents.BatchContentType {
		return []*kafka.Record{mr.record(m, seq, topics)}
	}
	els, err := cloudevents.SplitBatch(m.Data())
	if err != nil {
		mr.log.Error("unreadable batch of events: passed on whole to the unroutable topic", "seq", seq, "err", err)
		rec := mr.record(m, seq, topics)
		rec.Topic = mr.cfg.UnroutableTopic
		return []*kafka.Record{rec}
	}
	recs := make([]*kafka.Record, len(els))
	for i := range els {
		recs[i] = mr.batchRecord(&els[i], seq, i, topics)
	}
	return recs
}

// topic is the topic of an event type; topics caches it per type and
// belongs to the calling goroutine.
func (mr *Mirror) topic(typ string, topics map[string]string) string {
	topic, ok := topics[typ]
	if !ok {
		var err error
		if topic, err = mr.cfg.Kafka.Topics.Topic(typ); err != nil {
			topic = mr.cfg.UnroutableTopic
		}
		if len(topics) < 1024 {
			topics[typ] = topic
		}
	}
	return topic
}

// record maps a domain event to its Kafka record: the topic by type, the
// aggregate as the key, the structured CloudEvents body as the value, the
// CloudEvents attributes as headers (the NATS headers that are not
// CloudEvents attributes, such as Nats-Msg-Id, stay behind).
func (mr *Mirror) record(m jetstream.Msg, seq uint64, topics map[string]string) *kafka.Record {
	h := m.Headers()
	key := h.Get(cloudevents.HeaderPartitionKey)
	if key == "" {
		key = h.Get(cloudevents.HeaderSubject)
	}
	// One backing array for the key and every header value: one
	// allocation, not ten.
	var vals [len(ceHeaders)]string
	size := len(key) + 20
	for i, kv := range ceHeaders {
		vals[i] = h.Get(kv[0])
		size += len(vals[i])
	}
	buf := make([]byte, 0, size)
	take := func(s string) []byte {
		buf = append(buf, s...)
		return buf[len(buf)-len(s) : len(buf) : len(buf)]
	}
	rec := &kafka.Record{Topic: mr.topic(vals[iType], topics), Value: m.Data(), Headers: make([]kafka.Header, 0, len(ceHeaders)+1)}
	if key != "" {
		rec.Key = take(key)
	}
	for i, kv := range ceHeaders {
		if vals[i] != "" {
			rec.Headers = append(rec.Headers, kafka.Header{Key: kv[1], Value: take(vals[i])})
		}
	}
	n := len(buf)
	buf = strconv.AppendUint(buf, seq, 10)
	rec.Headers = append(rec.Headers, kafka.Header{Key: HeaderStreamSeq, Value: buf[n:len(buf):len(buf)]})
	return rec
}

// batchRecord is record for event i of a batch: the same topic, key,
// value and headers as if the event had come alone, plus its index. Key
// and attribute values are slices of the message (no copies).
func (mr *Mirror) batchRecord(el *cloudevents.Element, seq uint64, i int, topics map[string]string) *kafka.Record {
	a := &el.Attrs
	vals := [len(ceHeaders)][]byte{a.SpecVersion, a.ID, a.Source, a.Type, a.Subject, a.Time, a.PartitionKey, contentType}
	rec := &kafka.Record{Topic: mr.topic(string(a.Type), topics), Key: a.PartitionKey, Value: el.Raw,
		Headers: make([]kafka.Header, 0, len(ceHeaders)+2)}
	if len(rec.Key) == 0 {
		rec.Key = a.Subject
	}
	if len(rec.Key) == 0 {
		rec.Key = nil
	}
	for k, kv := range ceHeaders {
		if len(vals[k]) > 0 {
			rec.Headers = append(rec.Headers, kafka.Header{Key: kv[1], Value: vals[k]})
		}
	}
	buf := strconv.AppendUint(make([]byte, 0, 24), seq, 10)
	n := len(buf)
	buf = strconv.AppendInt(buf, int64(i), 10)
	rec.Headers = append(rec.Headers,
		kafka.Header{Key: HeaderStreamSeq, Value: buf[:n:n]},
		kafka.Header{Key: HeaderBatchIndex, Value: buf[n:len(buf):len(buf)]})
	if len(a.TraceParent) > 0 { // a sampled decision's: the producer continues it
		rec.Headers = append(rec.Headers, kafka.Header{Key: "traceparent", Value: a.TraceParent})
	}
	return rec
}

var contentType = []byte(cloudevents.ContentType)

// ensureTopics creates the event topics, the unroutable topic and the
// one-partition checkpoint topic.
func (mr *Mirror) ensureTopics(ctx context.Context) error {
	a, err := kafka.NewAdmin(mr.cfg.Kafka.Client)
	if err != nil {
		return err
	}
	defer a.Close()
	t := mr.cfg.Kafka.Topics
	specs := append(t.Specs(),
		kafka.TopicSpec{Name: mr.cfg.UnroutableTopic, Partitions: 1, ReplicationFactor: t.ReplicationFactor},
		kafka.TopicSpec{Name: mr.cfg.CheckpointTopic, Partitions: 1, ReplicationFactor: t.ReplicationFactor})
	return a.EnsureTopics(ctx, specs...)
}

// probeWindow is how far before the probe the first read of the checkpoint
// partition starts; it doubles until a checkpoint is found or the log start
// is reached. Each transaction adds two offsets (its record and its marker).
const probeWindow = 64

// recoverCheckpoint fences earlier producers, commits a probe and returns
// the stream sequence of the last committed checkpoint (0 if none).
func (mr *Mirror) recoverCheckpoint(ctx context.Context, p kafka.TxProducer) (uint64, error) {
	probe := &kafka.Record{Topic: mr.cfg.CheckpointTopic, Key: []byte(keyProbe), Value: []byte(mr.cfg.Name)}
	if err := p.Transact(ctx, func(ctx context.Context, tx kafka.Tx) error { return tx.Produce(ctx, probe) }); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	for window := int64(probeWindow); ; window *= 2 {
		from := max(probe.Offset-window, 0)
		var last *Checkpoint
		err := kafka.ReadCommitted(ctx, mr.cfg.Kafka.Client, mr.cfg.CheckpointTopic, 0, from, probe.Offset, func(r *kafka.Record) {
			if string(r.Key) != keyCheckpoint {
				return
			}
			var cp Checkpoint
			if err := json.Unmarshal(r.Value, &cp); err != nil || cp.Stream != mr.cfg.Stream {
				return
			}
			last = &cp
		})
		if err != nil {
			return 0, err
		}
		if last != nil {
			if !last.Created.IsZero() && !last.Created.Equal(mr.created) {
				mr.log.Error("the stream was created again since the last checkpoint: mirroring it from its start",
					"checkpoint_stream_created", last.Created, "stream_created", mr.created, "checkpoint_seq", last.Seq)
				return 0, nil
			}
			return last.Seq, nil
		}
		if from == 0 {
			return 0, nil
		}
	}
}

// consumer recreates the durable consumer so that it delivers from seq
// start on.
func (mr *Mirror) consumer(ctx context.Context, start uint64) (jetstream.Consumer, error) {
	s, err := mr.js.Stream(ctx, mr.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("bridge: stream %s: %w", mr.cfg.Stream, err)
	}
	if err := s.DeleteConsumer(ctx, mr.cfg.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("bridge: delete consumer: %w", err)
	}
	info := s.CachedInfo()
	if first := info.State.FirstSeq; start < first && info.State.Msgs > 0 {
		mr.metrics.StreamGaps.Add(float64(first - start))
		mr.log.Error("events were removed from the stream before they were mirrored", "from", start, "to", first-1)
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       mr.cfg.Consumer,
		Description:   "the Kafka bridge; its ack floor trails the last transaction committed to Kafka",
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   start,
		AckPolicy:     jetstream.AckAllPolicy,
		// Messages stay unacknowledged while Kafka is down; redeliveries
		// are dropped by sequence, so the wait only bounds their number.
		AckWait:       10 * time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: max(65536, 8*mr.cfg.MaxBatch),
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: create consumer: %w", err)
	}
	return c, nil
}

// watchLag updates the lag gauges once a second: events in the stream after
// the checkpoint, and the age of the oldest of them.
func (mr *Mirror) watchLag(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !mr.active.Load() {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := mr.js.Stream(qctx, mr.cfg.Stream)
		if err != nil {
			cancel()
			continue
		}
		cp := mr.checkpoint.Load()
		last := s.CachedInfo().State.LastSeq
		lag := uint64(0)
		if last > cp {
			lag = last - cp
		}
		mr.metrics.LagEvents.Set(float64(lag))
		age := 0.0
		if lag > 0 {
			if m, err := s.GetMsg(qctx, cp+1); err == nil {
				age = time.Since(m.Time).Seconds()
			}
		}
		cancel()
		mr.metrics.LagSeconds.Set(age)
	}
}
