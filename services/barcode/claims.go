package barcode

import (
	"crypto/ed25519"
	"crypto/rand"
	"time"
)

// Limits of format version 1.
const (
	// Version is the format version, the first byte of every payload.
	Version = 1
	// MaxIDLen bounds the ticket, event, place and holder ids, in bytes.
	MaxIDLen = 128
	// MaxKeyIDLen bounds the key id, in bytes.
	MaxKeyIDLen = 16
	// DeviceBindingLen is the length of a device binding id, in bytes.
	DeviceBindingLen = 8
	// MaxPayloadLen is the longest payload: every id at its cap and the
	// latest times.
	MaxPayloadLen = 1 + (1 + MaxKeyIDLen) + 4*(2+MaxIDLen) + 1 + 2*6 + 1 + DeviceBindingLen
	// MaxTextLen is the longest text Verify and Parse read: the static
	// token of the longest payload in base64url, a dot and a code.
	MaxTextLen = maxStaticLen + 1 + CodeDigits
)

// maxStaticLen is the longest static token text: base64url, unpadded,
// of the longest payload and its signature.
const maxStaticLen = ((MaxPayloadLen+ed25519.SignatureSize)*4 + 2) / 3

// maxUnix is the latest time a barcode may name: 9999-12-31T23:59:59Z.
const maxUnix = 253402300799

// PlaceKind tells a reserved seat from a general-admission zone.
type PlaceKind uint8

// The place kinds, as written in the payload.
const (
	Seat             PlaceKind = 1 // Place is a seat id
	GeneralAdmission PlaceKind = 2 // Place is a zone id
)

// DeviceBinding names one issue of a ticket's barcode: it is part of the
// signed payload and of the rotating code's secret (DeviceSecret), and a
// re-issue (a lost phone) gets a new one, so the old phone's codes no
// longer match and RevocationList.Supersede refuses its barcode.
type DeviceBinding [DeviceBindingLen]byte

// NewDeviceBinding returns a random, non-zero device binding id.
func NewDeviceBinding() DeviceBinding {
	var d DeviceBinding
	for d == (DeviceBinding{}) {
		_, _ = rand.Read(d[:]) // never fails (crypto/rand)
	}
	return d
}

// Claims are the contents of a barcode's static part.
type Claims struct {
	// KeyID is the id of the key that signed; Sign sets it. 1 to
	// MaxKeyIDLen printable ASCII bytes.
	KeyID string
	// TicketID, EventID, Place and Holder are 1 to MaxIDLen bytes of
	// UTF-8 without control characters, written as given.
	TicketID  string
	EventID   string
	PlaceKind PlaceKind
	Place     string // the seat id (Seat) or the zone id (GeneralAdmission)
	Holder    string // the holder's account id
	// ValidFrom and ValidUntil bound when the barcode admits:
	// ValidFrom <= now < ValidUntil, in whole Unix seconds (finer parts
	// are dropped), ValidFrom at or after 1970 and before ValidUntil,
	// ValidUntil at most in the year 9999.
	ValidFrom  time.Time
	ValidUntil time.Time
	// Printed marks the printable static variant (flag bit 0): a barcode
	// for paper, without a rotating code. Verifiers accept it only when
	// their policy allows (Verifier.AllowPrinted).
	Printed bool
	// Device is the device binding id of this issue.
	Device DeviceBinding
}

// Flag bits of the payload. Other bits are refused: a new flag is a new
// format version.
const (
	flagPrinted = 1 << 0
	knownFlags  = flagPrinted
)
