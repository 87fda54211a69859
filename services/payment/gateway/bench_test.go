package gateway_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/payment"
)

// BenchmarkConfirm: confirms through the client against the simulator
// over loopback HTTP, each one journaled and fsynced before its answer;
// the intents are created before the clock starts. One op is one
// confirm; confirms/s is the throughput.
func BenchmarkConfirm(b *testing.B) {
	for _, par := range []int{1, 32, 128} {
		b.Run(fmt.Sprint("goroutines_per_cpu=", par), func(b *testing.B) {
			srv, base := startSim(b)
			c := newClient(b, base)
			ids := make([]string, b.N)
			for i := range ids {
				in, err := c.CreateIntent(b.Context(), payment.IntentRequest{Amount: 1000, Currency: "eur", IdempotencyKey: fmt.Sprint("order:", i)})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = in.ID
			}
			var next atomic.Int64
			b.SetParallelism(par)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1) - 1
					in, err := c.ConfirmIntent(b.Context(), ids[i], payment.ConfirmRequest{Card: visa, IdempotencyKey: fmt.Sprint("confirm:", i)})
					if err != nil || in.Status != payment.Succeeded {
						b.Errorf("%+v %v", in, err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "confirms/s")
			if got := len(srv.Records().Intents); got != b.N {
				b.Errorf("%d intents", got)
			}
		})
	}
}
