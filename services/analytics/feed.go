package analytics

import (
	"context"
	"log/slog"

	"github.com/ticketing/ticketing/internal/errs"
)

// Feed is how a consumer of a log of records (bridge/kafka.NewRunner on
// the topics the bridge writes) feeds a Store: partitions are Positions,
// a record is an Input with its event decoded when it is one the funnel
// counts, and each batch is one Apply.
type Feed struct {
	Store Store
	Log   *slog.Logger // default slog.Default()
}

// Partition names partition partition of topic.
func (Feed) Partition(topic string, partition int32) Position {
	return Position{Topic: topic, Partition: partition}
}

// Record decodes the record at offset of p. A record that is not a funnel
// event (another type; an undecodable body, which is logged) only moves
// the offset.
func (f Feed) Record(p Position, offset int64, value []byte) Input {
	in := Input{Pos: p, Offset: offset}
	e, err := Decode(value)
	switch {
	case err == nil:
		in.Event = &e
	case errs.Is(errs.NotFound, err):
	default:
		f.log().Warn("analytics: record skipped: not a valid funnel event", "topic", p.Topic, "partition", p.Partition, "offset", offset, "err", err)
	}
	return in
}

// Offsets are the store's next offsets.
func (f Feed) Offsets(ctx context.Context, ps []Position) (map[Position]int64, error) {
	return f.Store.Offsets(ctx, ps)
}

// Apply applies a batch.
func (f Feed) Apply(ctx context.Context, in []Input) error {
	n, err := f.Store.Apply(ctx, in)
	if err != nil {
		return err
	}
	f.log().Debug("analytics: batch applied", "records", len(in), "applied", n)
	return nil
}

func (f Feed) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}
