// Package barcode makes and checks the barcodes of tickets: a static part
// signed with the event's Ed25519 key, which says what the ticket is, and
// a rotating code that changes every 15 seconds on the holder's phone, so
// that a screenshot or a forwarded image stops working within 30 seconds.
// It is meant for the issuing core (Sign, DeviceSecret), the ticket page
// (Show) and gate scanners (Verifier, online or offline). It is a domain
// package, with no storage or transport; nothing outside its tests uses
// it yet.
//
// # Static token
//
// The payload is binary, format version 1:
//
//	version        1 byte, 1
//	key id         uvarint length (1-16) + printable ASCII
//	ticket id      uvarint length (1-128) + UTF-8 text
//	event id       uvarint length (1-128) + UTF-8 text
//	place kind     1 byte: 1 reserved seat, 2 general admission
//	place          uvarint length (1-128) + UTF-8 text: seat id or zone id
//	holder         uvarint length (1-128) + UTF-8 text: the holder's account id
//	valid from     uvarint, Unix seconds
//	valid until    uvarint, Unix seconds, after valid from, before the year 10000
//	flags          1 byte: bit 0 printable static variant; other bits refused
//	device binding 8 bytes
//
// Text is UTF-8 without control characters; every number is in its
// shortest uvarint form; nothing may follow. Decode refuses anything else,
// so a payload has exactly one encoding (at most MaxPayloadLen bytes).
// The token is payload || signature, the Ed25519 signature of
// "ticketing-barcode-v1" || payload (the prefix keeps these signatures
// apart from anything else a key could sign), and its text is unpadded
// base64url: about 200 characters for usual ids, fine for a QR code.
//
// # Shown barcode
//
// A phone shows "<static>.<code>", code the 8 digits of RFC 6238 TOTP
// (HMAC-SHA1, CodePeriod 15 s, computed by github.com/pquerna/otp) of the
// barcode's rotating secret, redrawn every period (Show). A verifier
// accepts the code of the current step or of one step either side, so a
// code is good for 15 to 30 seconds after it is first shown and never
// longer: an older screenshot is refused (ReasonStaleCode). A printed
// ticket carries the static token alone with its Printed flag set; it can
// be copied, so Verifier accepts it only with AllowPrinted and reports it
// in the claims, for gates to apply their stricter rules.
//
// # Rotating secret
//
// Scanners work offline, so they must be able to check any ticket's code
// without a list of per-ticket secrets. The secret is derived instead:
// HMAC-SHA256(the event's rotation master secret, ticket id || device
// binding id), truncated to 20 bytes (DeviceSecret). The core hands it to
// the holder's device with the static token when the ticket is bound to
// that device; a re-issue (a lost phone) gets a new device binding id,
// hence a new secret, and a revocation list entry (Supersede) refuses the
// old phone's barcode.
//
// The trade-off: every scanner of an event holds that event's rotation
// master secret, downloaded with the event's keys over the staff channel
// (it is not in the public key set, and only staff devices get it). A
// stolen or compromised scanner can therefore compute the live code of any
// ticket of the event whose static token it has seen — it cannot forge a
// static token, which needs the Ed25519 private key. Limit the damage by
// giving each event its own master secret, handing it to scanners only
// for the events they scan, and replacing it (re-issuing the secrets to
// the phones) when a scanner is lost. Per-ticket random secrets would
// not help an offline scanner: it would need every ticket's secret, and
// leak them all the same when stolen; only an online check against
// secrets kept on a server avoids it.
//
// What the code does not stop: a holder relaying the live code to a
// second phone in real time. Two entries on one ticket are for the gate's
// entry log (admit a ticket once), which is not this package's.
//
// # Keys
//
// Each event has its own keys. A Key is active from NotBefore to NotAfter;
// the newest active key signs (SigningKey), older active keys keep
// verifying, and a key retires at its NotAfter (or when it leaves the
// KeySet), after which its barcodes are refused with ReasonUnknownKey.
// Sign refuses a barcode that would outlive its key. The KeySet's JSON
// form is a JWK set (RFC 8037 OKP/Ed25519 keys, with the event and the
// active period) for scanners to download, and the RevocationList's JSON
// form, numbered by a sequence, goes with it.
//
// # Speed
//
// Verify decodes the text into stack buffers and compares fields as
// bytes; refusals are preallocated errors; the accepted claims' strings
// share one allocation. The Ed25519 verification is most of its cost;
// the rotating code's check adds an HMAC-SHA256 and one to three
// HMAC-SHA1 with pquerna/otp's allocations. BenchmarkVerify and
// BenchmarkRawEd25519Verify show the ratio.
package barcode
