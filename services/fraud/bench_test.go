package fraud_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ticketing/ticketing/services/fraud"
	"github.com/ticketing/ticketing/services/fraud/memory"
)

// BenchmarkDecide is the sign-in decision path on the memory counters:
// hashing the signals into keys, one Do of eleven ops, the rules, and the
// event (to a publisher that drops it), over 4096 accounts, addresses and
// devices.
func BenchmarkDecide(b *testing.B) {
	counters, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := fraud.New(fraud.Config{HashKey: []byte("bench")}, counters, fraud.Discard{})
	if err != nil {
		b.Fatal(err)
	}
	signals := make([]fraud.Signals, 4096)
	for i := range signals {
		signals[i] = fraud.Signals{
			Action: fraud.ActionSignIn, AccountID: fmt.Sprintf("acct-%d", i), AccountAge: 100 * 24 * time.Hour,
			Address:   netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}),
			Device:    fmt.Sprintf("device-%032d", i),
			JoinGuard: fraud.JoinGuardPassed,
		}
	}
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := e.Decide(ctx, signals[i&4095]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := e.Decide(ctx, signals[i&4095]); err != nil {
					b.Error(err)
					return
				}
				i += 7
			}
		})
	})
}

// BenchmarkRecordFailure is the failure hook on the memory counters.
func BenchmarkRecordFailure(b *testing.B) {
	counters, err := memory.New(memory.Config{})
	if err != nil {
		b.Fatal(err)
	}
	e, err := fraud.New(fraud.Config{}, counters, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := fraud.Signals{AccountID: "acct", Address: netip.MustParseAddr("198.51.100.7"), Device: "device"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.RecordFailure(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}
