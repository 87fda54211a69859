package queue

import (
	"fmt"
	"strconv"
	"testing"
)

// BenchmarkJoin measures joins of new sessions into one queue.
func BenchmarkJoin(b *testing.B) {
	q := newTestQueue(b, func(c *Config) { c.MaxTickets = max(b.N, 1) })
	sessions := make([]string, b.N)
	for i := range sessions {
		sessions[i] = "session-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := q.Join(sessions[i], onSale); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatus measures the status lookup behind every pushed update,
// in a queue of a million.
func BenchmarkStatus(b *testing.B) {
	const n = 1_000_000
	q := newTestQueue(b, func(c *Config) { c.Capacity = n })
	ids := make([]TicketID, n)
	for i := range ids {
		s, err := q.Join("session-"+strconv.Itoa(i), onSale)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = s.Ticket
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := q.Status(ids[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdmit measures admitting 100 at a time from a queue of 100,000
// (put back to all waiting, off the clock, when it runs dry).
func BenchmarkAdmit(b *testing.B) {
	const batch, n = 100, 100_000
	q := newTestQueue(b, func(c *Config) { c.Capacity = n })
	for i := range n {
		if _, err := q.Join("session-"+strconv.Itoa(i), onSale); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if q.Stats().Waiting < batch {
			b.StopTimer()
			q.mu.Lock()
			q.head = 0 // everyone waits again
			q.mu.Unlock()
			b.StartTimer()
		}
		if got, err := q.Admit(batch, onSale); err != nil || len(got) != batch {
			b.Fatal(len(got), err)
		}
	}
}

// BenchmarkDraw measures drawing a pre-queue of 100,000.
func BenchmarkDraw(b *testing.B) {
	tickets := testTickets(100_000)
	seed := fixedSeed("bench", 0)
	b.ResetTimer()
	for range b.N {
		Draw(seed, tickets)
	}
}

// BenchmarkDecide measures one controller decision over 16 edges.
func BenchmarkDecide(b *testing.B) {
	in := Inputs{SeatsLeft: 50_000, ExpiringHolds: 300, TicketsPerShopper: 2.3, ActiveShoppers: 800, TargetShoppers: 2000}
	for i := range 16 {
		in.Edges = append(in.Edges, EdgeQueue{Edge: fmt.Sprint("edge-", i), Waiting: 10_000 + 997*i})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Decide(ControllerConfig{}, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemoryPerUser reports the live heap per joined user
// (runtime.MemStats.HeapAlloc after GC, before and after the joins) for a
// queue grown join by join and one preallocated with Config.Capacity.
func BenchmarkMemoryPerUser(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, prealloc := range []bool{false, true} {
			b.Run(fmt.Sprintf("users=%d/prealloc=%v", n, prealloc), func(b *testing.B) {
				var per float64
				for range b.N {
					capacity := 0
					if prealloc {
						capacity = n
					}
					per = heapPerUser(b, n, capacity)
				}
				b.ReportMetric(per, "bytes/user")
				b.ReportMetric(float64(b.Elapsed())/float64(b.N*n), "ns/join")
			})
		}
	}
}
