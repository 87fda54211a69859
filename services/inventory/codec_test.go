package inventory

import (
	"encoding/json"
	"fmt"
	"testing"
)

func bigPartition(tb testing.TB, n int) *Partition {
	l := Layout{Zones: []ZoneDef{{ID: "ga", GA: true, Capacity: 1 << 30}}, Seats: []SeatDef{{ID: "a-1", Zone: "std"}}}
	l.Zones = append(l.Zones, ZoneDef{ID: "std"})
	p, err := NewPartition("ev.0", l, DefaultLimits())
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		h, err := p.Hold(t0, HoldRequest{Zone: "ga", Quantity: 1, IdempotencyKey: fmt.Sprint("anon:key-", i), Fingerprint: "0123456789abcdef0123456789abcdef"},
			func() string { return fmt.Sprintf("%016d", i) })
		if err != nil {
			tb.Fatal(err)
		}
		switch i % 4 {
		case 1:
			p.Release(t0, h.HoldID)
		case 2:
			p.Confirm(t0, ConfirmRequest{HoldID: h.HoldID, OrderID: "o"})
		}
	}
	p.Hold(t0, HoldRequest{Seats: []string{"a-1"}, IdempotencyKey: "s", Fingerprint: "s"}, func() string { return "seat" })
	p.Hold(t0, HoldRequest{Seats: []string{"a-1"}, IdempotencyKey: "s2", Fingerprint: "s2"}, func() string { return "refused" })
	p.RecordEpoch(t0, "core-1", 7)
	return p
}

func TestBinarySnapshotRoundTrip(t *testing.T) {
	p := bigPartition(t, 1000)
	s := p.Snapshot()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	direct, n, err := p.MarshalSnapshotPaced(nil)
	if err != nil || string(direct) != string(b) || n != len(s.Holds)+len(s.Ended)+len(s.Keys) {
		t.Fatalf("the partition's own encoding differs from its snapshot's (%d entries, %v)", n, err)
	}
	var back Snapshot
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(s)
	jb, _ := json.Marshal(&back)
	if string(js) != string(jb) {
		t.Fatal("the binary round trip changed the snapshot")
	}
	restored, err := Restore(Layout{Zones: []ZoneDef{{ID: "ga", GA: true, Capacity: 1 << 30}, {ID: "std"}}, Seats: []SeatDef{{ID: "a-1", Zone: "std"}}}, DefaultLimits(), &back)
	if err != nil {
		t.Fatal(err)
	}
	assertSameState(t, p, restored)
	for _, bad := range [][]byte{nil, []byte("TKSNAP"), b[:len(b)/2], append(append([]byte{}, b...), 0)} {
		var x Snapshot
		if err := x.UnmarshalBinary(bad); err == nil {
			t.Fatalf("accepted a malformed snapshot of %d bytes", len(bad))
		}
	}
}

// FuzzSnapshotDecode: a corrupt snapshot is refused, never a panic or an
// unbounded allocation.
func FuzzSnapshotDecode(f *testing.F) {
	b, _ := bigPartition(f, 20).Snapshot().MarshalBinary()
	f.Add(b)
	f.Add([]byte("TKSNAP\x01"))
	f.Add([]byte("TKSNAP\x01\x00\x00\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Snapshot
		if err := s.UnmarshalBinary(in); err != nil {
			return
		}
		l := Layout{Zones: []ZoneDef{{ID: "ga", GA: true, Capacity: 1 << 30}, {ID: "std"}}, Seats: []SeatDef{{ID: "a-1", Zone: "std"}}}
		_, _ = Restore(l, DefaultLimits(), &s)
	})
}

func BenchmarkSnapshotEncode(b *testing.B) {
	p := bigPartition(b, 100_000)
	s := p.Snapshot()
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			out, _ := json.Marshal(s)
			b.SetBytes(int64(len(out)))
		}
	})
	b.Run("binary", func(b *testing.B) {
		for b.Loop() {
			out, _ := s.MarshalBinary()
			b.SetBytes(int64(len(out)))
		}
	})
	// What the owner's snapshotter does: encode straight from the records.
	b.Run("partition", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _, _ := p.MarshalSnapshotPaced(nil)
			b.SetBytes(int64(len(out)))
		}
	})
}
