package reporting

import (
	"context"
	"log/slog"
)

// Feed is how a consumer of a log of records (bridge/kafka.NewRunner on
// the inventory topic) feeds a Store: partitions are Partitions, records
// are Records, and each batch is one Apply, whose outcome it logs.
type Feed struct {
	Store Store
	Log   *slog.Logger // default slog.Default()
}

// Partition names partition partition of topic.
func (Feed) Partition(topic string, partition int32) Partition {
	return Partition{Topic: topic, Partition: partition}
}

// Record is the record at offset of p.
func (Feed) Record(p Partition, offset int64, value []byte) Record {
	return Record{Topic: p.Topic, Partition: p.Partition, Offset: offset, Value: value}
}

// Offsets are the store's cursors.
func (f Feed) Offsets(ctx context.Context, ps []Partition) (map[Partition]int64, error) {
	return f.Store.Offsets(ctx, ps)
}

// Apply applies a batch; undecodable records are skipped (their offsets
// stored) and logged.
func (f Feed) Apply(ctx context.Context, recs []Record) error {
	a, err := f.Store.Apply(ctx, recs)
	if err != nil {
		return err
	}
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	for _, p := range a.Invalid {
		log.Warn("reporting: skipped an undecodable record", "topic", p.Partition.Topic, "partition", p.Partition.Partition, "offset", p.Offset, "err", p.Err)
	}
	if a.Duplicates > 0 || a.Skipped > 0 {
		log.Info("reporting: records not applied again", "duplicate_event_ids", a.Duplicates, "below_stored_offset", a.Skipped)
	}
	return nil
}
