package audit

import (
	"context"
	"log/slog"
)

// Feed is how a consumer of a log of records (bridge/kafka.NewRunner on
// the topics the bridge writes) feeds a Store: a partition is a Chain,
// where it resumes is the chain's head offset plus one, and each batch is
// one Append.
type Feed struct {
	Store Store
	Log   *slog.Logger // default slog.Default()
}

// Partition is the chain of partition partition of topic.
func (Feed) Partition(topic string, partition int32) Chain {
	return Chain{Topic: topic, Partition: partition}
}

// Record is the record at offset of c.
func (Feed) Record(c Chain, offset int64, value []byte) Record {
	return Record{Topic: c.Topic, Partition: c.Partition, Offset: offset, Body: value}
}

// Offsets are the chains' head offsets plus one; an empty chain has none.
func (f Feed) Offsets(ctx context.Context, chains []Chain) (map[Chain]int64, error) {
	heads, err := f.Store.Heads(ctx, chains)
	if err != nil {
		return nil, err
	}
	out := make(map[Chain]int64, len(heads))
	for c, h := range heads {
		if n, ok := h.NextOffset(); ok {
			out[c] = n
		}
	}
	return out, nil
}

// Apply appends a batch.
func (f Feed) Apply(ctx context.Context, recs []Record) error {
	res, err := f.Store.Append(ctx, recs)
	if err != nil {
		return err
	}
	log := f.Log
	if log == nil {
		log = slog.Default()
	}
	if res.Duplicates > 0 {
		log.Warn("audit: records with an event id already in the log were not appended", "count", res.Duplicates)
	}
	log.Debug("audit: batch appended", "appended", res.Appended, "redelivered", res.Redelivered, "duplicates", res.Duplicates)
	return nil
}
