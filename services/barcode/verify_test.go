package barcode_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

func TestVerify(t *testing.T) {
	f := newFixture()
	c := claims()
	live := show(t, f.key, c, t0)
	static, _, _ := strings.Cut(live, ".")

	printed := claims()
	printed.Printed = true
	printedText := show(t, f.key, printed, t0)

	other := fixedKey("evt-other", "k1", 9, time.Time{}, time.Time{})
	otherClaims := claims()
	otherClaims.EventID = other.Event
	otherText := show(t, other, otherClaims, t0)

	stranger := fixedKey(event, "k1", 8, time.Time{}, time.Time{}) // same event and id, another key
	forged := show(t, stranger, c, t0)

	raw, _ := base64.RawURLEncoding.DecodeString(static)
	badSig := append([]byte(nil), raw...)
	badSig[len(badSig)-1] ^= 1

	codeOf := func(text string) string { _, code, _ := strings.Cut(text, "."); return code }
	wrongCode := []byte(codeOf(live))
	wrongCode[0] = '0' + (wrongCode[0]-'0'+1)%10

	superseded := barcode.NewRevocationList(3)
	superseded.Supersede(c.TicketID, barcode.DeviceBinding{9})
	reissued := barcode.NewRevocationList(3)
	reissued.Supersede(c.TicketID, c.Device)
	revoked := barcode.NewRevocationList(4)
	revoked.Revoke(c.TicketID)
	others := barcode.NewRevocationList(5)
	others.Revoke("t_other")

	for _, tc := range []struct {
		name   string
		text   string
		at     time.Time
		change func(v *barcode.Verifier)
		reason string // "" accepts
		kind   errs.Kind
	}{
		{name: "live code", text: live},
		{name: "live code, other tickets revoked", text: live, change: func(v *barcode.Verifier) { v.Revoked = others }},
		{name: "re-issued to this device", text: live, change: func(v *barcode.Verifier) { v.Revoked = reissued }},
		{name: "printed allowed", text: printedText, change: func(v *barcode.Verifier) { v.AllowPrinted = true }},
		{name: "at valid from", text: show(t, f.key, c, c.ValidFrom), at: c.ValidFrom},
		{name: "last second", text: show(t, f.key, c, c.ValidUntil.Add(-time.Second)), at: c.ValidUntil.Add(-time.Second)},

		{name: "empty", text: "", reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "not base64url", text: "not a barcode!", reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "padded", text: static + "=." + codeOf(live), reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "line break", text: static[:10] + "\n" + static[10:] + "." + codeOf(live), reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "short code", text: live[:len(live)-1], reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "code not digits", text: static + ".1234567a", reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "two codes", text: live + "." + codeOf(live), reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "too long", text: strings.Repeat("A", barcode.MaxTextLen+1), reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "signature only", text: base64.RawURLEncoding.EncodeToString(raw[len(raw)-64:]), reason: barcode.ReasonMalformed, kind: errs.Invalid},
		{name: "printed with a code", text: printedText + "." + codeOf(live), change: func(v *barcode.Verifier) { v.AllowPrinted = true }, reason: barcode.ReasonMalformed, kind: errs.Invalid},

		{name: "no keys", text: live, change: func(v *barcode.Verifier) { v.Keys = barcode.KeySet{} }, reason: barcode.ReasonUnknownKey, kind: errs.Unauthorized},
		{name: "key of another event", text: live, change: func(v *barcode.Verifier) { v.Keys.Keys[0].Event = "evt-other" }, reason: barcode.ReasonUnknownKey, kind: errs.Unauthorized},
		{name: "key retired", text: live, change: func(v *barcode.Verifier) { v.Keys.Keys[0].NotAfter = t0 }, reason: barcode.ReasonUnknownKey, kind: errs.Unauthorized},
		{name: "key not yet active", text: live, change: func(v *barcode.Verifier) { v.Keys.Keys[0].NotBefore = t0.Add(time.Second) }, reason: barcode.ReasonUnknownKey, kind: errs.Unauthorized},
		{name: "key truncated", text: live, change: func(v *barcode.Verifier) { v.Keys.Keys[0].Key = v.Keys.Keys[0].Key[:31] }, reason: barcode.ReasonUnknownKey, kind: errs.Unauthorized},

		{name: "forged with another key", text: forged, reason: barcode.ReasonBadSignature, kind: errs.Unauthorized},
		{name: "signature bit flipped", text: base64.RawURLEncoding.EncodeToString(badSig) + "." + codeOf(live), reason: barcode.ReasonBadSignature, kind: errs.Unauthorized},

		{name: "another event", text: otherText, change: func(v *barcode.Verifier) {
			v.Keys.Keys = append([]barcode.PublicKey{other.Public()}, v.Keys.Keys...)
		}, reason: barcode.ReasonWrongEvent, kind: errs.Forbidden},

		{name: "before valid from", text: show(t, f.key, c, c.ValidFrom.Add(-time.Second)), at: c.ValidFrom.Add(-time.Second), reason: barcode.ReasonNotYetValid, kind: errs.Forbidden},
		{name: "at valid until", text: show(t, f.key, c, c.ValidUntil), at: c.ValidUntil, reason: barcode.ReasonExpired, kind: errs.Gone},

		{name: "revoked", text: live, change: func(v *barcode.Verifier) { v.Revoked = revoked }, reason: barcode.ReasonRevoked, kind: errs.Forbidden},
		{name: "superseded by a re-issue", text: live, change: func(v *barcode.Verifier) { v.Revoked = superseded }, reason: barcode.ReasonRevoked, kind: errs.Forbidden},
		{name: "printed revoked", text: printedText, change: func(v *barcode.Verifier) { v.AllowPrinted, v.Revoked = true, revoked }, reason: barcode.ReasonRevoked, kind: errs.Forbidden},

		{name: "printed not allowed", text: printedText, reason: barcode.ReasonPrintedNotAllowed, kind: errs.Forbidden},
		{name: "code missing", text: static, reason: barcode.ReasonCodeMissing, kind: errs.Unauthorized},
		{name: "code missing, printed allowed", text: static, change: func(v *barcode.Verifier) { v.AllowPrinted = true }, reason: barcode.ReasonCodeMissing, kind: errs.Unauthorized},
		{name: "wrong code", text: static + "." + string(wrongCode), reason: barcode.ReasonStaleCode, kind: errs.Unauthorized},
		{name: "screenshot of 30s ago", text: show(t, f.key, c, t0.Add(-30*time.Second)), reason: barcode.ReasonStaleCode, kind: errs.Unauthorized},
		{name: "code from another rotation secret", text: live, change: func(v *barcode.Verifier) { v.RotationSecret = []byte(strings.Repeat("z", 32)) }, reason: barcode.ReasonStaleCode, kind: errs.Unauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			if !tc.at.IsZero() {
				f.now = tc.at
			}
			if tc.change != nil {
				tc.change(f.ver)
			}
			got, err := f.ver.Verify(tc.text)
			if tc.reason != "" {
				checkRefusal(t, err, tc.reason, tc.kind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want, _ := barcode.Parse(tc.text)
			if got != want || got.KeyID != "k1" || got.EventID != event {
				t.Fatalf("Verify = %+v, want %+v", got, want)
			}
		})
	}
}

// TestVerifyNoRotationSecret: a verifier without the secret cannot check
// codes, and says so as its own fault, not the barcode's.
func TestVerifyNoRotationSecret(t *testing.T) {
	f := newFixture()
	f.ver.RotationSecret = master[:barcode.MinRotationSecretLen-1]
	_, err := f.ver.Verify(show(t, f.key, claims(), t0))
	if errs.KindOf(err) != errs.Other {
		t.Fatalf("err = %v, want kind Other", err)
	}
}

// TestVerifyTampered changes every byte of a token in two ways: none
// verifies.
func TestVerifyTampered(t *testing.T) {
	f := newFixture()
	live := show(t, f.key, claims(), t0)
	static, code, _ := strings.Cut(live, ".")
	raw, err := base64.RawURLEncoding.DecodeString(static)
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		for _, x := range []byte{0x01, 0x80} {
			b := append([]byte(nil), raw...)
			b[i] ^= x
			text := base64.RawURLEncoding.EncodeToString(b) + "." + code
			if c, err := f.ver.Verify(text); err == nil {
				t.Fatalf("byte %d ^ %#x: accepted %+v", i, x, c)
			}
		}
	}
	for i := range len(code) {
		b := []byte(code)
		b[i] = '0' + (b[i]-'0'+5)%10
		if _, err := f.ver.Verify(static + "." + string(b)); barcode.ReasonStaleCode != errs.ReasonOf(err) {
			t.Fatalf("code digit %d changed: err = %v", i, err)
		}
	}
}

