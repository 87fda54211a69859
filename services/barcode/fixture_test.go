package barcode_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

// t0 is on a code step boundary (a multiple of 15 s).
var t0 = time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC)

const event = "evt-2026-arena-0001"

// fixedKey is a key from a fixed seed, so that tokens are reproducible.
func fixedKey(event, id string, seed byte, notBefore, notAfter time.Time) barcode.Key {
	return barcode.Key{
		Event: event, ID: id, Private: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)),
		NotBefore: notBefore, NotAfter: notAfter,
	}
}

var master = bytes.Repeat([]byte{0x5a}, 32)

// claims returns the claims of a phone barcode valid around t0.
func claims() barcode.Claims {
	return barcode.Claims{
		TicketID: "t_0123456789abcdef0123456789abcdef", EventID: event,
		PlaceKind: barcode.Seat, Place: "a-12-7", Holder: "acct_42",
		ValidFrom: t0.Add(-2 * time.Hour), ValidUntil: t0.Add(4 * time.Hour),
		Device: barcode.DeviceBinding{1, 2, 3, 4, 5, 6, 7, 8},
	}
}

// fixture is an event's key and rotation secret, and a verifier for it
// whose clock is now.
type fixture struct {
	key barcode.Key
	now time.Time
	ver *barcode.Verifier
}

func newFixture() *fixture {
	f := &fixture{key: fixedKey(event, "k1", 7, t0.Add(-30*24*time.Hour), t0.Add(30*24*time.Hour)), now: t0}
	f.ver = &barcode.Verifier{
		Keys:           barcode.KeySet{Keys: []barcode.PublicKey{f.key.Public()}},
		Event:          event,
		Now:            func() time.Time { return f.now },
		RotationSecret: master,
	}
	return f
}

// sign returns the static token of c signed with key.
func sign(t testing.TB, key barcode.Key, c barcode.Claims) string {
	t.Helper()
	static, err := barcode.Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return static
}

// show returns what the phone holding the barcode c shows at at.
func show(t testing.TB, key barcode.Key, c barcode.Claims, at time.Time) string {
	t.Helper()
	static := sign(t, key, c)
	if c.Printed {
		return static
	}
	secret, err := barcode.DeviceSecret(master, c)
	if err != nil {
		t.Fatal(err)
	}
	text, err := barcode.Show(static, secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// checkRefusal fails t unless err is an *errs.Error with the reason and
// kind.
func checkRefusal(t testing.TB, err error, reason string, kind errs.Kind) {
	t.Helper()
	var e *errs.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want reason %s", err, reason)
	}
	if e.Reason != reason || e.Kind != kind {
		t.Fatalf("err = %v (reason %q, kind %v), want reason %q, kind %v", err, e.Reason, e.Kind, reason, kind)
	}
}
