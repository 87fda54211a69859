package totp_test

import (
	"encoding/base32"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/identity/totp"
)

const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // RFC 6238's SHA1 seed

// t0 is the first second of step 37037037.
var t0 = time.Unix(37037037*30, 0)

func code(t *testing.T, at time.Time) string {
	t.Helper()
	c, err := totp.Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	k, err := totp.Generate("ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(k.Secret)
	if err != nil || len(raw) != 20 || len(k.Secret) != 32 {
		t.Fatalf("Secret = %q (%d bytes, %v), want 20 bytes of unpadded base32", k.Secret, len(raw), err)
	}
	u, err := url.Parse(k.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Ticketing:ada@example.com" ||
		q.Get("secret") != k.Secret || q.Get("issuer") != "Ticketing" || q.Get("algorithm") != "SHA1" ||
		q.Get("digits") != "6" || q.Get("period") != "30" || len(q) != 5 {
		t.Fatalf("URI = %s", k.URI)
	}
	// The library's reading of the URI, as an app would read it.
	ok, err := otp.NewKeyFromURL(k.URI)
	if err != nil || ok.Type() != "totp" || ok.Issuer() != "Ticketing" || ok.AccountName() != "ada@example.com" ||
		ok.Secret() != k.Secret || ok.Period() != 30 || ok.Digits() != otp.DigitsSix || ok.Algorithm() != otp.AlgorithmSHA1 {
		t.Fatalf("NewKeyFromURL(%s) = %v, %v", k.URI, ok, err)
	}
	// What an app makes of the secret verifies.
	now := time.Now()
	c, err := totp.Code(k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := totp.Verify(k.Secret, c, now, 0); err != nil || s != totp.Step(now) {
		t.Fatalf("Verify(own code) = %d, %v; want %d", s, err, totp.Step(now))
	}
	k2, err := totp.Generate("ada@example.com")
	if err != nil || k2.Secret == k.Secret {
		t.Fatalf("two secrets: %q, %q, %v", k.Secret, k2.Secret, err)
	}
	for _, account := range []string{"", "a:b@example.com", "a\nb@example.com", "a\x7f@example.com", strings.Repeat("a", 243) + "@example.com"} {
		if k, err := totp.Generate(account); !errs.Is(errs.Invalid, err) || k != (totp.Key{}) {
			t.Errorf("Generate(%q) = %v, %v; want invalid", account, k, err)
		}
	}
}

func TestStep(t *testing.T) {
	for unix, want := range map[int64]int64{0: 0, 29: 0, 30: 1, 59: 1, 60: 2, -1: -1, -30: -1, -31: -2} {
		if got := totp.Step(time.Unix(unix, 0)); got != want {
			t.Errorf("Step(%d) = %d, want %d", unix, got, want)
		}
	}
	if got := totp.Step(t0.Add(999 * time.Millisecond)); got != 37037037 {
		t.Errorf("Step(t0+999ms) = %d", got)
	}
}

// TestSkewEdges verifies at the first and the last second of a step: the
// codes of the step before, the step and the step after are taken, with
// their own step returned; two steps away is a wrong code.
func TestSkewEdges(t *testing.T) {
	const s = 37037037
	for _, now := range []time.Time{t0, t0.Add(29 * time.Second), t0.Add(29*time.Second + 999*time.Millisecond)} {
		for d := int64(-1); d <= 1; d++ {
			c := code(t, t0.Add(time.Duration(d)*30*time.Second))
			got, err := totp.Verify(secret, c, now, 0)
			if err != nil || got != s+d {
				t.Errorf("at %v: Verify(code of step %+d) = %d, %v; want %d", now, d, got, err, s+d)
			}
		}
		for _, d := range []int64{-2, 2, -3, 3} {
			c := code(t, t0.Add(time.Duration(d)*30*time.Second))
			got, err := totp.Verify(secret, c, now, 0)
			if !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != totp.ReasonWrongCode || got != 0 {
				t.Errorf("at %v: Verify(code of step %+d) = %d, %v; want wrong code", now, d, got, err)
			}
		}
	}
	// One second before t0 is in the step before, whose window ends at
	// step s: step s+1's code is two steps away.
	if _, err := totp.Verify(secret, code(t, t0.Add(30*time.Second)), t0.Add(-time.Second), 0); errs.ReasonOf(err) != totp.ReasonWrongCode {
		t.Errorf("Verify(code of s+1 at the end of s-1) = %v; want wrong code", err)
	}
	// In step 0 there is no step -1 to look at.
	if got, err := totp.Verify(secret, code(t, time.Unix(0, 0)), time.Unix(10, 0), -1); err != nil || got != 0 {
		t.Errorf("Verify(step 0 in step 0, last -1) = %d, %v", got, err)
	}
}

// TestReplay: a code is accepted once; its step and every earlier one are
// refused after it, a later step's code is still taken.
func TestReplay(t *testing.T) {
	const s = 37037037
	now := t0.Add(10 * time.Second)
	cur, prev, next := code(t, t0), code(t, t0.Add(-30*time.Second)), code(t, t0.Add(30*time.Second))

	last, err := totp.Verify(secret, cur, now, 0)
	if err != nil || last != s {
		t.Fatalf("Verify(current) = %d, %v", last, err)
	}
	// The same code again, in the same step and a second later.
	for _, at := range []time.Time{now, now.Add(time.Second), t0.Add(29 * time.Second)} {
		if got, err := totp.Verify(secret, cur, at, last); !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != totp.ReasonCodeReused || got != 0 {
			t.Errorf("Verify(current again at %v) = %d, %v; want reused", at, got, err)
		}
	}
	// The same code in the next step, while it is still in the window.
	if _, err := totp.Verify(secret, cur, t0.Add(40*time.Second), last); errs.ReasonOf(err) != totp.ReasonCodeReused {
		t.Errorf("Verify(current again in the next step) = %v; want reused", err)
	}
	// An earlier step's code, within the window, after a later one was used.
	if _, err := totp.Verify(secret, prev, now, last); errs.ReasonOf(err) != totp.ReasonCodeReused {
		t.Errorf("Verify(previous after current) = %v; want reused", err)
	}
	// The next step's code is still good, and after it the current one is not.
	last, err = totp.Verify(secret, next, now, last)
	if err != nil || last != s+1 {
		t.Fatalf("Verify(next) = %d, %v", last, err)
	}
	if _, err := totp.Verify(secret, cur, now, last); errs.ReasonOf(err) != totp.ReasonCodeReused {
		t.Errorf("Verify(current after next) = %v; want reused", err)
	}
	// With the previous step last accepted, the previous code is refused
	// and the current one taken.
	if _, err := totp.Verify(secret, prev, now, s-1); errs.ReasonOf(err) != totp.ReasonCodeReused {
		t.Errorf("Verify(previous, last=previous) = %v; want reused", err)
	}
	if got, err := totp.Verify(secret, prev, now, s-2); err != nil || got != s-1 {
		t.Errorf("Verify(previous, last=s-2) = %d, %v; want %d", got, err, s-1)
	}
	// A wrong code stays wrong whatever lastStep is.
	wrong := "000000"
	if wrong == cur || wrong == prev || wrong == next {
		t.Fatal("pick another wrong code")
	}
	if _, err := totp.Verify(secret, wrong, now, s); errs.ReasonOf(err) != totp.ReasonWrongCode {
		t.Errorf("Verify(wrong, used) = %v; want wrong code", err)
	}
}

func TestMalformed(t *testing.T) {
	c := code(t, t0)
	for _, in := range []string{c[:3] + " " + c[3:], " " + c + " ", c[:2] + " " + c[2:4] + "  " + c[4:]} {
		if got, err := totp.Verify(secret, in, t0, 0); err != nil || got != 37037037 {
			t.Errorf("Verify(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "12345", "1234567", "12a456", "12-345", "١٢٣٤٥٦", "１２３４５６", "123\t456", "-12345", "+12345", c + "\n"} {
		if got, err := totp.Verify(secret, in, t0, 0); !errs.Is(errs.Invalid, err) || got != 0 {
			t.Errorf("Verify(%q) = %d, %v; want invalid", in, got, err)
		}
	}
	for _, bad := range []string{
		"", strings.ToLower(secret), secret + "====", secret[:16], // 10 bytes: the library would take it
		secret + "AAAAAAAA", secret[:31] + "1", secret[:16] + "\n" + secret[16:],
	} {
		if _, err := totp.Verify(bad, c, t0, 0); err == nil || errs.KindOf(err) != errs.Other {
			t.Errorf("Verify(secret %q) = %v; want an internal error", bad, err)
		}
		if _, err := totp.Code(bad, t0); err == nil || errs.KindOf(err) != errs.Other {
			t.Errorf("Code(secret %q) = %v; want an internal error", bad, err)
		}
	}
}

// TestSameCodeTwoSteps: RFC 6238's seed has the code 963181 in steps
// 59061240 and 59061241 (found by search; one window in about a million
// has such a pair). Verify takes the earliest step after lastStep, so that
// a collision uses up as few steps as it can.
func TestSameCodeTwoSteps(t *testing.T) {
	for _, s := range []int64{59061240, 59061241} {
		if c := code(t, time.Unix(s*30, 0)); c != "963181" {
			t.Fatalf("code of step %d = %s, want 963181", s, c)
		}
	}
	now := time.Unix(59061241*30+5, 0)
	for last, want := range map[int64]int64{0: 59061240, 59061239: 59061240, 59061240: 59061241} {
		if got, err := totp.Verify(secret, "963181", now, last); err != nil || got != want {
			t.Errorf("Verify(963181, last %d) = %d, %v; want %d", last, got, err, want)
		}
	}
	if _, err := totp.Verify(secret, "963181", now, 59061241); errs.ReasonOf(err) != totp.ReasonCodeReused {
		t.Errorf("Verify(963181, last 59061241) = %v; want reused", err)
	}
}
