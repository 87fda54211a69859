// Package flags is the domain of feature flags: a flag's definition (its
// variants, targeting rules and percentage rollouts), its validation, and
// its evaluation for a context (who asks: the account, and where: the
// organizer, event, region and sales channel). It imports no transport or
// storage: definitions live in the core's settings bucket and reach every
// process through services/settings/natskv's watcher, which hands them to
// a Set; services/flags/openfeature serves a Set to the OpenFeature Go SDK,
// which is how code asks for a flag.
//
// # Evaluation
//
// A disabled flag answers the caller's own default (reason Disabled). An
// enabled one walks its rules in order; the first rule whose conditions all
// hold decides: a fixed variant (reason TargetingMatch) or a rollout (reason
// Split). No rule matching, the flag's own rollout decides when it has one,
// else its default variant (reason Default).
//
// A rule's condition on an attribute holds when the context's value is one
// of the listed values (an empty list: no condition on that attribute).
//
// # Rollouts
//
// A rollout splits the accounts by weight. Each account has a stable point
// in [0, 1): the first 8 bytes of SHA-256(flag key, 0x00, targeting key),
// as a big-endian integer over 2^64. The split whose cumulative share
// covers the point is the account's. So:
//
//   - the same account keeps its answer while the weights stay, on every
//     edge and core node and across restarts (nothing is stored);
//   - raising a variant's share from 10% to 25% keeps the first 10% in it
//     (the splits are laid out in the order written);
//   - two flags salt the hash with their own keys, so their rollouts are
//     independent: being in one flag's 10% says nothing about another's.
//
// A rollout needs a targeting key; without one the evaluation fails with
// ErrTargetingKeyMissing and the caller gets its default.
package flags
