package password_test

import (
	"testing"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/password"
)

// FuzzParse feeds arbitrary strings to the PHC decoder: nothing panics,
// every refusal is errs.Invalid with one of the two reasons, and whatever
// is accepted is within the limits and is the one encoding of its value
// (String gives the input back), so a stored hash cannot be altered
// without changing what it decodes to. Seeds, among them the reference
// hashes and near misses of them, are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, c := range referenceHashes {
		f.Add(c.encoded)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := password.Parse(s)
		if err != nil {
			if !errs.Is(errs.Invalid, err) {
				t.Fatalf("Parse(%q): %v, want invalid", s, err)
			}
			if r := errs.ReasonOf(err); r != password.ReasonMalformed && r != password.ReasonTooCostly {
				t.Fatalf("Parse(%q): reason %q", s, r)
			}
			return
		}
		if got := d.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		p := d.Params
		if p.Memory > password.MaxMemory || p.Time > password.MaxTime || p.Threads > password.MaxThreads ||
			p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) ||
			int(p.SaltLen) != len(d.Salt) || int(p.KeyLen) != len(d.Key) ||
			len(d.Salt) < 8 || len(d.Salt) > password.MaxSaltLen || len(d.Key) < 16 || len(d.Key) > password.MaxKeyLen {
			t.Fatalf("Parse(%q) = %+v: outside the limits", s, d)
		}
	})
}
