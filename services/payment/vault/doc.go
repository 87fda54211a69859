// Package vault is the payment service's card vault: the only place a card
// number is kept. The buyer's browser posts the card to the payment service
// (ParseCardRequest decodes that request); Seal validates it (CheckCard:
// Luhn, expiry, brand from the IIN range) and stores it encrypted, and
// returns a Token ("pm_…", brand, last four digits, expiry, fingerprint)
// that everything else uses. Open gives the card back for the one gateway
// call that needs it; ForgetCVC deletes the CVC once the gateway has the
// authorization, as PCI DSS requires.
//
// # Envelope encryption
//
// A card's number and expiry are sealed with AES-256-GCM under a data key
// (DEK), with associated data naming the card's token id and the DEK's
// id, so that a ciphertext copied into another record does not open. The
// CVC is sealed the same way in a record of its own, which ForgetCVC
// deletes, and which the store drops after Config.CVCLifetime if nobody
// does. (Deleting a record removes it from the store's current state; a
// PostgreSQL page or JetStream block may keep the bytes until vacuum or
// compaction, sealed.)
//
// DEKs are random 32-byte keys. Each process makes its own, uses it for at
// most Config.CardsPerDEK cards or Config.DEKLifetime, whichever ends
// first, then makes another: no coordination between processes is needed,
// a DEK's use is bounded, and a process that dies abandons a DEK that
// sealed fewer cards. A DEK is stored only wrapped: AES-256-GCM-sealed by a
// key-encryption key (KEK) from the Keyring, with associated data naming
// the DEK and the KEK. Unwrapped DEKs are cached in memory
// (Config.CachedDEKs).
//
// # Keyring and rotation
//
// The Keyring (ParseKeyring, from a file or an environment variable)
// holds the KEKs by id; one is active and wraps new DEKs. To rotate: add a
// new key and make it active in every process's keyring, then call Rewrap,
// which re-wraps every stored DEK under the active KEK and touches no card
// ciphertext. Rewrap skips the DEKs under the active KEK already, so it can
// be repeated, and resumed from its progress cursor; it reports progress
// through a callback. KEKs lists which KEKs are still referenced: an old
// KEK can leave the keyring once no DEK names it.
//
// # Fingerprints
//
// A token's fingerprint is HMAC-SHA256 of the card number (first 16 bytes,
// hex) under a fingerprint key derived (HKDF-SHA256) from one designated
// KEK of the keyring ("fingerprint"): the same card has the same
// fingerprint in every token, across KEK rotations, which lets fraud
// checks recognize a card without the number. The designated KEK is never
// dropped; New refuses a keyring whose fingerprint key is not the one the
// store's cards were fingerprinted with (a check value is kept in the
// store), instead of fingerprinting the same cards differently.
//
// # Nothing leaks
//
// payment.Card and every type here that holds a number or a key
// (Keyring, the sealed plaintext) print redacted through fmt, log/slog and
// encoding/json, and no error repeats a number: errors name fields and
// reasons only.
//
// The Store interface keeps the sealed records; natskv (a JetStream
// key-value bucket, for `ticketing dev`) and postgres (production,
// migrations component "payment_vault") implement it, and vaulttest is the
// contract suite both pass, the Vault's own behaviour on each included.
package vault
