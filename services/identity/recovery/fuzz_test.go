package recovery_test

import (
	"strings"
	"testing"

	"github.com/ticketing/ticketing/services/identity/recovery"
)

// FuzzNormalize feeds arbitrary input to Normalize and Match: what
// Normalize accepts is Length characters of the alphabet, normalizing it
// again changes nothing, and its hash matches the input it came from;
// what it refuses matches nothing, not even the hash of a real code.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"7kq2m-x9fd0-hc4tw", "7KQ2M X9FDO HC4TW", "oOiIl-00111-abcde", "", "u", "7kq2m-x9fd0-hc4t\u00fc"} {
		f.Add(s)
	}
	stored, err := recovery.Hash("7kq2m-x9fd0-hc4tw")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := recovery.Normalize(s)
		if !ok {
			if c != "" {
				t.Fatalf("Normalize(%q) = %q, false", s, c)
			}
			if j, ok := recovery.Match(s, []string{stored}); ok || j != -1 {
				t.Fatalf("Match(%q) = %d, %v for input Normalize refuses", s, j, ok)
			}
			return
		}
		if len(c) != recovery.Length || strings.Trim(c, recovery.Alphabet) != "" {
			t.Fatalf("Normalize(%q) = %q", s, c)
		}
		if again, ok := recovery.Normalize(c); !ok || again != c {
			t.Fatalf("Normalize(%q) = %q, %v; not idempotent", c, again, ok)
		}
		h, err := recovery.Hash(c)
		if err != nil {
			t.Fatal(err)
		}
		want := -1
		if c == "7kq2mx9fd0hc4tw" {
			want = 0
		}
		if j, ok := recovery.Match(s, []string{stored, h}); !ok || (j != 1 && j != want) {
			t.Fatalf("Match(%q) = %d, %v", s, j, ok)
		}
	})
}
