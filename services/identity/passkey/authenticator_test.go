package passkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// softKey is a software authenticator holding one discoverable ES256
// credential, playing the browser too: it answers the options of a begin
// with the JSON a browser posts (PublicKeyCredential.toJSON()). It signs
// for rpID at origin, which the tests change to impersonate another site;
// it does not check the options' RP id, as a phishing page's browser
// would not help.
type softKey struct {
	rpID, origin string
	key          *ecdsa.PrivateKey
	credID       []byte
	userHandle   []byte
	// counter is the signature counter; get adds step to it first.
	counter, step uint32
	// backup sets the backup eligible and backup state flags.
	backup bool
	// presenceOnly leaves out the user verified flag.
	presenceOnly bool
	// rk is what credProps reports; nil leaves the extension out.
	rk *bool
}

func newSoftKey(t testing.TB, rpID, origin string) *softKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	yes := true
	return &softKey{rpID: rpID, origin: origin, key: k, credID: id, step: 1, rk: &yes}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (k *softKey) flags() protocol.AuthenticatorFlags {
	f := protocol.FlagUserPresent | protocol.FlagUserVerified
	if k.presenceOnly {
		f &^= protocol.FlagUserVerified
	}
	if k.backup {
		f |= protocol.FlagBackupEligible | protocol.FlagBackupState
	}
	return f
}

func (k *softKey) authData(flags protocol.AuthenticatorFlags, attested []byte) []byte {
	h := sha256.Sum256([]byte(k.rpID))
	d := append(h[:], byte(flags))
	d = binary.BigEndian.AppendUint32(d, k.counter)
	return append(d, attested...)
}

func (k *softKey) clientData(t testing.TB, typ, challenge string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.origin, "crossOrigin": false})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// options decodes what the tests need of Started.Options.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		Allow []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
		Selection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		UserVerification string `json:"userVerification"`
		Timeout          int    `json:"timeout"`
	} `json:"publicKey"`
}

func parseOptions(t testing.TB, raw json.RawMessage) options {
	t.Helper()
	var o options
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("options %s: %v", raw, err)
	}
	return o
}

// create answers creation options with a registration response ("none"
// attestation).
func (k *softKey) create(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	o := parseOptions(t, raw)
	uh, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	k.userHandle = uh
	point, err := k.key.PublicKey.Bytes() // 0x04 | x | y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(map[int64]any{
		1:  int64(webauthncose.EllipticKey),
		3:  int64(webauthncose.AlgES256),
		-1: int64(webauthncose.P256),
		-2: point[1:33],
		-3: point[33:],
	})
	if err != nil {
		t.Fatal(err)
	}
	attested := make([]byte, 16) // AAGUID: zero
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(k.credID)))
	attested = append(attested, k.credID...)
	attested = append(attested, cose...)
	authData := k.authData(k.flags()|protocol.FlagAttestedCredentialData, attested)
	attObj, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]any{}
	if k.rk != nil {
		ext["credProps"] = map[string]any{"rk": *k.rk}
	}
	return k.body(t, map[string]any{
		"clientDataJSON":    b64(k.clientData(t, "webauthn.create", o.PublicKey.Challenge)),
		"attestationObject": b64(attObj),
		"transports":        []string{"internal", "hybrid"},
	}, ext)
}

// get answers request options with an assertion, after adding step to
// the counter.
func (k *softKey) get(t testing.TB, raw json.RawMessage) []byte {
	t.Helper()
	o := parseOptions(t, raw)
	k.counter += k.step
	authData := k.authData(k.flags(), nil)
	cd := k.clientData(t, "webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), authData...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return k.body(t, map[string]any{
		"clientDataJSON":    b64(cd),
		"authenticatorData": b64(authData),
		"signature":         b64(sig),
		"userHandle":        b64(k.userHandle),
	}, map[string]any{})
}

func (k *softKey) body(t testing.TB, response, ext map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id":                      b64(k.credID),
		"rawId":                   b64(k.credID),
		"type":                    "public-key",
		"authenticatorAttachment": "platform",
		"response":                response,
		"clientExtensionResults":  ext,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a response body, lets f change it, and encodes it again.
func edit(t testing.TB, body []byte, f func(m map[string]any, resp map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	f(m, m["response"].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipByte returns the base64url field s with one bit of byte i flipped
// (i < 0 counts from the end).
func flipByte(t testing.TB, s string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	if i < 0 {
		i += len(b)
	}
	b[i] ^= 0x01
	return b64(b)
}
