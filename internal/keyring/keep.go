package keyring

import (
	"context"
	"log/slog"
	"time"
)

// Keep syncs ring with store every period until ctx ends: it rotates the
// signing key when due, or takes the rotation another node made (Sync).
// A failed sync is logged and the ring signs on with the keys it holds;
// name says whose keys they are in the logs ("admission", "identity").
func Keep(ctx context.Context, store KeyStore, ring *KeyRing, every time.Duration, now func() time.Time, log *slog.Logger, name string) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rotated, err := Sync(sctx, store, ring, now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn(name+" key sync failed; signing with the keys held", "err", err)
		case rotated:
			log.Info(name+" signing key rotated", "kid", ring.ActiveKID())
		}
	}
}