// TestVerifyCodeWindow: a code is accepted from one step before it is
// shown (a scanner clock behind) to the end of the step after, never 30 s
// or more after it was first shown.
func TestVerifyCodeWindow(t *testing.T) {
	for _, tc := range []struct {
		shown, scanned time.Duration // after t0, a step boundary
		ok             bool
	}{
		{0, 0, true},
		{0, 14 * time.Second, true},
		{14 * time.Second, 0, true}, // the same step: the same code
		{0, 15 * time.Second, true},
		{0, 29 * time.Second, true},
		{0, 30 * time.Second, false},
		{14 * time.Second, 30 * time.Second, false},
		{0, 5 * time.Minute, false},
		{0, -15 * time.Second, true}, // scanner clock 15 s behind
		{0, -16 * time.Second, false},
		{5 * time.Minute, 0, false}, // phone clock ahead
	} {
		f := newFixture()
		text := show(t, f.key, claims(), t0.Add(tc.shown))
		f.now = t0.Add(tc.scanned)
		_, err := f.ver.Verify(text)
		switch {
		case tc.ok && err != nil:
			t.Errorf("shown at %v, scanned at %v: %v", tc.shown, tc.scanned, err)
		case !tc.ok:
			if r := errs.ReasonOf(err); r != barcode.ReasonStaleCode {
				t.Errorf("shown at %v, scanned at %v: err = %v, want %s", tc.shown, tc.scanned, err, barcode.ReasonStaleCode)
			}
		}
	}
}

