package joinguard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ticketing/ticketing/edge/joinguard"
)

// The guard remembers, per address, that its joins were found suspect or
// were limited, for a while: sign-ins from the address are judged with it.
func TestVerdict(t *testing.T) {
	g, c := newGuard(t, testConfig())
	ctx := context.Background()
	if v := g.Verdict("10.1.0.1", c.Now()); v != "" {
		t.Fatalf("verdict before any join: %q", v)
	}
	// Over the soft limit (3 a minute from one address): suspect.
	for i := range 4 {
		_ = g.Check(ctx, "10.1.0.1", fmt.Sprintf("s%d", i), "ev", "", c.Now())
	}
	if v := g.Verdict("10.1.0.1", c.Now()); v != joinguard.VerdictSuspect {
		t.Fatalf("verdict %q, want suspect", v)
	}
	// Over the hard limit (20): limited, and it stays limited.
	for i := range 30 {
		_ = g.Check(ctx, "10.1.0.1", fmt.Sprintf("t%d", i), "ev", "", c.Now())
	}
	if v := g.Verdict("10.1.0.1", c.Now()); v != joinguard.VerdictLimited {
		t.Fatalf("verdict %q, want limited", v)
	}
	if v := g.Verdict("10.1.0.2", c.Now()); v != "" {
		t.Fatalf("another address has verdict %q", v)
	}
	// Forgotten after a while.
	c.Advance(11 * time.Minute)
	if v := g.Verdict("10.1.0.1", c.Now()); v != "" {
		t.Fatalf("verdict %q after 11 minutes", v)
	}
}
