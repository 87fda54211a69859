package kafka

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ticketing/ticketing/internal/errs"
)

// ReadCommitted reads the committed records of one partition from offset
// from (or the log start, if that is later) up to and including offset
// through, in offset order, and hands each to fn. Records of aborted or open
// transactions are never seen. The record at through must be a committed
// record the caller knows of (for example one it just wrote in a committed
// transaction): reading stops when it arrives, which is what makes the read
// exact, since the partition's last offsets may be transaction markers that
// no consumer ever sees. ReadCommitted returns ctx's error when ctx ends first.
func ReadCommitted(ctx context.Context, c ClientConfig, topic string, partition int32, from, through int64, fn func(*Record)) error {
	c.Defaults()
	if err := c.Validate(); err != nil {
		return err
	}
	if from > through {
		return errs.Errorf("kafka.read_committed", errs.Invalid, "from %d is after through %d", from, through)
	}
	cl, err := kgo.NewClient(append(c.opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(max(from, 0))}}),
		// An offset before the log start (deleted by retention) starts at
		// the log start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return wrap("read committed", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return wrap("read committed "+topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			return wrap("read committed "+topic, ferr)
		}
		done := false
		fs.EachRecord(func(kr *kgo.Record) {
			if done || kr.Offset < from {
				return
			}
			if kr.Offset > through {
				done = true
				return
			}
			fn(fromKgo(kr))
			done = kr.Offset == through
		})
		if done {
			return nil
		}
	}
}
