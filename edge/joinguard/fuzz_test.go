package joinguard_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ticketing/ticketing/edge/joinguard"
	"github.com/ticketing/ticketing/internal/errs"
)

// FuzzSolution feeds arbitrary Queue-PoW values to the solution decoder and
// to Check: ParseSolution splits only what it accepts, nothing panics, and
// no input is taken for a solution of a challenge the guard did not issue
// (the guard's base difficulty asks every join for one). Seeds, including
// a real solution issued under testConfig's secret, are in
// testdata/fuzz/FuzzSolution.
func FuzzSolution(f *testing.F) {
	cfg := testConfig()
	cfg.BaseDifficulty = 1
	g, err := joinguard.New(cfg, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("")
	f.Add(".")
	f.Add(strings.Repeat("A", joinguard.ChallengeLen) + ".0")
	f.Fuzz(func(t *testing.T, s string) {
		ch, nonce, err := joinguard.ParseSolution(s)
		if err == nil {
			if ch+"."+nonce != s || len(ch) != joinguard.ChallengeLen || nonce == "" || len(nonce) > joinguard.MaxNonceLen {
				t.Fatalf("ParseSolution(%q) = %q, %q", s, ch, nonce)
			}
		}
		err = g.Check(context.Background(), "203.0.113.7", "fuzz-session", "fuzz-event", s, t0)
		if err == nil {
			t.Fatalf("Check accepted %q, a solution of no challenge of this guard", s)
		}
		if !errs.Is(errs.Forbidden, err) {
			t.Fatalf("Check(%q): %v, want forbidden", s, err)
		}
	})
}
