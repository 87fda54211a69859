package barcode

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

// jwk is a public key as RFC 8037 writes Ed25519 keys (kty "OKP", crv
// "Ed25519", x the key in base64url), with the key's event and its
// active period (Unix seconds; absent when unbounded) as members of our
// own.
type jwk struct {
	Kty   string  `json:"kty"`
	Crv   string  `json:"crv"`
	X     string  `json:"x"`
	Kid   string  `json:"kid"`
	Alg   string  `json:"alg,omitempty"` // "EdDSA" when present
	Use   string  `json:"use,omitempty"` // "sig" when present
	Event string  `json:"event"`
	Nbf   int64   `json:"nbf,omitempty"`
	Exp   int64   `json:"exp,omitempty"`
	D     *string `json:"d,omitempty"` // a private key: refused
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

// MarshalJSON writes s as a JWK set: {"keys":[{"kty":"OKP","crv":"Ed25519",
// "x":…,"kid":…,"alg":"EdDSA","use":"sig","event":…,"nbf":…,"exp":…}]}.
// It holds public keys only and may be served to anyone.
func (s KeySet) MarshalJSON() ([]byte, error) {
	const op = "barcode.keyset"
	out := jwks{Keys: make([]jwk, 0, len(s.Keys))}
	for _, k := range s.Keys {
		if len(k.Key) != ed25519.PublicKeySize {
			return nil, errs.E(op, errs.Invalid, "key "+k.ID+" is not an Ed25519 public key")
		}
		j := jwk{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.Key), Kid: k.ID, Alg: "EdDSA", Use: "sig", Event: k.Event}
		if !k.NotBefore.IsZero() {
			j.Nbf = k.NotBefore.Unix()
		}
		if !k.NotAfter.IsZero() {
			j.Exp = k.NotAfter.Unix()
		}
		out.Keys = append(out.Keys, j)
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a JWK set that MarshalJSON wrote, strictly: unknown
// members, a private key ("d"), another key type or curve, a key that is
// not 32 bytes, a bad event or key id, a period that ends before it
// starts, or an event and key id given twice is errs.Invalid with
// ReasonMalformed, and s is left unchanged.
func (s *KeySet) UnmarshalJSON(b []byte) error {
	const op = "barcode.keyset"
	bad := func(msg string) error { return refusal(op, errs.Invalid, ReasonMalformed, msg) }
	var in jwks
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return bad("key set is not a JWK set of this form")
	}
	type name struct{ event, kid string }
	seen := make(map[name]bool, len(in.Keys))
	keys := make([]PublicKey, 0, len(in.Keys))
	for _, j := range in.Keys {
		switch {
		case j.D != nil:
			return bad("key set holds a private key")
		case j.Kty != "OKP" || j.Crv != "Ed25519":
			return bad("key set holds a key that is not Ed25519")
		case j.Alg != "" && j.Alg != "EdDSA", j.Use != "" && j.Use != "sig":
			return bad("key set holds a key for another use")
		case !validID(j.Event) || !validKeyID([]byte(j.Kid)):
			return bad("key set holds a key with a bad event or key id")
		case j.Nbf < 0 || j.Exp < 0 || (j.Exp != 0 && j.Exp <= j.Nbf) || j.Exp > maxUnix || j.Nbf > maxUnix:
			return bad("key set holds a key with a bad active period")
		case seen[name{j.Event, j.Kid}]:
			return bad("key set holds a key id twice for one event")
		}
		x, err := b64.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return bad("key set holds a key that is not 32 bytes of base64url")
		}
		seen[name{j.Event, j.Kid}] = true
		k := PublicKey{Event: j.Event, ID: j.Kid, Key: x}
		if j.Nbf != 0 {
			k.NotBefore = time.Unix(j.Nbf, 0).UTC()
		}
		if j.Exp != 0 {
			k.NotAfter = time.Unix(j.Exp, 0).UTC()
		}
		keys = append(keys, k)
	}
	s.Keys = keys
	return nil
}
