// Package kafka is the Kafka client side of the bridge and its consumers:
// a producer and consumer-group consumers on franz-go with the settings
// they need, the runner that feeds a consumer's store exactly once, an
// admin helper that creates the topics, and an embedded Kafka-protocol
// broker for `ticketing dev`.
//
// # Producer
//
// [NewProducer] returns a [Producer]: an idempotent producer (the broker
// drops a batch the client resends after a lost reply), acks from all
// in-sync replicas, a short linger so concurrent records share batches,
// records partitioned by key (murmur2, as the Java client does) so that
// the events of one aggregate stay in order, and headers carrying the
// CloudEvents attributes. Idempotence holds within one producer session: a
// record the application produces again after an error, or after a restart,
// is a new record to the broker. The bridge therefore still dedupes by event
// id (the ce-id header) when it resumes.
//
// [NewTxProducer] returns a [TxProducer]: all the records of a transaction
// become visible to read_committed consumers together, or none do, and a
// second producer with the same transactional id fences the first.
//
// # Consumer
//
// [NewConsumer] returns a [Consumer] of a consumer group that commits offsets
// only after the handler has processed a batch (at least once): a restarted
// member continues after the last committed record, nothing skipped. Offsets
// are committed before a rebalance is allowed to move partitions away, so a
// clean hand-over redelivers nothing.
//
// [NewOwnedConsumer] returns a consumer whose offsets live in the
// application's store, written in the same transaction as the records'
// effects; [NewRunner] runs one for a [Feed] (the store in its own terms:
// records, stored offsets, an atomic apply), retrying failed batches from
// the stored offsets. The reporting, analytics and audit consumers are
// Runners over their services' Feeds.
//
// # Embedded broker
//
// [StartEmbedded] runs franz-go's kfake, an in-process implementation of the
// Kafka protocol, on loopback. With a data directory (kfake's DataDir
// option) it keeps topics, records, committed group offsets and producer
// state there and reloads them at the next start; without one everything is
// in memory and a restart loses it. kfake writes each record batch and each
// offset commit to the directory as it happens, so a process that dies
// without Shutdown loses nothing acknowledged (TestEmbeddedSurvivesProcessCrash);
// it fsyncs only with SyncWrites, on a segment roll and at Shutdown, like a
// Kafka broker with default flush settings, so a machine crash or power loss
// may lose the newest records. The bridge must tolerate that by mirroring
// again from JetStream what Kafka lost.
//
// kfake is for development and tests, not production: one process, no
// replication, no quotas enforced.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors returned by this package, for errors.Is.
var (
	// ErrClosed: the producer or consumer was closed.
	ErrClosed = errors.New("kafka: closed")
	// ErrFenced: another transactional producer with the same transactional
	// id started; this one can never produce again and should be closed.
	ErrFenced = errors.New("kafka: producer fenced by a newer instance with the same transactional id")
)

// Header is a record header (franz-go's, so that records pass to the client
// without copying their headers). The bridge writes the CloudEvents
// attributes (ce_id, ce_type, …) as headers.
type Header = kgo.RecordHeader

// Record is one Kafka record.
type Record struct {
	// Topic is required when producing.
	Topic string
	// Key chooses the partition: records with the same key go to the same
	// partition and keep their order. The bridge uses the aggregate id.
	// A nil key spreads records over partitions without order.
	Key     []byte
	Value   []byte
	Headers []Header

	// Set by the producer on success and by the consumer.
	Partition int32
	Offset    int64
	// Timestamp is set by the producer to the time of producing when zero.
	Timestamp time.Time
}

// Header returns the value of the first header named key.
func (r *Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

func (r *Record) toKgo() *kgo.Record {
	kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	kr.Headers = r.Headers
	return kr
}

func fromKgo(kr *kgo.Record) *Record {
	r := &Record{
		Topic: kr.Topic, Key: kr.Key, Value: kr.Value,
		Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp,
	}
	r.Headers = kr.Headers
	return r
}

// wrap turns franz-go's errors into this package's sentinels where one
// applies, keeping the original in the chain.
func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrClosed), errors.Is(err, ErrFenced):
		return fmt.Errorf("kafka: %s: %w", op, err)
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("kafka: %s: %w: %w", op, ErrClosed, err)
	}
	return fmt.Errorf("kafka: %s: %w", op, err)
}

// kgoLogger adapts slog to franz-go's client logger.
type kgoLogger struct {
	log   *slog.Logger
	level kgo.LogLevel
}

func newKgoLogger(log *slog.Logger) kgo.Logger {
	if log == nil {
		return nil
	}
	lv := kgo.LogLevelWarn
	if log.Enabled(context.Background(), slog.LevelDebug) {
		lv = kgo.LogLevelDebug
	} else if log.Enabled(context.Background(), slog.LevelInfo) {
		lv = kgo.LogLevelInfo
	}
	return &kgoLogger{log: log.With("component", "kafka"), level: lv}
}

func (l *kgoLogger) Level() kgo.LogLevel { return l.level }

func (l *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var sl slog.Level
	switch level {
	case kgo.LogLevelError:
		sl = slog.LevelError
	case kgo.LogLevelWarn:
		sl = slog.LevelWarn
	case kgo.LogLevelInfo:
		sl = slog.LevelInfo
	default:
		sl = slog.LevelDebug
	}
	l.log.Log(context.Background(), sl, msg, keyvals...)
}