// TestVerifyReissue: a lost phone's barcode stops verifying once the
// ticket is re-issued to a new device and the list says so; the new one
// verifies.
func TestVerifyReissue(t *testing.T) {
	f := newFixture()
	old := claims()
	renewed := old
	renewed.Device = barcode.NewDeviceBinding()
	l := barcode.NewRevocationList(1)
	l.Supersede(old.TicketID, renewed.Device)
	f.ver.Revoked = l
	if _, err := f.ver.Verify(show(t, f.key, old, t0)); errs.ReasonOf(err) != barcode.ReasonRevoked {
		t.Fatalf("old device: err = %v", err)
	}
	if _, err := f.ver.Verify(show(t, f.key, renewed, t0)); err != nil {
		t.Fatalf("new device: %v", err)
	}
	// The old phone cannot show the new barcode: its secret differs.
	oldSecret, _ := barcode.DeviceSecret(master, old)
	text, err := barcode.Show(sign(t, f.key, renewed), oldSecret, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ver.Verify(text); errs.ReasonOf(err) != barcode.ReasonStaleCode {
		t.Fatalf("new barcode with old secret: err = %v", err)
	}
}

func TestParseAndShow(t *testing.T) {
	f := newFixture()
	c := claims()
	static := sign(t, f.key, c)
	secret, err := barcode.DeviceSecret(master, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != barcode.SecretLen {
		t.Fatalf("secret of %d bytes", len(secret))
	}
	text, err := barcode.Show(static, secret, t0)
	if err != nil {
		t.Fatal(err)
	}
	code, err := barcode.Code(secret, t0)
	if err != nil || text != static+"."+code || len(code) != barcode.CodeDigits {
		t.Fatalf("Show = %q, Code = %q, %v", text, code, err)
	}
	want := c
	want.KeyID = f.key.ID
	for _, s := range []string{static, text} {
		if got, err := barcode.Parse(s); err != nil || got != want {
			t.Fatalf("Parse(%q) = %+v, %v", s, got, err)
		}
	}
	if _, err := barcode.Show(text, secret, t0); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Show of a shown text: err = %v", err)
	}
	if _, err := barcode.Show(static, secret[:10], t0); !errs.Is(errs.Invalid, err) {
		t.Fatalf("Show with a short secret: err = %v", err)
	}
	if _, err := barcode.DeviceSecret(master[:8], c); !errs.Is(errs.Invalid, err) {
		t.Fatalf("DeviceSecret with a short master: err = %v", err)
	}
	c.Printed = true
	if _, err := barcode.DeviceSecret(master, c); !errs.Is(errs.Invalid, err) {
		t.Fatalf("DeviceSecret of a printed barcode: err = %v", err)
	}
	printed := sign(t, f.key, c)
	if got, err := barcode.Show(printed, nil, t0); err != nil || got != printed {
		t.Fatalf("Show(printed) = %q, %v; want it unchanged", got, err)
	}
}

// TestCodeVector checks the rotating code against RFC 6238's SHA-1 test
// vector (T = 59 s, 30 s period there: step 1), at our 15 s period:
// t = 29 s is step 1 too.
func TestCodeVector(t *testing.T) {
	secret := []byte("12345678901234567890")
	code, err := barcode.Code(secret, time.Unix(29, 0))
	if err != nil || code != "94287082" {
		t.Fatalf("Code = %q, %v; want 94287082", code, err)
	}
}
