package queue

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/internal/keyring"
	"github.com/ticketing/ticketing/services/admission"
)

// countingAdmission counts the key fetches.
type countingAdmission struct {
	*fakeAdmission
	fetches atomic.Int32
}

func (c *countingAdmission) JWKS(ctx context.Context) ([]byte, *keyring.PublicKeys, error) {
	c.fetches.Add(1)
	return c.fakeAdmission.JWKS(ctx)
}

// After the core rotates its key, a token of the new key is accepted at
// once (the gate fetches the keys again), and tokens naming unknown keys
// cost at most one fetch a second.
func TestGateRefreshesKeysForUnknownKey(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	adm := &countingAdmission{fakeAdmission: newFakeAdmission(t, func() time.Time { return now })}
	keys := NewKeys(adm, discardLog())
	if err := keys.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	spent, err := admission.NewMemorySpentStore(admission.MemorySpentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := admission.NewVerifier(keys, spent, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{Verifier: ver, Keys: keys}
	if err := adm.ring.Rotate(now); err != nil {
		t.Fatal(err)
	}
	tok, _, _, err := adm.Issue(ctx, "ev", "subject-1")
	if err != nil {
		t.Fatal(err)
	}
	before := adm.fetches.Load()
	if _, err := g.Redeem(ctx, tok, "ev", "subject-1", "hold-1", now); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := adm.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key fetches for the new key, want 1", n)
	}
	// A token of a key the core never had: refused, and within the second
	// no further fetch.
	_, forger := newTestRing(t, now)
	forged, _, err := forger.Issue("ev", "subject-1", now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		_, err := g.Redeem(ctx, forged, "ev", "subject-1", "hold-x", now.Add(time.Duration(i)*time.Millisecond))
		if errs.ReasonOf(err) != admission.ReasonUnknownKey {
			t.Fatalf("forged token: %v", err)
		}
	}
	if n := adm.fetches.Load() - before; n != 1 {
		t.Fatalf("%d key fetches after forged tokens within a second, want still 1", n)
	}
	if _, err := g.Redeem(ctx, forged, "ev", "subject-1", "hold-x", now.Add(2*time.Second)); errs.ReasonOf(err) != admission.ReasonUnknownKey {
		t.Fatalf("forged token: %v", err)
	}
	if n := adm.fetches.Load() - before; n != 2 {
		t.Fatalf("%d key fetches a second later, want 2", n)
	}
}

func newTestRing(t *testing.T, now time.Time) (*keyring.KeyRing, *admission.Signer) {
	t.Helper()
	ring, err := keyring.NewKeyRing(keyring.KeyRingConfig{}, now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := admission.NewSigner(ring, admission.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return ring, s
}
