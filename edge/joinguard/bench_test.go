package joinguard_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/edge/ratelimit"
	"github.com/ticketing/ticketing/edge/ratelimit/memory"
)

// BenchmarkCheck measures a join decision on the in-process limiter: the
// common case (no work asked: three limiter calls, two hard, two soft
// counting as one each) and a join that brings a solved challenge (MAC,
// one SHA-256 and the spent set on top). Run with
//
//	go test -run XXX -bench Check ./edge/joinguard
func BenchmarkCheck(b *testing.B) {
	big := ratelimit.PerSecond(1_000_000, 1_000_000)
	cfg := testConfig()
	cfg.IPLimit, cfg.SessionLimit, cfg.SuspectIPLimit, cfg.SuspectSessionLimit = big, big, big, big
	ctx := context.Background()
	newG := func(b *testing.B, cfg joinguard.Config) *joinguard.Guard {
		lim, err := memory.New(memory.Config{})
		if err != nil {
			b.Fatal(err)
		}
		g, err := joinguard.New(cfg, lim)
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	b.Run("no-work", func(b *testing.B) {
		g := newG(b, cfg)
		ips := make([]string, 1024)
		for i := range ips {
			ips[i] = "10.1." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := g.Check(ctx, ips[i%len(ips)], "session-"+ips[i%len(ips)], "ev", "", t0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("solved", func(b *testing.B) {
		c := cfg
		c.BaseDifficulty, c.SuspectDifficulty = 1, 1
		g := newG(b, c)
		// Solutions are single use: make a pool of them first, and a new
		// pool whenever it runs out (outside the timer).
		var pool []string
		fill := func() {
			pool = pool[:0]
			for range 4096 {
				ch, d, err := g.Challenge(ctx, "10.2.0.1", "s", "ev", t0)
				if err != nil {
					b.Fatal(err)
				}
				pool = append(pool, joinguard.Solve(ch, d))
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			if len(pool) == 0 {
				b.StopTimer()
				fill()
				b.StartTimer()
			}
			sol := pool[len(pool)-1]
			pool = pool[:len(pool)-1]
			if err := g.Check(ctx, "10.2.0.1", "s", "ev", sol, t0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
