package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ticketing/ticketing/internal/errs"
)

var b64 = base64.RawURLEncoding.Strict()

// KeySet is the durable form of a KeyRing: what a KeyStore keeps. It holds
// private keys.
type KeySet struct {
	Keys []StoredKey `json:"keys"`
}

// StoredKey is one key of a KeySet.
type StoredKey struct {
	KID     string    `json:"kid"`     // RFC 7638 thumbprint of the public key
	Seed    []byte    `json:"seed"`    // the Ed25519 private key seed, 32 bytes
	Created time.Time `json:"created"` // when it started signing
	// Retired is when it stopped signing; zero for the one active key.
	Retired time.Time `json:"retired,omitzero"`
	// VerifyUntil is when a retired key stops verifying and is dropped.
	VerifyUntil time.Time `json:"verify_until,omitzero"`
}

func (k StoredKey) active() bool { return k.Retired.IsZero() }

// clone returns a deep copy.
func (s KeySet) clone() KeySet {
	c := KeySet{Keys: make([]StoredKey, len(s.Keys))}
	for i, k := range s.Keys {
		k.Seed = slices.Clone(k.Seed)
		c.Keys[i] = k
	}
	return c
}

// PublicKeys is an immutable set of verification keys by kid: the view of
// a KeyRing, or a JWKS parsed by ParseJWKS. It is a KeySource of itself.
type PublicKeys struct {
	byKID map[string]*Key
	order []*Key // active first, then newest first
}

// Key is one verification key of a PublicKeys. Immutable.
type Key struct {
	kid string
	key ed25519.PublicKey
	x   string // base64url of key
}

// KID is the key's id, its RFC 7638 thumbprint.
func (k *Key) KID() string { return k.kid }

// Verify reports whether sig is the key's Ed25519 signature of msg.
func (k *Key) Verify(msg, sig []byte) bool { return ed25519.Verify(k.key, msg, sig) }

// KeySource gives a verifier the keys to check with. PublicKeys is called
// on every verification and must be cheap: return a prepared snapshot.
type KeySource interface {
	PublicKeys() *PublicKeys
}

// PublicKeys implements KeySource.
func (p *PublicKeys) PublicKeys() *PublicKeys { return p }

// KIDs lists the key ids, active (or first listed) first.
func (p *PublicKeys) KIDs() []string {
	ids := make([]string, len(p.order))
	for i, k := range p.order {
		ids[i] = k.kid
	}
	return ids
}

// Lookup returns the public key with the given id.
func (p *PublicKeys) Lookup(kid string) (ed25519.PublicKey, bool) {
	k, ok := p.byKID[kid]
	if !ok {
		return nil, false
	}
	return k.key, true
}

// Key returns the key with the given id.
func (p *PublicKeys) Key(kid string) (*Key, bool) {
	k, ok := p.byKID[kid]
	return k, ok
}

// Len is the number of keys.
func (p *PublicKeys) Len() int { return len(p.order) }

func newPublicKeys(keys []ed25519.PublicKey) *PublicKeys {
	p := &PublicKeys{byKID: map[string]*Key{}}
	for _, key := range keys {
		x := b64.EncodeToString(key)
		kid := thumbprint(x)
		if _, dup := p.byKID[kid]; dup {
			continue
		}
		k := &Key{kid: kid, key: key, x: x}
		p.byKID[kid] = k
		p.order = append(p.order, k)
	}
	return p
}

// thumbprint is the RFC 7638 thumbprint of an Ed25519 OKP key (RFC 8037
// section 2), whose members in lexicographic order are crv, kty, x.
func thumbprint(x string) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + x + `"}`))
	return b64.EncodeToString(sum[:])
}

// KID is the key id of a public key: its RFC 7638 thumbprint.
func KID(pub ed25519.PublicKey) string { return thumbprint(b64.EncodeToString(pub)) }

// JWK is an RFC 8037 OKP public key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is a JSON Web Key Set (RFC 7517 section 5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the keys as a JSON Web Key Set, active key first.
func (p *PublicKeys) JWKS() JWKS {
	s := JWKS{Keys: make([]JWK, 0, len(p.order))}
	for _, k := range p.order {
		s.Keys = append(s.Keys, JWK{Kty: "OKP", Crv: "Ed25519", X: k.x, KID: k.kid, Use: "sig", Alg: "EdDSA"})
	}
	return s
}

