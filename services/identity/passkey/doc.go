// Package passkey runs the WebAuthn ceremonies of the identity service
// with github.com/go-webauthn/webauthn: registering a passkey for an
// account, signing in with one without a password (a discoverable
// credential, the account found by the credential's user handle, which is
// the account id), and using one as the second factor of a password
// sign-in.
//
// It keeps no state per ceremony. A begin returns the options for the
// browser and the ceremony's state (challenge, user handle, allowed
// credentials, purpose, expiry) sealed with AES-256-GCM under a key of the
// service (Sealer); the HTTP layer hands the state to the client, in an
// HttpOnly cookie or the JSON body, and back to the finish. A finish
// spends the challenge in a Spent store (admission's memory and redis
// stores fit) until the state's expiry, so that a state is finished once.
//
// # Wire
//
// Begin → browser: Started.Options, the library's {"publicKey": {...}},
// whose member is PublicKeyCredentialCreationOptionsJSON or
// PublicKeyCredentialRequestOptionsJSON (binary fields unpadded
// base64url): give it to PublicKeyCredential.parseCreationOptionsFromJSON
// or parseRequestOptionsFromJSON, then navigator.credentials.create or
// get.
//
// Browser → finish: the credential's toJSON(), as the body:
//
//	registration: {"id","rawId","type":"public-key","authenticatorAttachment",
//	  "response":{"clientDataJSON","attestationObject","transports",
//	    "authenticatorData","publicKey","publicKeyAlgorithm"},
//	  "clientExtensionResults":{"credProps":{"rk":true}}}
//	assertion:    {"id","rawId","type":"public-key","authenticatorAttachment",
//	  "response":{"clientDataJSON","authenticatorData","signature","userHandle"},
//	  "clientExtensionResults":{}}
//
// # Errors
//
// Every refusal of what the browser sent is an *errs.Error of kind
// Unauthorized, Invalid, TooLarge or Conflict, with a Reason* constant as
// its reason; a payload never causes an internal error. Errors of kind
// Unavailable come from the spent store; errors of kind Other, from
// stored passkeys that do not decode.
package passkey
