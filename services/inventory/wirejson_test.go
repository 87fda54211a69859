package inventory

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func randomString(r *rand.Rand) string {
	return []string{"", "arena", "s-101-A-1", `q"uote`, "<&>", "é", "\u2028", "\xff", "anon:0123-abcd"}[r.IntN(9)]
}

func randomStrings(r *rand.Rand) []string {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	var ss []string
	for range 1 + r.IntN(3) {
		ss = append(ss, randomString(r))
	}
	return ss
}

func randomTime(r *rand.Rand) time.Time {
	t := time.Unix(r.Int64N(4_000_000_000), r.Int64N(1e9))
	switch r.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return t.In(time.FixedZone("", 3600*(r.IntN(25)-12)))
	}
	return t.UTC()
}

// Hold, HoldRequest and Decision encoders write exactly what encoding/json writes.
func TestWireJSONEncoders(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 5000 {
		h := &Hold{HoldID: randomString(r), Seats: randomStrings(r), Zone: randomString(r), Quantity: r.IntN(5) - 1,
			Holder: randomString(r), Status: Status(r.IntN(8)), ExpiresAt: randomTime(r), OrderID: randomString(r),
			HoldToken: randomString(r)}
		want, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.AppendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("hold %d: AppendJSON\n%s\nencoding/json\n%s\n(%v)", i, got, want, err)
		}

		req := &HoldRequest{Seats: randomStrings(r), Zone: randomString(r), Quantity: r.IntN(3) - 1, TTLSeconds: r.IntN(2) * 60,
			Holder: randomString(r), IdempotencyKey: randomString(r), Fingerprint: randomString(r)}
		if want, _ := json.Marshal(req); !bytes.Equal(req.AppendJSON(nil), want) {
			t.Fatalf("request %d: AppendJSON\n%s\nencoding/json\n%s", i, req.AppendJSON(nil), want)
		}

		d := &Decision{Type: DecisionType(randomString(r)), At: r.Int64N(1 << 62), Hold: randomString(r), Seats: randomStrings(r),
			Zone: randomString(r), Qty: r.IntN(3), Holder: randomString(r), Expires: r.Int64N(3) * 1e18, FP: randomString(r),
			Reason: randomString(r), Msg: randomString(r), Order: randomString(r), Owner: randomString(r), Lease: uint64(r.IntN(2)) << 63}
		if r.IntN(2) == 0 {
			k := HashIdempotencyKey(randomString(r))
			d.Key = k
		}
		want, err = json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("decision %d: AppendJSON\n%s\nencoding/json\n%s", i, got, want)
		}
	}
	if got := (*Decision)(nil).AppendJSON(nil); string(got) != "null" {
		t.Fatalf("nil decision: %s", got)
	}
}

// checkDecoder fails unless decode agrees with encoding/json on b: the same
// error or none, the same value; and, when the plain path took b,
// encoding/json must accept it too.
func checkDecoder[T any](t *testing.T, b []byte, decode func(*T, []byte) error, plain func(*T, []byte) bool) {
	var got, want, fast T
	errGot := decode(&got, b)
	errWant := json.Unmarshal(b, &want)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("%q: error %v, encoding/json %v", b, errGot, errWant)
	}
	if errWant == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %+v, encoding/json %+v", b, got, want)
	}
	if plain(&fast, b) {
		if errWant != nil || !reflect.DeepEqual(fast, want) {
			t.Fatalf("%q: plain path took it as %+v; encoding/json %+v, %v", b, fast, want, errWant)
		}
	}
}

func FuzzHoldRequestDecode(f *testing.F) {
	for _, s := range []string{
		`{"zone":"ga","quantity":1,"idempotency_key":"anon:00000000-0000-0000-0000-000000000000","fingerprint":"0123456789abcdef"}`,
		`{"seats":["a-1-1","a-1-2"],"ttl_seconds":60,"holder":"u1","idempotency_key":"k","fingerprint":"f"}`,
		` { "seats" : [ ] , "quantity" : -0 } `, `{"seats":null}`, `{"zone":"a","zone":"b"}`, `{"Zone":"x"}`,
		`{"quantity":1.0}`, `{"quantity":1e3}`, `{"quantity":99999999999999999999}`, `{"zone":"\u0041"}`, `{"zone":null}`,
		`{"extra":1}`, `null`, `[]`, `{}`, `{"zone":"x"} x`, `{"zone":"x",}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, (*HoldRequest).DecodeJSON, (*HoldRequest).decodePlain)
	})
}

func FuzzHoldDecode(f *testing.F) {
	h := Hold{HoldID: "ev.0.0123456789abcdef", Zone: "ga", Quantity: 1, Status: Held,
		ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC), HoldToken: "tok"}
	plain, _ := h.AppendJSON(nil)
	h.Seats, h.Zone, h.OrderID = []string{"a-1-1"}, "", "o1"
	seats, _ := h.AppendJSON(nil)
	for _, s := range []string{string(plain), string(seats),
		`{"status":"nonsense"}`, `{"expires_at":"2026-12-01T10:00:00+01:00"}`, `{"expires_at":"2026-13-01T10:00:00Z"}`,
		`{"expires_at":"yesterday"}`, `{"status":null}`, `{"seats":[1]}`, `{"hold_id":"a","hold_id":"a"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecoder(t, b, (*Hold).DecodeJSON, (*Hold).decodePlain)
	})
}

// The plain path takes what the encoders write.
func TestPlainPathTakesOurOwnJSON(t *testing.T) {
	h := Hold{HoldID: "ev.0.0123456789abcdef", Zone: "ga", Quantity: 2, Status: Held,
		ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC), HoldToken: "tok"}
	for _, seats := range [][]string{nil, {"a-1-1", "a-1-2"}} {
		h.Seats = seats
		b, _ := h.AppendJSON(nil)
		var back Hold
		if !back.decodePlain(b) || !reflect.DeepEqual(back, h) {
			t.Fatalf("%s: plain path %+v", b, back)
		}
	}
	req := HoldRequest{Seats: []string{"a-1-1"}, TTLSeconds: 60, IdempotencyKey: "anon:k", Fingerprint: "f"}
	b, _ := json.Marshal(req)
	var back HoldRequest
	if !back.decodePlain(b) || !reflect.DeepEqual(back, req) {
		t.Fatalf("%s: plain path %+v", b, back)
	}
}

func BenchmarkHoldJSON(b *testing.B) {
	h := Hold{HoldID: "ev.0.0123456789abcdef", Zone: "ga", Quantity: 1, Status: Held,
		ExpiresAt: time.Date(2026, 12, 1, 10, 0, 0, 5, time.UTC), HoldToken: "0123456789abcdef0123456789abcdef0123456789a"}
	enc, _ := h.AppendJSON(nil)
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(&h)
			var back Hold
			_ = json.Unmarshal(out, &back)
		}
	})
	b.Run("wirejson", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, len(enc))
		for b.Loop() {
			out, _ := h.AppendJSON(buf[:0])
			var back Hold
			_ = back.DecodeJSON(out)
		}
	})
}