// maxJWKS bounds what ParseJWKS reads.
const (
	maxJWKSBytes = 64 << 10
	maxJWKSKeys  = 64
)

// ParseJWKS reads a key set served by PublicJWKS, strictly: Ed25519 OKP
// keys for signatures with EdDSA, whose kid is their thumbprint. Keys of
// other types are refused, not skipped, so that a wrong endpoint shows.
func ParseJWKS(data []byte) (*PublicKeys, error) {
	const op = "keyring.parse_jwks"
	if len(data) > maxJWKSBytes {
		return nil, errs.E(op, errs.TooLarge, "key set too large")
	}
	var s JWKS
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, errs.E(op, errs.Invalid, "key set is not JSON", err)
	}
	if len(s.Keys) == 0 || len(s.Keys) > maxJWKSKeys {
		return nil, errs.Errorf(op, errs.Invalid, "key set has %d keys, want 1 to %d", len(s.Keys), maxJWKSKeys)
	}
	keys := make([]ed25519.PublicKey, 0, len(s.Keys))
	for i, k := range s.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Alg != "" && k.Alg != "EdDSA") || (k.Use != "" && k.Use != "sig") {
			return nil, errs.Errorf(op, errs.Invalid, "key %d is not an Ed25519 signature key", i)
		}
		x, err := b64.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errs.Errorf(op, errs.Invalid, "key %d: bad x", i)
		}
		if k.KID != thumbprint(k.X) {
			return nil, errs.Errorf(op, errs.Invalid, "key %d: kid is not the key's thumbprint", i)
		}
		keys = append(keys, ed25519.PublicKey(x))
	}
	return newPublicKeys(keys), nil
}

// KeyRing holds the active signing key and the retired keys that still
// verify. Reads (signing, PublicKeys) are one atomic load; changes are
// serialized. Safe for concurrent use.
type KeyRing struct {
	cfg   KeyRingConfig
	mu    sync.Mutex // serializes changes
	state atomic.Pointer[ringState]
}

// ringState is an immutable snapshot of a ring.
type ringState struct {
	set    KeySet
	signer *signingKey
	pub    *PublicKeys
	privs  map[string]ed25519.PrivateKey // every key's, by kid
}

type signingKey struct {
	kid     string
	priv    ed25519.PrivateKey
	created time.Time
}

// NewKeyRing returns a ring with one fresh active key.
func NewKeyRing(cfg KeyRingConfig, now time.Time) (*KeyRing, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	k, err := generate(now)
	if err != nil {
		return nil, err
	}
	r := &KeyRing{cfg: cfg}
	if err := r.Load(KeySet{Keys: []StoredKey{k}}); err != nil {
		return nil, err
	}
	return r, nil
}

// NewKeyRingFromSet returns a ring holding set, e.g. one read from a
// KeyStore.
func NewKeyRingFromSet(cfg KeyRingConfig, set KeySet) (*KeyRing, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &KeyRing{cfg: cfg}
	if err := r.Load(set); err != nil {
		return nil, err
	}
	return r, nil
}

func generate(now time.Time) (StoredKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return StoredKey{}, errs.E("keyring.generate", errs.Other, err)
	}
	return StoredKey{KID: KID(pub), Seed: priv.Seed(), Created: now.UTC()}, nil
}

// Load replaces the ring's keys with set, after checking it: exactly one
// active key, well-formed seeds whose kids match.
func (r *KeyRing) Load(set KeySet) error {
	st, err := newRingState(set.clone())
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.state.Store(st)
	r.mu.Unlock()
	return nil
}

