package inventory

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// FuzzHoldRequest feeds arbitrary request bodies, as an owner receives them
// from edges, to a partition: it must never panic, refuse with a client
// error kind, keep its invariants, and log only decisions that replay.
func FuzzHoldRequest(f *testing.F) {
	for _, s := range []string{
		`{"seats":["a-1-1","a-1-2"],"idempotency_key":"k","fingerprint":"f"}`,
		`{"zone":"floor","quantity":3,"ttl_seconds":60,"idempotency_key":"k","fingerprint":"f"}`,
		`{"zone":"floor","quantity":99999999999,"idempotency_key":"k"}`,
		`{"seats":["a-1-1","a-1-1"],"idempotency_key":"k"}`,
		`{"ttl_seconds":18446744104,"zone":"floor","quantity":1,"idempotency_key":"k"}`,
		`{"seats":[],"zone":"","quantity":0}`,
		`null`, `[]`, `{"seats":null}`,
	} {
		f.Add([]byte(s), []byte(`{"zone":"floor","quantity":2,"idempotency_key":"k2","fingerprint":"g"}`))
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p, err := NewPartition("ev.0", testLayout(), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		var log []*Decision
		now := t0
		for i, body := range [][]byte{a, b, a} {
			var r HoldRequest
			if json.Unmarshal(body, &r) != nil {
				continue
			}
			now = now.Add(time.Duration(i) * time.Minute)
			h, err := p.Hold(now, r, func() string { return fmt.Sprint("h", i) })
			if err != nil {
				switch errs.KindOf(err) {
				case errs.Invalid, errs.Conflict, errs.Mismatch, errs.InFlight:
				default:
					t.Fatalf("hold %q: error of kind %v: %v", body, errs.KindOf(err), err)
				}
			} else if h.HoldID == "" || h.Quantity < 1 || h.Quantity > DefaultLimits().MaxQuantity {
				t.Fatalf("hold %q accepted as %+v", body, h)
			}
			log = append(log, p.TakeDecisions()...)
			checkInvariants(t, p)
		}
		replayed, _ := NewPartition("ev.0", testLayout(), DefaultLimits())
		for _, d := range roundTrip(t, log) {
			if err := replayed.Apply(d); err != nil {
				t.Fatalf("logged decision does not replay: %v", err)
			}
		}
		assertSameState(t, p, replayed)
	})
}
