package barcode_test

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/barcode"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// build writes a payload from its parts: a byte as is, a string with its
// uvarint length, a uint64 as a uvarint, a []byte raw.
func build(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case byte:
			b = append(b, v)
		case string:
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case uint64:
			b = binary.AppendUvarint(b, v)
		case []byte:
			b = append(b, v...)
		}
	}
	return b
}

// Indexes of validParts.
const (
	pVersion = iota
	pKeyID
	pTicket
	pEvent
	pKind
	pPlace
	pHolder
	pFrom
	pUntil
	pFlags
	pDevice
)

func validParts() []any {
	return []any{byte(1), "k1", "t1", "e1", byte(1), "a-1", "h1",
		uint64(t0.Unix()), uint64(t0.Unix() + 3600), byte(0), []byte{1, 2, 3, 4, 5, 6, 7, 8}}
}

const maxUnix = 253402300799

func TestDecode(t *testing.T) {
	long := strings.Repeat("x", barcode.MaxIDLen)
	for _, tc := range []struct {
		name string
		i    int // the part replaced
		v    any
		ok   bool
	}{
		{"valid", pVersion, byte(1), true},
		{"longest ids", pTicket, long, true},
		{"longest key id", pKeyID, strings.Repeat("k", barcode.MaxKeyIDLen), true},
		{"utf-8 text", pPlace, "座席-é", true},
		{"general admission", pKind, byte(2), true},
		{"printed", pFlags, byte(1), true},
		{"latest time", pUntil, uint64(maxUnix), true},
		{"from 1970", pFrom, uint64(0), true},

		{"version 0", pVersion, byte(0), false},
		{"version 2", pVersion, byte(2), false},
		{"empty key id", pKeyID, "", false},
		{"long key id", pKeyID, strings.Repeat("k", barcode.MaxKeyIDLen+1), false},
		{"key id with space", pKeyID, "k 1", false},
		{"key id not ascii", pKeyID, "ké", false},
		{"empty ticket", pTicket, "", false},
		{"long ticket", pTicket, long + "x", false},
		{"ticket with nul", pTicket, "t\x00", false},
		{"ticket with newline", pTicket, "t\n", false},
		{"ticket with C1 control", pTicket, "t\u0085", false},
		{"ticket not utf-8", pTicket, "t\xff", false},
		{"ticket truncated utf-8", pTicket, "t\xe5\xba", false},
		{"empty event", pEvent, "", false},
		{"place kind 0", pKind, byte(0), false},
		{"place kind 3", pKind, byte(3), false},
		{"empty place", pPlace, "", false},
		{"empty holder", pHolder, "", false},
		{"from equals until", pFrom, uint64(t0.Unix() + 3600), false},
		{"from after until", pFrom, uint64(t0.Unix() + 3601), false},
		{"until after year 9999", pUntil, uint64(maxUnix + 1), false},
		{"unknown flag", pFlags, byte(2), false},
		{"high flag", pFlags, byte(0x80), false},
		{"short device", pDevice, []byte{1, 2, 3}, false},
		{"long length", pKeyID, []byte{0x82, 0x00, 'k', '1'}, false},
		{"long time", pFrom, []byte{0x80, 0x80, 0x00}, false},
		{"overflowing time", pFrom, bytes.Repeat([]byte{0xff}, 11), false},
		{"huge length", pHolder, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 'h'}, false},
		{"trailing byte", pDevice, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := validParts()
			parts[tc.i] = tc.v
			p := build(parts...)
			c, err := barcode.Decode(p)
			if !tc.ok {
				checkRefusal(t, err, barcode.ReasonMalformed, errs.Invalid)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// What Decode accepts, Encode writes back byte for byte.
			back, err := barcode.Encode(c)
			if err != nil || !bytes.Equal(back, p) {
				t.Fatalf("Encode(Decode(%x)) = %x, %v", p, back, err)
			}
		})
	}
}

