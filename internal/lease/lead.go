package lease

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/internal/pause"
)

// Lead runs work while holder holds the lease named key, for as long as
// ctx lasts: it takes the lease whenever it is free, renews it every third
// of ttl, and cancels work's context when a renewal fails to keep it
// valid (lost, or not renewed before ValidUntil); then it releases the
// lease and competes for it again. work should return when its context
// ends. Work that must never overlap another holder's also needs a fence
// (the epoch) in what it writes; work that is idempotent (a saga's steps)
// needs none.
func Lead(ctx context.Context, kv jetstream.KeyValue, key, holder string, ttl time.Duration, log *slog.Logger, work func(ctx context.Context, l *Lease)) {
	for ctx.Err() == nil {
		l, err := Acquire(ctx, kv, key, holder, ttl)
		var wait time.Duration
		switch {
		case err == nil:
			log.Info("lease taken", "lease", key, "epoch", l.Epoch())
			hold(ctx, l, ttl, log, work)
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = l.Release(rctx)
			cancel()
			wait = 100 * time.Millisecond
		case errors.Is(err, ErrHeld):
			wait = ttl/4 + time.Duration(rand.Int64N(int64(ttl/6)+1))
		default:
			if ctx.Err() == nil {
				log.Warn("lease acquisition failed", "lease", key, "err", err)
			}
			wait = time.Second
		}
		if !pause.For(ctx, wait) {
			return
		}
	}
}

// hold runs work under l until ctx ends or l cannot be kept.
func hold(ctx context.Context, l *Lease, ttl time.Duration, log *slog.Logger, work func(context.Context, *Lease)) {
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx, l)
	}()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			stop()
			return
		case <-ctx.Done():
			stop()
			<-done
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, ttl/3)
		err := l.Renew(rctx)
		cancel()
		if err != nil && (errors.Is(err, ErrLost) || !time.Now().Before(l.ValidUntil())) {
			log.Warn("lease lost; stopping its work", "lease", l.Key(), "err", err)
			stop()
			<-done
			return
		}
	}
}
