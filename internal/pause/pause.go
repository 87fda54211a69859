// Package pause paces background loops: retries, polls and schedules wait
// a while or until their context ends. It is never a way to wait for a
// condition.
package pause

import (
	"context"
	"time"
)

// For waits d, or until ctx is done; it reports whether the whole d passed
// (false: ctx is done).
func For(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
