package fraud_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/fraud"
)

// FuzzParseAddress feeds the address parser what a client or a proxy
// header could send: it never panics, refuses with errs.Invalid, and what
// it accepts is one canonical address (no zone, IPv4 not mapped) that
// parses back to itself and lies in its network.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "[2001:db8::1]:443", "::ffff:10.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := fraud.ParseAddress(s)
		if err != nil {
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid {
				t.Fatalf("ParseAddress(%q): %v, want an *errs.Error of kind %v", s, err, errs.Invalid)
			}
			return
		}
		if len(s) > fraud.MaxAddressLen || !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddress(%q) accepted %v", s, a)
		}
		if b, err := fraud.ParseAddress(a.String()); err != nil || b != a {
			t.Fatalf("ParseAddress(%q) = %v, which parses back as %v, %v", s, a, b, err)
		}
		if n := fraud.Network(a, 24, 64); !n.Contains(a) || n.Bits() != map[bool]int{true: 24, false: 64}[a.Is4()] {
			t.Fatalf("Network(%v) = %v", a, n)
		}
	})
}

// FuzzParseDevice: the fingerprint check accepts only bounded tokens of
// its alphabet, unchanged.
func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"abc", "Zm9v+/==", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := fraud.ParseDevice(s)
		if err != nil {
			if !errs.Is(errs.Invalid, err) || fraud.ValidDevice(s) {
				t.Fatalf("ParseDevice(%q): %v", s, err)
			}
			return
		}
		if got != s || len(s) > fraud.MaxDeviceLen {
			t.Fatalf("ParseDevice(%q) = %q", s, got)
		}
		if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/=") != "" {
			t.Fatalf("ParseDevice accepted %q", s)
		}
	})
}

// FuzzDecide runs the whole decision on arbitrary signals: it never
// panics, fails only with errs.Invalid, and every decision is well formed
// and published without the address or the device in its event.
func FuzzDecide(f *testing.F) {
	f.Add("signin", "alice", "192.0.2.1:443", "device-0123456789abcdef", "suspect", 3, int64(3600), true, "pow", uint8(2))
	f.Add("purchase", "", "", "", "", 0, int64(0), false, "", uint8(0))
	h := newHarness(f, testConfig())
	f.Fuzz(func(t *testing.T, action, account, address, device, joinGuard string, failed int, ageSeconds int64, second bool, passed string, history uint8) {
		h.t = t
		a, _ := fraud.ParseAddress(address)
		s := fraud.Signals{
			Action: fraud.Action(action), AccountID: account, AccountAge: time.Duration(ageSeconds) * time.Second,
			Address: a, Device: device, FailedSignIns: failed, JoinGuard: joinGuard, SecondFactor: second,
			Passed: fraud.Challenge(passed),
		}
		for range history % 16 {
			if err := h.e.RecordFailure(context.Background(), s); err != nil && !errs.Is(errs.Invalid, err) {
				t.Fatal(err)
			}
		}
		if history&0x80 != 0 {
			if err := h.e.RecordSuccess(context.Background(), s); err != nil && !errs.Is(errs.Invalid, err) {
				t.Fatal(err)
			}
		}
		h.clock.Advance(time.Second)
		d, err := h.e.Decide(context.Background(), s)
		if err != nil {
			if !errs.Is(errs.Invalid, err) {
				t.Fatalf("Decide(%+v): %v", s, err)
			}
			return
		}
		switch {
		case d.Score < 0 || d.Score > 100:
			t.Fatalf("score %d", d.Score)
		case (d.Outcome == fraud.OutcomeChallenge) != (d.Challenge != ""):
			t.Fatalf("outcome %s with challenge %q", d.Outcome, d.Challenge)
		case (d.Outcome == fraud.OutcomeDeny) != (d.RetryAfter > 0):
			t.Fatalf("outcome %s with RetryAfter %v", d.Outcome, d.RetryAfter)
		case d.Challenge != "" && d.Challenge != fraud.ChallengePoW && d.Challenge != fraud.ChallengeSecondFactor:
			t.Fatalf("challenge %q", d.Challenge)
		}
		ev := h.pub.last()
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if len(device) >= 12 && !strings.Contains(account, device) && strings.Contains(string(b), device) {
			t.Fatalf("event %s holds the device %q", b, device)
		}
		if a.IsValid() && a != fraud.Network(a, 24, 64).Addr() && strings.Contains(string(b), `"`+a.String()) {
			t.Fatalf("event %s holds the address %s", b, a)
		}
	})
}
