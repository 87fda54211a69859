// Package token issues and verifies user access tokens: JWTs in the
// RFC 9068 profile, signed with Ed25519 by a key ring of their own
// (internal/keyring), separate from the admission tokens' ring so that the
// two kinds have distinct kids at the JWKS endpoints and a token of one
// kind is never accepted as the other.
//
// # Token
//
//	base64url(header) "." base64url(claims) "." base64url(signature)
//	header: {"alg":"EdDSA","typ":"at+jwt","kid":"<RFC 7638 thumbprint of the key>"}
//	claims: {"iss","aud" (one string),"sub" (user id),"client_id","scope" (space-separated),"iat","exp","jti"}
//
// and "nbf", which the Issuer does not write but the Verifier honours. Like
// services/admission it is written and read with the standard library
// only: a general JWT library accepts more than this system produces.
//
// # Verification (RFC 8725)
//
// The Verifier refuses, each with an *errs.Error of kind Unauthorized and
// a Reason* code: a token longer than MaxTokenBytes (checked before
// anything is decoded); any alg but EdDSA (no "none", no HMAC, so a public
// key can never serve as an HMAC secret); headers that bring their own key
// or extensions (jwk, jku, x5c, x5u, x5t, x5t#S256, crit) or any other
// member; a typ other than "at+jwt" (or "application/at+jwt", RFC 9068
// section 4), which keeps admission tokens ("JWT") out; a kid that is not
// one of the ring's verification keys; a bad signature, checked before the
// claims are parsed; then an issuer or audience not exactly the
// configured ones, a lifetime above MaxLifetime, and exp, nbf and iat
// outside now with a small Leeway.
//
// # Speed
//
// Verification runs on every authenticated request. A token this system
// wrote has a header known byte for byte (keyring.Headers), so the common
// case parses no JSON before the signature check; the token is split in a
// stack buffer, and refusals are preallocated. BenchmarkVerify and
// BenchmarkRawEd25519Verify show the ratio.
package token
