package totp

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	libtotp "github.com/pquerna/otp/totp"

	"github.com/ticketing/ticketing/internal/errs"
)

// rfcSecret is RFC 6238's SHA1 seed, the ASCII "12345678901234567890", in
// base32. It is 20 bytes, the size Generate makes.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// rfcVectors are RFC 6238 Appendix B's SHA1 test vectors: 8-digit codes.
var rfcVectors = []struct {
	unix int64
	step int64
	code string
}{
	{59, 0x1, "94287082"},
	{1111111109, 0x23523EC, "07081804"},
	{1111111111, 0x23523ED, "14050471"},
	{1234567890, 0x273EF07, "89005924"},
	{2000000000, 0x3F940AA, "69279037"},
	{20000000000, 0x27BC86AA, "65353130"},
}

// TestRFC6238Vectors checks the library against the RFC's vectors, then
// verify (Verify with 8 digits) at each vector's time: it returns the
// vector's step, refuses it once that step is the last accepted, and takes
// 1111111109's code at 1111111111, one step later, within the skew.
func TestRFC6238Vectors(t *testing.T) {
	for _, v := range rfcVectors {
		at := time.Unix(v.unix, 0).UTC()
		got, err := libtotp.GenerateCodeCustom(rfcSecret, at, libtotp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA1})
		if err != nil || got != v.code {
			t.Errorf("library code at %d = %q, %v; want %s", v.unix, got, err, v.code)
		}
		if s := Step(at); s != v.step {
			t.Errorf("Step(%d) = %#x, want %#x", v.unix, s, v.step)
		}
		s, err := verify(rfcSecret, v.code, at, 0, 8)
		if err != nil || s != v.step {
			t.Errorf("verify(%s at %d) = %#x, %v; want %#x", v.code, v.unix, s, err, v.step)
		}
		s, err = verify(rfcSecret, v.code, at, v.step, 8)
		if !errs.Is(errs.Unauthorized, err) || errs.ReasonOf(err) != ReasonCodeReused {
			t.Errorf("verify(%s at %d, last step %#x) = %#x, %v; want reused", v.code, v.unix, v.step, s, err)
		}
		// The 6-digit code of the same step is the last 6 digits (both
		// are the same truncated HMAC, mod 10^8 and mod 10^6).
		if c, err := Code(rfcSecret, at); err != nil || c != v.code[2:] {
			t.Errorf("Code at %d = %q, %v; want %s", v.unix, c, err, v.code[2:])
		}
		if s, err := Verify(rfcSecret, v.code[2:], at, v.step-1); err != nil || s != v.step {
			t.Errorf("Verify(%s at %d) = %#x, %v; want %#x", v.code[2:], v.unix, s, err, v.step)
		}
	}
	s, err := verify(rfcSecret, "07081804", time.Unix(1111111111, 0), 0, 8)
	if err != nil || s != 0x23523EC {
		t.Errorf("verify(the previous step's code) = %#x, %v; want 0x23523EC", s, err)
	}
	s, err = verify(rfcSecret, "07081804", time.Unix(1111111111, 0), 0x23523EC, 8)
	if errs.ReasonOf(err) != ReasonCodeReused {
		t.Errorf("verify(the previous step's code, used) = %#x, %v; want reused", s, err)
	}
	// An 8-digit code where 6 are expected is malformed, not wrong.
	if _, err := Verify(rfcSecret, "94287082", time.Unix(59, 0), 0); !errs.Is(errs.Invalid, err) {
		t.Errorf("Verify(8 digits) = %v, want invalid", err)
	}
}