func TestDecodeTruncated(t *testing.T) {
	p := build(validParts()...)
	for n := range len(p) {
		_, err := barcode.Decode(p[:n])
		checkRefusal(t, err, barcode.ReasonMalformed, errs.Invalid)
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *barcode.Claims)
		ok     bool
	}{
		{"valid", func(c *barcode.Claims) {}, true},
		{"general admission printed", func(c *barcode.Claims) { c.PlaceKind, c.Place, c.Printed = barcode.GeneralAdmission, "floor", true }, true},
		{"no key id", func(c *barcode.Claims) { c.KeyID = "" }, false},
		{"no ticket", func(c *barcode.Claims) { c.TicketID = "" }, false},
		{"long event", func(c *barcode.Claims) { c.EventID = strings.Repeat("e", barcode.MaxIDLen+1) }, false},
		{"no place kind", func(c *barcode.Claims) { c.PlaceKind = 0 }, false},
		{"no holder", func(c *barcode.Claims) { c.Holder = "" }, false},
		{"holder with tab", func(c *barcode.Claims) { c.Holder = "a\tb" }, false},
		{"zero times", func(c *barcode.Claims) { c.ValidFrom, c.ValidUntil = time.Time{}, time.Time{} }, false},
		{"before 1970", func(c *barcode.Claims) { c.ValidFrom = time.Unix(-1, 0) }, false},
		{"ends before it starts", func(c *barcode.Claims) { c.ValidUntil = c.ValidFrom.Add(-time.Second) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := claims()
			c.KeyID = "k1"
			tc.change(&c)
			p, err := barcode.Encode(c)
			if !tc.ok {
				checkRefusal(t, err, barcode.ReasonMalformed, errs.Invalid)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p) > barcode.MaxPayloadLen {
				t.Fatalf("payload of %d bytes, above MaxPayloadLen", len(p))
			}
			got, err := barcode.Decode(p)
			if err != nil || got != c {
				t.Fatalf("Decode(Encode(c)) = %+v, %v; want %+v", got, err, c)
			}
		})
	}
}

// TestMaxLen checks MaxPayloadLen and MaxTextLen against the longest
// barcode.
func TestMaxLen(t *testing.T) {
	long := strings.Repeat("x", barcode.MaxIDLen)
	key := fixedKey(long, strings.Repeat("k", barcode.MaxKeyIDLen), 7, time.Time{}, time.Time{})
	c := barcode.Claims{
		TicketID: long, EventID: long, PlaceKind: barcode.Seat, Place: long, Holder: long,
		ValidFrom: time.Unix(maxUnix-1, 0), ValidUntil: time.Unix(maxUnix, 0), Device: barcode.DeviceBinding{1},
	}
	c.KeyID = key.ID
	p, err := barcode.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != barcode.MaxPayloadLen {
		t.Fatalf("longest payload is %d bytes, MaxPayloadLen %d", len(p), barcode.MaxPayloadLen)
	}
	static := sign(t, key, c)
	secret, err := barcode.DeviceSecret(master, c)
	if err != nil {
		t.Fatal(err)
	}
	text, err := barcode.Show(static, secret, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(text) != barcode.MaxTextLen {
		t.Fatalf("longest text is %d bytes, MaxTextLen %d", len(text), barcode.MaxTextLen)
	}
	if _, err := barcode.Parse(text); err != nil {
		t.Fatal(err)
	}
	if _, err := barcode.Parse(text + "0"); err == nil {
		t.Fatal("Parse accepted a text longer than MaxTextLen")
	}
}

// TestGolden keeps format version 1 from drifting: a fixed key and claims
// sign to the token in testdata (Ed25519 signatures are deterministic).
// Regenerate with -update only for a new format version.
func TestGolden(t *testing.T) {
	key := fixedKey(event, "k1", 7, time.Time{}, time.Time{})
	static := sign(t, key, claims())
	path := filepath.Join("testdata", "v1-seat.golden")
	if *update {
		if err := os.WriteFile(path, []byte(static+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if static != strings.TrimSpace(string(want)) {
		t.Fatalf("Sign = %s\nwant   %s", static, want)
	}
	c, err := barcode.Parse(static)
	want2 := claims()
	want2.KeyID = "k1"
	if err != nil || c != want2 {
		t.Fatalf("Parse(golden) = %+v, %v; want %+v", c, err, want2)
	}
}
