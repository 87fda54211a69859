package flags_test

import (
	"encoding/json"
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/flags"
)

// FuzzDecode: a definition from outside either decodes into one that
// validates, evaluates without panicking and survives a round trip through
// its JSON unchanged in behaviour, or is refused as invalid.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(salesFlag))
	f.Add([]byte(`{"key":"a","enabled":true,"variants":{"on":true,"off":false},"default_variant":"off","rollout":[{"variant":"on","weight":10},{"variant":"off","weight":90}]}`))
	f.Add([]byte(`{"key":"a","variants":{"x":{"n":1}},"default_variant":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := flags.Decode(b)
		if err != nil {
			if !errs.Is(errs.Invalid, err) {
				t.Fatalf("a refusal that is not invalid: %v", err)
			}
			return
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("decoded but does not validate: %v", err)
		}
		again, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := flags.Decode(again)
		if err != nil {
			t.Fatalf("its own JSON is refused: %v\n%s", err, again)
		}
		for _, c := range []flags.Context{{}, {TargetingKey: "acct-1", Event: "e", Organizer: "o", Region: "r", Channel: "web"}} {
			r1, err1 := d.Evaluate(c)
			r2, err2 := d2.Evaluate(c)
			if r1.Variant != r2.Variant || r1.Reason != r2.Reason || (err1 == nil) != (err2 == nil) {
				t.Fatalf("round trip changed the answer: %+v/%v vs %+v/%v", r1, err1, r2, err2)
			}
		}
	})
}
