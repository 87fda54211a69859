package owner

import (
	"encoding/json"
	"testing"

	"github.com/ticketing/ticketing/services/inventory"
)

// A log record's hand-written encoding is what encoding/json writes.
func TestRecordJSON(t *testing.T) {
	k := inventory.HashIdempotencyKey("anon:k")
	ds := []*inventory.Decision{
		{Type: inventory.HoldPlaced, At: 1764583200000000000, Hold: "ev.0.abc", Zone: "ga", Qty: 2, Expires: 1764583800000000000, Key: k, FP: "fp"},
		{Type: inventory.HoldPlaced, At: 1, Hold: "ev.0.abd", Seats: []string{"a-1-1", `q"uote`}, Holder: "u<1>"},
		{Type: inventory.HoldRejected, At: 2, Key: k, FP: "fp", Reason: "seats_unavailable", Msg: "taken é"},
		{Type: inventory.OwnerEpoch, At: 3, Owner: "core-2", Lease: 1 << 40},
	}
	for _, r := range []record{
		{Owner: "core-1", Epoch: 7, Gen: 1, D: ds},
		{Owner: "cöre\u2028", Epoch: 1 << 63, Gen: 0, D: ds[:1]},
		{Owner: "", D: nil},
		{Owner: "x", D: []*inventory.Decision{}},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON\n%s\nencoding/json\n%s", got, want)
		}
	}
}
