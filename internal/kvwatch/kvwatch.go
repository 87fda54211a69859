// Package kvwatch follows a JetStream key-value bucket: its current entries,
// then every change, handed to the caller in order, for as long as the
// process runs. A follower that stops on its own would leave the caller's
// copy stale without a word, so Follow returns an error when the watch ends
// before its context does; the supervisor then fails the process.
package kvwatch

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow watches every key of kv and calls apply with each entry, puts and
// deletes alike (jetstream.KeyValueEntry.Operation tells them apart), and
// ready once the current entries are in (nil: nothing to do). It returns
// nil when ctx is done, and an error naming what when the watch fails to
// start or ends on its own.
func Follow(ctx context.Context, kv jetstream.KeyValue, what string, ready func(), apply func(jetstream.KeyValueEntry)) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%s: the watch ended", what)
			}
			if e == nil {
				if ready != nil {
					ready()
				}
				continue
			}
			apply(e)
		}
	}
}
