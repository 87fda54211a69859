// Package admission issues and checks the signed admission tokens of the
// waiting room: a user the core admits gets a token bound to one event and
// one session, and the hold endpoint refuses requests without a valid one.
//
// # Token
//
// A token is a compact JWS (a JWT) signed with Ed25519:
//
//	base64url(header) "." base64url(claims) "." base64url(signature)
//	header: {"alg":"EdDSA","typ":"JWT","kid":"<RFC 7638 thumbprint of the key>"}
//	claims: {"iss","aud","sub" (session id),"evt" (event id),"iat","nbf","exp","jti"}
//
// It is written and read here with the standard library only, on purpose: a
// general JWT library accepts more than this system ever produces, and
// every extra choice (alg "none", HMAC with a public key as the secret,
// embedded keys, "crit" extensions) has been an attack. The verifier accepts
// exactly one algorithm (EdDSA), keys it knows by kid, this issuer and
// audience, a bounded lifetime, and the event and session the request is
// for. The length is capped before anything is decoded, the signature is
// checked before the claims are parsed, and every refusal is an
// *errs.Error of kind Unauthorized (bad or unknown token), Forbidden (a
// good token, but not for this event or session, or already used) or Gone
// (expired), with a Reason* code for metrics and clients.
//
// # Keys
//
// The keys are a keyring.KeyRing of their own (internal/keyring): one
// active signing key and the retired keys that still verify, RFC 7638
// thumbprints as kids, the RFC 8037 JWKS for the well-known endpoint and
// keyring.ParseJWKS for an edge or a partner, shared by the core nodes
// through a keyring.KeyStore (the JetStream bucket "admission-keys", see
// core/streams) and keyring.Sync. NewSigner checks that the ring keeps a
// retired key longer than any token lives (MaxTTL + ClockSkew).
//
// # Replay
//
// A token admits one hold: Redeem verifies it and then spends its jti in a
// SpentStore for one use, the hold request's idempotency key (set-if-absent
// with an expiry past the token's own), so a use by another request is
// refused with ReasonReplayed even from another edge, while the same
// request retried (a client that lost the answer) goes through to the
// core's idempotent answer. When the core refuses the hold (the seats were
// taken), Unredeem gives the token back so the shopper can try other seats.
// The expiry keeps the store bounded: an entry is needed only while its
// token could still verify.
//
// # Speed
//
// Verification runs on every hold request at on-sale peaks, so its cost
// should be the Ed25519 verification and little else: decoded public keys
// are cached by kid in an immutable snapshot read with one atomic load, the
// header of a token from a known key is matched as bytes without parsing
// JSON (keyring.Headers), the token is decoded into stack buffers, and refusals are
// preallocated errors. BenchmarkVerify and BenchmarkRawEd25519Verify show
// the ratio.
//
// Adapters: redis (SpentStore shared by the edges of a region);
// admissiontest is the contract suite it and the in-memory store pass. The
// key store adapter is internal/keyring/natskv.
package admission
