// Package keyring keeps the Ed25519 keys that sign this system's tokens
// (compact JWS with alg EdDSA) and gives verifiers the public half. Each
// token kind has its own ring: services/admission for admission tokens,
// services/identity/token for access tokens.
//
// A KeyRing holds one active signing key and the retired keys that still
// verify: a retired key is kept for VerifyFor after it stopped signing,
// longer than any token it signed lives, then dropped. Key ids are RFC 7638
// thumbprints, so a kid names exactly one public key. PublicKeys is an
// immutable snapshot of the verification keys, read with one atomic load;
// its JWKS is the RFC 8037 key set for a well-known endpoint, and ParseJWKS
// turns such a set back into PublicKeys, so that an edge or a partner
// verifies without private keys.
//
// KeyRing.Sign writes a compact JWS whose header is exactly
// {"alg":"EdDSA","typ":<typ>,"kid":<kid>}; Headers recognizes that header
// as bytes, so that the token packages' verifiers skip JSON for the tokens
// this system wrote. Judging anything else (refusing other algorithms,
// embedded keys, crit) is the token packages' job.
//
// Core nodes share a ring's keys through a KeyStore (compare-and-set on a
// revision): Sync creates the first set, loads what another node wrote, and
// rotates when the active key is older than RotateEvery; concurrent nodes
// agree because only one compare-and-set wins. The store holds private keys
// and must be readable by core nodes only. MemoryKeyStore is the in-process
// store; natskv keeps a set in a JetStream key-value bucket, and
// keyringtest is the contract suite both pass.
package keyring