func newRingState(set KeySet) (*ringState, error) {
	const op = "keyring.load"
	st := &ringState{set: set, privs: make(map[string]ed25519.PrivateKey, len(set.Keys))}
	// Active first, then newest first: the order of the JWKS.
	slices.SortStableFunc(set.Keys, func(a, b StoredKey) int {
		if a.active() != b.active() {
			if a.active() {
				return -1
			}
			return 1
		}
		return b.Created.Compare(a.Created)
	})
	pubs := make([]ed25519.PublicKey, 0, len(set.Keys))
	seen := map[string]bool{}
	for i, k := range set.Keys {
		if len(k.Seed) != ed25519.SeedSize {
			return nil, errs.Errorf(op, errs.Invalid, "key %d: seed is %d bytes", i, len(k.Seed))
		}
		priv := ed25519.NewKeyFromSeed(k.Seed)
		pub := priv.Public().(ed25519.PublicKey)
		if KID(pub) != k.KID {
			return nil, errs.Errorf(op, errs.Invalid, "key %d: kid %q does not match its key", i, k.KID)
		}
		if seen[k.KID] {
			return nil, errs.Errorf(op, errs.Invalid, "key %d: kid %q twice", i, k.KID)
		}
		seen[k.KID] = true
		st.privs[k.KID] = priv
		if k.active() {
			if st.signer != nil {
				return nil, errs.E(op, errs.Invalid, "more than one active key")
			}
			st.signer = &signingKey{kid: k.KID, priv: priv, created: k.Created}
		}
		pubs = append(pubs, pub)
	}
	if st.signer == nil {
		return nil, errs.E(op, errs.Invalid, "no active key")
	}
	st.pub = newPublicKeys(pubs)
	return st, nil
}

// Rotate makes a fresh key the active one; the old active key verifies
// until now + VerifyFor. Keys whose verification ended are dropped.
func (r *KeyRing) Rotate(now time.Time) error {
	k, err := generate(now)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.state.Load().set.clone()
	for i := range set.Keys {
		if set.Keys[i].active() {
			set.Keys[i].Retired = now.UTC()
			set.Keys[i].VerifyUntil = now.UTC().Add(r.cfg.VerifyFor)
		}
	}
	set.Keys = append(set.Keys, k)
	set = pruned(set, now)
	st, err := newRingState(set)
	if err != nil {
		return err
	}
	r.state.Store(st)
	return nil
}

// Prune drops the retired keys that no longer verify at now, and reports
// whether it dropped any.
func (r *KeyRing) Prune(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state.Load().set
	set := pruned(old.clone(), now)
	if len(set.Keys) == len(old.Keys) {
		return false
	}
	st, err := newRingState(set)
	if err != nil {
		return false // cannot happen: pruning keeps the active key
	}
	r.state.Store(st)
	return true
}

func pruned(set KeySet, now time.Time) KeySet {
	set.Keys = slices.DeleteFunc(set.Keys, func(k StoredKey) bool {
		return !k.active() && !now.Before(k.VerifyUntil)
	})
	return set
}

// RotationDue reports whether the active key is older than RotateEvery.
func (r *KeyRing) RotationDue(now time.Time) bool {
	return now.Sub(r.state.Load().signer.created) >= r.cfg.RotateEvery
}

// Config returns the ring's configuration, defaults filled.
func (r *KeyRing) Config() KeyRingConfig { return r.cfg }

// KeySet returns a copy of the ring's keys, for a KeyStore.
func (r *KeyRing) KeySet() KeySet { return r.state.Load().set.clone() }

// Private returns the ring's private key kid, active or retired while
// the ring keeps it, or the active key when kid is "", and the kid of
// the key returned; ok is false when the ring has no key kid. It is for
// tokens that are not JWS (ticket barcodes), whose same bytes are signed
// again later by the key that signed them first.
func (r *KeyRing) Private(kid string) (priv ed25519.PrivateKey, used string, ok bool) {
	st := r.state.Load()
	if kid == "" {
		kid = st.signer.kid
	}
	priv, ok = st.privs[kid]
	if !ok {
		return nil, "", false
	}
	return priv, kid, true
}

// ActiveKID is the id of the key that signs.
func (r *KeyRing) ActiveKID() string { return r.state.Load().signer.kid }

// PublicKeys implements KeySource: the current verification keys.
func (r *KeyRing) PublicKeys() *PublicKeys { return r.state.Load().pub }

// PublicJWKS returns the verification keys as an RFC 8037 key set, for the
// well-known endpoint.
func (r *KeyRing) PublicJWKS() JWKS { return r.PublicKeys().JWKS() }

// String does not print keys.
func (r *KeyRing) String() string {
	return fmt.Sprintf("keyring.KeyRing{active: %s, keys: %d}", r.ActiveKID(), len(r.PublicKeys().order))
}
