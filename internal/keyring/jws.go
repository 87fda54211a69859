package keyring

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"sync/atomic"
)

// jwsHeader is the JOSE header this package writes, members in this order.
type jwsHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	KID string `json:"kid"`
}

// EncodeHeader returns the base64url JWS header segment this package
// writes for a token of type typ signed by key kid:
// {"alg":"EdDSA","typ":typ,"kid":kid}.
func EncodeHeader(typ, kid string) string {
	h, _ := json.Marshal(jwsHeader{Alg: "EdDSA", Typ: typ, KID: kid}) // never fails: strings only
	return b64.EncodeToString(h)
}

// Headers writes and recognizes the JWS headers of one token type (typ):
// Match finds the key of a token by comparing its header segment as bytes
// with EncodeHeader of every key, so that a verifier parses no JSON for a
// token this system wrote. It keeps the encoded headers of the last
// PublicKeys snapshot it saw, so give each signer and verifier its own.
// Safe for concurrent use.
type Headers struct {
	typ string
	cur atomic.Pointer[headerSet]
}

// headerSet is the encoded headers of one PublicKeys snapshot. Immutable.
type headerSet struct {
	keys     *PublicKeys
	byHeader map[string]*Key
	byKID    map[string]string
}

// NewHeaders returns the headers of tokens of type typ (the JWS "typ").
func NewHeaders(typ string) *Headers { return &Headers{typ: typ} }

// Typ is the token type.
func (h *Headers) Typ() string { return h.typ }

// Match returns the key of keys whose header segment, as this package
// writes it, is seg; false means seg is something else and must be parsed
// and judged (or refused) by the caller.
func (h *Headers) Match(keys *PublicKeys, seg []byte) (*Key, bool) {
	s := h.cur.Load()
	if s == nil || s.keys != keys {
		s = h.index(keys)
	}
	k, ok := s.byHeader[string(seg)]
	return k, ok
}

// index encodes the headers of keys and keeps them for the next call.
func (h *Headers) index(keys *PublicKeys) *headerSet {
	s := &headerSet{keys: keys, byHeader: make(map[string]*Key, len(keys.order)), byKID: make(map[string]string, len(keys.order))}
	for _, k := range keys.order {
		e := EncodeHeader(h.typ, k.kid)
		s.byHeader[e] = k
		s.byKID[k.kid] = e
	}
	h.cur.Store(s)
	return s
}

// Sign returns the compact JWS of payload with the header of h, signed by
// the active key, and that key's id:
//
//	base64url(header) "." base64url(payload) "." base64url(signature)
func (r *KeyRing) Sign(h *Headers, payload []byte) (jws []byte, kid string) {
	st := r.state.Load()
	s := h.cur.Load()
	if s == nil || s.keys != st.pub {
		s = h.index(st.pub)
	}
	hdr := s.byKID[st.signer.kid]
	n := len(hdr) + 1 + b64.EncodedLen(len(payload))
	buf := make([]byte, n, n+1+b64.EncodedLen(ed25519.SignatureSize))
	copy(buf, hdr)
	buf[len(hdr)] = '.'
	b64.Encode(buf[len(hdr)+1:], payload)
	sig := ed25519.Sign(st.signer.priv, buf)
	buf = append(buf, '.')
	return b64.AppendEncode(buf, sig), st.signer.kid
}

// Split returns the three segments of compact JWS jws (header, payload,
// signature, still base64url), or malformed when it is not three
// segments with a header and a payload. The segments are slices of jws.
func Split(jws []byte, malformed error) (header, payload, signature []byte, err error) {
	d1 := bytes.IndexByte(jws, '.')
	if d1 < 0 {
		return nil, nil, nil, malformed
	}
	d2 := bytes.IndexByte(jws[d1+1:], '.')
	if d2 < 0 {
		return nil, nil, nil, malformed
	}
	d2 += d1 + 1
	header, payload, signature = jws[:d1], jws[d1+1:d2], jws[d2+1:]
	if len(header) == 0 || len(payload) == 0 {
		return nil, nil, nil, malformed
	}
	return header, payload, signature, nil
}

// CheckSignature verifies the signature segment sig of a compact JWS
// whose header and payload segments, with the dot between them, are
// signed: malformed when sig is not 64 bytes in base64url (a fourth
// segment fails here), bad when k did not make it. Callers judge the
// header first, so that alg "none" (an empty signature) and HMAC tokens
// get the header's reason.
func (k *Key) CheckSignature(signed, sig []byte, malformed, bad error) error {
	var s [ed25519.SignatureSize]byte
	if len(sig) != b64.EncodedLen(len(s)) {
		return malformed
	}
	if n, err := b64.Decode(s[:], sig); err != nil || n != len(s) {
		return malformed
	}
	if !k.Verify(signed, s[:]) {
		return bad
	}
	return nil
}
