package barcode

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"

	"github.com/ticketing/ticketing/internal/errs"
)

// domain separates barcode signatures from every other Ed25519 signature
// a key could make: the signed message is domain || payload.
const domain = "ticketing-barcode-v1"

var b64 = base64.RawURLEncoding.Strict()

// Sign returns the static token of c signed with key, as text:
// base64url(payload || signature). It sets c's KeyID to key's. The key
// must be of c's event and must not retire before the barcode expires
// (ValidUntil after key.NotAfter); otherwise, or if c is out of bounds,
// the error is errs.Invalid.
func Sign(key Key, c Claims) (string, error) {
	const op = "barcode.sign"
	switch {
	case len(key.Private) != ed25519.PrivateKeySize:
		return "", errs.E(op, errs.Invalid, "signing key is not an Ed25519 private key")
	case key.Event != c.EventID:
		return "", errs.E(op, errs.Invalid, "signing key is of another event")
	case !key.NotAfter.IsZero() && c.ValidUntil.After(key.NotAfter):
		return "", errs.E(op, errs.Invalid, "barcode would outlive its signing key")
	}
	c.KeyID = key.ID
	msg, f := encode(append(make([]byte, 0, len(domain)+128), domain...), &c)
	if f != okay {
		return "", encodeErrs[f]
	}
	tok := append(msg[len(domain):], ed25519.Sign(key.Private, msg)...)
	return b64.EncodeToString(tok), nil
}

// Parse reads the claims of a barcode's text, static ("<token>") or shown
// ("<token>.<code>"), WITHOUT checking its signature, key, times or code:
// it is for the ticket page and for diagnostics, which show what a barcode
// says. Verifier.Verify is the check. Malformed text is errs.Invalid with
// ReasonMalformed.
func Parse(text string) (Claims, error) {
	static, _, hasCode, f := splitText(text)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	var buf tokenBuf
	_, payload, _, f := decodeToken(static, &buf)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	r, f := decodeRaw(payload)
	if f != okay {
		return Claims{}, decodeErrs[f]
	}
	if hasCode && r.flags&flagPrinted != 0 {
		return Claims{}, decodeErrs[printedCode]
	}
	return r.claims(string(payload)), nil
}

// splitText splits a barcode's text into its static token and its code,
// checking their lengths and the code's syntax.
func splitText(text string) (static, code string, hasCode bool, f fault) {
	if len(text) > MaxTextLen {
		return "", "", false, tooLong
	}
	static, code, hasCode = strings.Cut(text, ".")
	if hasCode && !validCode(code) {
		return "", "", false, badCode
	}
	if len(static) > maxStaticLen {
		return "", "", false, tooLong
	}
	return static, code, hasCode, okay
}

// tokenBuf holds a decoded token after the domain separator, so that the
// signed message is a slice of it.
type tokenBuf [len(domain) + MaxPayloadLen + ed25519.SignatureSize]byte

// decodeToken decodes a static token into buf and returns the signed
// message (domain || payload), the payload and the signature: slices of
// buf. The text must be canonical unpadded base64url (no line breaks,
// which the decoder would skip).
func decodeToken(static string, buf *tokenBuf) (msg, payload, sig []byte, f fault) {
	var src [maxStaticLen]byte
	s := src[:copy(src[:], static)]
	n := copy(buf[:], domain)
	m, err := b64.Decode(buf[n:], s)
	if err != nil || b64.EncodedLen(m) != len(s) {
		return nil, nil, nil, badBase64
	}
	if m <= ed25519.SignatureSize {
		return nil, nil, nil, truncated
	}
	end := n + m - ed25519.SignatureSize
	return buf[:end], buf[n:end], buf[end : n+m], okay
}
