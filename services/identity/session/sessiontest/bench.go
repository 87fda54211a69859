package sessiontest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/identity"
	"github.com/ticketing/ticketing/services/identity/session"
)

// BenchmarkRotate measures Manager.Refresh on store, each call a rotation
// (a read and a compare-and-set write): "serial" rotates one session in
// turn, "parallel" rotates one session per goroutine
// (b.RunParallel; scale with -cpu). Both report rotations/s.
func BenchmarkRotate(b *testing.B, store session.Store) {
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		_, tok, err := m.Start(ctx, identity.NewID(), client, session.Seen{})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			_, tok, err = m.Refresh(ctx, client, tok, session.Seen{})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			_, tok, err := m.Start(ctx, identity.NewID(), client, session.Seen{})
			if err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				_, tok, err = m.Refresh(ctx, client, tok, session.Seen{})
				if err != nil {
					b.Error(err)
					return
				}
				n.Add(1)
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "rotations/s")
	})
}
